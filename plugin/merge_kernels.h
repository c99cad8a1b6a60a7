/*
 * merge_kernels.h - the body of one device thread of each merge kernel: what
 * thread i of merge_gpu.cu's kernels does, as an HPSGD_HD function, so the
 * host can run the very same code (tests/unit/test_merge_kernels.c compares
 * its bits with merge_cpu.c's loops). Each body is merge.h's element
 * function at index i and nothing else: the arithmetic is written once.
 */
#ifndef HPSGD_MERGE_KERNELS_H
#define HPSGD_MERGE_KERNELS_H

#include "merge.h"

/* b: NULL with merge=reset (the same for every thread of a launch). */
HPSGD_HD void hpsgd_thread_launch(float *r, float *g, float *c, float *b, size_t i, int have_round, float inv,
                                  float look)
{
    if (b) hpsgd_elem_launch_eager(&r[i], &g[i], &c[i], &b[i], have_round, inv, look);
    else hpsgd_elem_launch_reset(&r[i], &g[i], &c[i], have_round, inv);
}

HPSGD_HD void hpsgd_thread_merge_last(float *r, float *g, const float *c, float *b, size_t i, float inv)
{
    hpsgd_elem_merge_last(&r[i], &g[i], &c[i], b ? &b[i] : NULL, inv);
}

HPSGD_HD void hpsgd_thread_diff(const float *r, const float *g, float *c, size_t i)
{
    hpsgd_elem_diff(&r[i], &g[i], &c[i]);
}

HPSGD_HD void hpsgd_thread_merge(float *r, float *g, const float *c, size_t i, float inv)
{
    hpsgd_elem_merge(&r[i], &g[i], &c[i], inv);
}

#endif
