/*
 * hooks.c - the plugin context and the entry points that patched Darknet
 * calls (declared in hpsgd.h). Everything here runs in Darknet's training
 * thread; MPI is reached only through the MPI thread (comm.c).
 *
 * Iteration counting (README, "Iterations and learning rate"): Darknet's
 * `seen` counts the images of all ranks. It changes only at merge points, to
 * a value every rank computes from the same merged data, so loop conditions,
 * learning-rate schedules and saving cadence agree across ranks.
 */
#include "hpsgd.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "comm.h"
#include "metrics.h"
#include "options.h"
#include "registry.h"
#include "replica.h"

/* Floats that ride along after the model in every round; summed over ranks. */
enum { EXTRA_IMAGES, EXTRA_STEPS, EXTRA_STOP, EXTRA_COUNT };

typedef struct hpsgd_context {
    hpsgd_options opt;
    char cfgfile[HPSGD_PATH_MAX];

    /* The process. */
    int under_launcher;         /* started by mpirun */
    int env_rank;               /* rank from the launcher's environment, before MPI starts */
    int training_requested;     /* argv is "detector train" or "classifier train" */
    int training_finished;      /* hpsgd_train_end() ran */
    volatile sig_atomic_t signal_seen;
    pthread_t training_thread;  /* where SIGINT/SIGTERM are handled */

    /* Training, once hpsgd_train_begin() has run with an [hpsgd] cfg. */
    int active;
    int use_gpu;
    hpsgd_comm comm;
    hpsgd_registry reg;
    hpsgd_replica rep;
    size_t images_per_iteration; /* batch x subdivisions: what one step of one rank adds to seen */
    int rank, size;
    float nranks;
    char backup_dir[HPSGD_PATH_MAX];
    char backup_path[HPSGD_PATH_MAX + 300]; /* BACKUP_DIR/BASE.backup: where a stop saves */

    /* Rounds. */
    long rounds_launched;
    int in_flight;
    long steps_since_launch;    /* local steps in the round being built */
    double images_since_launch;
    long steps_in_flight;       /* this rank's steps in the round in flight */
    long merges;

    /* Agreed counters. */
    size_t global_seen;         /* images merged into G, all ranks */
    size_t shown_seen;          /* what *net->seen holds between merge points */
    int stop_agreed;
    long prev_iter, cur_iter;   /* global iteration at the last two iteration ends */

    uint64_t shared_rand_state;
    unsigned long seed;
    hpsgd_metrics metrics;
    long steps_overlapped;      /* local steps taken while a round was still pending */
    long rounds_hidden;         /* rounds finished before training needed them */
    int warned_inactive;

    /* Rank 0's saves. The training thread changes G, global_seen and
     * local_stats only under model_lock; the saver thread writes them out
     * under it when a signal arrives (see saver_main). */
    pthread_mutex_t model_lock;
    float *local_stats;         /* rank 0: tensors that do not travel, as of the start or the last save */
    sem_t save_request;         /* posted by the signal handler (async-signal-safe) */
    pthread_t saver;
    atomic_int saver_running;
    atomic_int saver_quit;
} hpsgd_context;

/* The one plugin context: Darknet's hooks have no argument to carry it. */
static hpsgd_context ctx = {.model_lock = PTHREAD_MUTEX_INITIALIZER};

/* ------------------------------------------------------------------ errors */

static void saver_start(void);
static void saver_stop(void);

static void say(const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (ctx.active || ctx.under_launcher)
        fprintf(stderr, "hpsgd: rank %d: %s\n", ctx.active ? ctx.rank : ctx.env_rank, msg);
    else
        fprintf(stderr, "hpsgd: %s\n", msg);
    fflush(stderr);
}

/* A fatal error on this rank: one line, then the whole job ends (MPI_Abort
 * through the MPI thread), so no other rank waits for us. */
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say(fmt, ap);
    va_end(ap);
    ctx.training_finished = 1; /* the exit guard has nothing to add */
    saver_stop();
    if (ctx.comm.thread_started) hpsgd_comm_abort(&ctx.comm, 1);
    exit(1);
}

/* An error every rank has seen alike (settings, fingerprints): leave together
 * through MPI_Finalize, each with a non-zero status. */
static void leave_together(int print, const char *fmt, ...)
{
    if (print) {
        va_list ap;
        va_start(ap, fmt);
        say(fmt, ap);
        va_end(ap);
    }
    ctx.training_finished = 1;
    saver_stop();
    hpsgd_comm_stop(&ctx.comm);
    exit(1);
}

/* Rank 0's informational lines; on stderr once a signal has silenced stdout. */
static void note(const char *fmt, ...)
{
    if (ctx.active && ctx.rank != 0) return;
    FILE *out = ctx.signal_seen ? stderr : stdout;
    va_list ap;
    va_start(ap, fmt);
    fprintf(out, "hpsgd: ");
    vfprintf(out, fmt, ap);
    fprintf(out, "\n");
    va_end(ap);
    fflush(out);
}

