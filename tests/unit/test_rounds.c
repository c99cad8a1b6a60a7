/*
 * test_rounds.c - the round state machine (plugin/rounds.c) alone, with a
 * fake transport: N simulated ranks, one thread each, exchange their rounds
 * through shared memory, and a one-number model per rank follows merge.h's
 * rules in double precision. No MPI, no Darknet, no hooks.c: this file is
 * linked with rounds.c only.
 *
 * Every local step adds delta(rank) to the rank's replica R, so after the
 * end every G must equal sum over ranks of steps(rank) * delta(rank) / N:
 * the final flush leaves no local step unsent, whatever the mode. With a
 * lossy codec (compress=fp16) the fake transport sends each change rounded
 * to a coarse quantum and keeps the rest as the rank's residual, as codec.c
 * does, and the same must hold: the flush carries every residual whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "rounds.h"

#define MAXR 4
#define MAXROUNDS 4096
#define IPS 8 /* images per local step (batch x subdivisions) */

typedef struct world world;

typedef struct {
    world *w;
    int rank;
    hpsgd_rounds rounds;
    int eager;
    double R, G, B, C;          /* the model: replica, global, base, round buffer */
    long steps;                 /* local steps taken */
    int64_t images;             /* images they trained on */
    long steps_since_launch;    /* for the fake's "finishes late" rule */
    long merges, model_ops[4];
    size_t seen_at_merge[MAXROUNDS]; /* shown_seen after each merge, for cross-rank checks */
    long stop_at_step;          /* asks to stop from this local step on (0: never) */
    long misaligned, merge_gaps; /* checks made in the rank's thread, asserted in the main one */
    int lossy;                  /* the fake codec rounds to QUANTUM, keeping the rest here */
    double residual;
    int last_full;              /* the last launch was a full round */
    long rounds_at_end;
} rank_t;

struct world {
    int n;
    int lag;                    /* a round finishes once every rank launched it and this many local steps passed */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int launched[MAXROUNDS];
    double model_sum[MAXROUNDS];
    hpsgd_extras sums[MAXROUNDS];
    int gathered;
    int64_t gather_max;
    rank_t ranks[MAXR];
};

static double delta(int rank) { return (double)(rank + 1) * 0.5; }
#define QUANTUM 0.375 /* no multiple of it is a sum of the deltas of one step */

/* ------------------------------------------------------- the fake transport */

static void fake_launch(void *ctx, const hpsgd_extras *mine, int full)
{
    rank_t *me = ctx;
    world *w = me->w;
    long k = me->rounds.launched;
    assert_true(k < MAXROUNDS);
    me->last_full = full;
    if (me->lossy) { /* codec.c's error feedback, on one number */
        double v = me->C + me->residual;
        me->C = full ? v : QUANTUM * floor(v / QUANTUM);
        me->residual = v - me->C;
    }
    pthread_mutex_lock(&w->lock);
    w->model_sum[k] += me->C;
    w->sums[k].images += mine->images;
    w->sums[k].stop += mine->stop;
    ++w->launched[k];
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    me->steps_since_launch = 0;
}

static int fake_finished(void *ctx)
{
    rank_t *me = ctx;
    world *w = me->w;
    pthread_mutex_lock(&w->lock);
    int all = w->launched[me->rounds.launched] == w->n;
    pthread_mutex_unlock(&w->lock);
    return all && me->steps_since_launch >= w->lag;
}

static void fake_wait(void *ctx, hpsgd_extras *sum)
{
    rank_t *me = ctx;
    world *w = me->w;
    long k = me->rounds.launched;
    pthread_mutex_lock(&w->lock);
    while (w->launched[k] < w->n) pthread_cond_wait(&w->cond, &w->lock);
    me->C = w->model_sum[k]; /* A, the sum over ranks */
    *sum = w->sums[k];
    pthread_mutex_unlock(&w->lock);
}

