/*
 * registry.c - the trainable tensors of a Darknet network.
 *
 * The order is exactly that of save_weights_upto() in src/parser.c, so the
 * fused buffer is the .weights file without its header (when stats=1), and a
 * registry test can check sizes against the files Darknet writes. Momentum
 * (*_updates) and Adam buffers are local optimiser state and never listed.
 */
#include "registry.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    hpsgd_registry *r;
    int cap;
    int layer;
    int saved;      /* the current layer is written by save_weights */
    int with_stats;
    int use_gpu;
} builder;

static int add(builder *b, float **slot, float *gpu, size_t n, int is_stat)
{
    hpsgd_registry *r = b->r;
    if (!n) return 0;
    if (r->count == b->cap) {
        int cap = b->cap ? 2 * b->cap : 64;
        hpsgd_tensor *t = realloc(r->tensors, (size_t)cap * sizeof(*t));
        if (!t) return -1;
        r->tensors = t;
        b->cap = cap;
    }
    hpsgd_tensor *t = &r->tensors[r->count++];
    t->slot = slot;
    t->gpu = b->use_gpu ? gpu : NULL;
    t->n = n;
    t->layer = b->layer;
    t->travels = !is_stat || b->with_stats;
    t->saved = b->saved;
    t->offset = t->travels ? r->fused_floats : 0;
    t->local_offset = t->travels ? 0 : r->local_floats;
    if (t->travels) r->fused_floats += n;
    else r->local_floats += n;
    if (b->saved) r->saved_floats += n;
    return 0;
}

#ifdef GPU
#define GPU_PTR(l, field) ((l)->field##_gpu)
#else
#define GPU_PTR(l, field) ((float *)NULL)
#endif

/* Convolutional, deconvolutional and the CRNN sublayers: save_convolutional_weights(). */
static int add_conv(builder *b, layer *l)
{
    int rc = add(b, &l->biases, GPU_PTR(l, biases), (size_t)l->n, 0);
    if (l->batch_normalize) {
        rc |= add(b, &l->scales, GPU_PTR(l, scales), (size_t)l->n, 0);
        rc |= add(b, &l->rolling_mean, GPU_PTR(l, rolling_mean), (size_t)l->n, 1);
        rc |= add(b, &l->rolling_variance, GPU_PTR(l, rolling_variance), (size_t)l->n, 1);
    }
    rc |= add(b, &l->weights, GPU_PTR(l, weights), (size_t)l->nweights, 0);
    return rc;
}

/* Connected and the RNN/GRU/LSTM sublayers: save_connected_weights(). Connected
 * layers leave nweights at 0, so the size comes from inputs and outputs. */
static int add_connected(builder *b, layer *l)
{
    int rc = add(b, &l->biases, GPU_PTR(l, biases), (size_t)l->outputs, 0);
    rc |= add(b, &l->weights, GPU_PTR(l, weights), (size_t)l->outputs * (size_t)l->inputs, 0);
    if (l->batch_normalize) {
        rc |= add(b, &l->scales, GPU_PTR(l, scales), (size_t)l->outputs, 0);
        rc |= add(b, &l->rolling_mean, GPU_PTR(l, rolling_mean), (size_t)l->outputs, 1);
        rc |= add(b, &l->rolling_variance, GPU_PTR(l, rolling_variance), (size_t)l->outputs, 1);
    }
    return rc;
}

