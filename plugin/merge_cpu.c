/*
 * merge_cpu.c - the merge over host slices (see merge.h). The loop bodies are
 * merge.h's element functions, so the compiler sees plain streams; -std=c11 keeps
 * them free of FMA contraction (-ffp-contract=off), so the bits match the element
 * functions exactly.
 */
#include "merge.h"

void hpsgd_merge_launch_cpu(float *restrict r, float *restrict g, float *restrict c, float *restrict b, size_t n,
                            int have_round, float inv, float look)
{
    if (b)
        for (size_t i = 0; i < n; ++i) hpsgd_elem_launch_eager(&r[i], &g[i], &c[i], &b[i], have_round, inv, look);
    else
        for (size_t i = 0; i < n; ++i) hpsgd_elem_launch_reset(&r[i], &g[i], &c[i], have_round, inv);
}

void hpsgd_merge_last_cpu(float *restrict r, float *restrict g, const float *restrict c, float *restrict b, size_t n,
                          float inv)
{
    for (size_t i = 0; i < n; ++i) hpsgd_elem_merge_last(&r[i], &g[i], &c[i], b ? &b[i] : NULL, inv);
}

void hpsgd_merge_diff_cpu(const float *restrict r, const float *restrict g, float *restrict c, size_t n)
{
    for (size_t i = 0; i < n; ++i) hpsgd_elem_diff(&r[i], &g[i], &c[i]);
}

void hpsgd_merge_cpu(float *restrict r, float *restrict g, const float *restrict c, size_t n, float inv)
{
    for (size_t i = 0; i < n; ++i) hpsgd_elem_merge(&r[i], &g[i], &c[i], inv);
}
