/*
 * replica.c - the merge buffers, and the merges over every travelling
 * tensor's slice (merge_cpu.c does the arithmetic).
 */
#include "replica.h"

#include <stdlib.h>
#include <string.h>

#include "merge.h"

int hpsgd_replica_init(hpsgd_replica *p, const hpsgd_registry *reg, int eager)
{
    memset(p, 0, sizeof(*p));
    p->reg = reg;
    p->n = reg->fused_floats;
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
    free(p->global);
    free(p->comm);
    free(p->base);
    p->global = p->comm = p->base = NULL;
}

size_t hpsgd_replica_overhead_bytes(const hpsgd_replica *p) { return p->n * (p->base ? 3 : 2) * sizeof(float); }

void hpsgd_replica_reset_global(hpsgd_replica *p)
{
    hpsgd_registry_gather(p->reg, p->global);
    if (p->base) memcpy(p->base, p->global, p->n * sizeof(float));
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
    FOR_EACH_SLICE(p, hpsgd_merge_launch_cpu(r, g, c, b, count, have_round, inv));
}

void hpsgd_replica_merge_last(hpsgd_replica *p, float nranks)
{
    const float inv = 1.0f / nranks;
    FOR_EACH_SLICE(p, hpsgd_merge_last_cpu(r, g, c, b, count, inv));
}

void hpsgd_replica_diff(hpsgd_replica *p) { FOR_EACH_SLICE(p, hpsgd_merge_diff_cpu(r, g, c, count)); }

void hpsgd_replica_merge(hpsgd_replica *p, float nranks)
{
    const float inv = 1.0f / nranks;
    FOR_EACH_SLICE(p, hpsgd_merge_cpu(r, g, c, count, inv));
    if (p->base) memcpy(p->base, p->global, p->n * sizeof(float));
}
