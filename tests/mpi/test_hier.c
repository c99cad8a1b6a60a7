/*
 * test_hier.c - the hierarchical all-reduce (hier.c) across real ranks (run
 * by tests/mpi/run.sh at 2 and 4 ranks), with HPSGD_TEST_RANKS_PER_HOST=2:
 * ranks 0,1 form host 1 and ranks 2,3 host 2 (at 2 ranks: one host).
 *
 * Every rank computes the exact bits the algorithm must produce, as
 * test_ring.c does for the flat ring: per chunk, each host's leader adds its
 * host's other ranks in local order, the leaders run the ring over the hosts'
 * sums, and the leader's result reaches every rank of its host. The same for
 * 16-bit elements (compress=fp16): the node reduce decodes, adds and
 * re-encodes like the ring, and what it rounds away is in the leader's
 * `lost`. Also: the extras sum exactly; bytes to other hosts are counted on
 * the leaders only, one buffer per round with 2 hosts (the flat ring's
 * boundary ranks send 2(N-1)/N of it). Prints TAP-like lines; exits non-zero
 * on any failure.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "comm.h"
#include "mpi_check.h"

#define PER_HOST 2

static hpsgd_comm c;

static int hosts(void) { return (c.size + PER_HOST - 1) / PER_HOST; }
static int host_size(int h) { return c.size - h * PER_HOST < PER_HOST ? c.size - h * PER_HOST : PER_HOST; }

/* The ring's segment (owning leader) of element i, in chunks of `chunk`. */
static int segment_of(size_t n, size_t chunk, size_t i)
{
    size_t start = i / chunk * chunk, len = n - start < chunk ? n - start : chunk, off = i - start;
    int seg = 0, H = hosts();
    while (seg + 1 < H && (size_t)((unsigned long long)len * (unsigned)(seg + 1) / (unsigned)H) <= off) ++seg;
    return seg;
}

static float expected(size_t n, size_t chunk, size_t i)
{
    float host_sum[8];
    for (int h = 0; h < hosts(); ++h) {
        host_sum[h] = input(h * PER_HOST, i);
        for (int j = 1; j < host_size(h); ++j) host_sum[h] = input(h * PER_HOST + j, i) + host_sum[h];
    }
    int seg = segment_of(n, chunk, i);
    float acc = host_sum[seg];
    for (int k = 1; k < hosts(); ++k) acc = host_sum[(seg + k) % hosts()] + acc;
    return acc;
}

/* 16 bits: the result, and what rank `me` rounded away (leaders only). */
static uint16_t expected16(size_t n, size_t chunk, size_t i, int me, float *lost)
{
    uint16_t host_sum[8];
    float d;
    *lost = 0;
    for (int h = 0; h < hosts(); ++h) {
        host_sum[h] = hpsgd_f16_encode(input(h * PER_HOST, i) * 1e-3f, &d);
        for (int j = 1; j < host_size(h); ++j) {
            uint16_t in = hpsgd_f16_encode(input(h * PER_HOST + j, i) * 1e-3f, &d);
            host_sum[h] = hpsgd_f16_encode(hpsgd_f16_decode(in) + hpsgd_f16_decode(host_sum[h]), &d);
            if (me == h * PER_HOST) *lost += d;
        }
    }
    int seg = segment_of(n, chunk, i);
    uint16_t acc = host_sum[seg];
    for (int k = 1; k < hosts(); ++k) {
        int h = (seg + k) % hosts();
        acc = hpsgd_f16_encode(hpsgd_f16_decode(acc) + hpsgd_f16_decode(host_sum[h]), &d);
        if (me == h * PER_HOST) *lost += d;
    }
    return acc;
}

int main(void)
{
    char err[512];
    const size_t chunk = 50000;
    setenv("HPSGD_TEST_RANKS_PER_HOST", "2", 1);
    hpsgd_comm_settings set = {60, chunk, 1, 0};
    if (hpsgd_comm_start_with(&c, &set, err, sizeof err)) {
        fprintf(stderr, "cannot start: %s\n", err);
        return 1;
    }
    CHECK(c.hierarchical == 1 && c.nodes == hosts() && c.max_local == PER_HOST && c.local_rank == c.rank % PER_HOST,
          "topology: hierarchical %d, %d hosts, at most %d per host, local rank %d", c.hierarchical, c.nodes,
          c.max_local, c.local_rank);
    int leader = c.rank % PER_HOST == 0;

    const size_t sizes[] = {1, 3, 1000, 49999, 50001, 123457};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; ++s) {
        size_t n = sizes[s], bad = 0, first = 0;
        float *buf = allreduce_round(&c, n, s + 1);
        for (size_t i = 0; i < n; ++i) {
            float e = expected(n, chunk, i);
            if (memcmp(&e, &buf[i], sizeof e) && !bad++) first = i;
        }
        CHECK(bad == 0, "n=%zu: %zu elements differ from the fixed-order sum, first at %zu (%.9g vs %.9g)", n, bad,
              first, bad ? buf[first] : 0.0f, bad ? expected(n, chunk, first) : 0.0f);
        /* 2 hosts: a leader's ring sends the whole buffer (and the extras) to the other host. */
        uint64_t want = hosts() == 2 && leader ? n * sizeof(float) + 2 * sizeof(int64_t) : 0;
        CHECK(c.job_bytes_inter == want, "n=%zu: %llu bytes to the other host, expected %llu", n,
              (unsigned long long)c.job_bytes_inter, (unsigned long long)want);
        if (c.rank == 0 && bad == 0)
            printf("ok - hierarchical all-reduce of %zu floats on %d ranks (%d hosts): fixed-order bits\n", n, c.size,
                   hosts());
        free(buf);
    }

    const size_t sizes16[] = {5, 99999, 250007};
    const size_t chunk16 = chunk * sizeof(float) / sizeof(uint16_t);
    for (size_t s = 0; s < sizeof sizes16 / sizeof sizes16[0]; ++s) {
        size_t n = sizes16[s], bad = 0, badlost = 0;
        uint16_t *buf = malloc(n * sizeof *buf);
        float *lost = calloc(n, sizeof *lost), d;
        for (size_t i = 0; i < n; ++i) buf[i] = hpsgd_f16_encode(input(c.rank, i) * 1e-3f, &d);
        hpsgd_job job = {.kind = HPSGD_JOB_ALLREDUCE, .buf = buf, .count = n, .type = &hpsgd_wire_f16, .lost = lost};
        snprintf(job.what, sizeof job.what, "16-bit round %zu", s + 1);
        CHECK(hpsgd_comm_run(&c, &job, err, sizeof err) == 0, "16-bit all-reduce failed: %s", err);
        for (size_t i = 0; i < n; ++i) {
            float want_lost;
            bad += expected16(n, chunk16, i, c.rank, &want_lost) != buf[i];
            badlost += memcmp(&want_lost, &lost[i], sizeof want_lost) != 0;
        }
        CHECK(bad == 0, "16-bit n=%zu: %zu elements differ from the fixed-order sum", n, bad);
        CHECK(badlost == 0, "16-bit n=%zu: %zu elements' fed-back rounding differs", n, badlost);
        if (c.rank == 0 && bad == 0 && badlost == 0)
            printf("ok - hierarchical 16-bit all-reduce of %zu elements on %d ranks: fixed-order bits, rounding fed "
                   "back to the leaders\n", n, c.size);
        free(buf);
        free(lost);
    }

    hpsgd_comm_stop(&c);
    return failures ? 1 : 0;
}
