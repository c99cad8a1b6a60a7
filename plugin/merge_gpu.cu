/*
 * merge_gpu.cu - the merge over device slices (merge.h), beside merge_cpu.c as
 * Darknet's blas_kernels.cu is beside blas.c. Each thread runs one body of
 * merge_kernels.h, which is merge.h's element function and nothing else, so
 * the arithmetic exists once. Built with -fmad=false: without FMA
 * contraction each add and multiply rounds to nearest as on the host, and a
 * merge on any device gives merge_cpu.c's bits (G must stay identical on all
 * ranks, whatever mix of devices they run on).
 */
#include <cuda_runtime.h>

#include "merge_kernels.h"

/* Grid-stride loops: any n, with a grid capped well under the device limit. */
#define THREADS 256
#define MAX_BLOCKS 4096

static unsigned blocks_for(size_t n)
{
    size_t b = (n + THREADS - 1) / THREADS;
    return (unsigned)(b < MAX_BLOCKS ? b : MAX_BLOCKS);
}

#define FOR_THREAD(n) for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

static __global__ void k_launch(float *r, float *g, float *c, float *b, size_t n, int have_round, float inv,
                                float look)
{
    FOR_THREAD(n) hpsgd_thread_launch(r, g, c, b, i, have_round, inv, look);
}

static __global__ void k_merge_last(float *r, float *g, const float *c, float *b, size_t n, float inv)
{
    FOR_THREAD(n) hpsgd_thread_merge_last(r, g, c, b, i, inv);
}

static __global__ void k_diff(const float *r, const float *g, float *c, size_t n)
{
    FOR_THREAD(n) hpsgd_thread_diff(r, g, c, i);
}

static __global__ void k_merge(float *r, float *g, const float *c, size_t n, float inv)
{
    FOR_THREAD(n) hpsgd_thread_merge(r, g, c, i, inv);
}

/* A zero-length slice launches nothing (a grid of 0 blocks is an error). */
extern "C" void hpsgd_merge_launch_gpu(float *r, float *g, float *c, float *b, size_t n, int have_round, float inv,
                                       float look, struct CUstream_st *stream)
{
    if (n) k_launch<<<blocks_for(n), THREADS, 0, stream>>>(r, g, c, b, n, have_round, inv, look);
}

extern "C" void hpsgd_merge_last_gpu(float *r, float *g, const float *c, float *b, size_t n, float inv,
                                     struct CUstream_st *stream)
{
    if (n) k_merge_last<<<blocks_for(n), THREADS, 0, stream>>>(r, g, c, b, n, inv);
}

extern "C" void hpsgd_merge_diff_gpu(const float *r, const float *g, float *c, size_t n, struct CUstream_st *stream)
{
    if (n) k_diff<<<blocks_for(n), THREADS, 0, stream>>>(r, g, c, n);
}

extern "C" void hpsgd_merge_gpu(float *r, float *g, const float *c, size_t n, float inv, struct CUstream_st *stream)
{
    if (n) k_merge<<<blocks_for(n), THREADS, 0, stream>>>(r, g, c, n, inv);
}
