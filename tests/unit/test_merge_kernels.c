/*
 * test_merge_kernels.c - the device merge's per-thread bodies
 * (merge_kernels.h: what each thread of merge_gpu.cu's kernels runs, with its
 * index i) run here on the host, one call per element in reverse order, as
 * independent threads may; their bits must equal merge_cpu.c's loops on
 * random slices of awkward lengths, with zeros, subnormals, inf and NaN
 * (any NaN matches any NaN: see same_stream).
 * tests/gpu/test_merge_device.cu checks the kernels themselves on a GPU.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "merge_kernels.h"

static const size_t sizes[] = {0, 1, 2, 3, 31, 32, 33, 255, 256, 257, 1000, 1023, 1025, 4099, 65537};
static const float invs[] = {1.0f, 0.5f, 0.25f, 1.0f / 3.0f, 1.0f / 6.0f, 0.125f};
#define NSIZES (sizeof sizes / sizeof *sizes)
#define NINVS (sizeof invs / sizeof *invs)

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint32_t next(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* Mostly weights and changes of every scale, some special values. */
static float value(void)
{
    uint32_t k = next() % 64;
    if (k == 0) return 0.0f;
    if (k == 1) return -0.0f;
    if (k == 2) return INFINITY;
    if (k == 3) return NAN;
    if (k == 4) return 1e-40f * (float)(next() % 1000); /* subnormal */
    float m = (float)(int32_t)next() / 2147483648.0f;
    return ldexpf(m, (int)(next() % 40) - 30);
}

/* Two identical sets of the four streams: one for each side. */
typedef struct {
    float *r, *g, *c, *b;
} streams;

static void make(streams *x, streams *y, size_t n)
{
    size_t m = n ? n : 1;
    float **px[] = {&x->r, &x->g, &x->c, &x->b}, **py[] = {&y->r, &y->g, &y->c, &y->b};
    for (int s = 0; s < 4; ++s) {
        *px[s] = malloc(m * sizeof(float));
        *py[s] = malloc(m * sizeof(float));
        assert_non_null(*px[s]);
        assert_non_null(*py[s]);
        for (size_t i = 0; i < n; ++i) (*px[s])[i] = value();
        memcpy(*py[s], *px[s], n * sizeof(float));
    }
}

/* Bit for bit, except that two NaNs are equal whatever their sign and
 * payload: x86 makes inf - inf a negative NaN and may take either operand's
 * NaN from a vectorized add, NVIDIA devices return one canonical NaN. A NaN
 * in the model means the run has diverged anyway. */
static void same_stream(const float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        if (isnan(x[i]) && isnan(y[i])) continue;
        uint32_t a, b;
        memcpy(&a, &x[i], sizeof a);
        memcpy(&b, &y[i], sizeof b);
        if (a != b) fail_msg("element %zu of %zu: %08x (host loop) vs %08x (kernel body)", i, n, a, b);
    }
}

static void same_and_free(streams *x, streams *y, size_t n)
{
    same_stream(x->r, y->r, n);
    same_stream(x->g, y->g, n);
    same_stream(x->c, y->c, n);
    same_stream(x->b, y->b, n);
    float *all[] = {x->r, x->g, x->c, x->b, y->r, y->g, y->c, y->b};
    for (int s = 0; s < 8; ++s) free(all[s]);
}

