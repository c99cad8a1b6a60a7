/*
 * test_replica_device.c - on a GPU: the replica's device twin (replica_gpu.c:
 * G and B on the device, the pinned round's buffer, the copies around the
 * kernels, the slices' offsets) against the host replica, bit for bit, over
 * rounds of every mode: hpsgd launches (reset and eager, with and without a
 * finished round), the last merge, and blocking rounds (diff, merge). Two
 * copies of the same tensors, one merged on the host and one on the device,
 * take the same "training" changes and the same sums A. Prints TAP-like
 * lines; exit 0 when all pass, 77 with no GPU. Built by make GPU=1
 * build/tests/gpu/test_replica_device (tests/tests.mk); run by
 * tests/gpu/device-check.sh.
 */
#include <cuda_runtime_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replica.h"

#define NT 6
static const size_t lens[NT] = {1000, 0, 257, 65537, 3, 4099}; /* one empty, none a block multiple */

static int failures;
static uint64_t rng = 0x853C49E6748FEA9BULL;
static float draw(float scale)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return scale * ((float)(int32_t)(rng >> 32) / 2147483648.0f);
}

static void cuda(cudaError_t e, const char *what)
{
    if (e == cudaSuccess) return;
    printf("not ok - CUDA: %s: %s\n", what, cudaGetErrorString(e));
    exit(1);
}

/* One side: its tensors (host copies; the device side also has device
 * copies, which its replica merges), registry and replica. */
typedef struct {
    float *host[NT], *slot[NT], *gpu[NT];
    hpsgd_tensor tensors[NT];
    hpsgd_registry reg;
    hpsgd_replica rep;
} side;

static void make_side(side *s, const float *const start[NT], int device, int eager)
{
    memset(s, 0, sizeof *s);
    size_t off = 0;
    for (int k = 0; k < NT; ++k) {
        s->host[k] = malloc((lens[k] ? lens[k] : 1) * sizeof(float));
        memcpy(s->host[k], start[k], lens[k] * sizeof(float));
        s->slot[k] = s->host[k];
        if (device) {
            cuda(cudaMalloc((void **)&s->gpu[k], (lens[k] ? lens[k] : 1) * sizeof(float)), "cudaMalloc");
            cuda(cudaMemcpy(s->gpu[k], start[k], lens[k] * sizeof(float), cudaMemcpyHostToDevice), "R to the device");
        }
        s->tensors[k] = (hpsgd_tensor){.slot = &s->slot[k], .gpu = s->gpu[k], .n = lens[k], .offset = off, .travels = 1,
                                       .saved = 1};
        off += lens[k];
    }
    s->reg = (hpsgd_registry){.tensors = s->tensors, .count = NT, .cap = NT, .fused_floats = off, .saved_floats = off,
                              .use_gpu = device};
    if (hpsgd_replica_init(&s->rep, &s->reg, eager, 1.0f, device)) {
        printf("not ok - replica init (device %d)\n", device);
        exit(1);
    }
    if (hpsgd_replica_on_device(&s->rep) != device) {
        printf("not ok - the replica is %son the device\n", device ? "not " : "");
        exit(1);
    }
}

static void free_side(side *s)
{
    hpsgd_replica_free(&s->rep);
    for (int k = 0; k < NT; ++k) {
        free(s->host[k]);
        if (s->gpu[k]) cuda(cudaFree(s->gpu[k]), "cudaFree");
    }
}

/* A local step: the same change to R on both sides (the device's R is its device copy). */
static void train(side *h, side *d)
{
    for (int k = 0; k < NT; ++k) {
        for (size_t i = 0; i < lens[k]; ++i) h->host[k][i] += draw(0.01f);
        cuda(cudaMemcpy(d->gpu[k], h->host[k], lens[k] * sizeof(float), cudaMemcpyHostToDevice), "R to the device");
    }
}

