/*
 * darknet/device.h - what pjreddie's and AlexeyAB's Darknet share about the
 * GPU: gpu_index, cuda_pull_array/cuda_push_array and the `field_gpu`
 * naming of device copies. Included by each adapter (the includes that
 * declare the CUDA functions are the adapter's own).
 */
#ifndef HPSGD_DARKNET_DEVICE_H
#define HPSGD_DARKNET_DEVICE_H

#include "darknet/fork.h"

int hpsgd_dn_uses_gpu(void)
{
#ifdef GPU
    return gpu_index >= 0;
#else
    return 0;
#endif
}

void hpsgd_dn_copy_device(float *gpu, float *host, size_t n, int to_host)
{
#ifdef GPU
    if (to_host) cuda_pull_array(gpu, host, n);
    else cuda_push_array(gpu, host, n);
#else
    (void)gpu, (void)host, (void)n, (void)to_host;
#endif
}

/* A layer's device copy of a tensor, or NULL on a CPU build. */
#ifdef GPU
#define GPU_PTR(l, field) ((l)->field##_gpu)
#else
#define GPU_PTR(l, field) ((float *)NULL)
#endif

#endif
