/*
 * test_ring.c - the MPI thread's all-reduce across real ranks (run by
 * tests/mpi/run.sh at 2 and 4 ranks).
 *
 * Every rank can compute every other rank's input (a function of rank and
 * index), so each rank computes the exact bits the ring must produce: each
 * segment summed once, starting at its owner and adding the next ranks in
 * ring order. The test checks those bits on every rank, for buffer sizes from
 * 1 float to several chunks, and that broadcast and gather move the right
 * bytes. The same for 16-bit elements (compress=fp16, codec.c): the sum is
 * decoded, added in float32 and re-encoded in that order, and each rank's
 * `lost` holds exactly what its own additions rounded away. All of it with
 * 1, 3 and 16 chunks in flight (up to 7 chunks per buffer): the bits must
 * not depend on it. The ring is the flat one (hpsgd_comm_start:
 * hierarchical=0); hier.c's two-level all-reduce is test_hier.c's. Prints TAP-like lines; exits
 * non-zero on any failure.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "comm.h"
#include "mpi_check.h"

/* What the ring computes for element i of a buffer of n floats. */
static float expected(int nranks, size_t n, size_t chunk, size_t i)
{
    size_t start = i / chunk * chunk;
    size_t len = n - start < chunk ? n - start : chunk;
    size_t off = i - start;
    int seg = 0;
    while (seg + 1 < nranks && (size_t)((unsigned long long)len * (unsigned)(seg + 1) / (unsigned)nranks) <= off)
        ++seg;
    float acc = input(seg, i);
    for (int k = 1; k < nranks; ++k) acc = input((seg + k) % nranks, i) + acc;
    return acc;
}

/* The segment (its owning rank) that element i of a chunked buffer is in. */
static int segment_of(int nranks, size_t n, size_t chunk, size_t i)
{
    size_t start = i / chunk * chunk;
    size_t len = n - start < chunk ? n - start : chunk;
    size_t off = i - start;
    int seg = 0;
    while (seg + 1 < nranks && (size_t)((unsigned long long)len * (unsigned)(seg + 1) / (unsigned)nranks) <= off)
        ++seg;
    return seg;
}

/* 16-bit elements: what the ring computes for element i, and what rank
 * `me`'s own reduction of it dropped (0 if another rank reduced it). */
static uint16_t expected16(int nranks, size_t n, size_t chunk, size_t i, int me, float *lost)
{
    int seg = segment_of(nranks, n, chunk, i);
    float d;
    uint16_t acc = hpsgd_f16_encode(input(seg, i) * 1e-3f, &d);
    *lost = 0;
    for (int k = 1; k < nranks; ++k) {
        int r = (seg + k) % nranks;
        uint16_t mine = hpsgd_f16_encode(input(r, i) * 1e-3f, &d);
        acc = hpsgd_f16_encode(hpsgd_f16_decode(acc) + hpsgd_f16_decode(mine), &d);
        if (r == me) *lost = d;
    }
    return acc;
}

static void check_f16(hpsgd_comm *cp, size_t chunk_floats)
{
    hpsgd_comm c = *cp; /* for CHECK's rank */
    const size_t sizes[] = {1, 5, 1001, 99999, 100001, 250007};
    const size_t chunk = chunk_floats * sizeof(float) / sizeof(uint16_t);
    char err[512];
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; ++s) {
        size_t n = sizes[s];
        uint16_t *buf = malloc(n * sizeof *buf);
        float *lost = calloc(n, sizeof *lost), d;
        for (size_t i = 0; i < n; ++i) buf[i] = hpsgd_f16_encode(input(c.rank, i) * 1e-3f, &d);
        hpsgd_job job = {.kind = HPSGD_JOB_ALLREDUCE, .buf = buf, .count = n, .type = &hpsgd_wire_f16, .lost = lost};
        snprintf(job.what, sizeof job.what, "16-bit round %zu", s + 1);
        CHECK(hpsgd_comm_run(cp, &job, err, sizeof err) == 0, "16-bit all-reduce failed: %s", err);
        size_t bad = 0, badlost = 0, first = 0;
        for (size_t i = 0; i < n; ++i) {
            float want_lost;
            uint16_t want = expected16(c.size, n, chunk, i, c.rank, &want_lost);
            if (want != buf[i] && !bad++) first = i;
            if (memcmp(&want_lost, &lost[i], sizeof want_lost)) ++badlost;
        }
        CHECK(bad == 0, "16-bit n=%zu: %zu elements differ from the fixed-order sum, first at %zu", n, bad, first);
        CHECK(badlost == 0, "16-bit n=%zu: %zu elements' fed-back rounding differs", n, badlost);
        uint64_t sent = cp->job_bytes_sent;
        size_t want = 2 * (size_t)(c.size - 1) * (n / c.size) * sizeof(uint16_t);
        CHECK(sent + 2 * (size_t)c.size * sizeof(uint16_t) * 2 >= want && sent <= want + 4 * (size_t)c.size * 2,
              "16-bit n=%zu: sent %llu bytes, expected about %zu", n, (unsigned long long)sent, want);
        if (c.rank == 0 && bad == 0 && badlost == 0)
            printf("ok - 16-bit all-reduce of %zu elements on %d ranks, %d chunks in flight: fixed-order bits, "
                   "rounding fed back\n", n, c.size, cp->chunks_in_flight);
        free(buf);
        free(lost);
    }
}

