/*
 * test_codec.c - the change on the wire (plugin/codec.c): binary16 encoding
 * of every value and every rounding boundary, saturation, inf and NaN,
 * subnormals; the ring's 16-bit reduction and its fed-back rounding; and
 * error feedback over many rounds on simulated ranks, ending with the full
 * flush: every element, 1e6 or 1e-9, reaches G in full.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"

static float f16(uint16_t h) { return hpsgd_f16_decode(h); }

static uint16_t enc(float x, float *dropped)
{
    float d;
    uint16_t h = hpsgd_f16_encode(x, &d);
    if (dropped) *dropped = d;
    return h;
}

/* Every binary16 value decodes to the value IEEE 754 gives it and encodes
 * back to itself with nothing dropped. */
static void test_every_value_round_trips(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 0x10000; ++h) {
        uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
        double want = e == 0 ? ldexp((double)m, -24) : e < 31 ? ldexp(1024.0 + m, (int)e - 25) : m ? NAN : INFINITY;
        if (h & 0x8000) want = -want;
        float v = f16((uint16_t)h);
        if (e == 31 && m) {
            assert_true(isnan(v));
            float d = 1;
            uint16_t back = enc(v, &d);
            assert_true((back & 0x7c00) == 0x7c00 && (back & 0x3ff) != 0); /* still NaN */
            assert_true(d == 0.0f);
            continue;
        }
        assert_true((double)v == want);
        float d = 1;
        assert_int_equal(enc(v, &d), h);
        assert_true(d == 0.0f);
    }
}

/* Between every two neighbours: the midpoint goes to the even one, a float
 * ulp either side goes to the nearer, and `dropped` is exactly what is left. */
static void test_round_to_nearest_even(void **state)
{
    (void)state;
    for (uint32_t s = 0; s <= 0x8000; s += 0x8000)
        for (uint32_t h = 0; h < 0x7bff; ++h) {
            uint16_t lo = (uint16_t)(s | h), hi = (uint16_t)(s | (h + 1));
            float a = f16(lo), b = f16(hi);
            float mid = (a + b) / 2; /* exact: binary16 has 13 bits fewer */
            float d;
            uint16_t even = (h & 1) ? hi : lo;
            assert_int_equal(enc(mid, &d), even);
            assert_true(d == mid - f16(even));
            assert_int_equal(enc(nextafterf(mid, a), &d), lo);
            assert_true(d == nextafterf(mid, a) - a);
            assert_int_equal(enc(nextafterf(mid, b), &d), hi);
            assert_true(d == nextafterf(mid, b) - b);
        }
}

static void test_subnormals(void **state)
{
    (void)state;
    float d;
    assert_int_equal(enc(0x1p-24f, &d), 0x0001); /* the smallest subnormal */
    assert_int_equal(enc(0x1p-25f, &d), 0x0000); /* half of it: a tie, to even 0 */
    assert_true(d == 0x1p-25f);
    assert_int_equal(enc(0x1.8p-25f, &d), 0x0001);
    assert_int_equal(enc(0x1p-14f, &d), 0x0400); /* the smallest normal */
    assert_int_equal(enc(0x1.ffcp-15f, &d), 0x0400); /* rounds up into the normals */
    assert_int_equal(enc(-0x1p-24f, &d), 0x8001);
    assert_int_equal(enc(1e-9f, &d), 0x0000); /* below the range: all of it stays behind */
    assert_true(d == 1e-9f);
    assert_int_equal(enc(1e-40f, &d), 0x0000); /* a float32 subnormal */
    assert_true(d == 1e-40f);
    assert_int_equal(enc(-0.0f, &d), 0x8000);
    assert_true(d == 0.0f);
}

/* Finite values beyond +-65504 saturate there, the rest in `dropped`. */
static void test_overflow_saturates(void **state)
{
    (void)state;
    float d;
    assert_int_equal(enc(65504.0f, &d), 0x7bff);
    assert_true(d == 0.0f);
    assert_int_equal(enc(65519.0f, &d), 0x7bff);
    assert_true(d == 15.0f);
    assert_int_equal(enc(65520.0f, &d), 0x7bff); /* IEEE would round this to inf */
    assert_true(d == 16.0f);
    assert_int_equal(enc(1e6f, &d), 0x7bff);
    assert_true(d == 1e6f - 65504.0f);
    assert_int_equal(enc(-1e6f, &d), 0xfbff);
    assert_true(d == -1e6f + 65504.0f);
    assert_int_equal(enc(FLT_MAX, &d), 0x7bff);
    assert_true(d == FLT_MAX - 65504.0f);
}

