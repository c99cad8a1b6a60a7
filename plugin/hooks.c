/*
 * hooks.c - the entry points that patched Darknet calls (declared in
 * hpsgd.h): each translates Darknet's call and delegates. Everything here
 * runs in Darknet's training thread; MPI is reached only through the MPI
 * thread (comm.c).
 *
 * The plugin's state is one context of parts, each changed only by its
 * owner file (README, "Architecture"): Darknet's hooks have no argument to
 * carry it.
 */
#include "hpsgd.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "comm.h"
#include "darknet/fork.h"
#include "exchange.h"
#include "fingerprint.h"
#include "hash.h"
#include "inputs.h"
#include "lifecycle.h"
#include "log.h"
#include "options.h"
#include "registry.h"
#include "replica.h"
#include "report.h"
#include "rounds.h"
#include "util.h"

static struct {
    hpsgd_options opt;          /* hooks.c: the training run's [hpsgd] section */
    char cfgfile[HPSGD_PATH_MAX];
    int active;                 /* hooks.c: training with [hpsgd] has started */
    int warned_inactive;
    uint64_t shared_rand_state; /* hooks.c: draws every rank makes alike */
    long prev_iter, cur_iter;   /* hooks.c: global iteration at the last two iteration ends */
    long max_iterations;        /* hooks.c: the cfg's max_batches (an agreed stop lowers Darknet's) */
    long test_stop_round;       /* hooks.c: HPSGD_TEST_STOP_AT_ROUND, tests only */
    long test_slow_ms;          /* hooks.c: HPSGD_TEST_SLOW_MS of CPU work per step on HPSGD_TEST_SLOW_RANK */
    long test_hang_step;        /* hooks.c: HPSGD_TEST_HANG_STEP: that rank's training thread hangs there */
    long local_steps;           /* hooks.c: this rank's local steps (for the test knobs) */

    hpsgd_lifecycle life;       /* lifecycle.c */
    hpsgd_comm comm;            /* comm.c */
    hpsgd_registry reg;         /* registry.c and the fork adapter */
    hpsgd_replica rep;          /* replica.c */
    hpsgd_checkpoint ckpt;      /* checkpoint.c (rank 0 saves) */
    hpsgd_report report;        /* report.c */
    hpsgd_rounds rounds;        /* rounds.c */
    hpsgd_exchange exchange;    /* exchange.c */
} P;

/* ------------------------------------------------------------ main, cfg */

int hpsgd_main(int argc, char **argv) { return hpsgd_lifecycle_main(&P.life, argc, argv); }

void hpsgd_cfg_sections(char *cfgfile, struct list *sections)
{
    char err[1024];
    hpsgd_options o;
    hpsgd_options_defaults(&o);
    if (hpsgd_options_take_sections(&o, cfgfile, sections, err, sizeof err)) {
        P.life.training_finished = 1; /* our own line says it all */
        fprintf(stderr, "hpsgd: %s\n", err);
        exit(1);
    }
    /* parse_network_cfg() runs for every load (test, valid, each GPU, the
     * -map network); the training run's cfg is the one loaded last before
     * hpsgd_train_begin(), and a load while training keeps its options. */
    if (P.active) return;
    P.opt = o;
    /* Darknet seeded rand() from time(0) before it parses the cfg, and the
     * layers it is about to make draw their initial weights from rand(): a
     * set seed makes those reproducible too (rank 0's are broadcast). */
    if (o.present && o.seed) srand((unsigned)o.seed);
    snprintf(P.cfgfile, sizeof P.cfgfile, "%s", cfgfile);
}

/* --------------------------------------------------------------- start */

/* The MPI thread's clean-up on every exit path: a fatal error ends the job
 * now; a common error finalises; Darknet's own exit leaves it to mpirun. */
static void comm_cleanup(void *arg, hpsgd_exit_kind how)
{
    if (how == HPSGD_EXIT_ABORT) hpsgd_comm_abort(arg, 1);
    if (how == HPSGD_EXIT_TOGETHER) hpsgd_comm_stop(arg);
}

