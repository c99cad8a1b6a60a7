/*
 * lifecycle.c - launcher, exit guard, signals, start and end agreement
 * (see lifecycle.h).
 */
#include "lifecycle.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hash.h"
#include "log.h"
#include "util.h"

#ifdef GPU
#include <cuda_runtime.h>
#endif

/* The handlers take no argument: the one lifecycle of this process. */
static hpsgd_lifecycle *the_lifecycle;

/* Darknet ends on bad input with exit(0) (file_error, stb failures). Under
 * mpirun that would look like success; name the rank and fail instead. */
static void exit_guard(void)
{
    hpsgd_lifecycle *L = the_lifecycle;
    if (!L || !L->training_requested || L->training_finished) return;
    hpsgd_run_cleanups(HPSGD_EXIT_QUICK);
    hpsgd_say("Darknet stopped before training finished (see the message above); ending the job");
    _exit(1);
}

/* A fatal error or a common exit: our own line said it all. */
static void finished_cleanup(void *arg, hpsgd_exit_kind how)
{
    (void)how;
    ((hpsgd_lifecycle *)arg)->training_finished = 1;
}

int hpsgd_lifecycle_main(hpsgd_lifecycle *L, int argc, char **argv)
{
    the_lifecycle = L;
    L->under_launcher = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
    L->env_rank = (int)hpsgd_env_long("OMPI_COMM_WORLD_RANK", hpsgd_env_long("PMIX_RANK", hpsgd_env_long("PMI_RANK", 0, 0, 1 << 30), 0, 1 << 30), 0, 1 << 30);
    L->training_requested = argc > 2 && strcmp(argv[2], "train") == 0 &&
                            (strcmp(argv[1], "detector") == 0 || strcmp(argv[1], "classifier") == 0);
    hpsgd_log_set_rank(L->under_launcher ? L->env_rank : -1, 1);
    hpsgd_at_exit(finished_cleanup, L);
    if (L->under_launcher && L->training_requested) atexit(exit_guard);

    int explicit_gpu = 0;
    for (int i = 1; i < argc; ++i)
        if (strcmp(argv[i], "-i") == 0 || strcmp(argv[i], "-gpus") == 0) explicit_gpu = 1;
#ifdef GPU
    /* One GPU per rank: the local rank picks one unless the command line did. */
    if (L->under_launcher && !explicit_gpu) {
        int devices = 0;
        if (cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0)
            return (int)hpsgd_env_long("OMPI_COMM_WORLD_LOCAL_RANK", 0, 0, 1 << 30) % devices;
    }
#endif
    (void)explicit_gpu;
    return 0;
}

static void on_signal(int sig)
{
    hpsgd_lifecycle *L = the_lifecycle;
    /* The training thread must see it: it may be blocked writing to a pipe
     * that mpirun stopped reading once it forwarded the signal. */
    if (!pthread_equal(pthread_self(), L->training_thread)) {
        pthread_kill(L->training_thread, sig);
        return;
    }
    if (L->signal_seen) {
        /* A second interrupt: the user wants out now. */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    L->signal_seen = sig;
    /* Rank 0 writes G out at once: mpirun may SIGKILL us within a second.
     * Other ranks tell rank 0 through the MPI thread's next beat. */
    if (L->saver) hpsgd_checkpoint_request_save(L->saver);
    if (L->comm) hpsgd_comm_notify_stop(L->comm);
    /* Darknet's chatter must not block on that pipe while the ranks agree to
     * stop and rank 0 saves: from now on stdout goes nowhere (our last lines
     * go to stderr). dup2 and open are async-signal-safe. */
    hpsgd_log_stdout_gone();
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) {
        dup2(devnull, STDOUT_FILENO);
        close(devnull);
    }
}

void hpsgd_lifecycle_handle_signals(hpsgd_lifecycle *L, hpsgd_comm *comm)
{
    L->training_thread = pthread_self();
    L->comm = comm;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: a blocked write must return */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void hpsgd_lifecycle_quiet_stdout(void)
{
    fflush(stdout);
    if (!freopen("/dev/null", "w", stdout)) hpsgd_fatal("cannot silence stdout: %s", strerror(errno));
}

int hpsgd_cores_per_rank(int local_size)
{
    cpu_set_t set;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int mine = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : (int)online;
    if (mine > 0 && mine < online) return mine;
    int share = (int)(online / (local_size > 0 ? local_size : 1));
    return share > 0 ? share : 1;
}

void *hpsgd_gather(hpsgd_comm *c, const void *mine, size_t bytes, const char *what)
{
    char err[600];
    void *all = calloc((size_t)c->size, bytes);
    if (!all) hpsgd_fatal("out of memory");
    if (hpsgd_comm_allgather(c, mine, bytes, all, what, err, sizeof err)) hpsgd_fatal("%s", err);
    return all;
}

typedef struct {
    hpsgd_fingerprint fp;
    int32_t inputs_ok;
    int32_t pad;
} start_report;

void hpsgd_agree_on_start(hpsgd_comm *c, const hpsgd_fingerprint *fp, int inputs_ok)
{
    start_report mine;
    memset(&mine, 0, sizeof mine);
    mine.fp = *fp;
    mine.inputs_ok = inputs_ok;
    start_report *all = hpsgd_gather(c, &mine, sizeof mine, "start-up check");

    int bad_inputs = 0, bad_rank = -1, bad_field = -1;
    for (int r = 0; r < c->size; ++r) bad_inputs += !all[r].inputs_ok;
    for (int r = 1; r < c->size && bad_rank < 0; ++r)
        for (int f = 0; f < HPSGD_FP_FIELDS && bad_rank < 0; ++f)
            if (all[r].fp.v[f] != all[0].fp.v[f]) bad_rank = r, bad_field = f;
    uint64_t theirs = bad_rank >= 0 ? all[bad_rank].fp.v[bad_field] : 0, ours = all[0].fp.v[bad_field < 0 ? 0 : bad_field];
    free(all);
    if (bad_rank >= 0)
        hpsgd_exit_together(c->rank == 0,
                            "rank %d differs from rank 0 in %s (%#llx vs %#llx): all ranks must train the same cfg",
                            bad_rank, hpsgd_fingerprint_names[bad_field], (unsigned long long)theirs,
                            (unsigned long long)ours);
    if (bad_inputs)
        hpsgd_exit_together(c->rank == 0, "%d rank%s found bad input (see above); nothing was trained", bad_inputs,
                            bad_inputs > 1 ? "s" : "");
}

void hpsgd_agree_on_end(hpsgd_comm *c, uint64_t sum)
{
    uint64_t *sums = hpsgd_gather(c, &sum, sizeof sum, "final checksum");
    int r = hpsgd_first_differing(sums, sizeof sum, c->size);
    free(sums);
    if (r >= 0) hpsgd_fatal("the final global model differs between rank 0 and rank %d", r);
    hpsgd_note("final model identical on all %d rank%s (checksum %016llx)", c->size, c->size > 1 ? "s" : "",
               (unsigned long long)sum);
}
