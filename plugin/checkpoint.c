/*
 * checkpoint.c - rank 0's saves (see checkpoint.h).
 */
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

int hpsgd_checkpoint_init(hpsgd_checkpoint *k, const hpsgd_registry *reg, hpsgd_replica *rep, size_t seen,
                          size_t images_per_iteration, const char *backup_path)
{
    k->reg = reg;
    k->rep = rep;
    k->seen = seen;
    k->images_per_iteration = images_per_iteration ? images_per_iteration : 1;
    snprintf(k->backup_path, sizeof k->backup_path, "%s", backup_path);
    pthread_mutex_init(&k->lock, NULL);
    k->local_stats = NULL;
    if (reg->local_floats) {
        k->local_stats = calloc(reg->local_floats, sizeof(float));
        if (!k->local_stats) return -1;
    }
    return 0;
}

void hpsgd_checkpoint_lock(hpsgd_checkpoint *k) { pthread_mutex_lock(&k->lock); }
void hpsgd_checkpoint_unlock(hpsgd_checkpoint *k) { pthread_mutex_unlock(&k->lock); }

static void fsync_path(const char *path, int flags)
{
    int fd = open(path, flags);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* G with `seen`, in Darknet's format, to FILE.part; then fsync and rename,
 * so a crash at any moment leaves the previous file or the new one whole.
 * Caller holds the lock. Returns 0, or -1 with err set. */
static int write_model(hpsgd_checkpoint *k, const char *filename, char *err, size_t errlen)
{
    char part[HPSGD_PATH_MAX + 8];
    snprintf(part, sizeof part, "%s.part", filename);
    FILE *f = fopen(part, "wb");
    if (!f) {
        snprintf(err, errlen, "cannot write %s: %s", part, strerror(errno));
        return -1;
    }
    hpsgd_replica_fetch_global(k->rep); /* G from the device, with a device twin */
    errno = 0;
    int bad = hpsgd_registry_write(k->reg, f, k->seen, k->rep->global, k->local_stats) || fflush(f) || fsync(fileno(f));
    int why = errno;
    if (fclose(f) && !bad) bad = 1, why = errno;
    struct stat st = {0};
    size_t expect = HPSGD_WEIGHTS_HEADER_BYTES + k->reg->saved_floats * sizeof(float);
    if (bad || stat(part, &st) || (size_t)st.st_size != expect) {
        snprintf(err, errlen, "cannot write %s (%lld of %zu bytes written: %s); %s is unchanged", part,
                 (long long)st.st_size, expect, why ? strerror(why) : "disk full?", filename);
        return -1;
    }
    if (rename(part, filename)) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", part, filename, strerror(errno));
        return -1;
    }
    char dir[HPSGD_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", filename);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    fsync_path(slash ? dir : ".", O_RDONLY | O_DIRECTORY);
    return 0;
}

/* Rank 0's copy of the tensors that do not travel (stats=0), which the saver
 * thread writes: it must not read layers the training thread is changing.
 * Refreshed at the start and at every save, not at every merge, to keep the
 * device copies off the training path; caller holds the lock. */
static void refresh_local_stats(hpsgd_checkpoint *k)
{
    if (!k->local_stats) return;
    hpsgd_registry_pull_local(k->reg);
    hpsgd_registry_gather_local(k->reg, k->local_stats);
}

void hpsgd_checkpoint_save(hpsgd_checkpoint *k, const char *filename)
{
    char err[HPSGD_PATH_MAX * 2 + 100];
    fprintf(stderr, "Saving weights to %s\n", filename); /* as save_weights() says */
    hpsgd_checkpoint_lock(k);
    refresh_local_stats(k);
    int rc = write_model(k, filename, err, sizeof err);
    hpsgd_checkpoint_unlock(k);
    if (rc) hpsgd_fatal("%s", err);
}

/* On the first SIGINT/SIGTERM: G as of the last merge goes to the .backup at
 * once, because mpirun, once it has forwarded a signal, gives the ranks only
 * odls_base_sigkill_timeout seconds (default 1) before SIGKILL: less than one
 * CPU training step may take. The agreed stop that follows saves again, with
 * the rounds still in flight merged. */
static void *saver_main(void *arg)
{
    hpsgd_checkpoint *k = arg;
    hpsgd_block_stop_signals();
    char err[HPSGD_PATH_MAX * 2 + 100];
    for (;;) {
        while (sem_wait(&k->save_request) && errno == EINTR) continue;
        if (atomic_load(&k->saver_quit)) return NULL;
        double t = hpsgd_now();
        hpsgd_checkpoint_lock(k);
        size_t seen = k->seen;
        int rc = write_model(k, k->backup_path, err, sizeof err);
        hpsgd_checkpoint_unlock(k);
        if (rc)
            hpsgd_say("on the signal: %s", err);
        else
            hpsgd_say("on the signal: saved the global model of iteration %zu (the last merge) to %s in %.0f ms; "
                      "stopping after the round in flight",
                      seen / k->images_per_iteration, k->backup_path, 1e3 * (hpsgd_now() - t));
    }
}

static void saver_cleanup(void *arg, hpsgd_exit_kind how)
{
    (void)how;
    hpsgd_checkpoint_saver_stop(arg);
}

void hpsgd_checkpoint_saver_start(hpsgd_checkpoint *k)
{
    refresh_local_stats(k); /* no other thread yet: no lock needed */
    if (sem_init(&k->save_request, 0, 0)) hpsgd_fatal("cannot start the saver thread: %s", strerror(errno));
    atomic_store(&k->saver_quit, 0);
    int rc = pthread_create(&k->saver, NULL, saver_main, k);
    if (rc) hpsgd_fatal("cannot start the saver thread: %s", strerror(rc));
    atomic_store(&k->saver_running, 1);
    hpsgd_at_exit(saver_cleanup, k);
}

/* The semaphore stays: a late signal may still post to it. */
void hpsgd_checkpoint_saver_stop(hpsgd_checkpoint *k)
{
    if (!atomic_exchange(&k->saver_running, 0)) return;
    hpsgd_forget_exit(saver_cleanup, k);
    atomic_store(&k->saver_quit, 1);
    sem_post(&k->save_request);
    pthread_join(k->saver, NULL);
}

void hpsgd_checkpoint_request_save(hpsgd_checkpoint *k)
{
    if (atomic_load(&k->saver_running)) sem_post(&k->save_request);
}
