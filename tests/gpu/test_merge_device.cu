/*
 * test_merge_device.cu - on a GPU: merge_gpu.cu's kernels give merge_cpu.c's
 * bits (any NaN matches any NaN: x86 and NVIDIA NaNs differ; a NaN in the
 * model means the run has diverged) for every merge operation, on random
 * slices whose lengths are multiples of no block size, zero-length slices,
 * slices longer than one grid (the grid-stride loop), and a fused model of
 * several slices laid out as the replica lays them out. Then one timing,
 * for the table of tests/gpu/RESULTS.md: the device work of one hpsgd merge
 * (sum to the device, kernels, change to the host) on a model the size of
 * yolov3-tiny. Prints TAP-like lines; exit 0 when all pass, 77 with no GPU.
 *
 * Built by make GPU=1 build/tests/gpu/test_merge_device (tests/tests.mk),
 * linked with the variant's merge_gpu.o and merge_cpu.o as the plugin is.
 */
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

#include "merge.h"

static int failures = 0, passes = 0;

#define CHECK(x)                                                                                          \
    do {                                                                                                  \
        cudaError_t e_ = (x);                                                                             \
        if (e_ != cudaSuccess) {                                                                          \
            printf("not ok - CUDA error %s at %s:%d: %s\n", cudaGetErrorString(e_), __FILE__, __LINE__, #x); \
            exit(1);                                                                                      \
        }                                                                                                 \
    } while (0)

static uint64_t rng = 0x2545F4914F6CDD1DULL;
static uint32_t next_u32(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* Weights and changes of every scale, and some special values. */
static float value(void)
{
    uint32_t k = next_u32() % 64;
    if (k == 0) return 0.0f;
    if (k == 1) return -0.0f;
    if (k == 2) return INFINITY;
    if (k == 3) return NAN;
    if (k == 4) return 1e-40f * (float)(next_u32() % 1000); /* subnormal */
    float m = (float)(int32_t)next_u32() / 2147483648.0f;
    return ldexpf(m, (int)(next_u32() % 40) - 30);
}

/* First differing element (NaN == NaN), or -1. */
static long differs(const float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        if (isnan(x[i]) && isnan(y[i])) continue;
        if (memcmp(&x[i], &y[i], sizeof(float))) return (long)i;
    }
    return -1;
}

enum { OP_LAUNCH_RESET, OP_LAUNCH_EAGER, OP_LAST, OP_LAST_B, OP_DIFF, OP_MERGE, NOPS };
static const char *op_names[] = {"launch merge=reset", "launch merge=eager", "merge_last without B",
                                 "merge_last with B", "diff", "merge"};

/* A model of slices: R one allocation per slice (Darknet's tensors), G, C
 * and B fused (the replica's), on the host and on the device. */
struct model {
    std::vector<size_t> len, off;
    size_t n = 0;
    std::vector<std::vector<float>> r;
    std::vector<float> g, c, b;
    std::vector<float *> dr;
    float *dg = nullptr, *dc = nullptr, *db = nullptr;
};

static void make_model(model &m, const std::vector<size_t> &lens)
{
    m.len = lens;
    for (size_t l : lens) m.off.push_back(m.n), m.n += l;
    size_t cap = m.n ? m.n : 1;
    m.g.resize(cap), m.c.resize(cap), m.b.resize(cap);
    for (size_t i = 0; i < m.n; ++i) m.g[i] = value(), m.c[i] = value(), m.b[i] = value();
    for (size_t l : lens) {
        std::vector<float> r(l ? l : 1);
        for (size_t i = 0; i < l; ++i) r[i] = value();
        m.r.push_back(r);
        float *d;
        CHECK(cudaMalloc(&d, (l ? l : 1) * sizeof(float)));
        CHECK(cudaMemcpy(d, r.data(), l * sizeof(float), cudaMemcpyHostToDevice));
        m.dr.push_back(d);
    }
    float **dev[] = {&m.dg, &m.dc, &m.db};
    std::vector<float> *host[] = {&m.g, &m.c, &m.b};
    for (int s = 0; s < 3; ++s) {
        CHECK(cudaMalloc(dev[s], cap * sizeof(float)));
        CHECK(cudaMemcpy(*dev[s], host[s]->data(), m.n * sizeof(float), cudaMemcpyHostToDevice));
    }
}

static void free_model(model &m)
{
    for (float *d : m.dr) CHECK(cudaFree(d));
    CHECK(cudaFree(m.dg));
    CHECK(cudaFree(m.dc));
    CHECK(cudaFree(m.db));
}

/* One op over every slice, on the host (merge_cpu.c) and on the device
 * (merge_gpu.cu on a stream of its own, as the plugin does). */
static void run_op(model &m, int op, int have_round, float inv, cudaStream_t s)
{
    for (size_t k = 0; k < m.len.size(); ++k) {
        size_t n = m.len[k], o = m.off[k];
        float *r = m.r[k].data(), *g = m.g.data() + o, *c = m.c.data() + o, *b = m.b.data() + o;
        float *dr = m.dr[k], *dg = m.dg + o, *dc = m.dc + o, *db = m.db + o;
        switch (op) {
        case OP_LAUNCH_RESET:
            hpsgd_merge_launch_cpu(r, g, c, NULL, n, have_round, inv, 1.0f);
            hpsgd_merge_launch_gpu(dr, dg, dc, NULL, n, have_round, inv, 1.0f, s);
            break;
        case OP_LAUNCH_EAGER: {
            /* The default lookahead on 2 ranks, 1 (options.h), and an awkward one. */
            float look = inv == 0.5f ? 1.0f : 0.75f;
            hpsgd_merge_launch_cpu(r, g, c, b, n, have_round, inv, look);
            hpsgd_merge_launch_gpu(dr, dg, dc, db, n, have_round, inv, look, s);
            break;
        }
        case OP_LAST:
            hpsgd_merge_last_cpu(r, g, c, NULL, n, inv);
            hpsgd_merge_last_gpu(dr, dg, dc, NULL, n, inv, s);
            break;
        case OP_LAST_B:
            hpsgd_merge_last_cpu(r, g, c, b, n, inv);
            hpsgd_merge_last_gpu(dr, dg, dc, db, n, inv, s);
            break;
        case OP_DIFF:
            hpsgd_merge_diff_cpu(r, g, c, n);
            hpsgd_merge_diff_gpu(dr, dg, dc, n, s);
            break;
        default:
            hpsgd_merge_cpu(r, g, c, n, inv);
            hpsgd_merge_gpu(dr, dg, dc, n, inv, s);
            break;
        }
    }
    CHECK(cudaGetLastError());
    CHECK(cudaStreamSynchronize(s));
}

/* Every stream of the device model against the host's. */
static int same(model &m, char *why, size_t whylen)
{
    std::vector<float> back(m.n ? m.n : 1);
    const char *names[] = {"G", "C", "B"};
    float *dev[] = {m.dg, m.dc, m.db};
    std::vector<float> *host[] = {&m.g, &m.c, &m.b};
    for (int s = 0; s < 3; ++s) {
        CHECK(cudaMemcpy(back.data(), dev[s], m.n * sizeof(float), cudaMemcpyDeviceToHost));
        long i = differs(host[s]->data(), back.data(), m.n);
        if (i >= 0) {
            snprintf(why, whylen, "%s[%ld]: host %a, device %a", names[s], i, (*host[s])[i], back[i]);
            return 0;
        }
    }
    for (size_t k = 0; k < m.len.size(); ++k) {
        size_t n = m.len[k];
        std::vector<float> rb(n ? n : 1);
        CHECK(cudaMemcpy(rb.data(), m.dr[k], n * sizeof(float), cudaMemcpyDeviceToHost));
        long i = differs(m.r[k].data(), rb.data(), n);
        if (i >= 0) {
            snprintf(why, whylen, "R of slice %zu [%ld]: host %a, device %a", k, i, m.r[k][i], rb[i]);
            return 0;
        }
    }
    return 1;
}

static void check_case(const char *what, const std::vector<size_t> &lens, int op, int have_round, float inv,
                       cudaStream_t s)
{
    model m;
    make_model(m, lens);
    run_op(m, op, have_round, inv, s);
    char why[200] = "";
    if (same(m, why, sizeof why)) ++passes;
    else {
        ++failures;
        printf("not ok - %s, %s%s, 1/N = %g: %s\n", what, op_names[op], have_round ? "" : " (no round)", inv, why);
    }
    free_model(m);
}

/* Device work of one hpsgd merge (merge=eager) over n floats in k slices,
 * as replica_gpu.c does it: A to the device, the kernels, D to the host. */
static double time_merge_ms(size_t n, int k, cudaStream_t s)
{
    std::vector<size_t> lens(k, n / k);
    lens[0] += n % k;
    model m;
    make_model(m, lens);
    float *pinned;
    CHECK(cudaHostAlloc(&pinned, n * sizeof(float), cudaHostAllocDefault));
    memset(pinned, 0, n * sizeof(float));
    cudaEvent_t a, b;
    CHECK(cudaEventCreate(&a));
    CHECK(cudaEventCreate(&b));
    float best = 1e30f;
    for (int rep = 0; rep < 20; ++rep) {
        CHECK(cudaEventRecord(a, s));
        CHECK(cudaMemcpyAsync(m.dc, pinned, n * sizeof(float), cudaMemcpyHostToDevice, s));
        for (int i = 0; i < k; ++i)
            hpsgd_merge_launch_gpu(m.dr[i], m.dg + m.off[i], m.dc + m.off[i], m.db + m.off[i], m.len[i], 1, 0.5f, 1.0f, s);
        CHECK(cudaMemcpyAsync(pinned, m.dc, n * sizeof(float), cudaMemcpyDeviceToHost, s));
        CHECK(cudaEventRecord(b, s));
        CHECK(cudaEventSynchronize(b));
        float ms;
        CHECK(cudaEventElapsedTime(&ms, a, b));
        if (ms < best) best = ms;
    }
    CHECK(cudaEventDestroy(a));
    CHECK(cudaEventDestroy(b));
    CHECK(cudaFreeHost(pinned));
    free_model(m);
    return best;
}

int main(void)
{
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
        printf("skipped: no CUDA device\n");
        return 77;
    }
    cudaStream_t s;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    /* Lengths: none a multiple of any block size, zero, one element, around
     * warp and block sizes, and beyond one grid (4096 x 256 threads). */
    const size_t sizes[] = {0, 1, 2, 3, 31, 33, 255, 257, 1023, 1025, 4099, 65537, (1u << 20) + 3, 3u * (1u << 20) + 17};
    const float invs[] = {1.0f, 0.5f, 0.25f, 1.0f / 3.0f, 0.125f};
    for (size_t n : sizes)
        for (float inv : invs)
            for (int op = 0; op < NOPS; ++op)
                if (n < 100000 || inv == 0.5f) /* the long slices once: their data is slow to draw */
                for (int have_round = 0; have_round <= (op <= OP_LAUNCH_EAGER); ++have_round) {
                    char what[64];
                    snprintf(what, sizeof what, "one slice of %zu", n);
                    check_case(what, {n}, op, have_round, inv, s);
                }
    printf("%s - every op on one slice of %zu lengths (0 to 3M+17), 5 values of 1/N: %d cases\n",
           failures ? "not ok" : "ok", sizeof sizes / sizeof *sizes, passes);
    int before = failures;
    /* A fused model as the replica lays it out, zero-length slices included. */
    const std::vector<size_t> fused = {7, 0, 256, 1000, 0, 3, 65537, 1, 4096 + 5};
    for (int op = 0; op < NOPS; ++op)
        for (int have_round = 0; have_round <= 1; ++have_round) check_case("fused model", fused, op, have_round, 0.5f, s);
    printf("%s - every op on a fused model of 9 slices (two empty)\n", failures > before ? "not ok" : "ok");
    /* An empty model (no travelling tensor) launches nothing. */
    before = failures;
    for (int op = 0; op < NOPS; ++op) check_case("empty model", {}, op, 1, 0.5f, s);
    printf("%s - every op on an empty model\n", failures > before ? "not ok" : "ok");

    const size_t tiny = 8858734; /* floats of yolov3-tiny's (COCO) fused model */
    double ms = time_merge_ms(tiny, 60, s);
    printf("# device work of one hpsgd merge (merge=eager, A in, kernels, D out; %zu floats in 60 slices): %.2f ms "
           "(%.1f GB/s of copies)\n", tiny, ms, 2.0 * tiny * sizeof(float) / (ms * 1e6));
    CHECK(cudaStreamDestroy(s));
    printf("%d cases passed, %d failed\n", passes, failures);
    return failures ? 1 : 0;
}