/* Darknet ends on bad input with exit(0) (file_error, stb failures). Under
 * mpirun that would look like success; name the rank and fail instead. */
static void exit_guard(void)
{
    if (ctx.training_requested && !ctx.training_finished) {
        saver_stop();
        fprintf(stderr, "hpsgd: rank %d: Darknet stopped before training finished (see the message above); "
                        "ending the job\n", ctx.active ? ctx.rank : ctx.env_rank);
        fflush(stderr);
        _exit(1);
    }
}

static void on_signal(int sig)
{
    /* The training thread must see it: it may be blocked writing to a pipe
     * that mpirun stopped reading once it forwarded the signal. */
    if (!pthread_equal(pthread_self(), ctx.training_thread)) {
        pthread_kill(ctx.training_thread, sig);
        return;
    }
    if (ctx.signal_seen) {
        /* A second interrupt: the user wants out now. */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    ctx.signal_seen = sig;
    /* Rank 0 writes G out at once: mpirun may SIGKILL us within a second. */
    if (atomic_load(&ctx.saver_running)) sem_post(&ctx.save_request);
    /* Darknet's chatter must not block on that pipe while the ranks agree to
     * stop and rank 0 saves: from now on stdout goes nowhere (our last lines
     * go to stderr). dup2 and open are async-signal-safe. */
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) {
        dup2(devnull, STDOUT_FILENO);
        close(devnull);
    }
}

/* --------------------------------------------------------------- main, cfg */

static int env_int(const char *name, int def)
{
    const char *s = getenv(name);
    if (!s || !*s) return def;
    char *end;
    long v = strtol(s, &end, 10);
    return *end ? def : (int)v;
}

int hpsgd_main(int argc, char **argv)
{
    ctx.under_launcher = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
    ctx.env_rank = env_int("OMPI_COMM_WORLD_RANK", env_int("PMIX_RANK", env_int("PMI_RANK", 0)));
    ctx.training_requested = argc > 2 && strcmp(argv[2], "train") == 0 &&
                             (strcmp(argv[1], "detector") == 0 || strcmp(argv[1], "classifier") == 0);
    if (ctx.under_launcher && ctx.training_requested) atexit(exit_guard);

    int explicit_gpu = 0;
    for (int i = 1; i < argc; ++i)
        if (strcmp(argv[i], "-i") == 0 || strcmp(argv[i], "-gpus") == 0) explicit_gpu = 1;
#ifdef GPU
    /* One GPU per rank: the local rank picks one unless the command line did. */
    if (ctx.under_launcher && !explicit_gpu) {
        int devices = 0;
        if (cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0)
            return env_int("OMPI_COMM_WORLD_LOCAL_RANK", 0) % devices;
    }
#endif
    (void)explicit_gpu;
    return 0;
}

void hpsgd_cfg_sections(char *cfgfile, list *sections)
{
    char err[1024];
    hpsgd_options o;
    hpsgd_options_defaults(&o);
    if (hpsgd_options_take_sections(&o, cfgfile, sections, err, sizeof err)) {
        ctx.training_finished = 1; /* our own line says it all */
        fprintf(stderr, "hpsgd: %s\n", err);
        exit(1);
    }
    /* parse_network_cfg() runs for every load (test, valid, each GPU); the
     * training run's cfg is the one loaded last before hpsgd_train_begin(). */
    ctx.opt = o;
    snprintf(ctx.cfgfile, sizeof ctx.cfgfile, "%s", cfgfile);
}

/* ---------------------------------------------------------- start-up pieces */

/* Header size of an existing weights file: seen is an int before version 0.2. */
static size_t weights_header_bytes(FILE *f)
{
    int v[2] = {0, 0};
    if (fread(v, sizeof(int), 2, f) != 2) return 0;
    return ((long)v[0] * 10 + v[1]) >= 2 ? HPSGD_WEIGHTS_HEADER_BYTES : 3 * sizeof(int) + sizeof(int);
}


/* The label path that fill_truth_detection() in src/data.c derives. */
static void label_path(char *image, char *label)
{
    find_replace(image, "images", "labels", label);
    find_replace(label, "JPEGImages", "labels", label);
    find_replace(label, "raw", "labels", label);
    find_replace(label, ".jpg", ".txt", label);
    find_replace(label, ".png", ".txt", label);
    find_replace(label, ".JPG", ".txt", label);
    find_replace(label, ".JPEG", ".txt", label);
}

/* Checks of what would otherwise end a rank with exit(0) deep inside a loader
 * thread. Returns 0, or -1 after printing one line naming the file. */
