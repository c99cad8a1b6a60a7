/*
 * darknet/save_order.h - the save order of the layer parts that pjreddie's
 * and AlexeyAB's Darknet write alike (save_convolutional_weights,
 * save_connected_weights), over each fork's own `layer`. Included by each
 * adapter after darknet/device.h.
 */
#ifndef HPSGD_DARKNET_SAVE_ORDER_H
#define HPSGD_DARKNET_SAVE_ORDER_H

#include "darknet/device.h"

/* Where the walk over a network is: the layer, and whether save_weights
 * writes it (pjreddie's dontsave=1 layers are not written). */
typedef struct {
    hpsgd_registry *r;
    int layer, saved;
} walk;

static int add(walk *w, float **slot, float *gpu, size_t n, int is_stat)
{
    return hpsgd_registry_add(w->r, w->layer, w->saved, slot, gpu, n, is_stat);
}

/* Convolutional layers and the sublayers built of them: biases, the
 * batch-norm trio, weights. */
static int add_conv(walk *w, layer *l)
{
    int rc = add(w, &l->biases, GPU_PTR(l, biases), (size_t)l->n, 0);
    if (l->batch_normalize) {
        rc |= add(w, &l->scales, GPU_PTR(l, scales), (size_t)l->n, 0);
        rc |= add(w, &l->rolling_mean, GPU_PTR(l, rolling_mean), (size_t)l->n, 1);
        rc |= add(w, &l->rolling_variance, GPU_PTR(l, rolling_variance), (size_t)l->n, 1);
    }
    rc |= add(w, &l->weights, GPU_PTR(l, weights), (size_t)l->nweights, 0);
    return rc;
}

/* Connected layers and the RNN/GRU/LSTM sublayers: biases, weights, then the
 * batch-norm trio. Connected layers leave nweights at 0, so the size comes
 * from inputs and outputs. */
static int add_connected(walk *w, layer *l)
{
    int rc = add(w, &l->biases, GPU_PTR(l, biases), (size_t)l->outputs, 0);
    rc |= add(w, &l->weights, GPU_PTR(l, weights), (size_t)l->outputs * (size_t)l->inputs, 0);
    if (l->batch_normalize) {
        rc |= add(w, &l->scales, GPU_PTR(l, scales), (size_t)l->outputs, 0);
        rc |= add(w, &l->rolling_mean, GPU_PTR(l, rolling_mean), (size_t)l->outputs, 1);
        rc |= add(w, &l->rolling_variance, GPU_PTR(l, rolling_variance), (size_t)l->outputs, 1);
    }
    return rc;
}

#endif