/* inf and NaN travel as they are (a diverged run; `none` sends them too). */
static void test_inf_nan(void **state)
{
    (void)state;
    float d = 1;
    assert_int_equal(enc(INFINITY, &d), 0x7c00);
    assert_true(d == 0.0f);
    assert_int_equal(enc(-INFINITY, &d), 0xfc00);
    uint16_t n = enc(NAN, &d);
    assert_true((n & 0x7c00) == 0x7c00 && (n & 0x3ff));
    assert_true(d == 0.0f);
    assert_true(isinf(f16(0x7c00)) && f16(0x7c00) > 0);
    assert_true(isinf(f16(0xfc00)) && f16(0xfc00) < 0);
    assert_true(isnan(f16(0x7e00)) && isnan(f16(0xfe01)));
    /* The ring's sum of two large values saturates and feeds the excess back. */
    uint16_t acc = 0x7bff, in = 0x7bff;
    float lost = 0;
    hpsgd_wire_f16.reduce(&acc, &in, 1, &lost);
    assert_int_equal(acc, 0x7bff);
    assert_true(lost == 65504.0f);
    acc = 0x7c00; in = 0xfc00; lost = 0; /* inf + -inf */
    hpsgd_wire_f16.reduce(&acc, &in, 1, &lost);
    assert_true(isnan(f16(acc)) && lost == 0.0f);
}

/* Against the compiler's own _Float16 conversion, where there is one. */
static void test_against_float16(void **state)
{
    (void)state;
#ifdef __FLT16_MAX__
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 2000000; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        /* sign, a random mantissa, exponents 2^-30 .. 2^16 (below and through binary16's range) */
        uint32_t u = ((uint32_t)(x >> 32) & 0x807fffffu) | (uint32_t)(97 + (x >> 8) % 48) << 23;
        float f;
        memcpy(&f, &u, sizeof f);
        if (!(fabsf(f) < 65520.0f)) continue;
        _Float16 h = (_Float16)f;
        uint16_t hb;
        memcpy(&hb, &h, sizeof hb);
        assert_int_equal(enc(f, NULL), hb);
    }
#else
    skip();
#endif
}

/* N simulated ranks, the ring's order over one segment: rank `owner`
 * starts, the next ranks add in turn, each feeding its rounding back. */
static void ring_sum(hpsgd_codec *k, int n, int owner, uint16_t *out)
{
    const uint16_t *partial = k[owner].wire;
    for (int s = 1; s < n; ++s) {
        hpsgd_codec *me = &k[(owner + s) % n];
        hpsgd_wire_f16.reduce(me->wire, partial, me->n, me->residual);
        partial = me->wire;
    }
    memcpy(out, partial, k[0].n * sizeof *out);
}

#define NE 8
/* Error feedback: over many rounds, 1e6 and 1e-9 alike, and after the full
 * flush G holds every change of every rank, to float32 rounding. */