static int check_inputs(int task, char **paths, int npaths, const char *weightfile)
{
    if (npaths == 0) {
        fprintf(stderr, "hpsgd: rank %d: the train list is empty\n", ctx.rank);
        return -1;
    }
    for (int i = 0; i < npaths; ++i) {
        if (access(paths[i], R_OK)) {
            fprintf(stderr, "hpsgd: rank %d: cannot read training image %s (line %d of the train list): %s\n",
                    ctx.rank, paths[i], i + 1, strerror(errno));
            return -1;
        }
        if (task == HPSGD_DETECTOR) {
            char label[4096];
            label_path(paths[i], label);
            if (access(label, R_OK)) {
                fprintf(stderr, "hpsgd: rank %d: cannot read label file %s (for image %s): %s\n", ctx.rank, label,
                        paths[i], strerror(errno));
                return -1;
            }
        }
    }
    if (weightfile && *weightfile) {
        FILE *f = fopen(weightfile, "rb");
        if (!f) {
            fprintf(stderr, "hpsgd: rank %d: cannot read weights file %s: %s\n", ctx.rank, weightfile,
                    strerror(errno));
            return -1;
        }
        size_t header = weights_header_bytes(f);
        fseek(f, 0, SEEK_END);
        long bytes = ftell(f);
        fclose(f);
        int fits = header && bytes >= (long)header &&
                   hpsgd_registry_match_file_size(&ctx.reg, (size_t)bytes - header + HPSGD_WEIGHTS_HEADER_BYTES) >= 0;
        if (!fits) {
            fprintf(stderr,
                    "hpsgd: rank %d: weights file %s does not fit %s: %ld bytes, but the network takes %zu (or a "
                    "prefix of whole layers)\n",
                    ctx.rank, weightfile, ctx.cfgfile, bytes,
                    HPSGD_WEIGHTS_HEADER_BYTES + ctx.reg.saved_floats * sizeof(float));
            return -1;
        }
    }
    return 0;
}

static int check_backup_dir(const char *dir)
{
    struct stat st;
    errno = 0;
    if (stat(dir, &st) || !S_ISDIR(st.st_mode) || access(dir, W_OK)) {
        fprintf(stderr, "hpsgd: rank 0: backup directory %s (the data file's backup=) is not a writable directory%s%s\n",
                dir, errno ? ": " : "", errno ? strerror(errno) : "");
        return -1;
    }
    return 0;
}

/* Cores this rank may use: its affinity mask if mpirun bound it, else the
 * node's cores shared among the ranks on it. */
static int cores_per_rank(void)
{
    cpu_set_t set;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int mine = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : (int)online;
    if (mine > 0 && mine < online) return mine;
    int local = ctx.active && ctx.comm.local_size > 0 ? ctx.comm.local_size : 1;
    int share = (int)(online / local);
    return share > 0 ? share : 1;
}

/* Before the first step every rank reports its fingerprint and whether its
 * inputs are readable; all ranks see all reports and decide alike. */
typedef struct {
    hpsgd_fingerprint fp;
    int32_t inputs_ok;
    int32_t pad;
} start_report;

static void agree_on_start(network *net, int inputs_ok)
{
    char err[600];
    start_report mine;
    memset(&mine, 0, sizeof mine);
    hpsgd_fingerprint_make(&mine.fp, net, &ctx.reg, &ctx.opt);
    mine.inputs_ok = inputs_ok;
    start_report *all = calloc((size_t)ctx.size, sizeof *all);
    if (!all) die("out of memory");
    hpsgd_job job = {.kind = HPSGD_JOB_ALLGATHER, .data = &mine, .out = all, .bytes = sizeof mine};
    snprintf(job.what, sizeof job.what, "start-up check");
    if (hpsgd_comm_run(&ctx.comm, &job, err, sizeof err)) die("%s", err);

    int bad_inputs = 0, bad_rank = -1, bad_field = -1;
    for (int r = 0; r < ctx.size; ++r) bad_inputs += !all[r].inputs_ok;
    for (int r = 1; r < ctx.size && bad_rank < 0; ++r)
        for (int f = 0; f < HPSGD_FP_FIELDS && bad_rank < 0; ++f)
            if (all[r].fp.v[f] != all[0].fp.v[f]) bad_rank = r, bad_field = f;
    uint64_t theirs = bad_rank >= 0 ? all[bad_rank].fp.v[bad_field] : 0, ours = all[0].fp.v[bad_field < 0 ? 0 : bad_field];
    free(all);
    if (bad_rank >= 0)
        leave_together(ctx.rank == 0, "rank %d differs from rank 0 in %s (%#llx vs %#llx): all ranks must train the "
                                      "same cfg",
                       bad_rank, hpsgd_fingerprint_names[bad_field], (unsigned long long)theirs,
                       (unsigned long long)ours);
    if (bad_inputs)
        leave_together(ctx.rank == 0, "%d rank%s found bad input (see above); nothing was trained", bad_inputs,
                       bad_inputs > 1 ? "s" : "");
}

