/*
 * replica.c - the merge buffers, and the merges over every travelling
 * tensor's slice (merge_cpu.c does the arithmetic); with a device twin each
 * operation is handed to replica_gpu.c, which runs merge_gpu.cu's.
 */
#include "replica.h"

#include <stdlib.h>
#include <string.h>

#include "merge.h"
#include "replica_gpu.h"

/* Every travelling tensor needs its device copy for the merge to stay there. */
static int all_on_device(const hpsgd_registry *reg)
{
    if (!HPSGD_REPLICA_GPU || !reg->use_gpu) return 0;
    for (int i = 0; i < reg->count; ++i)
        if (reg->tensors[i].travels && !reg->tensors[i].gpu) return 0;
    return 1;
}

int hpsgd_replica_init(hpsgd_replica *p, const hpsgd_registry *reg, int eager, float lookahead, int device)
{
    memset(p, 0, sizeof(*p));
    p->reg = reg;
    p->n = reg->fused_floats;
    p->lookahead = eager ? lookahead : 0;
    if (device && all_on_device(reg)) return hpsgd_replica_gpu_init(p, eager);
    size_t n = p->n ? p->n : 1;
    p->global = malloc(n * sizeof(float));
    p->comm = calloc(n, sizeof(float));
    if (eager) p->base = malloc(n * sizeof(float));
    if (!p->global || !p->comm || (eager && !p->base)) {
        hpsgd_replica_free(p);
        return -1;
    }
    hpsgd_replica_reset_global(p);
    return 0;
}

void hpsgd_replica_free(hpsgd_replica *p)
{
    if (p->dev) {
        hpsgd_replica_gpu_free(p);
        return;
    }
    free(p->global);
    free(p->comm);
    free(p->base);
    p->global = p->comm = p->base = NULL;
}

size_t hpsgd_replica_overhead_bytes(const hpsgd_replica *p)
{
    if (p->dev) return hpsgd_replica_gpu_overhead_bytes(p);
    return p->n * (p->base ? 3 : 2) * sizeof(float);
}

int hpsgd_replica_on_device(const hpsgd_replica *p) { return p->dev != NULL; }

void hpsgd_replica_reset_global(hpsgd_replica *p)
{
    if (p->dev) {
        hpsgd_replica_gpu_reset_global(p);
        return;
    }
    hpsgd_registry_gather(p->reg, p->global);
    if (p->base) memcpy(p->base, p->global, p->n * sizeof(float));
}

void hpsgd_replica_settle(hpsgd_replica *p)
{
    if (p->dev) hpsgd_replica_gpu_settle(p);
}

void hpsgd_replica_fetch_global(hpsgd_replica *p)
{
    if (p->dev) hpsgd_replica_gpu_fetch_global(p);
}

/* Runs stmt with r, g, c, b (NULL when reset) and count set to each
 * travelling tensor's slice. */
#define FOR_EACH_SLICE(p, stmt)                                                   \
    for (int ti = 0; ti < (p)->reg->count; ++ti) {                                \
        const hpsgd_tensor *t = &(p)->reg->tensors[ti];                           \
        if (!t->travels) continue;                                                \
        float *r = *t->slot;                                                      \
        float *g = (p)->global + t->offset;                                       \
        float *c = (p)->comm + t->offset;                                         \
        float *b = (p)->base ? (p)->base + t->offset : NULL;                      \
        size_t count = t->n;                                                      \
        (void)b;                                                                  \
        stmt;                                                                     \
    }

/* 1/N is exact for N = 2, 4, 8...: then A*inv == A/N. */
void hpsgd_replica_merge_launch(hpsgd_replica *p, int have_round, float nranks)
{
    const float inv = 1.0f / nranks;
    if (p->dev) hpsgd_replica_gpu_merge_launch(p, have_round, inv);
    else FOR_EACH_SLICE(p, hpsgd_merge_launch_cpu(r, g, c, b, count, have_round, inv, p->lookahead));
}

void hpsgd_replica_merge_last(hpsgd_replica *p, float nranks)
{
    const float inv = 1.0f / nranks;
    if (p->dev) hpsgd_replica_gpu_merge_last(p, inv);
    else FOR_EACH_SLICE(p, hpsgd_merge_last_cpu(r, g, c, b, count, inv));
}

void hpsgd_replica_diff(hpsgd_replica *p)
{
    if (p->dev) hpsgd_replica_gpu_diff(p);
    else FOR_EACH_SLICE(p, hpsgd_merge_diff_cpu(r, g, c, count));
}

void hpsgd_replica_merge(hpsgd_replica *p, float nranks)
{
    const float inv = 1.0f / nranks;
    if (p->dev) {
        hpsgd_replica_gpu_merge(p, inv);
        return;
    }
    FOR_EACH_SLICE(p, hpsgd_merge_cpu(r, g, c, count, inv));
    if (p->base) memcpy(p->base, p->global, p->n * sizeof(float));
}