static int add_layer(builder *b, layer *l)
{
    switch (l->type) {
    case CONVOLUTIONAL:
    case DECONVOLUTIONAL:
        return add_conv(b, l);
    case CONNECTED:
        return add_connected(b, l);
    case BATCHNORM: {
        int rc = add(b, &l->scales, GPU_PTR(l, scales), (size_t)l->c, 0);
        rc |= add(b, &l->rolling_mean, GPU_PTR(l, rolling_mean), (size_t)l->c, 1);
        rc |= add(b, &l->rolling_variance, GPU_PTR(l, rolling_variance), (size_t)l->c, 1);
        return rc;
    }
    case RNN:
        return add_connected(b, l->input_layer) | add_connected(b, l->self_layer) |
               add_connected(b, l->output_layer);
    case LSTM:
        return add_connected(b, l->wi) | add_connected(b, l->wf) | add_connected(b, l->wo) |
               add_connected(b, l->wg) | add_connected(b, l->ui) | add_connected(b, l->uf) |
               add_connected(b, l->uo) | add_connected(b, l->ug);
    case GRU:
        return add_connected(b, l->wz) | add_connected(b, l->wr) | add_connected(b, l->wh) |
               add_connected(b, l->uz) | add_connected(b, l->ur) | add_connected(b, l->uh);
    case CRNN:
        return add_conv(b, l->input_layer) | add_conv(b, l->self_layer) | add_conv(b, l->output_layer);
    case LOCAL: {
        size_t locations = (size_t)l->out_w * (size_t)l->out_h;
        size_t size = (size_t)l->size * l->size * l->c * l->n * locations;
        int rc = add(b, &l->biases, GPU_PTR(l, biases), (size_t)l->outputs, 0);
        rc |= add(b, &l->weights, GPU_PTR(l, weights), size, 0);
        return rc;
    }
    default:
        return 0;
    }
}