static void test_error_feedback_and_flush(void **state)
{
    (void)state;
    const float per_step[NE] = {1e6f, 1e-9f, -3e5f, 1e-6f, 3e-5f, 0.1f, -7e-4f, 12345.678f};
    for (int n = 1; n <= 4; n *= 2) {
        hpsgd_codec k[4];
        float change[4][NE], G[NE] = {0};
        double want[NE] = {0}, before_flush[NE] = {0};
        uint16_t sum[NE];
        for (int r = 0; r < n; ++r) assert_int_equal(hpsgd_codec_init(&k[r], HPSGD_CODEC_FP16, change[r], NE), 0);
        const int rounds = 50;
        const float inv = 1.0f / (float)n;
        for (int t = 0; t <= rounds; ++t) {
            int full = t == rounds;
            for (int r = 0; r < n; ++r) {
                for (int i = 0; i < NE; ++i) {
                    change[r][i] = per_step[i] * (float)(r + 1) * (i == 6 && t % 3 ? -1.0f : 1.0f);
                    want[i] += (double)change[r][i];
                }
                void *w = hpsgd_codec_encode(&k[r], full);
                assert_ptr_equal(w, full ? (void *)change[r] : (void *)k[r].wire);
                assert_ptr_equal(k[r].type, full ? &hpsgd_wire_f32 : &hpsgd_wire_f16);
                assert_true(hpsgd_codec_lost(&k[r]) == (full ? NULL : k[r].residual));
            }
            if (full) { /* float32 sums in the ring's order, no decode */
                for (int i = 0; i < NE; ++i) {
                    float a = change[0][i];
                    for (int r = 1; r < n; ++r) a = change[r][i] + a;
                    for (int r = 0; r < n; ++r) change[r][i] = a;
                }
            } else {
                ring_sum(k, n, t % n, sum);
                for (int r = 0; r < n; ++r) memcpy(k[r].wire, sum, sizeof sum);
            }
            for (int r = 0; r < n; ++r) {
                hpsgd_codec_decode(&k[r]);
                assert_memory_equal(change[r], change[0], sizeof change[0]); /* the same A on every rank */
            }
            for (int i = 0; i < NE; ++i) {
                G[i] += change[0][i] * inv;
                if (!full) before_flush[i] += (double)change[0][i];
            }
        }
        for (int i = 0; i < NE; ++i) {
            for (int r = 0; r < n; ++r) assert_true(k[r].residual[i] == 0.0f); /* the flush sent it all */
            double expect = want[i] / n;
            /* float32 rounding only: G is accumulated in float32, as the plugin does */
            double tol = 1e-6 * fabs(expect) * rounds;
            if (fabs((double)G[i] - expect) > tol)
                fail_msg("n=%d element %d: G=%.9g, every step gives %.9g", n, i, (double)G[i], expect);
        }
        /* The 16-bit rounds alone carried at most 65504 a round of the 1e6
         * element: the rest arrived with the flush. */
        assert_true(before_flush[0] <= 65504.0 * rounds);
        for (int r = 0; r < n; ++r) hpsgd_codec_free(&k[r]);
    }
}

/* The training thread's cost per merge: encode + decode of a model of
 * yolov3-tiny's size (8.7 M floats). Printed, not asserted: CI machines vary. */
static void test_speed(void **state)
{
    (void)state;
    size_t n = 8700000;
    float *change = malloc(n * sizeof *change);
    assert_non_null(change);
    for (size_t i = 0; i < n; ++i) change[i] = (float)((double)(i % 1000) - 500.0) * 1e-7f;
    hpsgd_codec k;
    assert_int_equal(hpsgd_codec_init(&k, HPSGD_CODEC_FP16, change, n), 0);
    uint16_t *in = calloc(n, sizeof *in);
    assert_non_null(in);
    struct timespec t[4];
    hpsgd_codec_encode(&k, 0); /* first touch of the buffers, not counted */
    hpsgd_wire_f16.reduce(k.wire, in, n, k.residual);
    clock_gettime(CLOCK_MONOTONIC, &t[0]);
    hpsgd_codec_encode(&k, 0);
    clock_gettime(CLOCK_MONOTONIC, &t[1]);
    hpsgd_codec_decode(&k);
    clock_gettime(CLOCK_MONOTONIC, &t[2]);
    hpsgd_wire_f16.reduce(k.wire, in, n, k.residual);
    clock_gettime(CLOCK_MONOTONIC, &t[3]);
    double ms[3];
    for (int i = 0; i < 3; ++i)
        ms[i] = 1e3 * (double)(t[i + 1].tv_sec - t[i].tv_sec) + 1e-6 * (double)(t[i + 1].tv_nsec - t[i].tv_nsec);
    printf("codec fp16: encode %.1f ms, decode %.1f ms, ring reduction %.1f ms for %zu floats\n", ms[0], ms[1], ms[2],
           n);
    free(in);
    hpsgd_codec_free(&k);
    free(change);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_value_round_trips),
        cmocka_unit_test(test_round_to_nearest_even),
        cmocka_unit_test(test_subnormals),
        cmocka_unit_test(test_overflow_saturates),
        cmocka_unit_test(test_inf_nan),
        cmocka_unit_test(test_against_float16),
        cmocka_unit_test(test_error_feedback_and_flush),
        cmocka_unit_test(test_speed),
    };
    return cmocka_run_group_tests_name("codec", tests, NULL, NULL);
}
