/*
 * lifecycle.h - the process around training: what the launcher says, the
 * exit guard, SIGINT/SIGTERM, the agreements every rank makes at the start
 * and at the end.
 */
#ifndef HPSGD_LIFECYCLE_H
#define HPSGD_LIFECYCLE_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "comm.h"
#include "fingerprint.h"

typedef struct hpsgd_lifecycle {
    int under_launcher;         /* started by mpirun */
    int env_rank;               /* rank from the launcher's environment, before MPI starts */
    int training_requested;     /* argv is "detector train" or "classifier train" */
    int training_finished;      /* the plugin said all there is to say: the exit guard stays quiet */
    volatile sig_atomic_t signal_seen;
    pthread_t training_thread;  /* where SIGINT/SIGTERM are handled */
    hpsgd_checkpoint *saver;    /* rank 0: saves at once on a signal */
    hpsgd_comm *comm;           /* tells rank 0 of a signal here */
} hpsgd_lifecycle;

/* main(): reads the launcher's environment and the command; installs the
 * exit guard for training under mpirun. Returns the GPU a rank should use
 * when the command line names none (stock: 0). */
int hpsgd_lifecycle_main(hpsgd_lifecycle *L, int argc, char **argv);

/* The training thread from now on handles SIGINT/SIGTERM (other threads
 * forward them); the first one is passed on to rank 0 through comm. */
void hpsgd_lifecycle_handle_signals(hpsgd_lifecycle *L, hpsgd_comm *comm);

/* Ranks other than 0 keep Darknet's chatter off their stdout. */
void hpsgd_lifecycle_quiet_stdout(void);

/* Cores this rank may use: its affinity mask if mpirun bound it, else the
 * node's cores shared among the local_size ranks on it. */
int hpsgd_cores_per_rank(int local_size);

/* Every rank's `bytes` of mine, gathered into a new array (the caller frees
 * it); a failure is fatal. */
void *hpsgd_gather(hpsgd_comm *c, const void *mine, size_t bytes, const char *what);

/* Before the first step every rank reports its fingerprint and whether its
 * inputs are readable; all decide alike, and on a difference all leave with
 * one line from rank 0. */
void hpsgd_agree_on_start(hpsgd_comm *c, const hpsgd_fingerprint *fp, int inputs_ok);

/* The saved model is G: every rank must hold the same bits. sum: this
 * rank's hpsgd_hash of G (taken under the checkpoint's lock, as G's host
 * copy may be the saver thread's). Prints the checksum line; a difference
 * is fatal. */
void hpsgd_agree_on_end(hpsgd_comm *c, uint64_t sum);

#endif
