/*
 * comm.c - the background MPI thread: start-up, the job hand-off,
 * negotiation, broadcast and gather, the stall inspector, shutdown. The ring
 * all-reduce is in ring.c, the hosts and the hierarchical all-reduce in
 * hier.c.
 *
 * Why poll with a short sleep: Open MPI progresses only inside MPI calls, and
 * a blocking wait busy-polls a core that the training thread needs (measured:
 * a blocking 32 MB all-reduce kept 0.23 of a compute thread's throughput;
 * polled with 1 ms sleeps, 0.72; README, "How it works"). MPI_Testall plus a
 * nanosleep of poll_us keeps the socket buffers moving at link speed on the
 * links we target and leaves the core to training. The thread also sets
 * mpi_yield_when_idle.
 */
#include "comm.h"
#include "comm_internal.h"
#include "stall.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The stall inspector's verdict: say why on stderr, then end the whole job. */
void hpsgd_stall_abort(hpsgd_comm *c, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "hpsgd: rank %d: %s; aborting the job\n", c->rank, msg);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    _exit(1); /* MPI_Abort does not return; this is for the compiler and a broken MPI */
}

void hpsgd_check_abort_request(hpsgd_comm *c)
{
    int code = atomic_load(&c->abort_code);
    if (code) {
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, code);
        _exit(code);
    }
}

/* The pause between two polls of pending requests. The sleep starts short, for the small messages of the negotiation, and doubles
 * up to poll_us, which a bulk transfer settles at: at 500 us the thread used
 * about 10% of a core and the 120 Mbit/s testbed link stayed full (BENCHMARKS.md).
 * When every rank is on this node the transfer is shared memory, whose copies
 * the polling thread itself makes: sleeping would throttle it (35 MB took
 * 253 ms instead of about 10), so while the training thread waits for the
 * job anyway, poll without sleeping. Across nodes the network sets the pace
 * and the sleeps cost nothing. */
void hpsgd_poll_pause(hpsgd_comm *c, long *sleep_us)
{
    atomic_store(&c->alive_ms, (uint64_t)(1e3 * hpsgd_now()));
    if ((c->local_size == c->size || c->polling_node) && atomic_load(&c->training_waits)) return;
    struct timespec ts = {0, *sleep_us * 1000L};
    nanosleep(&ts, NULL);
    *sleep_us = *sleep_us * 2 < c->poll_us ? *sleep_us * 2 : c->poll_us;
}

int hpsgd_wait_for(hpsgd_comm *c, int n, MPI_Request *reqs, hpsgd_give_up_fn give_up, void *arg)
{
    long sleep_us = 10;
    for (;;) {
        int flag = 0;
        if (MPI_Testall(n, reqs, &flag, MPI_STATUSES_IGNORE) != MPI_SUCCESS)
            hpsgd_stall_abort(c, "MPI_Testall failed");
        if (flag) return 0;
        hpsgd_check_abort_request(c);
        if (give_up(c, n, reqs, arg)) return -1;
        hpsgd_stall_service(c);
        hpsgd_poll_pause(c, &sleep_us);
    }
}

int hpsgd_wait_some(hpsgd_comm *c, int n, MPI_Request *reqs, int *done, double deadline)
{
    long sleep_us = 10;
    for (;;) {
        int got = 0;
        if (MPI_Testsome(n, reqs, &got, done, MPI_STATUSES_IGNORE) != MPI_SUCCESS)
            hpsgd_stall_abort(c, "MPI_Testsome failed");
        if (got == MPI_UNDEFINED) return 0;
        if (got > 0) return got;
        hpsgd_check_abort_request(c);
        if (hpsgd_now() > deadline) return -1;
        hpsgd_stall_service(c);
        hpsgd_poll_pause(c, &sleep_us);
    }
}

static int past_deadline(hpsgd_comm *c, int n, MPI_Request *reqs, void *deadline)
{
    (void)c, (void)n, (void)reqs;
    return hpsgd_now() > *(const double *)deadline;
}

int hpsgd_wait_all(hpsgd_comm *c, int n, MPI_Request *reqs, double deadline)
{
    return hpsgd_wait_for(c, n, reqs, past_deadline, &deadline);
}

static void job_bcast(hpsgd_comm *c, const hpsgd_job *job, double deadline)
{
    unsigned char *p = job->data;
    size_t left = job->bytes;
    while (left) {
        int n = left > (1u << 30) ? (1 << 30) : (int)left;
        MPI_Request req;
        MPI_Ibcast(p, n, MPI_BYTE, 0, MPI_COMM_WORLD, &req);
        if (hpsgd_wait_all(c, 1, &req, deadline)) hpsgd_stall_abort(c, "%s: broadcast not finished after %.0f s", job->what, c->timeout_s);
        if (c->rank == 0) c->job_bytes_sent += (uint64_t)n * (uint64_t)(c->size - 1);
        p += n;
        left -= (size_t)n;
    }
}

