/*
 * test_replica.c - merge arithmetic of sync, average, hpsgd (reset, eager) on
 * small synthetic tensors, with N simulated ranks and an exact "all-reduce"
 * (the sum over ranks in rank order) done here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "replica.h"

#define MAXR 4
#define T1 5 /* two tensors, so slices and offsets are exercised */
#define T2 3
#define NF (T1 + T2)

/* One simulated rank: its live tensors (Darknet's replica R) and our state. */
typedef struct {
    float data[NF]; /* the two live tensors, back to back */
    float *a, *b;
    float *pa, *pb;
    hpsgd_tensor tensors[2];
    hpsgd_registry reg;
    hpsgd_replica rep;
} rank_t;

static void make_rank(rank_t *r, int eager, float lookahead, const float *start)
{
    memset(r, 0, sizeof(*r));
    r->a = r->data;
    r->b = r->data + T1;
    memcpy(r->data, start, sizeof r->data);
    r->pa = r->a;
    r->pb = r->b;
    r->tensors[0] = (hpsgd_tensor){.slot = &r->pa, .n = T1, .offset = 0, .travels = 1};
    r->tensors[1] = (hpsgd_tensor){.slot = &r->pb, .n = T2, .offset = T1, .travels = 1};
    r->reg = (hpsgd_registry){.tensors = r->tensors, .count = 2, .fused_floats = NF, .saved_floats = NF};
    assert_int_equal(hpsgd_replica_init(&r->rep, &r->reg, eager, lookahead, 0), 0);
}

static float live(const rank_t *r, int i) { return r->data[i]; }

/* A local training step: R += delta(rank, step, i). */
static float delta(int rank, int step, int i) { return 0.01f * (float)(rank + 1) * (float)(step + 1) + 0.001f * (float)i; }

static void step(rank_t *r, int rank, int s)
{
    for (int i = 0; i < T1; ++i) r->a[i] += delta(rank, s, i);
    for (int i = 0; i < T2; ++i) r->b[i] += delta(rank, s, T1 + i);
}

/* The all-reduce: every rank's comm becomes the sum over ranks 0..n-1. */
static void allreduce(rank_t *ranks, int n)
{
    float sum[NF] = {0};
    for (int r = 0; r < n; ++r)
        for (int i = 0; i < NF; ++i) sum[i] += ranks[r].rep.comm[i];
    for (int r = 0; r < n; ++r) memcpy(ranks[r].rep.comm, sum, sizeof sum);
}

static const float start[NF] = {1, -2, 3, 0.5f, 0, 7, -1, 0.25f};

static void free_ranks(rank_t *ranks, int n)
{
    for (int r = 0; r < n; ++r) hpsgd_replica_free(&ranks[r].rep);
}

static void test_init_and_overhead(void **state)
{
    (void)state;
    rank_t r, e;
    make_rank(&r, 0, 1.0f, start);
    make_rank(&e, 1, 1.0f, start);
    assert_memory_equal(r.rep.global, start, sizeof start);
    assert_null(r.rep.base);
    assert_memory_equal(e.rep.base, start, sizeof start);
    assert_int_equal(hpsgd_replica_overhead_bytes(&r.rep), 2 * NF * sizeof(float));
    assert_int_equal(hpsgd_replica_overhead_bytes(&e.rep), 3 * NF * sizeof(float));
    hpsgd_replica_free(&r.rep);
    hpsgd_replica_free(&e.rep);
}

/* sync: after each step G = G + mean(D), R = G, on every rank alike. */
static void test_sync(void **state)
{
    (void)state;
    const int n = 3;
    rank_t ranks[MAXR];
    double expect[NF];
    for (int i = 0; i < NF; ++i) expect[i] = start[i];
    for (int r = 0; r < n; ++r) make_rank(&ranks[r], 0, 1.0f, start);
    for (int s = 0; s < 4; ++s) {
        for (int r = 0; r < n; ++r) {
            step(&ranks[r], r, s);
            hpsgd_replica_diff(&ranks[r].rep);
        }
        /* The image counts that ride along are no longer in this buffer:
         * test_rounds.c and the ring test check their exact sums. */
        allreduce(ranks, n);
        for (int r = 0; r < n; ++r) {
            hpsgd_replica_merge(&ranks[r].rep, (float)n);
        }
        for (int i = 0; i < NF; ++i) {
            double mean = 0;
            for (int r = 0; r < n; ++r) mean += delta(r, s, i);
            expect[i] += mean / n;
        }
        for (int r = 0; r < n; ++r) {
            assert_memory_equal(ranks[r].rep.global, ranks[0].rep.global, sizeof(float) * NF);
            for (int i = 0; i < NF; ++i) {
                assert_true(live(&ranks[r], i) == ranks[r].rep.global[i]);
                assert_true(fabs(ranks[r].rep.global[i] - expect[i]) < 1e-5);
            }
        }
    }
    free_ranks(ranks, n);
}

/* With identical changes on 2 ranks, sync gives exactly the 1-rank result:
 * (x + x) / 2 == x in floating point. */
