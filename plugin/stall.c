/*
 * stall.c - heartbeats and the negotiation of every job (see stall.h).
 */
#include "stall.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm_internal.h"
#include "util.h"

enum { BEAT_PROGRESS, BEAT_WAITING, BEAT_STOP, BEAT_WORDS };

/* CPU time (ms) counted as progress only in steps of this much: Open MPI's
 * own helper threads wake now and then, a training thread uses ~1000 ms/s. */
#define PROGRESS_STEP_MS 50

typedef struct {
    double last_progress;   /* when it last computed or waited in a job */
    uint64_t mark;          /* its CPU time then */
} peer_view;

struct hpsgd_stall {
    double period, last_sent;
    int nsends;
    MPI_Request *sends;     /* rank 0: one per other rank; others: one to rank 0 */
    uint64_t out[BEAT_WORDS], in[BEAT_WORDS];
    MPI_Request recv;
    peer_view *peers;       /* by rank: rank 0 watches all, the others rank 0 */
    double own_mpi_cpu_ms;  /* the MPI thread's CPU time, left out of progress */
    int stop_sent, stop_heard;
    uint64_t waiting;       /* the job this rank's MPI thread is in, 0 when idle */
};

static uint64_t cpu_ms_but_this_thread(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    double all = 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
    double mine = hpsgd_thread_cpu_ms();
    return all > mine ? (uint64_t)(all - mine) : 0;
}

static void post_recv(hpsgd_comm *c)
{
    struct hpsgd_stall *s = c->stall;
    MPI_Irecv(s->in, BEAT_WORDS, MPI_UINT64_T, c->rank == 0 ? MPI_ANY_SOURCE : 0, HPSGD_TAG_BEAT, MPI_COMM_WORLD,
              &s->recv);
}

void hpsgd_stall_start(hpsgd_comm *c)
{
    if (c->size == 1) return;
    struct hpsgd_stall *s = calloc(1, sizeof *s);
    if (!s) hpsgd_stall_abort(c, "out of memory for the stall inspector");
    s->nsends = c->rank == 0 ? c->size - 1 : 1;
    s->sends = malloc((size_t)s->nsends * sizeof *s->sends);
    s->peers = calloc((size_t)c->size, sizeof *s->peers);
    if (!s->sends || !s->peers) hpsgd_stall_abort(c, "out of memory for the stall inspector");
    for (int i = 0; i < s->nsends; ++i) s->sends[i] = MPI_REQUEST_NULL;
    s->period = c->timeout_s / 4 < 1 ? c->timeout_s / 4 : 1;
    double now = hpsgd_now();
    for (int r = 0; r < c->size; ++r) s->peers[r].last_progress = now;
    s->last_sent = now - s->period;
    c->stall = s;
    post_recv(c);
}

static void heard(hpsgd_comm *c, int from, const uint64_t *beat)
{
    struct hpsgd_stall *s = c->stall;
    peer_view *p = &s->peers[from];
    if (beat[BEAT_WAITING] || beat[BEAT_PROGRESS] >= p->mark + PROGRESS_STEP_MS) {
        p->mark = beat[BEAT_PROGRESS];
        p->last_progress = hpsgd_now();
    }
    if (beat[BEAT_STOP] && c->rank == 0 && !s->stop_heard) {
        s->stop_heard = 1;
        pthread_mutex_lock(&c->lock);
        void (*fn)(void *, int) = c->on_stop_notice;
        void *arg = c->on_stop_arg;
        pthread_mutex_unlock(&c->lock);
        if (fn) fn(arg, from);
    }
}