static void start_training(network *net, int task, char **paths, int npaths, char *weightfile)
{
    char err[1024];
    size_t chunk = (size_t)(ctx.opt.chunk_mb * 1024 * 1024 / sizeof(float));
    if (hpsgd_comm_start(&ctx.comm, ctx.opt.timeout, chunk, err, sizeof err)) die("cannot start MPI: %s", err);
    ctx.rank = ctx.comm.rank;
    ctx.size = ctx.comm.size;
    ctx.nranks = (float)ctx.size;
    ctx.active = 1;

    if (ctx.rank != 0 && !ctx.opt.print_all) {
        fflush(stdout);
        if (!freopen("/dev/null", "w", stdout)) die("cannot silence stdout: %s", strerror(errno));
    }
    ctx.training_thread = pthread_self();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: a blocked write must return */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

#ifdef GPU
    ctx.use_gpu = gpu_index >= 0;
#endif
    if (hpsgd_registry_build(&ctx.reg, net, ctx.opt.stats, ctx.use_gpu, err, sizeof err)) die("%s", err);
    if (ctx.rank == 0 && ctx.reg.local_floats) {
        ctx.local_stats = calloc(ctx.reg.local_floats, sizeof(float));
        if (!ctx.local_stats) die("out of memory");
    }

    int ok = check_inputs(task, paths, npaths, weightfile) == 0;
    if (ok && ctx.rank == 0) ok = check_backup_dir(ctx.backup_dir) == 0;
    agree_on_start(net, ok);

    int eager = ctx.opt.mode == HPSGD_MODE_HPSGD && ctx.opt.merge == HPSGD_MERGE_EAGER;
    hpsgd_registry_pull(&ctx.reg);
    if (hpsgd_replica_init(&ctx.rep, &ctx.reg, EXTRA_COUNT, eager))
        die("out of memory for the global model (%zu floats)", ctx.reg.fused_floats);

    /* Rank 0's model, counters and seed for everyone, whatever files they read. */
    uint64_t header[2] = {(uint64_t)*net->seen, (uint64_t)ctx.opt.seed};
    if (ctx.rank == 0 && header[1] == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        header[1] = ((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid()) % 2147483647u + 1;
    }
    hpsgd_job job = {.kind = HPSGD_JOB_BCAST, .data = header, .bytes = sizeof header};
    snprintf(job.what, sizeof job.what, "start-up broadcast of the counters");
    if (hpsgd_comm_run(&ctx.comm, &job, err, sizeof err)) die("%s", err);
    job = (hpsgd_job){.kind = HPSGD_JOB_BCAST, .data = ctx.rep.global, .bytes = ctx.rep.n * sizeof(float)};
    snprintf(job.what, sizeof job.what, "start-up broadcast of the model");
    if (hpsgd_comm_run(&ctx.comm, &job, err, sizeof err)) die("%s", err);
    hpsgd_registry_scatter(&ctx.reg, ctx.rep.global);
    hpsgd_registry_push(&ctx.reg);
    hpsgd_replica_reset_global(&ctx.rep);

    *net->seen = (size_t)header[0];
    ctx.global_seen = ctx.shown_seen = *net->seen;
    ctx.seed = (unsigned long)header[1];
    /* Image sampling and augmentation draw from rand() in the loader threads. */
    srand((unsigned)(ctx.seed + (ctx.opt.shard == HPSGD_SHARD_RANK ? (unsigned long)ctx.rank : 0)));
    ctx.shared_rand_state = (uint64_t)ctx.seed * 0x9E3779B97F4A7C15ULL + 1;

    double scale = ctx.opt.lr_scale == HPSGD_LR_LINEAR ? ctx.size
                 : ctx.opt.lr_scale == HPSGD_LR_SQRT   ? sqrt((double)ctx.size)
                                                       : 1.0;
    net->learning_rate *= (float)scale;

    ctx.prev_iter = ctx.cur_iter = (long)get_current_batch(net);
    ctx.images_per_iteration = (size_t)net->batch * (size_t)net->subdivisions;
    ctx.metrics.t0 = hpsgd_now();
    ctx.metrics.seen0 = (double)ctx.global_seen;
    if (ctx.rank == 0 && ctx.opt.log[0] && hpsgd_metrics_open_log(&ctx.metrics, ctx.opt.log))
        die("cannot write the log %s ([hpsgd] log= in %s): %s", ctx.opt.log, ctx.cfgfile, strerror(errno));

    char mode[64];
    if (ctx.opt.mode == HPSGD_MODE_HPSGD)
        snprintf(mode, sizeof mode, "hpsgd merge=%s max_stale=%d", hpsgd_merge_name(ctx.opt.merge), ctx.opt.max_stale);
    else if (ctx.opt.mode == HPSGD_MODE_AVERAGE)
        snprintf(mode, sizeof mode, "average interval=%d", ctx.opt.interval);
    else
        snprintf(mode, sizeof mode, "sync");
    note("%d rank%s, mode=%s, %.2f MB per round, learning rate x%.3g (lr_scale=%s) = %g, seed %lu, iteration %ld",
         ctx.size, ctx.size > 1 ? "s" : "", mode, ctx.rep.n * 4.0 / 1e6, scale, hpsgd_lr_scale_name(ctx.opt.lr_scale),
         net->learning_rate, ctx.seed, ctx.cur_iter);
    if (ctx.rank == 0) saver_start();
}

void hpsgd_train_begin(network *net, int task, char **paths, int npaths, int ngpus, char *weightfile,
                       char *backup_dir, char *base)
{
    if (!ctx.opt.present) return;
    if (ngpus > 1) {
        ctx.training_finished = 1;
        fprintf(stderr, "hpsgd: %s: [hpsgd] trains with one GPU per rank: give -gpus one id (or none) and start one "
                        "rank per GPU with mpirun\n", ctx.cfgfile);
        exit(1);
    }
    snprintf(ctx.backup_dir, sizeof ctx.backup_dir, "%s", backup_dir);
    snprintf(ctx.backup_path, sizeof ctx.backup_path, "%s/%s.backup", backup_dir, base);
    start_training(net, task, paths, npaths, weightfile);
}

int hpsgd_loader_threads(int stock_default)
{
    int from_env = env_int("DARKNET_LOADER_THREADS", 0);
    if (from_env > 0) return from_env;
    if (!ctx.active) return stock_default;
    if (ctx.opt.loader_threads > 0) return ctx.opt.loader_threads;
    int cores = cores_per_rank();
    return cores < stock_default ? cores : stock_default;
}

int hpsgd_shared_rand(void)
{
    if (!ctx.active) return rand();
    /* xorshift64*: the same sequence on every rank, apart from rand(). */
    uint64_t x = ctx.shared_rand_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    ctx.shared_rand_state = x;
    return (int)((x * 0x2545F4914F6CDD1DULL) >> 33);
}

/* ------------------------------------------------------------------ rounds */

/* Every change of G and global_seen holds model_lock, so the saver thread
 * never writes a half-merged model; merges take nothing else on its behalf. */
static void lock_model(void) { pthread_mutex_lock(&ctx.model_lock); }
static void unlock_model(void) { pthread_mutex_unlock(&ctx.model_lock); }

static void launch_round(void)
{
    hpsgd_job job = {.kind = HPSGD_JOB_ALLREDUCE, .floats = ctx.rep.comm, .count = ctx.rep.n + EXTRA_COUNT};
    snprintf(job.what, sizeof job.what, "round %ld", ++ctx.rounds_launched);
    float *x = ctx.rep.comm + ctx.rep.n;
    x[EXTRA_IMAGES] = (float)ctx.images_since_launch;
    x[EXTRA_STEPS] = (float)ctx.steps_since_launch;
    x[EXTRA_STOP] = ctx.signal_seen ? 1.0f : 0.0f;
    ctx.steps_in_flight = ctx.steps_since_launch;
    ctx.steps_since_launch = 0;
    ctx.images_since_launch = 0;
    hpsgd_comm_submit(&ctx.comm, &job);
    ctx.in_flight = 1;
}

/* Waits for the round in flight; counts the wait. */
static void finish_round(void)
{
    char err[600];
    double t = hpsgd_now();
    int was_done = hpsgd_comm_finished(&ctx.comm);
    if (hpsgd_comm_wait(&ctx.comm, err, sizeof err)) die("%s", err);
    double waited = 1e3 * (hpsgd_now() - t);
    ctx.in_flight = 0;
    ctx.rounds_hidden += was_done;
    ctx.metrics.wait_ms += waited;
    ctx.metrics.total_wait_ms += waited;
    ctx.metrics.round_allreduce_ms = ctx.comm.job_ms;
    ctx.metrics.total_allreduce_ms += ctx.comm.job_ms;
    ctx.metrics.total_allreduce_cpu_ms += ctx.comm.job_cpu_ms;
    ctx.metrics.total_bytes_sent += ctx.comm.job_bytes_sent;
    ctx.metrics.round_steps = ctx.steps_in_flight;
    ++ctx.metrics.rounds;
}

/* The sums that rode along: images and stop requests of all ranks. */
static void take_round_extras(void)
{
    const float *x = ctx.rep.comm + ctx.rep.n;
    ctx.global_seen += (size_t)x[EXTRA_IMAGES];
    if (x[EXTRA_STOP] > 0) ctx.stop_agreed = 1;
}

/* verify=N: every N merges all ranks compare a checksum of G. */
static void maybe_verify(void)
{
    ++ctx.merges;
    if (!ctx.opt.verify || ctx.merges % ctx.opt.verify) return;
    char err[600];
    uint64_t mine = hpsgd_hash(ctx.rep.global, ctx.rep.n * sizeof(float), 0);
    uint64_t *all = calloc((size_t)ctx.size, sizeof *all);
    if (!all) die("out of memory");
    hpsgd_job job = {.kind = HPSGD_JOB_ALLGATHER, .data = &mine, .out = all, .bytes = sizeof mine};
    snprintf(job.what, sizeof job.what, "verify after merge %ld", ctx.merges);
    if (hpsgd_comm_run(&ctx.comm, &job, err, sizeof err)) die("%s", err);
    for (int r = 1; r < ctx.size; ++r) {
        if (all[r] != all[0]) {
            uint64_t a = all[0], b = all[r];
            free(all);
            die("verify: after merge %ld rank %d holds a different global model than rank 0 (checksum %016llx vs "
                "%016llx)", ctx.merges, r, (unsigned long long)b, (unsigned long long)a);
        }
    }
    free(all);
}

/* After a merge every rank shows the same `seen`; an agreed stop ends the
 * Darknet loop at its next check, on every rank after the same round. */
static void publish_seen(network *net, size_t seen)
{
    ctx.shown_seen = seen;
    *net->seen = seen;
    if (ctx.stop_agreed) {
        int batch = (int)get_current_batch(net);
        net->max_batches = batch > 0 ? batch : 1;
    }
}

/* mode=hpsgd merge point: merge the finished round (if any), launch the next. */
static void merge_point(network *net, int have_round)
{
    double t = hpsgd_now();
    hpsgd_registry_pull(&ctx.reg);
    lock_model();
    if (have_round) take_round_extras();
    hpsgd_replica_merge_launch(&ctx.rep, have_round, ctx.nranks);
    unlock_model();
    hpsgd_registry_push(&ctx.reg);
    ctx.metrics.total_host_ms += 1e3 * (hpsgd_now() - t);
    if (have_round) maybe_verify();
    launch_round();
    /* G holds every round merged so far, and the round just launched holds at
     * least one step of every rank: a count all ranks agree on that never
     * runs ahead of the truth, so training never ends short of max_batches. */
    publish_seen(net, ctx.global_seen + (size_t)ctx.size * (size_t)net->batch * (size_t)net->subdivisions);
}

/* sync, average and the final round: D = R - G, all-reduce, G += A/N, R = G. */
static void blocking_round(network *net)
{
    double t = hpsgd_now();
    hpsgd_registry_pull(&ctx.reg);
    hpsgd_replica_diff(&ctx.rep);
    double host = hpsgd_now() - t;
    launch_round();
    finish_round();
    t = hpsgd_now();
    lock_model();
    take_round_extras();
    hpsgd_replica_merge(&ctx.rep, ctx.nranks);
    unlock_model();
    hpsgd_registry_push(&ctx.reg);
    ctx.metrics.total_host_ms += 1e3 * (host + hpsgd_now() - t);
    maybe_verify();
    publish_seen(net, ctx.global_seen);
}

void hpsgd_after_update(network *net)
{
    if (!ctx.active) {
        if (ctx.opt.present && !ctx.warned_inactive) {
            ctx.warned_inactive = 1;
            fprintf(stderr, "hpsgd: warning: %s has [hpsgd], but only 'detector train' and 'classifier train' train "
                            "with it; this command trains alone\n", ctx.cfgfile);
        }
        return;
    }
    ++ctx.steps_since_launch;
    ctx.images_since_launch += (double)net->batch * net->subdivisions;

    switch (ctx.opt.mode) {
    case HPSGD_MODE_SYNC:
        blocking_round(net);
        return;
    case HPSGD_MODE_AVERAGE:
        if (ctx.steps_since_launch >= ctx.opt.interval) blocking_round(net);
        else *net->seen = ctx.shown_seen;
        return;
    case HPSGD_MODE_HPSGD:
        if (ctx.in_flight) {
            /* The paper's overlap: keep training the replica while the round is
             * pending, up to max_stale steps. */
            if (!hpsgd_comm_finished(&ctx.comm) &&
                (ctx.opt.max_stale == 0 || ctx.steps_since_launch < ctx.opt.max_stale)) {
                ++ctx.steps_overlapped;
                *net->seen = ctx.shown_seen;
                return;
            }
            finish_round();
            merge_point(net, 1);
        } else {
            merge_point(net, 0);
        }
        return;
    }
}

/* ------------------------------------------------------- iteration, saving */

void hpsgd_iteration_end(network *net, float loss, float avg_loss)
{
    long iteration = (long)get_current_batch(net);
    ctx.prev_iter = ctx.cur_iter;
    ctx.cur_iter = iteration;
    if (!ctx.active) return;
    if (ctx.rank == 0) {
        double wall = hpsgd_now() - ctx.metrics.t0;
        double ips = wall > 0 ? ((double)ctx.shown_seen - ctx.metrics.seen0) / wall : 0;
        printf("hpsgd: round %ld, %ld local step%s, all-reduce %.1f ms, wait %.1f ms, %.1f images/s\n",
               ctx.metrics.rounds, ctx.metrics.round_steps, ctx.metrics.round_steps == 1 ? "" : "s",
               ctx.metrics.round_allreduce_ms, ctx.metrics.wait_ms, ips);
        hpsgd_metrics_row(&ctx.metrics, iteration, loss, avg_loss, get_current_rate(net), (double)ctx.shown_seen);
    }
    ctx.metrics.wait_ms = 0;
}

int hpsgd_crossed(network *net, int period)
{
    if (period <= 0) return 0;
    if (!ctx.active) {
        long i = (long)get_current_batch(net);
        return i % period == 0 ? (int)i : 0;
    }
    long m = ctx.cur_iter / period * period;
    return m > ctx.prev_iter && m > 0 ? (int)m : 0;
}

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
 * Caller holds model_lock. Returns 0, or -1 with err set. */
static int write_global_model(const char *filename, size_t seen, char *err, size_t errlen)
{
    char part[HPSGD_PATH_MAX + 8];
    snprintf(part, sizeof part, "%s.part", filename);
    FILE *f = fopen(part, "wb");
    if (!f) {
        snprintf(err, errlen, "cannot write %s: %s", part, strerror(errno));
        return -1;
    }
    errno = 0;
    int bad = hpsgd_registry_write(&ctx.reg, f, seen, ctx.rep.global, ctx.local_stats) || fflush(f) ||
              fsync(fileno(f));
    int why = errno;
    if (fclose(f) && !bad) bad = 1, why = errno;
    struct stat st = {0};
    size_t expect = HPSGD_WEIGHTS_HEADER_BYTES + ctx.reg.saved_floats * sizeof(float);
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
 * device copies off the training path; caller holds model_lock. */
static void refresh_local_stats(void)
{
    if (!ctx.local_stats) return;
    hpsgd_registry_pull_local(&ctx.reg);
    hpsgd_registry_gather_local(&ctx.reg, ctx.local_stats);
}

/* A save from the training thread: the model as merged so far. */
static void save_global_model(const char *filename)
{
    char err[HPSGD_PATH_MAX * 2 + 100];
    fprintf(stderr, "Saving weights to %s\n", filename); /* as save_weights() says */
    lock_model();
    refresh_local_stats();
    int rc = write_global_model(filename, ctx.global_seen, err, sizeof err);
    unlock_model();
    if (rc) die("%s", err);
}

/* Rank 0, on the first SIGINT/SIGTERM: G as of the last merge goes to the
 * .backup at once, because mpirun, once it has forwarded a signal, gives the
 * ranks only odls_base_sigkill_timeout seconds (default 1) before SIGKILL:
 * less than one CPU training step may take. The agreed stop that follows
 * saves again, with the rounds still in flight merged. */
static void *saver_main(void *arg)
{
    (void)arg;
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, NULL);
    char err[HPSGD_PATH_MAX * 2 + 100];
    for (;;) {
        while (sem_wait(&ctx.save_request) && errno == EINTR) continue;
        if (atomic_load(&ctx.saver_quit)) return NULL;
        double t = hpsgd_now();
        pthread_mutex_lock(&ctx.model_lock);
        size_t seen = ctx.global_seen;
        int rc = write_global_model(ctx.backup_path, seen, err, sizeof err);
        pthread_mutex_unlock(&ctx.model_lock);
        if (rc)
            fprintf(stderr, "hpsgd: rank 0: on the signal: %s\n", err);
        else
            fprintf(stderr, "hpsgd: rank 0: on the signal: saved the global model of iteration %zu (the last merge) "
                            "to %s in %.0f ms; stopping after the round in flight\n",
                    seen / (ctx.images_per_iteration ? ctx.images_per_iteration : 1), ctx.backup_path,
                    1e3 * (hpsgd_now() - t));
        fflush(stderr);
    }
}

static void saver_start(void)
{
    refresh_local_stats(); /* no other thread yet: no lock needed */
    if (sem_init(&ctx.save_request, 0, 0)) die("cannot start the saver thread: %s", strerror(errno));
    atomic_store(&ctx.saver_quit, 0);
    int rc = pthread_create(&ctx.saver, NULL, saver_main, NULL);
    if (rc) die("cannot start the saver thread: %s", strerror(rc));
    atomic_store(&ctx.saver_running, 1);
}

/* Joins the saver (after any save it is doing). The semaphore stays: a late
 * signal may still post to it. */
static void saver_stop(void)
{
    if (!atomic_exchange(&ctx.saver_running, 0)) return;
    atomic_store(&ctx.saver_quit, 1);
    sem_post(&ctx.save_request);
    pthread_join(ctx.saver, NULL);
}

void hpsgd_save_weights(network *net, char *filename)
{
    if (!ctx.active) {
        save_weights(net, filename);
        return;
    }
    if (ctx.rank == 0) save_global_model(filename);
}

/* --------------------------------------------------------------- the end */

static void final_agreement(network *net)
{
    char err[600];
    /* Local steps not yet in any round (none when the loop ended at a merge
     * point, the usual case): if any rank has some, all run one more round. */
    int64_t pending = ctx.steps_since_launch, *all = calloc((size_t)ctx.size, sizeof *all);
    if (!all) die("out of memory");
    hpsgd_job job = {.kind = HPSGD_JOB_ALLGATHER, .data = &pending, .out = all, .bytes = sizeof pending};
    snprintf(job.what, sizeof job.what, "end-of-training check");
    if (hpsgd_comm_run(&ctx.comm, &job, err, sizeof err)) die("%s", err);
    int64_t most = 0;
    for (int r = 0; r < ctx.size; ++r) most = all[r] > most ? all[r] : most;
    free(all);
    if (most > 0) blocking_round(net);

    /* The saved model is G; every rank must hold the same. */
    uint64_t sum = hpsgd_hash(ctx.rep.global, ctx.rep.n * sizeof(float), 0), *sums = calloc((size_t)ctx.size, sizeof *sums);
    if (!sums) die("out of memory");
    job = (hpsgd_job){.kind = HPSGD_JOB_ALLGATHER, .data = &sum, .out = sums, .bytes = sizeof sum};
    snprintf(job.what, sizeof job.what, "final checksum");
    if (hpsgd_comm_run(&ctx.comm, &job, err, sizeof err)) die("%s", err);
    for (int r = 1; r < ctx.size; ++r)
        if (sums[r] != sums[0]) die("the final global model differs between rank 0 and rank %d", r);
    free(sums);
    note("final model identical on all %d rank%s (checksum %016llx)", ctx.size, ctx.size > 1 ? "s" : "",
         (unsigned long long)sum);
}

static void summary(void)
{
    hpsgd_metrics *m = &ctx.metrics;
    double wall = hpsgd_now() - m->t0;
    double rounds = m->rounds > 0 ? (double)m->rounds : 1;
    note("%ld rounds in %.1f s: all-reduce %.1f ms per round (MPI thread CPU %.0f%% of a core while busy), "
         "training waited %.1f s (%.1f%%), host work %.2f ms per merge, %.1f MB sent, %ld local steps ran while a round "
         "was pending, %ld rounds finished before they were needed, overhead %.1f MB for a %.1f MB model",
         m->rounds, wall, m->total_allreduce_ms / rounds,
         m->total_allreduce_ms > 0 ? 100 * m->total_allreduce_cpu_ms / m->total_allreduce_ms : 0,
         m->total_wait_ms / 1e3, wall > 0 ? 100 * m->total_wait_ms / 1e3 / wall : 0,
         m->total_host_ms / (ctx.merges > 0 ? (double)ctx.merges : 1), m->total_bytes_sent / 1e6,
         ctx.steps_overlapped, ctx.rounds_hidden,
         (hpsgd_replica_overhead_bytes(&ctx.rep) + ctx.comm.ring_scratch_floats * sizeof(float)) / 1e6,
         ctx.reg.saved_floats * 4.0 / 1e6);
}

void hpsgd_train_end(network *net)
{
    ctx.training_finished = 1;
    if (!ctx.active) return;
    if (ctx.in_flight) {
        finish_round();
        hpsgd_registry_pull(&ctx.reg);
        lock_model();
        take_round_extras();
        hpsgd_replica_merge_last(&ctx.rep, ctx.nranks);
        unlock_model();
        hpsgd_registry_push(&ctx.reg);
    }
    final_agreement(net);
    /* Darknet's network ends as G, for the final save and whatever follows. */
    hpsgd_registry_scatter(&ctx.reg, ctx.rep.global);
    hpsgd_registry_push(&ctx.reg);
    *net->seen = ctx.global_seen;
    summary();
    saver_stop();
    hpsgd_comm_stop(&ctx.comm);
    hpsgd_metrics_close(&ctx.metrics);

    if (ctx.stop_agreed) {
        if (ctx.rank == 0) {
            save_global_model(ctx.backup_path);
            fprintf(stderr, "hpsgd: stopped by a signal at iteration %ld; saved the global model to %s; resume by "
                            "passing it as the weights file\n", (long)get_current_batch(net), ctx.backup_path);
        }
        exit(0);
    }
}
