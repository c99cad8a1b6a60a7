/*
 * registry.h - every trainable tensor of a Darknet network, in save_weights()
 * order, and the fused buffer layout they map to. The fork adapter
 * (darknet/<fork>.c) lists the tensors with hpsgd_registry_add(); everything
 * else here is the same for every fork.
 */
#ifndef HPSGD_REGISTRY_H
#define HPSGD_REGISTRY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct hpsgd_tensor {
    float **slot;   /* the layer field that holds the host pointer */
    float *gpu;     /* the device copy, or NULL when training on the CPU */
    size_t n;       /* floats */
    size_t offset;  /* position in the fused buffer, when it travels */
    int layer;      /* index in net->layers */
    int travels;    /* 0 for rolling statistics when stats=0 */
    int saved;      /* written by save_weights (its layer has no dontsave=1) */
    size_t local_offset; /* position in a copy of the tensors that do not travel */
} hpsgd_tensor;

typedef struct hpsgd_registry {
    hpsgd_tensor *tensors;
    int count, cap;
    size_t fused_floats;     /* floats in the fused buffer */
    size_t saved_floats;     /* floats save_weights() writes */
    size_t local_floats;     /* floats that do not travel (stats=0) */
    size_t *saved_upto;      /* saved floats of layers [0, i], per layer i */
    int nlayers;
    int with_stats, use_gpu; /* as built */
} hpsgd_registry;

/* Bytes of the header save_weights() writes: major, minor, revision, seen. */
#define HPSGD_WEIGHTS_HEADER_BYTES (3 * sizeof(int) + sizeof(size_t))

/* Building (the fork adapter's hpsgd_registry_build()): begin, then per
 * layer every tensor in save order, then the layer's end. Each returns 0 or
 * -1 (out of memory). is_stat: a rolling statistic (travels only with stats=1). */
int hpsgd_registry_begin(hpsgd_registry *r, int nlayers, int with_stats, int use_gpu);
int hpsgd_registry_add(hpsgd_registry *r, int layer, int saved, float **slot, float *gpu, size_t n, int is_stat);
void hpsgd_registry_end_layer(hpsgd_registry *r, int layer);
void hpsgd_registry_free(hpsgd_registry *r);

/* Copies between the live layer tensors and a fused buffer. */
void hpsgd_registry_gather(const hpsgd_registry *r, float *fused);
void hpsgd_registry_scatter(const hpsgd_registry *r, const float *fused);

/* GPU: device -> host copies of the travelling tensors, and back. No-ops on CPU. */
void hpsgd_registry_pull(const hpsgd_registry *r);
void hpsgd_registry_push(const hpsgd_registry *r);

/* The tensors that do not travel (rolling statistics with stats=0): GPU
 * device -> host (no-op on CPU), and a copy of them into local. */
void hpsgd_registry_pull_local(const hpsgd_registry *r);
void hpsgd_registry_gather_local(const hpsgd_registry *r, float *local);

/* Writes what save_weights() would, without touching the network: the
 * fork's header with `seen`, then every saved tensor from fused (travelling)
 * or local (a gather_local copy). Safe beside a training thread that does
 * not change fused or local meanwhile. Returns 0, or -1 on a write error. */
int hpsgd_registry_write(const hpsgd_registry *r, FILE *f, size_t seen, const float *fused, const float *local);

/* A weights file for this network is valid if its size is the header plus
 * the tensors of the first k layers, for some k (Darknet loads prefixes such
 * as darknet53.conv.74 for transfer learning). Returns k >= 0 or -1. */
int hpsgd_registry_match_file_size(const hpsgd_registry *r, size_t bytes);

#endif