static int64_t fake_max(void *ctx, int64_t mine)
{
    rank_t *me = ctx;
    world *w = me->w;
    pthread_mutex_lock(&w->lock);
    w->gather_max = w->gathered == 0 || mine > w->gather_max ? mine : w->gather_max;
    ++w->gathered;
    pthread_cond_broadcast(&w->cond);
    while (w->gathered < w->n) pthread_cond_wait(&w->cond, &w->lock);
    int64_t most = w->gather_max;
    pthread_mutex_unlock(&w->lock);
    return most;
}

/* merge.h's rules on one number. */
static void fake_model(void *ctx, hpsgd_model_op op, int have_round, size_t merged_seen)
{
    rank_t *me = ctx;
    double inv = 1.0 / me->w->n;
    (void)merged_seen;
    ++me->model_ops[op];
    switch (op) {
    case HPSGD_MODEL_LAUNCH: {
        double d = me->R - (me->eager ? me->B : me->G);
        if (have_round) me->G += me->C * inv;
        me->C = d;
        if (me->eager) me->B = me->G + d;
        me->R = me->eager ? me->B : me->G;
        break;
    }
    case HPSGD_MODEL_DIFF: me->C = me->R - me->G; break;
    case HPSGD_MODEL_MERGE:
        me->G += me->C * inv;
        me->R = me->B = me->G;
        break;
    case HPSGD_MODEL_MERGE_LAST: {
        double local = me->R - (me->eager ? me->B : me->G);
        me->G += me->C * inv;
        me->B = me->G;
        me->R = me->G + local;
        break;
    }
    }
}

static void fake_merged(void *ctx, long merges)
{
    rank_t *me = ctx;
    me->merge_gaps += merges != me->merges + 1; /* counted once each, in order */
    me->merges = merges;
}

static const hpsgd_round_ops fake_ops = {fake_launch, fake_finished, fake_wait, fake_max, fake_model, fake_merged};

/* ----------------------------------------------------- the training loop */

static long max_iterations, local_steps;
static size_t seen0; /* `seen` at the start: a resumed file's, maybe not a multiple of IPS */

/* What Darknet's loop does: step while the global iteration (seen / IPS)
 * is below max_batches; the plugin's `seen` is shown_seen. With local_steps
 * set, every rank takes exactly that many steps instead (a loop that ends
 * between rounds, which the final flush must cover). */
static int more(const rank_t *me)
{
    if (local_steps) return me->steps < local_steps;
    return me->rounds.shown_seen / IPS < (size_t)max_iterations;
}

static void *train(void *arg)
{
    rank_t *me = arg;
    while (more(me)) {
        me->R += delta(me->rank);
        ++me->steps;
        ++me->steps_since_launch;
        int stop = me->stop_at_step && me->steps >= me->stop_at_step;
        long merges_before = me->rounds.merges;
        /* Darknet updates when `seen` reaches the next multiple of IPS: a step
         * from a misaligned `seen` is short. */
        int64_t images = (int64_t)(IPS - me->rounds.shown_seen % IPS);
        me->images += images;
        hpsgd_rounds_after_step(&me->rounds, images, stop);
        me->misaligned += me->rounds.shown_seen % IPS != 0; /* the next step would be short */
        if (me->rounds.merges > merges_before && me->rounds.merges < MAXROUNDS)
            me->seen_at_merge[me->rounds.merges] = me->rounds.shown_seen;
        if (me->rounds.stop_agreed) break;
    }
    hpsgd_rounds_finish(&me->rounds, 0);
    me->rounds_at_end = me->rounds.launched;
    return NULL;
}

typedef struct {
    hpsgd_mode mode;
    int eager, max_stale, interval, n, lag;
    long iterations;
    long local_steps;   /* 0: the loop ends on the global iteration */
    size_t seen0;       /* `seen` at the start */
    int stop_rank;      /* -1: nobody asks to stop */
    long stop_step;
    int lossy;          /* compress=fp16: the fake codec loses precision until the flush */
    int sync_warmup;    /* hpsgd: global iterations as sync first */
} scenario;

static world W;