static void test_sync_two_equals_one(void **state)
{
    (void)state;
    rank_t one[1], two[2];
    make_rank(&one[0], 0, 1.0f, start);
    for (int r = 0; r < 2; ++r) make_rank(&two[r], 0, 1.0f, start);
    for (int s = 0; s < 5; ++s) {
        step(&one[0], 0, s);
        hpsgd_replica_diff(&one[0].rep);
        allreduce(one, 1);
        hpsgd_replica_merge(&one[0].rep, 1.0f);
        for (int r = 0; r < 2; ++r) {
            step(&two[r], 0, s); /* the same change on both */
            hpsgd_replica_diff(&two[r].rep);
        }
        allreduce(two, 2);
        for (int r = 0; r < 2; ++r) hpsgd_replica_merge(&two[r].rep, 2.0f);
    }
    assert_memory_equal(one[0].rep.global, two[0].rep.global, sizeof(float) * NF);
    assert_memory_equal(one[0].rep.global, two[1].rep.global, sizeof(float) * NF);
    free_ranks(one, 1);
    free_ranks(two, 2);
}

/* average: ranks train alone for `interval` steps, then one blocking round
 * makes every replica the mean of the replicas. */
static void test_average(void **state)
{
    (void)state;
    const int n = 2, interval = 3;
    rank_t ranks[MAXR];
    for (int r = 0; r < n; ++r) make_rank(&ranks[r], 0, 1.0f, start);
    for (int s = 0; s < interval; ++s)
        for (int r = 0; r < n; ++r) step(&ranks[r], r, s);
    float mean[NF];
    for (int i = 0; i < NF; ++i) mean[i] = (live(&ranks[0], i) + live(&ranks[1], i)) / 2;
    for (int r = 0; r < n; ++r) hpsgd_replica_diff(&ranks[r].rep);
    allreduce(ranks, n);
    for (int r = 0; r < n; ++r) hpsgd_replica_merge(&ranks[r].rep, (float)n);
    for (int i = 0; i < NF; ++i) assert_true(fabsf(ranks[0].rep.global[i] - mean[i]) < 1e-6f);
    assert_memory_equal(ranks[0].rep.global, ranks[1].rep.global, sizeof(float) * NF);
    free_ranks(ranks, n);
}

/* hpsgd, merge=reset, as in the paper: the averaged change of round k lands at
 * the merge point after it; the replica restarts from G each time; the steps
 * taken while a round is in flight go into the next round, never lost. */
static void run_hpsgd(int eager, float lookahead, int n, int rounds, int steps_per_round)
{
    rank_t ranks[MAXR];
    double expect[NF];
    for (int i = 0; i < NF; ++i) expect[i] = start[i];
    for (int r = 0; r < n; ++r) make_rank(&ranks[r], eager, lookahead, start);
    int s = 0;
    for (int k = 0; k < rounds; ++k) {
        for (int j = 0; j < steps_per_round; ++j, ++s)
            for (int r = 0; r < n; ++r) {
                step(&ranks[r], r, s);
                for (int i = 0; i < NF; ++i) expect[i] += (double)delta(r, s, i) / n;
            }
        /* Merge point k: merge round k-1 (in flight), launch round k. */
        for (int r = 0; r < n; ++r) {
            /* The counters travel outside this buffer (rounds.h): a merge
             * cannot touch them; test_rounds.c checks their sums. */
            hpsgd_replica_merge_launch(&ranks[r].rep, k > 0, (float)n);
            if (!eager) assert_memory_equal(ranks[r].a, ranks[r].rep.global, sizeof(float) * T1);
        }
        for (int r = 1; r < n; ++r) assert_memory_equal(ranks[r].rep.global, ranks[0].rep.global, sizeof(float) * NF);
        allreduce(ranks, n); /* the round runs while the next steps are taken */
    }
    /* Local steps after the last launch, then the end: merge the last round
     * and a final blocking round. */
    for (int r = 0; r < n; ++r) {
        step(&ranks[r], r, s);
        for (int i = 0; i < NF; ++i) expect[i] += (double)delta(r, s, i) / n;
    }
    for (int r = 0; r < n; ++r) hpsgd_replica_merge_last(&ranks[r].rep, (float)n);
    for (int r = 0; r < n; ++r) hpsgd_replica_diff(&ranks[r].rep);
    allreduce(ranks, n);
    for (int r = 0; r < n; ++r) hpsgd_replica_merge(&ranks[r].rep, (float)n);
    /* G holds every rank's every step, once: the mean of all changes. */
    for (int r = 0; r < n; ++r) {
        assert_memory_equal(ranks[r].rep.global, ranks[0].rep.global, sizeof(float) * NF);
        for (int i = 0; i < NF; ++i) {
            if (fabs(ranks[r].rep.global[i] - expect[i]) > 1e-4)
                fail_msg("eager=%d lookahead=%g n=%d: G[%d]=%g, expected %g", eager, lookahead, n, i,
                         ranks[r].rep.global[i], expect[i]);
            assert_true(live(&ranks[r], i) == ranks[r].rep.global[i]);
        }
    }
    free_ranks(ranks, n);
}