void hpsgd_stall_service(hpsgd_comm *c)
{
    struct hpsgd_stall *s = c->stall;
    if (!s) return;
    for (;;) {
        int done = 0;
        MPI_Status st;
        MPI_Test(&s->recv, &done, &st);
        if (!done) break;
        heard(c, st.MPI_SOURCE, s->in);
        post_recv(c);
    }
    int stop = atomic_load(&c->stop_notice) && !s->stop_sent && c->rank != 0;
    double now = hpsgd_now();
    if (!stop && now - s->last_sent < s->period) return;
    int sent = 0;
    MPI_Testall(s->nsends, s->sends, &sent, MPI_STATUSES_IGNORE);
    if (!sent) return; /* the last beats are still on their way: no pile-up */
    s->out[BEAT_PROGRESS] = cpu_ms_but_this_thread();
    s->out[BEAT_WAITING] = s->waiting;
    s->out[BEAT_STOP] = (uint64_t)atomic_load(&c->stop_notice);
    for (int i = 0; i < s->nsends; ++i)
        MPI_Isend(s->out, BEAT_WORDS, MPI_UINT64_T, c->rank == 0 ? i + 1 : 0, HPSGD_TAG_BEAT, MPI_COMM_WORLD,
                  &s->sends[i]);
    s->last_sent = now;
    s->stop_sent |= (int)s->out[BEAT_STOP];
}

void hpsgd_stall_stop(hpsgd_comm *c)
{
    struct hpsgd_stall *s = c->stall;
    if (!s) return;
    MPI_Cancel(&s->recv);
    MPI_Wait(&s->recv, MPI_STATUS_IGNORE);
    /* Beats are a few bytes and leave at once; do not wait on a peer that
     * is gone. */
    double until = hpsgd_now() + 1;
    int sent = 0;
    while (!sent && hpsgd_now() < until) MPI_Testall(s->nsends, s->sends, &sent, MPI_STATUSES_IGNORE);
    for (int i = 0; !sent && i < s->nsends; ++i)
        if (s->sends[i] != MPI_REQUEST_NULL) MPI_Request_free(&s->sends[i]);
    free(s->sends);
    free(s->peers);
    free(s);
    c->stall = NULL;
}

/* Seconds since `rank` last computed or waited in a job. */
static double quiet_s(hpsgd_comm *c, int rank) { return hpsgd_now() - c->stall->peers[rank].last_progress; }

/* Which rank each request waits on (-1: none), and how quiet it may be. */
typedef struct {
    const int *watch;
    double limit;
} watching;

/* hpsgd_wait_for()'s give-up test: a watched rank whose request is pending
 * has been quiet for longer than the limit. */
static int someone_quiet(hpsgd_comm *c, int n, MPI_Request *reqs, void *arg)
{
    const watching *w = arg;
    for (int i = 0; i < n; ++i) {
        if (w->watch[i] < 0 || reqs[i] == MPI_REQUEST_NULL) continue;
        int done = 0;
        MPI_Test(&reqs[i], &done, MPI_STATUS_IGNORE);
        if (!done && quiet_s(c, w->watch[i]) > w->limit) return 1;
    }
    return 0;
}

static int wait_joining(hpsgd_comm *c, int n, MPI_Request *reqs, const int *watch, double limit)
{
    watching w = {watch, limit};
    return hpsgd_wait_for(c, n, reqs, someone_quiet, &w);
}

static const char *kind_name(int kind)
{
    switch (kind) {
    case HPSGD_JOB_BCAST: return "broadcast";
    case HPSGD_JOB_ALLGATHER: return "gather";
    case HPSGD_JOB_ALLREDUCE: return "all-reduce";
    default: return "unknown job";
    }
}

