/*
 * merge.h - the G / B / D contract of a merge, per element and per slice.
 *
 *   R  the replica: Darknet's live tensors, trained by Darknet's own update;
 *   G  the global model, identical on every rank;
 *   B  merge=eager only: G plus this rank's change still in flight, plus
 *      lookahead times the average change of the round just merged;
 *   C  the round's buffer: this rank's change D on the way out, the sum A
 *      over ranks on the way back; inv = 1/N.
 *
 * Each operation is written once, per element, as an HPSGD_HD function, so a
 * device twin (merge_gpu.cu, beside merge_cpu.c, with the same signatures as
 * Darknet's blas.c / blas_kernels.cu) runs the very same arithmetic and gives
 * the same bits. One pass per slice, reading every stream once: at a merge
 * point this is the only model work the training thread does.
 */
#ifndef HPSGD_MERGE_H
#define HPSGD_MERGE_H

#include <stddef.h>

#ifdef __CUDACC__
#define HPSGD_HD __host__ __device__ static inline
#else
#define HPSGD_HD static inline
#endif

/* hpsgd merge point, merge=reset: D = R - G; G += A/N if a round finished;
 * C = D; R = G. */
HPSGD_HD void hpsgd_elem_launch_reset(float *r, float *g, float *c, int have_round, float inv)
{
    float d = *r - *g;
    float gi = have_round ? *g + *c * inv : *g;
    *g = gi;
    *c = d;
    *r = gi;
}

/* hpsgd merge point, merge=eager: D = R - B; G += A/N if a round finished;
 * C = D; B = G + look * A/N + D; R = B. The replica keeps its own unaveraged
 * change, and starts look rounds' worth of average change ahead of G: the
 * gradients it computes now reach G a round later, when G has moved about
 * that far (the lookahead key, options.h). B carries the lookahead, so the
 * next D holds only the steps taken, and G stays the exact average. look =
 * 0 is the plain eager rule. */
HPSGD_HD void hpsgd_elem_launch_eager(float *r, float *g, float *c, float *b, int have_round, float inv, float look)
{
    float d = *r - *b;
    float step = have_round ? *c * inv : 0.0f;
    float gi = have_round ? *g + step : *g;
    float bi = (gi + look * step) + d;
    *g = gi;
    *c = d;
    *b = bi;
    *r = bi;
}

/* The end, hpsgd: G += A/N; R = G + the steps since the launch (R - G_old,
 * or R - B when eager); B = G. b may be NULL. */
HPSGD_HD void hpsgd_elem_merge_last(float *r, float *g, const float *c, float *b, float inv)
{
    float local = *r - (b ? *b : *g);
    float gi = *g + *c * inv;
    *g = gi;
    if (b) *b = gi;
    *r = gi + local;
}

/* Blocking round, before: C = R - G. */
HPSGD_HD void hpsgd_elem_diff(const float *r, const float *g, float *c) { *c = *r - *g; }

/* Blocking round, after: G += A/N; R = G. */
HPSGD_HD void hpsgd_elem_merge(float *r, float *g, const float *c, float inv)
{
    float gi = *g + *c * inv;
    *g = gi;
    *r = gi;
}

#ifdef __cplusplus
extern "C" {
#endif

/* The same, over n elements of one tensor's slice (merge_cpu.c). b: NULL
 * with merge=reset (look is then unused). */
void hpsgd_merge_launch_cpu(float *r, float *g, float *c, float *b, size_t n, int have_round, float inv, float look);
void hpsgd_merge_last_cpu(float *r, float *g, const float *c, float *b, size_t n, float inv);
void hpsgd_merge_diff_cpu(const float *r, const float *g, float *c, size_t n);
void hpsgd_merge_cpu(float *r, float *g, const float *c, size_t n, float inv);

/* The device twins (merge_gpu.cu, GPU builds): the same over device slices,
 * queued on stream (a cudaStream_t) and not waited for; n may be 0. */
struct CUstream_st;
void hpsgd_merge_launch_gpu(float *r, float *g, float *c, float *b, size_t n, int have_round, float inv, float look,
                            struct CUstream_st *stream);
void hpsgd_merge_last_gpu(float *r, float *g, const float *c, float *b, size_t n, float inv,
                          struct CUstream_st *stream);
void hpsgd_merge_diff_gpu(const float *r, const float *g, float *c, size_t n, struct CUstream_st *stream);
void hpsgd_merge_gpu(float *r, float *g, const float *c, size_t n, float inv, struct CUstream_st *stream);

#ifdef __cplusplus
}
#endif

#endif
