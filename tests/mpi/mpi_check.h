/*
 * mpi_check.h - what the MPI tests share: CHECK, which counts a failure and
 * names the rank (the including file has an hpsgd_comm named c in scope),
 * and input(), values with long mantissas, so the summation order shows in
 * the last bits of a sum; allreduce_round(), one all-reduce job of input()
 * values with the two exact counters that ride beside the model.
 */
#ifndef HPSGD_TEST_MPI_CHECK_H
#define HPSGD_TEST_MPI_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "comm.h"

static int failures;

#define CHECK(cond, ...)                                         \
    do {                                                         \
        if (!(cond)) {                                           \
            ++failures;                                          \
            fprintf(stderr, "not ok - rank %d: ", c.rank);      \
            fprintf(stderr, __VA_ARGS__);                        \
            fprintf(stderr, "\n");                               \
        }                                                        \
    } while (0)

static float input(int rank, size_t i)
{
    uint64_t x = (uint64_t)(rank + 1) * 0x9E3779B97F4A7C15ULL ^ (i * 0xBF58476D1CE4E5B9ULL);
    x ^= x >> 31;
    x *= 0x94D049BB133111EBULL;
    x ^= x >> 29;
    return (float)((double)(x >> 11) / (double)(1ULL << 53) * 2.0 - 1.0) * (float)(1 + (i % 7));
}

/* Round `round` of the all-reduce tests: n input() values of this rank and
 * the counters {rank + 1, 2^40 + rank} through comm's all-reduce; checks that
 * the counters came back as exact integer sums. Returns the summed buffer
 * (the caller checks and frees it). */
static float *allreduce_round(hpsgd_comm *comm, size_t n, size_t round)
{
    struct { int rank; } c = {comm->rank}; /* what CHECK names */
    char err[256] = "";
    float *buf = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; ++i) buf[i] = input(comm->rank, i);
    int64_t exact[2] = {comm->rank + 1, ((int64_t)1 << 40) + comm->rank};
    hpsgd_job job = {.kind = HPSGD_JOB_ALLREDUCE, .buf = buf, .count = n, .exact = exact, .nexact = 2};
    snprintf(job.what, sizeof job.what, "round %zu", round);
    CHECK(hpsgd_comm_run(comm, &job, err, sizeof err) == 0, "all-reduce failed: %s", err);
    int64_t k = comm->size;
    CHECK(exact[0] == k * (k + 1) / 2 && exact[1] == k * ((int64_t)1 << 40) + k * (k - 1) / 2,
          "n=%zu: counters summed to %lld and %lld", n, (long long)exact[0], (long long)exact[1]);
    return buf;
}

#endif