static void negotiate_rank0(hpsgd_comm *c, const hpsgd_job *job, const uint64_t mine[3])
{
    int peers = c->size - 1;
    uint64_t(*theirs)[3] = calloc((size_t)peers, sizeof *theirs);
    MPI_Request *reqs = calloc((size_t)peers, sizeof *reqs);
    int *watch = calloc((size_t)peers, sizeof *watch);
    if (!theirs || !reqs || !watch) hpsgd_stall_abort(c, "out of memory in the negotiation of %s", job->what);
    for (int r = 1; r < c->size; ++r) {
        MPI_Irecv(theirs[r - 1], 3, MPI_UINT64_T, r, HPSGD_TAG_READY, MPI_COMM_WORLD, &reqs[r - 1]);
        watch[r - 1] = r;
    }
    if (wait_joining(c, peers, reqs, watch, c->timeout_s)) {
        char missing[400] = "";
        size_t used = 0;
        int nmissing = 0;
        for (int r = 1; r < c->size; ++r) {
            int done = 0;
            MPI_Test(&reqs[r - 1], &done, MPI_STATUS_IGNORE);
            if (done || quiet_s(c, r) <= c->timeout_s) continue;
            ++nmissing;
            int w = snprintf(missing + used, sizeof missing - used, "%s%d", used ? ", " : "", r);
            if (w > 0 && (size_t)w < sizeof missing - used) used += (size_t)w;
        }
        hpsgd_stall_abort(c, "%s stalled: rank%s %s %s not joined after %.0f s without progress (timeout)", job->what,
                          nmissing > 1 ? "s" : "", missing, nmissing > 1 ? "have" : "has", c->timeout_s);
    }
    for (int r = 1; r < c->size; ++r) {
        const uint64_t *t = theirs[r - 1];
        if (t[0] != mine[0] || t[1] != mine[1] || t[2] != mine[2])
            hpsgd_stall_abort(c,
                              "ranks disagree: rank %d is at job %llu (%s of %llu) while rank 0 is at job %llu "
                              "(%s of %llu, %s)",
                              r, (unsigned long long)t[0], kind_name((int)t[1]), (unsigned long long)t[2],
                              (unsigned long long)mine[0], kind_name((int)mine[1]), (unsigned long long)mine[2],
                              job->what);
    }
    for (int r = 1; r < c->size; ++r)
        MPI_Isend(mine, 3, MPI_UINT64_T, r, HPSGD_TAG_GO, MPI_COMM_WORLD, &reqs[r - 1]);
    if (hpsgd_wait_all(c, peers, reqs, hpsgd_now() + c->timeout_s))
        hpsgd_stall_abort(c, "%s: could not release the other ranks", job->what);
    free(theirs);
    free(reqs);
    free(watch);
}

void hpsgd_negotiate(hpsgd_comm *c, const hpsgd_job *job)
{
    uint64_t mine[3] = {c->seq, (uint64_t)job->kind,
                        job->kind == HPSGD_JOB_ALLREDUCE ? (uint64_t)job->count : (uint64_t)job->bytes};
    if (c->size == 1) return;
    c->stall->waiting = c->seq;
    hpsgd_stall_service(c); /* tell rank 0 at once that we wait, not compute */
    if (c->rank == 0) {
        negotiate_rank0(c, job, mine);
        return;
    }
    uint64_t go[3];
    MPI_Request reqs[2];
    MPI_Isend(mine, 3, MPI_UINT64_T, 0, HPSGD_TAG_READY, MPI_COMM_WORLD, &reqs[0]);
    MPI_Irecv(go, 3, MPI_UINT64_T, 0, HPSGD_TAG_GO, MPI_COMM_WORLD, &reqs[1]);
    /* Rank 0 reports first and by name; ours is the fallback if rank 0 is
     * the one stuck (a rank 0 waiting for others is not). */
    double grace = c->timeout_s * 0.1 > 5 ? c->timeout_s * 0.1 : 5;
    int watch[2] = {-1, 0};
    if (wait_joining(c, 2, reqs, watch, c->timeout_s + grace))
        hpsgd_stall_abort(c, "%s: rank 0 has not started it after %.0f s without progress (rank 0 is stuck)", job->what,
                          c->timeout_s + grace);
}

void hpsgd_stall_all_alive(hpsgd_comm *c)
{
    struct hpsgd_stall *s = c->stall;
    if (!s) return;
    double now = hpsgd_now();
    for (int r = 0; r < c->size; ++r) s->peers[r].last_progress = now;
}

void hpsgd_stall_job_done(hpsgd_comm *c)
{
    if (c->stall) c->stall->waiting = 0;
}