static void job_allgather(hpsgd_comm *c, const hpsgd_job *job, double deadline)
{
    MPI_Request req;
    if (job->bytes > (size_t)(1 << 30)) hpsgd_stall_abort(c, "%s: gather of %zu bytes is too large", job->what, job->bytes);
    MPI_Iallgather(job->data, (int)job->bytes, MPI_BYTE, job->out, (int)job->bytes, MPI_BYTE, MPI_COMM_WORLD, &req);
    if (hpsgd_wait_all(c, 1, &req, deadline)) hpsgd_stall_abort(c, "%s: gather not finished after %.0f s", job->what, c->timeout_s);
    c->job_bytes_sent += (uint64_t)job->bytes * (uint64_t)(c->size - 1);
}

/* The extras: exact integer sums, over the same ring, so that a stall here
 * names its ranks as any other. */
static void job_exact(hpsgd_comm *c, const hpsgd_job *job, double deadline)
{
    if (job->nexact) hpsgd_allreduce(c, job->exact, job->nexact, &hpsgd_wire_i64, NULL, deadline, job->what);
}

/* Absolute CLOCK_REALTIME deadline for pthread_cond_timedwait. */
static struct timespec deadline_in(double seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double t = (double)ts.tv_nsec * 1e-9 + seconds;
    ts.tv_sec += (time_t)t;
    ts.tv_nsec = (long)((t - (double)(time_t)t) * 1e9);
    return ts;
}

static void run_job(hpsgd_comm *c, const hpsgd_job *job)
{
    double start = hpsgd_now(), cpu0 = hpsgd_thread_cpu_ms();
    atomic_store(&c->alive_ms, (uint64_t)(1e3 * start));
    c->job_bytes_sent = c->job_bytes_inter = 0;
    ++c->seq;
    hpsgd_negotiate(c, job);
    /* Every rank has joined: the data phase has its own bound. */
    double deadline = hpsgd_now() + c->timeout_s;
    switch (job->kind) {
    case HPSGD_JOB_BCAST: job_bcast(c, job, deadline); break;
    case HPSGD_JOB_ALLGATHER: job_allgather(c, job, deadline); break;
    case HPSGD_JOB_ALLREDUCE:
        hpsgd_allreduce(c, job->buf, job->count, job->type ? job->type : &hpsgd_wire_f32, job->lost, deadline,
                        job->what);
        job_exact(c, job, deadline);
        /* Tests stretch rounds to make the overlap visible on a fast link. */
        for (double until = hpsgd_now() + 1e-6 * (double)c->test_round_delay_us; hpsgd_now() < until;) {
            hpsgd_stall_service(c);
            usleep(10000);
        }
        break;
    }
    hpsgd_stall_job_done(c);
    c->job_ms = 1e3 * (hpsgd_now() - start);
    c->job_cpu_ms = hpsgd_thread_cpu_ms() - cpu0;
}