static void test_hpsgd_reset(void **state)
{
    (void)state;
    run_hpsgd(0, 1.0f, 2, 5, 1); /* lookahead: ignored by reset */
    run_hpsgd(0, 1.0f, 3, 4, 2);
    run_hpsgd(0, 0.0f, 4, 3, 3);
}

static void test_hpsgd_eager(void **state)
{
    (void)state;
    /* With a lookahead the replica runs ahead of G, but G still holds the
     * mean of every change, once, and the saved model is G. */
    for (int look = 0; look <= 2; ++look) {
        run_hpsgd(1, 0.5f * (float)look, 2, 5, 1);
        run_hpsgd(1, 0.5f * (float)look, 3, 4, 2);
        run_hpsgd(1, 0.5f * (float)look, 1, 6, 2);
    }
}

/* lookahead: after a launch that merges a round, R = G + lookahead * A/N + D,
 * and the next D holds only the steps taken since (not the lookahead). */
static void test_eager_lookahead(void **state)
{
    (void)state;
    rank_t r;
    make_rank(&r, 1, 2.0f, start);
    step(&r, 0, 0);
    hpsgd_replica_merge_launch(&r.rep, 0, 1.0f); /* round 0 carries D0 = delta(0, 0) */
    step(&r, 0, 1);
    hpsgd_replica_merge_launch(&r.rep, 1, 1.0f); /* one rank: A/N = D0 */
    for (int i = 0; i < NF; ++i) {
        double d0 = delta(0, 0, i), d1 = delta(0, 1, i);
        assert_true(fabs(r.rep.global[i] - (start[i] + d0)) < 1e-6);
        assert_true(fabs(live(&r, i) - (start[i] + d0 + 2 * d0 + d1)) < 1e-5);
        assert_true(fabs(r.rep.comm[i] - d1) < 1e-6); /* D1, without the lookahead */
        assert_true(r.rep.base[i] == live(&r, i));
    }
    step(&r, 0, 2);
    hpsgd_replica_merge_last(&r.rep, 1.0f); /* G += D1; R = G + the steps since the launch */
    for (int i = 0; i < NF; ++i) {
        double d0 = delta(0, 0, i), d1 = delta(0, 1, i), d2 = delta(0, 2, i);
        assert_true(fabs(r.rep.global[i] - (start[i] + d0 + d1)) < 1e-5);
        assert_true(fabs(live(&r, i) - (start[i] + d0 + d1 + d2)) < 1e-5);
    }
    hpsgd_replica_free(&r.rep);
}

/* eager keeps the replica's own change: right after a launch R = G + D. */
static void test_eager_keeps_own_change(void **state)
{
    (void)state;
    rank_t r;
    make_rank(&r, 1, 1.0f, start);
    step(&r, 0, 0);
    float before[NF];
    for (int i = 0; i < NF; ++i) before[i] = live(&r, i);
    hpsgd_replica_merge_launch(&r.rep, 0, 1.0f);
    for (int i = 0; i < NF; ++i) {
        assert_true(live(&r, i) == before[i]);             /* nothing merged yet: R unchanged */
        assert_true(r.rep.global[i] == start[i]);          /* G waits for the round */
        assert_true(r.rep.comm[i] == before[i] - start[i]); /* D = R - G */
    }
    /* Reset mode instead drops back to G until the round lands. */
    rank_t s;
    make_rank(&s, 0, 1.0f, start);
    step(&s, 0, 0);
    hpsgd_replica_merge_launch(&s.rep, 0, 1.0f);
    for (int i = 0; i < NF; ++i) assert_true(live(&s, i) == start[i]);
    hpsgd_replica_free(&r.rep);
    hpsgd_replica_free(&s.rep);
}

/* Rolling statistics with stats=0 do not travel: merges leave them alone. */
static void test_non_travelling_tensor(void **state)
{
    (void)state;
    rank_t r;
    make_rank(&r, 0, 1.0f, start);
    hpsgd_replica_free(&r.rep);
    r.tensors[1].travels = 0;
    r.tensors[1].offset = 0;
    r.reg.fused_floats = T1;
    assert_int_equal(hpsgd_replica_init(&r.rep, &r.reg, 0, 1.0f, 0), 0);
    step(&r, 0, 0);
    float b_before[T2];
    memcpy(b_before, r.b, sizeof b_before);
    r.pb = r.b;
    hpsgd_replica_diff(&r.rep);
    hpsgd_replica_merge(&r.rep, 1.0f);
    assert_memory_equal(r.b, b_before, sizeof b_before);
    hpsgd_replica_free(&r.rep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_and_overhead),  cmocka_unit_test(test_sync),
        cmocka_unit_test(test_sync_two_equals_one), cmocka_unit_test(test_average),
        cmocka_unit_test(test_hpsgd_reset),         cmocka_unit_test(test_hpsgd_eager),
        cmocka_unit_test(test_eager_keeps_own_change), cmocka_unit_test(test_eager_lookahead),
        cmocka_unit_test(test_non_travelling_tensor),
    };
    return cmocka_run_group_tests_name("replica", tests, NULL, NULL);
}