/* The all-reduce's result: the same sum A in both round buffers. */
static void sum_arrives(side *h, side *d)
{
    for (size_t i = 0; i < h->rep.n; ++i) h->rep.comm[i] = d->rep.comm[i] = draw(0.05f);
}

static int same(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

/* G, the round's buffer and R, device side against host side. */
static void compare(side *h, side *d, const char *what)
{
    const char *bad = NULL;
    hpsgd_replica_fetch_global(&d->rep);
    if (!same(h->rep.global, d->rep.global, h->rep.n)) bad = "G";
    else if (!same(h->rep.comm, d->rep.comm, h->rep.n)) bad = "the round's buffer";
    for (int k = 0; k < NT && !bad; ++k) {
        float *r = malloc((lens[k] ? lens[k] : 1) * sizeof(float));
        cuda(cudaMemcpy(r, d->gpu[k], lens[k] * sizeof(float), cudaMemcpyDeviceToHost), "R from the device");
        if (!same(h->host[k], r, lens[k])) bad = "R";
        free(r);
    }
    if (bad) {
        ++failures;
        printf("not ok - %s: %s differs between the host and the device merge\n", what, bad);
    }
}

static void run(int eager, float nranks)
{
    float *start[NT];
    for (int k = 0; k < NT; ++k) {
        start[k] = malloc((lens[k] ? lens[k] : 1) * sizeof(float));
        for (size_t i = 0; i < lens[k]; ++i) start[k][i] = draw(1.0f);
    }
    side h, d;
    make_side(&h, (const float *const *)start, 0, eager);
    make_side(&d, (const float *const *)start, 1, eager);
    int before = failures;
    char what[96];
    for (int step = 0; step < 5; ++step) { /* hpsgd rounds */
        train(&h, &d);
        if (step) sum_arrives(&h, &d);
        hpsgd_replica_merge_launch(&h.rep, step > 0, nranks);
        hpsgd_replica_merge_launch(&d.rep, step > 0, nranks);
        snprintf(what, sizeof what, "launch %d (merge=%s, N=%g)", step, eager ? "eager" : "reset", nranks);
        compare(&h, &d, what);
    }
    train(&h, &d);
    sum_arrives(&h, &d);
    hpsgd_replica_merge_last(&h.rep, nranks);
    hpsgd_replica_merge_last(&d.rep, nranks);
    compare(&h, &d, "last merge");
    for (int step = 0; step < 3; ++step) { /* blocking rounds */
        train(&h, &d);
        hpsgd_replica_diff(&h.rep);
        hpsgd_replica_diff(&d.rep);
        compare(&h, &d, "diff");
        sum_arrives(&h, &d);
        hpsgd_replica_merge(&h.rep, nranks);
        hpsgd_replica_merge(&d.rep, nranks);
        compare(&h, &d, "merge");
    }
    /* After a broadcast lands in the live tensors (host and device alike). */
    train(&h, &d);
    for (int k = 0; k < NT; ++k) memcpy(d.host[k], h.host[k], lens[k] * sizeof(float));
    hpsgd_replica_reset_global(&h.rep);
    hpsgd_replica_reset_global(&d.rep);
    compare(&h, &d, "reset_global");
    printf("%s - device replica == host replica, merge=%s, N=%g: 5 launches, last merge, 3 blocking rounds, reset\n",
           failures > before ? "not ok" : "ok", eager ? "eager" : "reset", nranks);
    free_side(&h);
    free_side(&d);
    for (int k = 0; k < NT; ++k) free(start[k]);
}

int main(void)
{
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
        printf("skipped: no CUDA device\n");
        return 77;
    }
    const float ns[] = {1, 2, 3, 8};
    for (int eager = 0; eager <= 1; ++eager)
        for (size_t i = 0; i < sizeof ns / sizeof *ns; ++i) run(eager, ns[i]);
    printf("%d failed\n", failures);
    return failures ? 1 : 0;
}
