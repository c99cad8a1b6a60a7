/*
 * mpi_check.h - what the MPI tests share: CHECK, which counts a failure and
 * names the rank (the including file has an hpsgd_comm named c in scope),
 * and input(), values with long mantissas, so the summation order shows in
 * the last bits of a sum.
 */
#ifndef HPSGD_TEST_MPI_CHECK_H
#define HPSGD_TEST_MPI_CHECK_H

#include <stdint.h>
#include <stdio.h>

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

#endif