int hpsgd_registry_build(hpsgd_registry *r, network *net, int with_stats, int use_gpu, char *err,
                         size_t errlen)
{
    memset(r, 0, sizeof(*r));
    builder b = {r, 0, 0, 0, with_stats, use_gpu};
    r->nlayers = net->n;
    r->saved_upto = calloc((size_t)(net->n > 0 ? net->n : 1), sizeof(size_t));
    if (!r->saved_upto) goto oom;
    for (int i = 0; i < net->n; ++i) {
        b.layer = i;
        b.saved = !net->layers[i].dontsave;
        if (add_layer(&b, &net->layers[i])) goto oom;
        r->saved_upto[i] = r->saved_floats;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory listing the network's tensors");
    hpsgd_registry_free(r);
    return -1;
}

void hpsgd_registry_free(hpsgd_registry *r)
{
    free(r->tensors);
    free(r->saved_upto);
    memset(r, 0, sizeof(*r));
}

void hpsgd_registry_gather(const hpsgd_registry *r, float *fused)
{
    for (int i = 0; i < r->count; ++i) {
        const hpsgd_tensor *t = &r->tensors[i];
        if (t->travels) memcpy(fused + t->offset, *t->slot, t->n * sizeof(float));
    }
}

void hpsgd_registry_scatter(const hpsgd_registry *r, const float *fused)
{
    for (int i = 0; i < r->count; ++i) {
        const hpsgd_tensor *t = &r->tensors[i];
        if (t->travels) memcpy(*t->slot, fused + t->offset, t->n * sizeof(float));
    }
}

/* Device <-> host copies of the tensors that travel (or of those that do
 * not); no-ops on a CPU build. */
static void copy_device(const hpsgd_registry *r, int travelling, int to_host)
{
#ifdef GPU
    for (int i = 0; i < r->count; ++i) {
        const hpsgd_tensor *t = &r->tensors[i];
        if (t->travels != travelling || !t->gpu) continue;
        if (to_host) cuda_pull_array(t->gpu, *t->slot, t->n);
        else cuda_push_array(t->gpu, *t->slot, t->n);
    }
#else
    (void)r, (void)travelling, (void)to_host;
#endif
}

void hpsgd_registry_pull(const hpsgd_registry *r) { copy_device(r, 1, 1); }
void hpsgd_registry_push(const hpsgd_registry *r) { copy_device(r, 1, 0); }
void hpsgd_registry_pull_local(const hpsgd_registry *r) { copy_device(r, 0, 1); }

void hpsgd_registry_gather_local(const hpsgd_registry *r, float *local)
{
    for (int i = 0; i < r->count; ++i) {
        const hpsgd_tensor *t = &r->tensors[i];
        if (!t->travels) memcpy(local + t->local_offset, *t->slot, t->n * sizeof(float));
    }
}

int hpsgd_registry_write(const hpsgd_registry *r, FILE *f, size_t seen, const float *fused, const float *local)
{
    /* save_weights_upto(): major, minor, revision, then seen as a size_t. */
    int version[3] = {0, 2, 0};
    if (fwrite(version, sizeof(int), 3, f) != 3 || fwrite(&seen, sizeof seen, 1, f) != 1) return -1;
    for (int i = 0; i < r->count; ++i) {
        const hpsgd_tensor *t = &r->tensors[i];
        if (!t->saved) continue;
        const float *from = t->travels ? fused + t->offset : local + t->local_offset;
        if (fwrite(from, sizeof(float), t->n, f) != t->n) return -1;
    }
    return 0;
}

int hpsgd_registry_match_file_size(const hpsgd_registry *r, size_t bytes)
{
    if (bytes < HPSGD_WEIGHTS_HEADER_BYTES) return -1;
    size_t body = bytes - HPSGD_WEIGHTS_HEADER_BYTES;
    if (body % sizeof(float)) return -1;
    size_t floats = body / sizeof(float);
    if (floats == 0) return 0;
    for (int i = 0; i < r->nlayers; ++i)
        if (r->saved_upto[i] == floats) return i + 1;
    return -1;
}

const char *const hpsgd_fingerprint_names[HPSGD_FP_FIELDS] = {
    "number of layers",
    "layer types and tensor sizes",
    "trainable floats",
    "batch",
    "subdivisions",
    "input width",
    "input height",
    "input channels",
    "learning-rate settings ([net] learning_rate, momentum, decay, policy, burn_in, max_batches, steps)",
    "[hpsgd] mode",
    "[hpsgd] merge",
    "[hpsgd] interval, max_stale, chunk_mb, stats, shard, verify, timeout, lr_scale",
    "[hpsgd] seed",
    "tensors that travel (stats)",
};

void hpsgd_fingerprint_make(hpsgd_fingerprint *fp, network *net, const hpsgd_registry *r,
                            const hpsgd_options *o)
{
    memset(fp, 0, sizeof(*fp));
    uint64_t layout = 0;
    for (int i = 0; i < net->n; ++i) {
        int type = (int)net->layers[i].type;
        layout = hpsgd_hash(&type, sizeof type, layout);
    }
    for (int i = 0; i < r->count; ++i) {
        uint64_t shape[2] = {(uint64_t)r->tensors[i].layer, (uint64_t)r->tensors[i].n};
        layout = hpsgd_hash(shape, sizeof shape, layout);
    }
    double lr[7] = {net->learning_rate, net->momentum, net->decay, (double)net->policy,
                    (double)net->burn_in, (double)net->max_batches, (double)net->num_steps};
    uint64_t lr_hash = hpsgd_hash(lr, sizeof lr, 0);
    if (net->num_steps > 0 && net->steps) lr_hash = hpsgd_hash(net->steps, (size_t)net->num_steps * sizeof(int), lr_hash);
    double settings[8] = {o->interval, o->max_stale, o->chunk_mb, o->stats, o->shard, o->verify, o->timeout,
                          o->lr_scale};

    fp->v[0] = (uint64_t)net->n;
    fp->v[1] = layout;
    fp->v[2] = r->saved_floats;
    fp->v[3] = (uint64_t)net->batch;
    fp->v[4] = (uint64_t)net->subdivisions;
    fp->v[5] = (uint64_t)net->w;
    fp->v[6] = (uint64_t)net->h;
    fp->v[7] = (uint64_t)net->c;
    fp->v[8] = lr_hash;
    fp->v[9] = (uint64_t)o->mode;
    fp->v[10] = (uint64_t)o->merge;
    fp->v[11] = hpsgd_hash(settings, sizeof settings, 0);
    fp->v[12] = (uint64_t)o->seed;
    fp->v[13] = (uint64_t)r->fused_floats;
}