static void check_f32(hpsgd_comm *cp, size_t chunk)
{
    hpsgd_comm c = *cp; /* for CHECK's rank */
    const size_t sizes[] = {1, 3, 7, 1000, 1023, 1025, 49999, 50000, 50001, 123457, 300007};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; ++s) {
        size_t n = sizes[s];
        float *buf = allreduce_round(cp, n, s + 1);
        size_t bad = 0, first = 0;
        for (size_t i = 0; i < n; ++i) {
            float e = expected(c.size, n, chunk, i);
            if (memcmp(&e, &buf[i], sizeof e)) {
                if (!bad) first = i;
                ++bad;
            }
        }
        CHECK(bad == 0, "n=%zu: %zu elements differ from the fixed-order sum, first at %zu (%.9g vs %.9g)", n, bad,
              first, bad ? buf[first] : 0.0f, bad ? expected(c.size, n, chunk, first) : 0.0f);
        uint64_t sent = cp->job_bytes_sent;
        size_t want = 2 * (size_t)(c.size - 1) * (n / c.size) * sizeof(float);
        CHECK(sent + 2 * (size_t)c.size * sizeof(float) * 2 >= want, "n=%zu: sent %llu bytes, expected about %zu", n,
              (unsigned long long)sent, want);
        if (c.rank == 0 && bad == 0)
            printf("ok - all-reduce of %zu floats on %d ranks, %d chunks in flight: fixed-order bits\n", n, c.size,
                   c.chunks_in_flight);
        free(buf);
    }
}

int main(void)
{
    hpsgd_comm c;
    char err[512];
    const size_t chunk = 50000;
    if (hpsgd_comm_start(&c, 60, chunk, err, sizeof err)) {
        fprintf(stderr, "cannot start: %s\n", err);
        return 1;
    }
    if (c.size < 2) {
        fprintf(stderr, "run with at least 2 ranks\n");
        return 1;
    }
    CHECK(c.hierarchical == 0, "not the flat ring: hierarchical=%d", c.hierarchical);

    /* The setting is read by the MPI thread at each job; set between jobs
     * (the hand-off's lock orders it), as a new job would start with it. */
    const int in_flight[] = {1, 3, HPSGD_RING_MAX_IN_FLIGHT};
    for (size_t f = 0; f < sizeof in_flight / sizeof in_flight[0]; ++f) {
        c.chunks_in_flight = in_flight[f];
        check_f32(&c, chunk);
        check_f16(&c, chunk);
    }

    /* Broadcast from rank 0 and gather from everyone. */
    uint64_t word = c.rank == 0 ? 0xC0FFEEULL : 0;
    hpsgd_job job = {.kind = HPSGD_JOB_BCAST, .data = &word, .bytes = sizeof word};
    snprintf(job.what, sizeof job.what, "broadcast");
    CHECK(hpsgd_comm_run(&c, &job, err, sizeof err) == 0, "broadcast failed: %s", err);
    CHECK(word == 0xC0FFEEULL, "broadcast gave %llx", (unsigned long long)word);
    uint64_t mine = 1000 + (uint64_t)c.rank, *all = calloc((size_t)c.size, sizeof *all);
    job = (hpsgd_job){.kind = HPSGD_JOB_ALLGATHER, .data = &mine, .out = all, .bytes = sizeof mine};
    snprintf(job.what, sizeof job.what, "gather");
    CHECK(hpsgd_comm_run(&c, &job, err, sizeof err) == 0, "gather failed: %s", err);
    for (int r = 0; r < c.size; ++r) CHECK(all[r] == 1000 + (uint64_t)r, "gather slot %d holds %llu", r, (unsigned long long)all[r]);
    free(all);
    if (c.rank == 0 && failures == 0) printf("ok - broadcast and gather on %d ranks\n", c.size);

    hpsgd_comm_stop(&c);
    return failures ? 1 : 0;
}
