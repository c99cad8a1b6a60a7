/*
 * registry.c - the trainable tensors of a Darknet network (see registry.h).
 *
 * The order is exactly that of save_weights_upto(), so the fused buffer is
 * the .weights file without its header (when stats=1), and a registry test
 * can check sizes against the files Darknet writes. Momentum (*_updates) and
 * Adam buffers are local optimiser state and never listed.
 */
#include "registry.h"

#include <stdlib.h>
#include <string.h>

#include "darknet/fork.h"

int hpsgd_registry_begin(hpsgd_registry *r, int nlayers, int with_stats, int use_gpu)
{
    memset(r, 0, sizeof(*r));
    r->nlayers = nlayers;
    r->with_stats = with_stats;
    r->use_gpu = use_gpu;
    r->saved_upto = calloc((size_t)(nlayers > 0 ? nlayers : 1), sizeof(size_t));
    return r->saved_upto ? 0 : -1;
}

int hpsgd_registry_add(hpsgd_registry *r, int layer, int saved, float **slot, float *gpu, size_t n, int is_stat)
{
    if (!n) return 0;
    if (r->count == r->cap) {
        int cap = r->cap ? 2 * r->cap : 64;
        hpsgd_tensor *t = realloc(r->tensors, (size_t)cap * sizeof(*t));
        if (!t) return -1;
        r->tensors = t;
        r->cap = cap;
    }
    hpsgd_tensor *t = &r->tensors[r->count++];
    t->slot = slot;
    t->gpu = r->use_gpu ? gpu : NULL;
    t->n = n;
    t->layer = layer;
    t->travels = !is_stat || r->with_stats;
    t->saved = saved;
    t->offset = t->travels ? r->fused_floats : 0;
    t->local_offset = t->travels ? 0 : r->local_floats;
    if (t->travels) r->fused_floats += n;
    else r->local_floats += n;
    if (saved) r->saved_floats += n;
    return 0;
}

void hpsgd_registry_end_layer(hpsgd_registry *r, int layer) { r->saved_upto[layer] = r->saved_floats; }

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
 * not); nothing to do without device pointers. */
static void copy_device(const hpsgd_registry *r, int travelling, int to_host)
{
    for (int i = 0; i < r->count; ++i) {
        const hpsgd_tensor *t = &r->tensors[i];
        if (t->travels != travelling || !t->gpu) continue;
        hpsgd_dn_copy_device(t->gpu, *t->slot, t->n, to_host);
    }
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
    if (hpsgd_dn_write_header(f, seen)) return -1;
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
