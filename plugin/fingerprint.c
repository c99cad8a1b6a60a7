/*
 * fingerprint.c - what ranks compare before the first step (see fingerprint.h).
 */
#include "fingerprint.h"

#include <string.h>

#include "hash.h"

const char *const hpsgd_fingerprint_names[HPSGD_FP_FIELDS] = {
    "number of layers",
    "layer types and tensor sizes",
    "trainable floats",
    "batch",
    "subdivisions",
    "input width",
    "input height",
    "input channels",
    "update settings ([net] learning_rate, momentum, decay, policy and its steps, scales, gamma, power, burn_in, "
    "max_batches, adam, clip; every layer's learning_rate scale)",
    "[hpsgd] mode",
    "[hpsgd] merge",
    "[hpsgd] interval, max_stale, chunk_mb, stats, shard, verify, timeout, lr_scale, compress, hierarchical, chunks_in_flight, lookahead, "
    "sync_warmup",
    "[hpsgd] seed",
    "tensors that travel (stats)",
};

void hpsgd_fingerprint_make(hpsgd_fingerprint *fp, network *net, const hpsgd_registry *r, const hpsgd_options *o)
{
    hpsgd_net_facts facts;
    hpsgd_dn_facts(net, &facts);
    uint64_t layout = facts.layer_types;
    for (int i = 0; i < r->count; ++i) {
        uint64_t shape[2] = {(uint64_t)r->tensors[i].layer, (uint64_t)r->tensors[i].n};
        layout = hpsgd_hash(shape, sizeof shape, layout);
    }
    double settings[13] = {o->interval, o->max_stale, o->chunk_mb,  o->stats,        o->shard,
                           o->verify,   o->timeout,   o->lr_scale,  o->compress,     o->hierarchical,
                           o->chunks_in_flight,       o->lookahead, o->sync_warmup};

    memset(fp, 0, sizeof(*fp));
    fp->v[0] = facts.layers;
    fp->v[1] = layout;
    fp->v[2] = r->saved_floats;
    fp->v[3] = facts.batch;
    fp->v[4] = facts.subdivisions;
    fp->v[5] = facts.width;
    fp->v[6] = facts.height;
    fp->v[7] = facts.channels;
    fp->v[8] = facts.update;
    fp->v[9] = (uint64_t)o->mode;
    fp->v[10] = (uint64_t)o->merge;
    fp->v[11] = hpsgd_hash(settings, sizeof settings, 0);
    fp->v[12] = (uint64_t)o->seed;
    fp->v[13] = (uint64_t)r->fused_floats;
}