static void set_state(hpsgd_comm *c, hpsgd_comm_state s)
{
    pthread_mutex_lock(&c->lock);
    c->state = s;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void *comm_main(void *arg)
{
    hpsgd_comm *c = arg;
    /* SIGINT/SIGTERM belong to the training thread; blocked here (and in the
     * threads MPI starts from here) so they never interrupt MPI's syscalls. */
    hpsgd_block_stop_signals();
    /* Blocking waits inside Open MPI then give the core back (mpi-facts.md).
     * The TCP transport's emulated-RDMA ("put") protocol for large messages
     * halved the rate of every transfer after the first when both directions
     * are busy, as in a ring (measured: 58 vs 113 Mbit/s on a 120 Mbit/s
     * link); plain send/receive keeps the link full. 0: the user's own
     * setting (mpirun --mca ...) wins. */
    setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
    setenv("OMPI_MCA_btl_tcp_flags", "send,inplace,need-ack,need-csum,hetero-rdma", 0);
    int provided = 0;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        pthread_mutex_lock(&c->lock);
        snprintf(c->error, sizeof c->error, "MPI_Init_thread failed");
        c->state = HPSGD_COMM_FAILED;
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->lock);
        return NULL;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
    if (provided < MPI_THREAD_FUNNELED) {
        pthread_mutex_lock(&c->lock);
        snprintf(c->error, sizeof c->error,
                 "MPI provides thread level %d, below MPI_THREAD_FUNNELED (%d) that the MPI thread needs", provided,
                 MPI_THREAD_FUNNELED);
        c->state = HPSGD_COMM_FAILED;
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->lock);
        MPI_Finalize();
        return NULL;
    }
    char err[200];
    if (hpsgd_topo_start(c, err, sizeof err)) {
        pthread_mutex_lock(&c->lock);
        snprintf(c->error, sizeof c->error, "%s", err);
        c->state = HPSGD_COMM_FAILED;
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->lock);
        MPI_Abort(MPI_COMM_WORLD, 1); /* the other ranks wait in start-up collectives */
        return NULL;
    }

    hpsgd_stall_start(c);
    set_state(c, HPSGD_COMM_IDLE);
    for (;;) {
        pthread_mutex_lock(&c->lock);
        while (c->state != HPSGD_COMM_QUEUED && !c->stop_requested && !atomic_load(&c->abort_code)) {
            if (!c->stall) {
                pthread_cond_wait(&c->cond, &c->lock);
                continue;
            }
            /* Idle in a job of several ranks: wake every 100 ms for the
             * stall inspector's beats and a stop request to pass on. */
            struct timespec until = deadline_in(0.1);
            pthread_cond_timedwait(&c->cond, &c->lock, &until);
            pthread_mutex_unlock(&c->lock);
            atomic_store(&c->alive_ms, (uint64_t)(1e3 * hpsgd_now()));
            hpsgd_stall_service(c);
            pthread_mutex_lock(&c->lock);
        }
        if (c->state != HPSGD_COMM_QUEUED) {
            pthread_mutex_unlock(&c->lock);
            break;
        }
        hpsgd_job job = c->job;
        c->state = HPSGD_COMM_BUSY;
        pthread_mutex_unlock(&c->lock);

        run_job(c, &job);

        pthread_mutex_lock(&c->lock);
        ++c->jobs_done;
        c->state = HPSGD_COMM_DONE;
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->lock);
    }
    hpsgd_check_abort_request(c);
    hpsgd_stall_stop(c);
    hpsgd_topo_stop(c);
    MPI_Finalize();
    set_state(c, HPSGD_COMM_STOPPED);
    return NULL;
}

int hpsgd_comm_start(hpsgd_comm *c, double timeout_s, size_t chunk_floats, char *err, size_t errlen)
{
    hpsgd_comm_settings s = {timeout_s, chunk_floats, 0, 0};
    return hpsgd_comm_start_with(c, &s, err, errlen);
}

int hpsgd_comm_start_with(hpsgd_comm *c, const hpsgd_comm_settings *set, char *err, size_t errlen)
{
    double timeout_s = set->timeout_s;
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    c->state = HPSGD_COMM_STARTING;
    c->timeout_s = timeout_s;
    c->chunk_bytes = (set->chunk_floats ? set->chunk_floats : 1) * sizeof(float);
    c->hier_requested = set->hierarchical;
    c->chunks_in_flight = set->chunks_in_flight > 0 ? set->chunks_in_flight : HPSGD_RING_DEFAULT_IN_FLIGHT;
    if (c->chunks_in_flight > HPSGD_RING_MAX_IN_FLIGHT) c->chunks_in_flight = HPSGD_RING_MAX_IN_FLIGHT;
    c->poll_us = hpsgd_env_long("HPSGD_POLL_US", 500, 1, 999999);
    c->test_round_delay_us = hpsgd_env_long("HPSGD_TEST_ROUND_DELAY_US", 0, 0, 60000000);
    c->abort_wait_s = 10;
    if (pthread_create(&c->thread, NULL, comm_main, c)) {
        snprintf(err, errlen, "cannot start the MPI thread: %s", strerror(errno));
        return -1;
    }
    c->thread_started = 1;
    /* MPI start-up includes connecting to mpirun; bound it like any job. */
    struct timespec until = deadline_in(timeout_s + 60);
    pthread_mutex_lock(&c->lock);
    int rc = 0;
    while (c->state == HPSGD_COMM_STARTING && rc == 0) rc = pthread_cond_timedwait(&c->cond, &c->lock, &until);
    hpsgd_comm_state s = c->state;
    if (s == HPSGD_COMM_FAILED) snprintf(err, errlen, "%s", c->error);
    pthread_mutex_unlock(&c->lock);
    if (s == HPSGD_COMM_IDLE) return 0;
    if (s == HPSGD_COMM_STARTING) {
        snprintf(err, errlen, "MPI did not start within %.0f s", timeout_s + 60);
        return -1; /* the thread is stuck inside MPI_Init; the caller exits */
    }
    pthread_join(c->thread, NULL);
    c->thread_started = 0;
    free(c->ring_scratch);
    c->ring_scratch = NULL;
    c->ring_scratch_bytes = 0;
    return -1;
}