static void run(const scenario *s)
{
    memset(&W, 0, sizeof W);
    W.n = s->n;
    W.lag = s->lag;
    pthread_mutex_init(&W.lock, NULL);
    pthread_cond_init(&W.cond, NULL);
    max_iterations = s->iterations;
    local_steps = s->local_steps;
    seen0 = s->seen0;
    hpsgd_options o = {.mode = s->mode, .merge = s->eager ? HPSGD_MERGE_EAGER : HPSGD_MERGE_RESET,
                       .max_stale = s->max_stale, .interval = s->interval,
                       .compress = s->lossy ? HPSGD_COMPRESS_FP16 : HPSGD_COMPRESS_NONE,
                       .sync_warmup = s->sync_warmup};
    pthread_t threads[MAXR];
    for (int r = 0; r < s->n; ++r) {
        rank_t *me = &W.ranks[r];
        me->w = &W;
        me->rank = r;
        me->eager = s->eager;
        me->stop_at_step = r == s->stop_rank ? s->stop_step : 0;
        me->lossy = s->lossy;
        hpsgd_rounds_init(&me->rounds, &o, s->n, IPS, s->seen0, s->iterations, &fake_ops, me);
        pthread_create(&threads[r], NULL, train, me);
    }
    for (int r = 0; r < s->n; ++r) pthread_join(threads[r], NULL);

    /* Every rank holds the same G and shows the same `seen`; G holds every
     * local step of every rank (the final flush), and so does `seen`. */
    double expect = 0;
    size_t all_images = s->seen0;
    for (int r = 0; r < s->n; ++r) {
        expect += (double)W.ranks[r].steps * delta(r) / s->n;
        all_images += (size_t)W.ranks[r].images;
    }
    for (int r = 0; r < s->n; ++r) {
        rank_t *me = &W.ranks[r];
        assert_true(fabs(me->G - expect) <= 1e-12 * fabs(expect));
        assert_true(me->G == W.ranks[0].G);
        assert_true(me->R == me->G); /* nothing left unsent in the replica */
        assert_true(me->residual == 0); /* nor in the codec */
        if (s->lossy) assert_true(me->last_full);
        assert_int_equal(me->rounds.merged_seen, all_images);
        assert_int_equal(me->rounds.shown_seen, me->rounds.merged_seen - me->rounds.merged_seen % IPS);
        assert_int_equal(me->rounds.steps_since_launch, 0);
        assert_int_equal(me->rounds.in_flight, 0);
        assert_int_equal(me->misaligned, 0);
        assert_int_equal(me->merge_gaps, 0);
        assert_int_equal(me->rounds_at_end, W.ranks[0].rounds_at_end);
        assert_int_equal(me->rounds.merges, W.ranks[0].rounds.merges);
        for (long m = 1; m <= me->rounds.merges && m < MAXROUNDS; ++m)
            assert_int_equal(me->seen_at_merge[m], W.ranks[0].seen_at_merge[m]);
    }
    pthread_mutex_destroy(&W.lock);
    pthread_cond_destroy(&W.cond);
}

/* ------------------------------------------------------------------ tests */

static void test_sync(void **state)
{
    (void)state;
    for (int n = 1; n <= 4; ++n) {
        scenario s = {.mode = HPSGD_MODE_SYNC, .n = n, .iterations = 12 * n, .stop_rank = -1};
        run(&s);
        /* One blocking round per step; `seen` moves N iterations a step. */
        for (int r = 0; r < n; ++r) {
            assert_int_equal(W.ranks[r].steps, 12);
            assert_int_equal(W.ranks[r].rounds.launched, 12);
            assert_int_equal(W.ranks[r].seen_at_merge[3], (size_t)3 * n * IPS);
            assert_int_equal(W.ranks[r].model_ops[HPSGD_MODEL_LAUNCH], 0);
        }
    }
}

