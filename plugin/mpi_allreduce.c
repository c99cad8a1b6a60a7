/*
 * mpi_allreduce.c - Open MPI's own all-reduce ([hpsgd] allreduce=mpi), on the
 * MPI thread, and the watchdog that bounds it. MPI thread only, except the
 * watchdog thread, which never calls MPI.
 *
 * MPI_Allreduce(MPI_IN_PLACE, MPI_SUM) on the same buffer the ring would
 * reduce, for full-precision changes only: float32 and the int64 extras. The
 * fp16 codec's decode-add-encode with error feedback needs the ring's own
 * reduction (options.c refuses allreduce=mpi with compress=fp16).
 *
 * Why blocking: Open MPI moves bytes only inside MPI calls, and a
 * non-blocking collective polled with sleeps ran at half the link's rate,
 * while a blocking one with mpi_yield_when_idle=1 ran at link speed and left
 * 0.91 of the other core to training (mpi-facts.md, shared notes). A blocking
 * call cannot be polled against a deadline, so a watchdog thread is armed
 * with the job's deadline (timeout after every rank joined, as the ring's)
 * before the call and disarmed after it: if the call has not returned by
 * then, the rank says so on stderr and exits with status 1, and mpirun ends
 * every other rank of the job (their own watchdogs fire too when they are
 * stuck in the same call). The negotiation before the job still names ranks
 * that never joined (stall.c).
 *
 * The MPI standard does not promise the same bits on every rank from a
 * floating-point sum; Open MPI 4.1's algorithms for a commutative operation
 * compute each element once and copy it, or add in pairs that commute
 * exactly, but verify=N checks it during training, and the final checksum
 * comparison at the end does in every run.
 *
 * Test knob: HPSGD_TEST_STALL_IN_ALLREDUCE_RANK=r makes rank r stop inside
 * its first all-reduce (after the negotiation, with its watchdog armed), as a
 * rank stuck in the collective would: every watchdog must end the job.
 *
 * Bytes: the collective's own traffic is not visible here; the counters get
 * the bandwidth-optimal 2(n-1)/n of the buffer per rank (job_bytes_estimated).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "comm_internal.h"
#include "util.h"

struct hpsgd_watchdog {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;        /* on CLOCK_MONOTONIC, as hpsgd_now() */
    int armed, quit, rank;
    int test_stall;             /* HPSGD_TEST_STALL_IN_ALLREDUCE_RANK is this rank */
    double deadline, timeout_s;
    char what[64];
};

static struct timespec monotonic_at(double t)
{
    struct timespec ts;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    return ts;
}

static void *watch(void *arg)
{
    struct hpsgd_watchdog *w = arg;
    hpsgd_block_stop_signals();
    pthread_mutex_lock(&w->lock);
    while (!w->quit) {
        if (!w->armed) {
            pthread_cond_wait(&w->cond, &w->lock);
            continue;
        }
        if (hpsgd_now() <= w->deadline) {
            struct timespec until = monotonic_at(w->deadline + 0.01);
            pthread_cond_timedwait(&w->cond, &w->lock, &until);
            continue;
        }
        fprintf(stderr,
                "hpsgd: rank %d: %s stalled: Open MPI's all-reduce (allreduce=mpi) has not returned after %.0f s "
                "(timeout); aborting the job\n",
                w->rank, w->what, w->timeout_s);
        fflush(stderr);
        _exit(1); /* mpirun ends the other ranks of the job */
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static struct hpsgd_watchdog *watchdog(hpsgd_comm *c)
{
    if (c->watchdog) return c->watchdog;
    struct hpsgd_watchdog *w = calloc(1, sizeof *w);
    if (!w) hpsgd_stall_abort(c, "out of memory for the all-reduce's watchdog");
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&w->lock, NULL);
    w->rank = c->rank;
    w->timeout_s = c->timeout_s;
    w->test_stall = hpsgd_env_long("HPSGD_TEST_STALL_IN_ALLREDUCE_RANK", -1, 0, 1 << 30) == c->rank;
    int e = pthread_create(&w->thread, NULL, watch, w);
    if (e) hpsgd_stall_abort(c, "cannot start the all-reduce's watchdog: %s", strerror(e));
    c->watchdog = w;
    return w;
}

static void arm(struct hpsgd_watchdog *w, double deadline, const char *what)
{
    pthread_mutex_lock(&w->lock);
    w->armed = 1;
    w->deadline = deadline;
    snprintf(w->what, sizeof w->what, "%s", what);
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void disarm(struct hpsgd_watchdog *w)
{
    pthread_mutex_lock(&w->lock);
    w->armed = 0;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

void hpsgd_watchdog_stop(hpsgd_comm *c)
{
    struct hpsgd_watchdog *w = c->watchdog;
    if (!w) return;
    pthread_mutex_lock(&w->lock);
    w->quit = 1;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
    c->watchdog = NULL;
}

void hpsgd_mpi_allreduce(hpsgd_comm *c, const hpsgd_group *g, void *buf, size_t count, const hpsgd_wire_type *type,
                         double deadline, const char *what)
{
    if (g->size == 1 || count == 0) return;
    MPI_Datatype dt = type == &hpsgd_wire_f32 ? MPI_FLOAT : type == &hpsgd_wire_i64 ? MPI_INT64_T : MPI_DATATYPE_NULL;
    if (dt == MPI_DATATYPE_NULL)
        hpsgd_stall_abort(c, "%s: allreduce=mpi sums float32 and int64 only, not %s", what, type->name);
    struct hpsgd_watchdog *w = watchdog(c);
    hpsgd_check_abort_request(c);
    unsigned char *p = buf;
    arm(w, deadline, what);
    while (w->test_stall) sleep(1); /* tests: stuck inside the collective, without MPI progress */
    for (size_t left = count; left;) {
        int n = left > (1u << 30) ? (1 << 30) : (int)left;
        if (MPI_Allreduce(MPI_IN_PLACE, p, n, dt, MPI_SUM, g->comm) != MPI_SUCCESS)
            hpsgd_stall_abort(c, "%s: MPI_Allreduce failed", what);
        p += (size_t)n * type->elem_size;
        left -= (size_t)n;
    }
    disarm(w);
    atomic_store(&c->alive_ms, (uint64_t)(1e3 * hpsgd_now()));
    hpsgd_stall_all_alive(c); /* it returned: every rank of the group took part */
    uint64_t bytes = (uint64_t)(2.0 * (g->size - 1) / g->size * (double)count * (double)type->elem_size);
    c->job_bytes_sent += bytes;
    /* The leaders' group has one rank per host: all of it crosses hosts. */
    if (g->world) c->job_bytes_inter += bytes;
    else if (c->nodes > 1) c->job_bytes_estimated = 2; /* which of it crossed hosts is Open MPI's business */
    if (!c->job_bytes_estimated) c->job_bytes_estimated = 1;
}
