/*
 * replica.c - merge arithmetic. Each operation is one pass over the tensors,
 * reading every stream once, because at a merge point this is the only host
 * work the training thread does (target: under 3% of a training step).
 */
#include "replica.h"

#include <stdlib.h>
#include <string.h>

int hpsgd_replica_init(hpsgd_replica *p, const hpsgd_registry *reg, size_t extras, int eager)
{
    memset(p, 0, sizeof(*p));
    p->reg = reg;
    p->n = reg->fused_floats;
    p->extras = extras;
    size_t n = p->n ? p->n : 1;
    p->global = malloc(n * sizeof(float));
    p->comm = calloc(n + extras, sizeof(float));
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

size_t hpsgd_replica_overhead_bytes(const hpsgd_replica *p)
{
    return (p->n * (p->base ? 3 : 2) + p->extras) * sizeof(float);
}

void hpsgd_replica_reset_global(hpsgd_replica *p)
{
    hpsgd_registry_gather(p->reg, p->global);
    if (p->base) memcpy(p->base, p->global, p->n * sizeof(float));
}

/* Calls body(r, g, c, b, count) for every travelling tensor's slices. */
#define FOR_EACH_SLICE(p, stmt)                                                   \
    for (int ti = 0; ti < (p)->reg->count; ++ti) {                                \
        const hpsgd_tensor *t = &(p)->reg->tensors[ti];                           \
        if (!t->travels) continue;                                                \
        float *restrict r = *t->slot;                                             \
        float *restrict g = (p)->global + t->offset;                              \
        float *restrict c = (p)->comm + t->offset;                                \
        float *restrict b = (p)->base ? (p)->base + t->offset : NULL;             \
        size_t count = t->n;                                                      \
        (void)b;                                                                  \
        stmt                                                                      \
    }

void hpsgd_replica_merge_launch(hpsgd_replica *p, int have_round, float nranks)
{
    const float inv = 1.0f / nranks; /* exact for 2, 4, 8...: then A*inv == A/N */
    if (!p->base) {
        FOR_EACH_SLICE(p, {
            for (size_t i = 0; i < count; ++i) {
                float d = r[i] - g[i];
                float gi = have_round ? g[i] + c[i] * inv : g[i];
                g[i] = gi;
                c[i] = d;
                r[i] = gi;
            }
        })
    } else {
        FOR_EACH_SLICE(p, {
            for (size_t i = 0; i < count; ++i) {
                float d = r[i] - b[i];
                float gi = have_round ? g[i] + c[i] * inv : g[i];
                float bi = gi + d;
                g[i] = gi;
                c[i] = d;
                b[i] = bi;
                r[i] = bi;
            }
        })
    }
}

void hpsgd_replica_merge_last(hpsgd_replica *p, float nranks)
{
    const float inv = 1.0f / nranks; /* exact for 2, 4, 8...: then A*inv == A/N */
    /* The replica's steps since the last launch are R - G (reset: R started
     * from G) or R - B (eager); they stay in R for the final round. */
    FOR_EACH_SLICE(p, {
        const float *since = b ? b : g;
        for (size_t i = 0; i < count; ++i) {
            float local = r[i] - since[i];
            float gi = g[i] + c[i] * inv;
            g[i] = gi;
            if (b) b[i] = gi;
            r[i] = gi + local;
        }
    })
}

void hpsgd_replica_diff(hpsgd_replica *p)
{
    FOR_EACH_SLICE(p, {
        for (size_t i = 0; i < count; ++i) c[i] = r[i] - g[i];
    })
}

void hpsgd_replica_merge(hpsgd_replica *p, float nranks)
{
    const float inv = 1.0f / nranks; /* exact for 2, 4, 8...: then A*inv == A/N */
    FOR_EACH_SLICE(p, {
        for (size_t i = 0; i < count; ++i) {
            float gi = g[i] + c[i] * inv;
            g[i] = gi;
            r[i] = gi;
        }
    })
    if (p->base) memcpy(p->base, p->global, p->n * sizeof(float));
}