static void test_average(void **state)
{
    (void)state;
    for (int n = 1; n <= 4; ++n) {
        /* 10 steps, interval 4: rounds after steps 4 and 8; `seen` stays until
         * a round, so the loop runs on to step 12 (iteration 12n). */
        scenario s = {.mode = HPSGD_MODE_AVERAGE, .interval = 4, .n = n, .iterations = 10 * n, .stop_rank = -1};
        run(&s);
        for (int r = 0; r < n; ++r) {
            assert_int_equal(W.ranks[r].steps, 12);
            assert_int_equal(W.ranks[r].rounds.launched, 3);
            assert_int_equal(W.ranks[r].seen_at_merge[1], (size_t)4 * n * IPS);
        }
    }
}

/* max_stale bounds the local steps per round when rounds finish late. */
static void test_hpsgd_max_stale_late(void **state)
{
    (void)state;
    for (int eager = 0; eager <= 1; ++eager)
        for (int stale = 1; stale <= 2; ++stale)
            for (int n = 1; n <= 4; ++n) {
                scenario s = {.mode = HPSGD_MODE_HPSGD, .eager = eager, .max_stale = stale, .n = n, .lag = 5,
                              .iterations = 40, .stop_rank = -1};
                run(&s);
                for (int r = 0; r < n; ++r) {
                    const hpsgd_rounds *x = &W.ranks[r].rounds;
                    /* Every merge point but the first waits after exactly
                     * max_stale steps: the round never finished earlier. */
                    assert_int_equal(x->steps_overlapped, (x->launched - 1) * (stale - 1));
                    assert_int_equal(x->rounds_hidden, 0);
                    /* `seen` after a merge: all merged rounds (round 1 carried
                     * the first step, round 2 max_stale steps) plus one step
                     * of every rank. */
                    assert_int_equal(W.ranks[r].seen_at_merge[1], (size_t)2 * n * IPS);
                    assert_int_equal(W.ranks[r].seen_at_merge[2], (size_t)(2 + stale) * n * IPS);
                }
            }
}

/* Rounds that finish before the next step: no waiting, one step per round. */
static void test_hpsgd_early(void **state)
{
    (void)state;
    for (int stale = 0; stale <= 2; ++stale) {
        scenario s = {.mode = HPSGD_MODE_HPSGD, .max_stale = stale, .n = 1, .lag = 0, .iterations = 20,
                      .stop_rank = -1};
        run(&s);
        const hpsgd_rounds *x = &W.ranks[0].rounds;
        assert_int_equal(x->steps_overlapped, 0);
        assert_int_equal(x->rounds_hidden, x->launched); /* every round was ready when needed */
    }
    for (int n = 2; n <= 4; ++n) {
        scenario s = {.mode = HPSGD_MODE_HPSGD, .max_stale = 2, .n = n, .lag = 0, .iterations = 30, .stop_rank = -1};
        run(&s); /* timing decides the overlap here: the invariants in run() are the test */
    }
}

/* sync_warmup: blocking rounds, one per step, until G holds that many global
 * iterations; then the hpsgd rule, from a clean start (the first merge point
 * launches only); a resumed run past the warm-up has none. */
