/*
 * checkpoint.h - rank 0's saves of the global model: the atomic write, the
 * model lock, and the saver thread that writes G at once on a signal.
 *
 * The model lock guards G, the `seen` that goes with it and rank 0's copy of
 * the tensors that do not travel: the training thread changes them only
 * under it (exchange.c's merges), and the saver thread writes them under it,
 * so a save never holds a half-merged model.
 */
#ifndef HPSGD_CHECKPOINT_H
#define HPSGD_CHECKPOINT_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stddef.h>

#include "options.h"
#include "registry.h"
#include "replica.h"

typedef struct hpsgd_checkpoint {
    const hpsgd_registry *reg;
    hpsgd_replica *rep;         /* G: rep->global, fetched under lock (replica.h) */
    size_t images_per_iteration;
    char backup_path[HPSGD_PATH_MAX + 300]; /* BACKUP_DIR/BASE.backup: where a stop saves */

    pthread_mutex_t lock;
    size_t seen;                /* images in G; under lock */
    float *local_stats;         /* tensors that do not travel, as of the start or the last save; under lock */

    sem_t save_request;         /* posted by the signal handler (async-signal-safe) */
    pthread_t saver;
    atomic_int saver_running;
    atomic_int saver_quit;
} hpsgd_checkpoint;

/* Before any other thread: the model to save and where a stop saves. */
int hpsgd_checkpoint_init(hpsgd_checkpoint *k, const hpsgd_registry *reg, hpsgd_replica *rep, size_t seen,
                          size_t images_per_iteration, const char *backup_path);

void hpsgd_checkpoint_lock(hpsgd_checkpoint *k);
void hpsgd_checkpoint_unlock(hpsgd_checkpoint *k);

/* Rank 0: G as merged so far to filename (atomically), with Darknet's
 * message. A failure is fatal. */
void hpsgd_checkpoint_save(hpsgd_checkpoint *k, const char *filename);

/* The saver thread (rank 0). stop joins it after any save it is doing; both
 * are safe to call twice. */
void hpsgd_checkpoint_saver_start(hpsgd_checkpoint *k);
void hpsgd_checkpoint_saver_stop(hpsgd_checkpoint *k);

/* From a signal handler: have the saver write G to the backup now. */
void hpsgd_checkpoint_request_save(hpsgd_checkpoint *k);

#endif