/* Every op, every size, every 1/N: the per-thread body (reverse order) against merge_cpu.c. */
static void test_bodies_equal_cpu(void **state)
{
    (void)state;
    long compared = 0;
    for (size_t si = 0; si < NSIZES; ++si)
        for (size_t vi = 0; vi < NINVS; ++vi)
            for (int op = 0; op < 8; ++op) {
                size_t n = sizes[si];
                float inv = invs[vi];
                streams h, k; /* host loop, kernel body */
                make(&h, &k, n);
                switch (op) {
                case 0: case 1: /* launch, merge=reset, with and without a finished round */
                    hpsgd_merge_launch_cpu(h.r, h.g, h.c, NULL, n, op, inv, 1.0f);
                    for (size_t i = n; i-- > 0;) hpsgd_thread_launch(k.r, k.g, k.c, NULL, i, op, inv, 1.0f);
                    break;
                case 2: case 3: { /* launch, merge=eager; lookahead 0, 0.5 or 1 */
                    float look = 0.5f * (float)(vi % 3);
                    hpsgd_merge_launch_cpu(h.r, h.g, h.c, h.b, n, op - 2, inv, look);
                    for (size_t i = n; i-- > 0;) hpsgd_thread_launch(k.r, k.g, k.c, k.b, i, op - 2, inv, look);
                    break;
                }
                case 4: /* merge_last without B */
                    hpsgd_merge_last_cpu(h.r, h.g, h.c, NULL, n, inv);
                    for (size_t i = n; i-- > 0;) hpsgd_thread_merge_last(k.r, k.g, k.c, NULL, i, inv);
                    break;
                case 5: /* merge_last with B */
                    hpsgd_merge_last_cpu(h.r, h.g, h.c, h.b, n, inv);
                    for (size_t i = n; i-- > 0;) hpsgd_thread_merge_last(k.r, k.g, k.c, k.b, i, inv);
                    break;
                case 6:
                    hpsgd_merge_diff_cpu(h.r, h.g, h.c, n);
                    for (size_t i = n; i-- > 0;) hpsgd_thread_diff(k.r, k.g, k.c, i);
                    break;
                default:
                    hpsgd_merge_cpu(h.r, h.g, h.c, n, inv);
                    for (size_t i = n; i-- > 0;) hpsgd_thread_merge(k.r, k.g, k.c, i, inv);
                    break;
                }
                same_and_free(&h, &k, n);
                compared += (long)n;
            }
    assert_true(compared > 1000000);
}

/* The bodies compute what merge.h says, on values whose result is exact. */
static void test_bodies_arithmetic(void **state)
{
    (void)state;
    float r[1] = {5}, g[1] = {2}, c[1] = {4}, b[1] = {3};
    hpsgd_thread_launch(r, g, c, b, 0, 1, 0.5f, 0.0f); /* D = R - B = 2; G = 2 + 4/2 = 4; B = R = G + D = 6 */
    assert_true(g[0] == 4 && c[0] == 2 && b[0] == 6 && r[0] == 6);
    r[0] = 5, g[0] = 2, c[0] = 4, b[0] = 3;
    hpsgd_thread_launch(r, g, c, b, 0, 1, 0.5f, 1.5f); /* the same, B = R = G + 1.5 * A/N + D = 4 + 3 + 2 = 9 */
    assert_true(g[0] == 4 && c[0] == 2 && b[0] == 9 && r[0] == 9);
    r[0] = 5, g[0] = 2, c[0] = 4, b[0] = 3;
    hpsgd_thread_launch(r, g, c, b, 0, 0, 0.5f, 1.0f); /* no round: nothing to look ahead by; B = R = 2 + 2 */
    assert_true(g[0] == 2 && c[0] == 2 && b[0] == 4 && r[0] == 4);
    r[0] = 5, g[0] = 2, c[0] = 4;
    hpsgd_thread_launch(r, g, c, NULL, 0, 0, 0.5f, 1.0f); /* no round: G stays 2; D = 3; R = G */
    assert_true(g[0] == 2 && c[0] == 3 && r[0] == 2);
}

/* The kernels' file runs the bodies and adds no arithmetic of its own: one
 * body call per kernel, and no operator on a stream's element. */
static void test_kernel_source_uses_bodies(void **state)
{
    (void)state;
    FILE *f = fopen("plugin/merge_gpu.cu", "r");
    if (!f) skip(); /* run from the repository root (tests/run-tests does) */
    static char src[1 << 16];
    size_t len = fread(src, 1, sizeof src - 1, f);
    fclose(f);
    src[len] = '\0';
    assert_non_null(strstr(src, "#include \"merge_kernels.h\""));
    int kernels = 0, bodies = 0;
    for (const char *p = src; (p = strstr(p, "__global__ void")); ++p) ++kernels;
    for (const char *p = src; (p = strstr(p, "FOR_THREAD(n) hpsgd_thread_")); ++p) ++bodies;
    assert_int_equal(kernels, 4);
    assert_int_equal(bodies, 4);
    const char *forbidden[] = {"* inv", "*inv", "inv *", "hpsgd_elem_", "[i]", " - *", " + *"};
    for (size_t i = 0; i < sizeof forbidden / sizeof *forbidden; ++i)
        if (strstr(src, forbidden[i]))
            fail_msg("plugin/merge_gpu.cu has its own arithmetic (\"%s\"): kernels must call merge_kernels.h",
                     forbidden[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bodies_equal_cpu),
        cmocka_unit_test(test_bodies_arithmetic),
        cmocka_unit_test(test_kernel_source_uses_bodies),
    };
    return cmocka_run_group_tests_name("merge_kernels", tests, NULL, NULL);
}