static void test_hpsgd_sync_warmup(void **state)
{
    (void)state;
    for (int eager = 0; eager <= 1; ++eager)
        for (int n = 1; n <= 4; ++n) {
            /* 12n iterations of warm-up are 12 steps of every rank. */
            scenario s = {.mode = HPSGD_MODE_HPSGD, .eager = eager, .max_stale = 1, .n = n, .lag = 5,
                          .iterations = 40 * n, .stop_rank = -1, .sync_warmup = 12 * n};
            run(&s);
            for (int r = 0; r < n; ++r) {
                const rank_t *me = &W.ranks[r];
                assert_int_equal(me->model_ops[HPSGD_MODEL_DIFF], 12);
                assert_int_equal(me->model_ops[HPSGD_MODEL_MERGE], 12);
                assert_int_equal(me->seen_at_merge[12], (size_t)12 * n * IPS);
                /* After it, one step a round (max_stale 1, rounds late): 28 steps, 28 launches. */
                assert_int_equal(me->model_ops[HPSGD_MODEL_LAUNCH], 28);
                assert_int_equal(me->steps, 40);
                assert_int_equal(me->rounds.steps_overlapped, 0);
            }
            scenario resumed = s;
            resumed.seen0 = (size_t)12 * n * IPS;
            run(&resumed);
            assert_int_equal(W.ranks[0].model_ops[HPSGD_MODEL_DIFF], 0);
            assert_int_equal(W.ranks[0].model_ops[HPSGD_MODEL_LAUNCH], 28);
        }
    /* The default: a quarter of max_batches on more than 2 ranks, none on 1 or 2. */
    hpsgd_options o = {.mode = HPSGD_MODE_HPSGD, .sync_warmup = HPSGD_SYNC_WARMUP_AUTO};
    assert_int_equal(hpsgd_sync_warmup_for(&o, 2, 1000), 0);
    assert_int_equal(hpsgd_sync_warmup_for(&o, 4, 1000), 250);
    hpsgd_rounds x;
    hpsgd_rounds_init(&x, &o, 4, IPS, 0, 1000, &fake_ops, NULL);
    assert_int_equal(x.sync_until_seen, (size_t)250 * IPS);
    o.mode = HPSGD_MODE_SYNC;
    hpsgd_rounds_init(&x, &o, 4, IPS, 0, 1000, &fake_ops, NULL);
    assert_int_equal(x.sync_until_seen, 0);
}

/* max_stale=0 never waits: the rank trains on until the round has finished. */
static void test_hpsgd_never_wait(void **state)
{
    (void)state;
    scenario s = {.mode = HPSGD_MODE_HPSGD, .max_stale = 0, .n = 1, .lag = 3, .iterations = 30, .stop_rank = -1};
    run(&s);
    const hpsgd_rounds *x = &W.ranks[0].rounds;
    assert_int_equal(x->steps_overlapped, (x->launched - 1) * 2); /* 3 steps a round, 2 of them overlapped */
    for (int n = 2; n <= 4; ++n) {
        scenario m = {.mode = HPSGD_MODE_HPSGD, .max_stale = 0, .eager = n % 2, .n = n, .lag = 2, .iterations = 40,
                      .stop_rank = -1};
        run(&m);
    }
}

/* One rank asks to stop; the request rides its next round and every rank
 * ends after the same merge, with every step in G. */
static void test_stop_rides_a_round(void **state)
{
    (void)state;
    hpsgd_mode modes[] = {HPSGD_MODE_SYNC, HPSGD_MODE_AVERAGE, HPSGD_MODE_HPSGD};
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; ++m)
        for (int n = 1; n <= 4; ++n) {
            scenario s = {.mode = modes[m], .interval = 3, .max_stale = 2, .n = n, .lag = 1, .iterations = 1000,
                          .stop_rank = n - 1, .stop_step = 5};
            run(&s);
            for (int r = 0; r < n; ++r) {
                assert_true(W.ranks[r].rounds.stop_agreed);
                assert_true(W.ranks[r].steps < 12); /* ended long before max_batches */
            }
        }
}

/* The final flush: steps no round carried reach G, on every rank. */
static void test_final_flush(void **state)
{
    (void)state;
    for (int n = 1; n <= 4; ++n) {
        /* average, interval 4, 10 steps: rounds after steps 4 and 8, then
         * the flush carries steps 9 and 10. */
        scenario a = {.mode = HPSGD_MODE_AVERAGE, .interval = 4, .n = n, .local_steps = 10, .stop_rank = -1};
        run(&a);
        for (int r = 0; r < n; ++r) {
            assert_int_equal(W.ranks[r].rounds.launched, 3);
            assert_int_equal(W.ranks[r].model_ops[HPSGD_MODEL_MERGE], 3);
        }
        /* hpsgd, rounds late, max_stale 2: 2 steps a round after the first,
         * so after 10 steps one step is unsent and a round is in flight:
         * merge it (MERGE_LAST), then flush the step. */
        for (int eager = 0; eager <= 1; ++eager) {
            scenario h = {.mode = HPSGD_MODE_HPSGD, .eager = eager, .max_stale = 2, .n = n, .lag = 5,
                          .local_steps = 10, .stop_rank = -1};
            run(&h);
            for (int r = 0; r < n; ++r) {
                assert_int_equal(W.ranks[r].model_ops[HPSGD_MODEL_MERGE_LAST], 1);
                assert_int_equal(W.ranks[r].model_ops[HPSGD_MODEL_MERGE], 1); /* the flush round */
            }
        }
        /* Nothing unsent: no flush round. */
        scenario none = {.mode = HPSGD_MODE_SYNC, .n = n, .local_steps = 5, .stop_rank = -1};
        run(&none);
        for (int r = 0; r < n; ++r) assert_int_equal(W.ranks[r].rounds.launched, 5);
    }
}