void hpsgd_comm_submit(hpsgd_comm *c, const hpsgd_job *job)
{
    pthread_mutex_lock(&c->lock);
    c->job = *job;
    c->state = HPSGD_COMM_QUEUED;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

int hpsgd_comm_finished(hpsgd_comm *c)
{
    pthread_mutex_lock(&c->lock);
    int done = c->state == HPSGD_COMM_DONE || c->state == HPSGD_COMM_FAILED || c->state == HPSGD_COMM_IDLE;
    pthread_mutex_unlock(&c->lock);
    return done;
}

int hpsgd_comm_wait(hpsgd_comm *c, char *err, size_t errlen)
{
    /* The stall inspector bounds how long ranks may go without progress,
     * and the data phase of a job by timeout; this outer bound only catches
     * an MPI thread stuck where neither reaches (inside a blocking call). */
    double bound = 2 * c->timeout_s + 60;
    atomic_store(&c->training_waits, 1);
    pthread_mutex_lock(&c->lock);
    int stuck = 0;
    while ((c->state == HPSGD_COMM_QUEUED || c->state == HPSGD_COMM_BUSY) && !stuck) {
        struct timespec until = deadline_in(1);
        pthread_cond_timedwait(&c->cond, &c->lock, &until);
        stuck = 1e3 * hpsgd_now() - (double)atomic_load(&c->alive_ms) > 1e3 * bound;
    }
    atomic_store(&c->training_waits, 0);
    hpsgd_comm_state s = c->state;
    if (s == HPSGD_COMM_DONE) c->state = HPSGD_COMM_IDLE;
    pthread_mutex_unlock(&c->lock);
    if (s == HPSGD_COMM_IDLE || s == HPSGD_COMM_DONE) return 0;
    if (s == HPSGD_COMM_FAILED) snprintf(err, errlen, "%s", c->error);
    else snprintf(err, errlen, "the MPI thread has not polled for %.0f s during %s", bound, c->job.what);
    return -1;
}

void hpsgd_comm_notify_stop(hpsgd_comm *c) { atomic_store(&c->stop_notice, 1); }

void hpsgd_comm_on_stop(hpsgd_comm *c, void (*fn)(void *arg, int from_rank), void *arg)
{
    pthread_mutex_lock(&c->lock);
    c->on_stop_notice = fn;
    c->on_stop_arg = arg;
    pthread_mutex_unlock(&c->lock);
}

int hpsgd_comm_run(hpsgd_comm *c, const hpsgd_job *job, char *err, size_t errlen)
{
    hpsgd_comm_submit(c, job);
    return hpsgd_comm_wait(c, err, errlen);
}

int hpsgd_comm_allgather(hpsgd_comm *c, const void *mine, size_t bytes, void *all, const char *what, char *err,
                         size_t errlen)
{
    hpsgd_job job = {.kind = HPSGD_JOB_ALLGATHER, .data = (void *)mine, .out = all, .bytes = bytes};
    snprintf(job.what, sizeof job.what, "%s", what);
    return hpsgd_comm_run(c, &job, err, errlen);
}

void hpsgd_comm_stop(hpsgd_comm *c)
{
    if (!c->thread_started) return;
    char err[64];
    hpsgd_comm_wait(c, err, sizeof err);
    pthread_mutex_lock(&c->lock);
    c->stop_requested = 1;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    c->thread_started = 0;
    free(c->ring_scratch);
    c->ring_scratch = NULL;
    c->ring_scratch_bytes = 0;
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
}

void hpsgd_comm_abort(hpsgd_comm *c, int code)
{
    fflush(stdout);
    fflush(stderr);
    if (c && c->thread_started) {
        atomic_store(&c->abort_code, code ? code : 1);
        pthread_mutex_lock(&c->lock);
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->lock);
        /* MPI_Abort ends this process too; if the MPI thread cannot get there,
         * leave anyway: mpirun then ends the other ranks. A signal must not cut
         * the wait short (sleep() returns early on one), or we would leave
         * before MPI_Abort has told mpirun why. */
        struct timespec left = {(time_t)c->abort_wait_s, 0};
        while (nanosleep(&left, &left) && errno == EINTR) continue;
    }
    _exit(code ? code : 1);
}