/* Rank 0's model, counters and seed for everyone, whatever files they read. */
static unsigned long broadcast_start(network *net)
{
    char err[600];
    uint64_t header[2] = {(uint64_t)hpsgd_dn_seen(net), (uint64_t)P.opt.seed};
    if (P.comm.rank == 0 && header[1] == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        header[1] = ((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid()) % 2147483647u + 1;
    }
    hpsgd_job job = {.kind = HPSGD_JOB_BCAST, .data = header, .bytes = sizeof header};
    snprintf(job.what, sizeof job.what, "start-up broadcast of the counters");
    if (hpsgd_comm_run(&P.comm, &job, err, sizeof err)) hpsgd_fatal("%s", err);
    job = (hpsgd_job){.kind = HPSGD_JOB_BCAST, .data = P.rep.global, .bytes = P.rep.n * sizeof(float)};
    snprintf(job.what, sizeof job.what, "start-up broadcast of the model");
    if (hpsgd_comm_run(&P.comm, &job, err, sizeof err)) hpsgd_fatal("%s", err);
    hpsgd_registry_scatter(&P.reg, P.rep.global);
    hpsgd_registry_push(&P.reg);
    hpsgd_replica_reset_global(&P.rep);
    hpsgd_dn_set_seen(net, (size_t)header[0]);
    return (unsigned long)header[1];
}

/* Rank 0, on the MPI thread: another rank was asked to stop; save now, as
 * for a signal here (mpirun may SIGKILL everyone within a second). */
static void save_on_stop_notice(void *ckpt, int from_rank)
{
    (void)from_rank;
    hpsgd_checkpoint_request_save(ckpt);
}

static void start_training(network *net, int task, char **paths, int npaths, char *weightfile, const char *backup_dir,
                           const char *backup_path)
{
    char err[1024];
    hpsgd_comm_settings cs = {P.opt.timeout, (size_t)(P.opt.chunk_mb * 1024 * 1024 / sizeof(float)),
                              (int)P.opt.hierarchical, P.opt.chunks_in_flight};
    if (hpsgd_comm_start_with(&P.comm, &cs, err, sizeof err)) hpsgd_fatal("cannot start MPI: %s", err);
    hpsgd_at_exit(comm_cleanup, &P.comm);
    int rank = P.comm.rank, size = P.comm.size;
    hpsgd_log_set_rank(rank, rank == 0);
    P.active = 1;
    if (rank != 0 && !P.opt.print_all) hpsgd_lifecycle_quiet_stdout();
    hpsgd_lifecycle_handle_signals(&P.life, &P.comm);

    if (hpsgd_registry_build(&P.reg, net, P.opt.stats, hpsgd_dn_uses_gpu(), err, sizeof err)) hpsgd_fatal("%s", err);
    int ok = hpsgd_check_inputs(&P.reg, P.cfgfile, task, paths, npaths, weightfile) == 0;
    if (ok && rank == 0) ok = hpsgd_check_backup_dir(backup_dir) == 0;
    hpsgd_fingerprint fp;
    hpsgd_fingerprint_make(&fp, net, &P.reg, &P.opt);
    hpsgd_agree_on_start(&P.comm, &fp, ok);

    int eager = P.opt.mode == HPSGD_MODE_HPSGD && P.opt.merge == HPSGD_MERGE_EAGER;
    hpsgd_registry_pull(&P.reg);
    /* HPSGD_TEST_HOST_MERGE=1: merge on the host on a GPU too (tests/gpu: bits and timings). */
    int on_device = P.reg.use_gpu && !hpsgd_env_long("HPSGD_TEST_HOST_MERGE", 0, 0, 1);
    if (hpsgd_replica_init(&P.rep, &P.reg, eager, hpsgd_lookahead_for(&P.opt, size), on_device))
        hpsgd_fatal("out of memory for the global model (%zu floats)", P.reg.fused_floats);
    unsigned long seed = broadcast_start(net);
    size_t seen = hpsgd_dn_seen(net), per_step = hpsgd_dn_images_per_step(net);
    /* Image sampling and augmentation draw from rand() in the loader threads. */
    srand((unsigned)(seed + (P.opt.shard == HPSGD_SHARD_RANK ? (unsigned long)rank : 0)));
    P.shared_rand_state = (uint64_t)seed * 0x9E3779B97F4A7C15ULL + 1;

    double scale = P.opt.lr_scale == HPSGD_LR_LINEAR ? size : P.opt.lr_scale == HPSGD_LR_SQRT ? sqrt((double)size) : 1.0;
    float rate = hpsgd_dn_scale_learning_rate(net, scale);
    P.prev_iter = P.cur_iter = hpsgd_dn_iteration(net);
    P.max_iterations = hpsgd_dn_max_iterations(net);
    P.test_stop_round = hpsgd_env_long("HPSGD_TEST_STOP_AT_ROUND", 0, 0, 1L << 40);
    if (hpsgd_env_long("HPSGD_TEST_SLOW_RANK", -1, 0, 1 << 30) == rank)
        P.test_slow_ms = hpsgd_env_long("HPSGD_TEST_SLOW_MS", 0, 0, 1L << 30);
    if (hpsgd_env_long("HPSGD_TEST_HANG_RANK", -1, 0, 1 << 30) == rank)
        P.test_hang_step = hpsgd_env_long("HPSGD_TEST_HANG_STEP", 0, 0, 1L << 40);

    if (hpsgd_checkpoint_init(&P.ckpt, &P.reg, &P.rep, seen, per_step, backup_path)) hpsgd_fatal("out of memory");
    hpsgd_rounds_init(&P.rounds, &P.opt, size, per_step, seen, P.max_iterations, &hpsgd_exchange_ops, &P.exchange);
    if (hpsgd_exchange_init(&P.exchange, &P.comm, &P.rep, &P.ckpt, &P.report, &P.rounds, P.opt.verify,
                            P.opt.compress))
        hpsgd_fatal("out of memory for the round's buffers");
    if (hpsgd_report_start(&P.report, (double)seen, rank == 0 ? P.opt.log : NULL))
        hpsgd_fatal("cannot write the log %s ([hpsgd] log= in %s): %s", P.opt.log, P.cfgfile, strerror(errno));

    char mode[96];
    if (P.opt.mode == HPSGD_MODE_HPSGD)
        snprintf(mode, sizeof mode, "hpsgd merge=%s max_stale=%d lookahead=%g sync_warmup=%zu",
                 hpsgd_merge_name(P.opt.merge), P.rounds.max_stale, (double)P.rep.lookahead,
                 per_step ? P.rounds.sync_until_seen / per_step : 0);
    else if (P.opt.mode == HPSGD_MODE_AVERAGE)
        snprintf(mode, sizeof mode, "average interval=%d", P.opt.interval);
    else
        snprintf(mode, sizeof mode, "sync");
    hpsgd_note("%d rank%s on %d host%s, mode=%s, %.2f MB per round (compress=%s, hierarchical=%d, chunks_in_flight=%d), "
               "learning rate x%.3g (lr_scale=%s) = %g, seed %lu, iteration %ld%s",
               size, size > 1 ? "s" : "", P.comm.nodes, P.comm.nodes > 1 ? "s" : "", mode,
               P.rep.n * (double)P.exchange.codec.type->elem_size / 1e6, hpsgd_compress_name(P.opt.compress),
               P.comm.hierarchical, P.comm.chunks_in_flight, scale, hpsgd_lr_scale_name(P.opt.lr_scale),
               rate, seed, P.cur_iter, hpsgd_replica_on_device(&P.rep) ? ", merging on the GPU" : "");
    if (rank == 0) {
        hpsgd_checkpoint_saver_start(&P.ckpt);
        P.life.saver = &P.ckpt;
        hpsgd_comm_on_stop(&P.comm, save_on_stop_notice, &P.ckpt);
    }
}

void hpsgd_train_begin(network *net, int task, char **paths, int npaths, int ngpus, char *weightfile,
                       char *backup_dir, char *base)
{
    if (!P.opt.present) return;
    if (ngpus > 1) {
        P.life.training_finished = 1;
        fprintf(stderr, "hpsgd: %s: [hpsgd] trains with one GPU per rank: give -gpus one id (or none) and start one "
                        "rank per GPU with mpirun\n", P.cfgfile);
        exit(1);
    }
    char err[1024];
    if (hpsgd_dn_refuse(net, P.cfgfile, err, sizeof err)) {
        P.life.training_finished = 1;
        fprintf(stderr, "hpsgd: %s\n", err);
        exit(1);
    }
    char backup_path[HPSGD_PATH_MAX + 300];
    snprintf(backup_path, sizeof backup_path, "%s/%s.backup", backup_dir, base);
    start_training(net, task, paths, npaths, weightfile, backup_dir, backup_path);
}

int hpsgd_loader_threads(int stock_default)
{
    long from_env = hpsgd_env_long("DARKNET_LOADER_THREADS", 0, 1, 1 << 20);
    if (from_env > 0) return (int)from_env;
    if (!P.active) return stock_default;
    if (P.opt.loader_threads > 0) return P.opt.loader_threads;
    int cores = hpsgd_cores_per_rank(P.comm.local_size);
    return cores < stock_default ? cores : stock_default;
}

int hpsgd_shared_rand(void)
{
    if (!P.active) return rand();
    /* xorshift64*: the same sequence on every rank, apart from rand(). */
    uint64_t x = P.shared_rand_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    P.shared_rand_state = x;
    return (int)((x * 0x2545F4914F6CDD1DULL) >> 33);
}

/* ------------------------------------------------------------- training */

/* Every rank shows the same `seen`; an agreed stop ends the Darknet loop at
 * its next check, on every rank after the same round. */
static void publish_seen(network *net)
{
    hpsgd_dn_set_seen(net, P.rounds.shown_seen);
    if (P.rounds.stop_agreed) hpsgd_dn_end_training(net);
}

/* A signal asked this rank to stop; tests can ask from a given round on
 * (HPSGD_TEST_STOP_AT_ROUND), to reach the rare timings deterministically. */
static int stop_requested(void)
{
    return P.life.signal_seen != 0 || (P.test_stop_round > 0 && P.rounds.launched + 1 >= P.test_stop_round);
}

/* Tests only: a rank whose steps take long on the CPU (a big model), or
 * whose training thread hangs without using the CPU. */
static void test_knobs(void)
{
    ++P.local_steps;
    for (double until = hpsgd_now() + 1e-3 * (double)P.test_slow_ms; hpsgd_now() < until;) continue;
    if (P.test_hang_step > 0 && P.local_steps >= P.test_hang_step)
        for (;;) pause();
}

void hpsgd_after_update(network *net)
{
    if (!P.active) {
        if (P.opt.present && !P.warned_inactive) {
            P.warned_inactive = 1;
            fprintf(stderr, "hpsgd: warning: %s has [hpsgd], but only 'detector train' and 'classifier train' train "
                            "with it; this command trains alone\n", P.cfgfile);
        }
        return;
    }
    test_knobs();
    /* Darknet counted this step's images onto the `seen` we showed it. */
    size_t seen = hpsgd_dn_seen(net);
    int64_t images = seen > P.rounds.shown_seen ? (int64_t)(seen - P.rounds.shown_seen)
                                                : (int64_t)P.rounds.images_per_step;
    hpsgd_rounds_after_step(&P.rounds, images, stop_requested());
    publish_seen(net);
}

void hpsgd_iteration_end(network *net, float loss, float avg_loss)
{
    long iteration = hpsgd_dn_iteration(net);
    P.prev_iter = P.cur_iter;
    P.cur_iter = iteration;
    if (!P.active) return;
    hpsgd_report_iteration(&P.report, P.comm.rank == 0, iteration, loss, avg_loss, hpsgd_dn_current_rate(net),
                           (double)P.rounds.shown_seen);
}

int hpsgd_crossed(network *net, int period)
{
    if (period <= 0) return 0;
    if (!P.active) {
        long i = hpsgd_dn_iteration(net);
        return i % period == 0 ? (int)i : 0;
    }
    long m = P.cur_iter / period * period;
    return m > P.prev_iter && m > 0 ? (int)m : 0;
}

void hpsgd_save_weights(network *net, char *filename)
{
    if (!P.active) {
        hpsgd_dn_save_weights(net, filename);
        return;
    }
    if (P.comm.rank == 0) hpsgd_checkpoint_save(&P.ckpt, filename);
}

int hpsgd_stopped(void) { return P.active && P.rounds.stop_agreed; }

int hpsgd_evaluates(void) { return !P.active || P.comm.rank == 0; }

/* --------------------------------------------------------------- the end */

void hpsgd_train_end(network *net)
{
    P.life.training_finished = 1;
    if (!P.active) return;
    hpsgd_rounds_finish(&P.rounds, stop_requested());
    /* Darknet's network ends as G, for the final save and whatever follows.
     * The host copy of G is the saver thread's too: read under the lock. */
    hpsgd_checkpoint_lock(&P.ckpt);
    hpsgd_replica_fetch_global(&P.rep);
    uint64_t sum = hpsgd_hash(P.rep.global, P.rep.n * sizeof(float), 0);
    hpsgd_registry_scatter(&P.reg, P.rep.global);
    hpsgd_checkpoint_unlock(&P.ckpt);
    hpsgd_registry_push(&P.reg);
    hpsgd_agree_on_end(&P.comm, sum);
    hpsgd_dn_set_seen(net, P.rounds.merged_seen);
    /* Every rank's bytes to other hosts, for the summary's per-round figure. */
    uint64_t *inter = hpsgd_gather(&P.comm, &P.report.total_bytes_inter, sizeof *inter, "end-of-training byte count");
    hpsgd_wire_report wire = {0, P.comm.nodes, P.comm.hierarchical};
    for (int r = 0; r < P.comm.size; ++r) wire.inter_mb_all_ranks += (double)inter[r] / 1e6;
    free(inter);
    hpsgd_report_summary(&P.report, P.rounds.merges, P.rounds.steps_overlapped, P.rounds.rounds_hidden,
                         (hpsgd_replica_overhead_bytes(&P.rep) + hpsgd_codec_overhead_bytes(&P.exchange.codec) +
                          hpsgd_comm_buffer_bytes(&P.comm)) / 1e6,
                         P.reg.saved_floats * 4.0 / 1e6, &wire);
    hpsgd_checkpoint_saver_stop(&P.ckpt);
    hpsgd_forget_exit(comm_cleanup, &P.comm);
    hpsgd_comm_stop(&P.comm);
    hpsgd_report_close(&P.report);

    /* A stop that came with the last round (or the flush) ends a finished
     * training: Darknet then writes what a normal end writes. */
    int cut_short = P.max_iterations <= 0 || hpsgd_dn_iteration(net) < P.max_iterations;
    if (P.rounds.stop_agreed && cut_short) {
        if (P.comm.rank == 0) {
            hpsgd_checkpoint_save(&P.ckpt, P.ckpt.backup_path);
            fprintf(stderr, "hpsgd: stopped by a signal at iteration %ld; saved the global model to %s; resume by "
                            "passing it as the weights file\n", hpsgd_dn_iteration(net), P.ckpt.backup_path);
        }
        exit(0);
    }
}