/* Resuming from a `seen` that is not a multiple of IPS (a file from a run
 * with another batch=): Darknet shortens the first step only; the plugin
 * counts its real images and keeps every later step whole, so 1 rank takes
 * the steps stock Darknet takes (issue 16.1: it took half as many). */
static void test_misaligned_resume(void **state)
{
    (void)state;
    scenario one = {.mode = HPSGD_MODE_SYNC, .n = 1, .iterations = 4, .seen0 = 4, .stop_rank = -1};
    run(&one);
    assert_int_equal(W.ranks[0].steps, 4); /* stock: seen 4 -> 8, 16, 24, 32 */
    assert_int_equal(W.ranks[0].rounds.merged_seen, 32);
    hpsgd_mode modes[] = {HPSGD_MODE_SYNC, HPSGD_MODE_AVERAGE, HPSGD_MODE_HPSGD};
    for (size_t m = 0; m < 3; ++m)
        for (int n = 1; n <= 4; ++n) {
            scenario s = {.mode = modes[m], .interval = 2, .max_stale = 2, .n = n, .lag = 1, .iterations = 20,
                          .seen0 = 4 + 8 * 3, .stop_rank = -1};
            run(&s); /* every later step whole: checked after every step in train() */
        }
}

/* compress=fp16: rounds lose precision to the residual; the flush always
 * runs, as a full round, and G ends with every step (checked in run()). */
static void test_lossy_codec_flush(void **state)
{
    (void)state;
    for (int n = 1; n <= 4; ++n) {
        scenario sy = {.mode = HPSGD_MODE_SYNC, .n = n, .local_steps = 7, .stop_rank = -1, .lossy = 1};
        run(&sy);
        /* No step unsent, yet one more round: the residuals. */
        for (int r = 0; r < n; ++r) assert_int_equal(W.ranks[r].rounds.launched, 8);
        scenario av = {.mode = HPSGD_MODE_AVERAGE, .interval = 3, .n = n, .local_steps = 10, .stop_rank = -1,
                       .lossy = 1};
        run(&av);
        for (int eager = 0; eager <= 1; ++eager)
            for (int lag = 0; lag <= 5; lag += 5) {
                scenario h = {.mode = HPSGD_MODE_HPSGD, .eager = eager, .max_stale = 2, .n = n, .lag = lag,
                              .iterations = 40, .stop_rank = -1, .lossy = 1};
                run(&h);
            }
        scenario st = {.mode = HPSGD_MODE_HPSGD, .max_stale = 2, .n = n, .lag = 1, .iterations = 1000,
                       .stop_rank = n - 1, .stop_step = 5, .lossy = 1};
        run(&st);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync),
        cmocka_unit_test(test_average),
        cmocka_unit_test(test_hpsgd_max_stale_late),
        cmocka_unit_test(test_hpsgd_sync_warmup),
        cmocka_unit_test(test_hpsgd_early),
        cmocka_unit_test(test_hpsgd_never_wait),
        cmocka_unit_test(test_stop_rides_a_round),
        cmocka_unit_test(test_final_flush),
        cmocka_unit_test(test_misaligned_resume),
        cmocka_unit_test(test_lossy_codec_flush),
    };
    return cmocka_run_group_tests_name("rounds", tests, NULL, NULL);
}
