/*
 * darknet/alexeyab.c - the fork adapter for AlexeyAB/darknet 59596d78: its
 * structs (network passed by value, uint64_t seen, a separate iteration
 * counter), save order, header rule, label paths and cfg sections (see
 * fork.h), and the settings the plugin refuses.
 */
#include "darknet/fork.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "darknet/sections.h"
#include "hash.h"
#include "hpsgd.h"
#include "network.h"
#include "parser.h"
#include "utils.h"
#include "version.h"
#ifdef GPU
#include "dark_cuda.h"
#endif
#include "darknet/save_order.h" /* after dark_cuda.h: it uses cuda_pull_array */

/* ------------------------------------------------------------- counters */

size_t hpsgd_dn_seen(network *net) { return (size_t)*net->seen; }
size_t hpsgd_dn_images_per_step(network *net) { return (size_t)net->batch * (size_t)net->subdivisions; }

void hpsgd_dn_set_seen(network *net, size_t seen)
{
    /* The loop and the saves count cur_iteration; load_weights() derives it
     * from seen the same way. */
    *net->seen = seen;
    *net->cur_iteration = (int)(seen / hpsgd_dn_images_per_step(net));
}

long hpsgd_dn_iteration(network *net) { return (long)*net->cur_iteration; }
long hpsgd_dn_max_iterations(network *net) { return net->max_batches; }
float hpsgd_dn_current_rate(network *net) { return get_current_rate(*net); }

void hpsgd_dn_end_training(network *net)
{
    /* net may be a copy of the loop's network: the loops also ask hpsgd_stopped(). */
    int it = *net->cur_iteration;
    net->max_batches = it > 0 ? it : 1;
}

float hpsgd_dn_scale_learning_rate(network *net, double scale)
{
    net->learning_rate *= (float)scale;
    return net->learning_rate;
}

/* utils.c's rand_scale() and random_float() with shared draws (hpsgd.h). */
float hpsgd_rand_scale(float s)
{
    float lo = 1, hi = s;
    if (hi < lo) lo = s, hi = 1;
    unsigned int rnd = (unsigned int)hpsgd_shared_rand();
    float scale = ((float)rnd / (float)RAND_MAX) * (hi - lo) + lo;
    if ((unsigned int)hpsgd_shared_rand() % 2) return scale;
    return 1. / scale;
}

/* -------------------------------------------------------------- tensors */

/* save_conv_lstm: peepholes first, the w gates but wf dropped by bottleneck, then u. */
static int add_conv_lstm(walk *w, layer *l)
{
    int rc = 0;
    if (l->peephole) rc |= add_conv(w, l->vf) | add_conv(w, l->vi) | add_conv(w, l->vo);
    rc |= add_conv(w, l->wf);
    if (!l->bottleneck) rc |= add_conv(w, l->wi) | add_conv(w, l->wg) | add_conv(w, l->wo);
    return rc | add_conv(w, l->uf) | add_conv(w, l->ui) | add_conv(w, l->ug) | add_conv(w, l->uo);
}

/* save_weights_upto()'s chain, in its order. */
static int add_layer(walk *w, layer *l)
{
    switch (l->type) {
    case CONVOLUTIONAL:
        return l->share_layer ? 0 : add_conv(w, l); /* a shared layer's tensors are its owner's */
    case SHORTCUT:
        return l->nweights > 0 ? add(w, &l->weights, GPU_PTR(l, weights), (size_t)l->nweights, 0) : 0;
    case IMPLICIT:
        return add(w, &l->weights, GPU_PTR(l, weights), (size_t)l->nweights, 0);
    case CONNECTED:
        return add_connected(w, l);
    case BATCHNORM: {
        int rc = add(w, &l->biases, GPU_PTR(l, biases), (size_t)l->c, 0);
        rc |= add(w, &l->scales, GPU_PTR(l, scales), (size_t)l->c, 0);
        rc |= add(w, &l->rolling_mean, GPU_PTR(l, rolling_mean), (size_t)l->c, 1);
        rc |= add(w, &l->rolling_variance, GPU_PTR(l, rolling_variance), (size_t)l->c, 1);
        return rc;
    }
    case RNN:
        return add_connected(w, l->input_layer) | add_connected(w, l->self_layer) |
               add_connected(w, l->output_layer);
    case GRU:
        return add_connected(w, l->input_z_layer) | add_connected(w, l->input_r_layer) |
               add_connected(w, l->input_h_layer) | add_connected(w, l->state_z_layer) |
               add_connected(w, l->state_r_layer) | add_connected(w, l->state_h_layer);
    case LSTM:
        return add_connected(w, l->wf) | add_connected(w, l->wi) | add_connected(w, l->wg) |
               add_connected(w, l->wo) | add_connected(w, l->uf) | add_connected(w, l->ui) |
               add_connected(w, l->ug) | add_connected(w, l->uo);
    case CONV_LSTM:
        return add_conv_lstm(w, l);
    case CRNN:
        return add_conv(w, l->input_layer) | add_conv(w, l->self_layer) | add_conv(w, l->output_layer);
    case LOCAL: {
        size_t locations = (size_t)l->out_w * (size_t)l->out_h;
        size_t size = (size_t)l->size * l->size * l->c * l->n * locations;
        int rc = add(w, &l->biases, GPU_PTR(l, biases), (size_t)l->outputs, 0);
        rc |= add(w, &l->weights, GPU_PTR(l, weights), size, 0);
        return rc;
    }
    default:
        return 0;
    }
}

int hpsgd_registry_build(hpsgd_registry *r, network *net, int with_stats, int use_gpu, char *err, size_t errlen)
{
    if (hpsgd_registry_begin(r, net->n, with_stats, use_gpu)) goto oom;
    walk w = {r, 0, 1}; /* AlexeyAB saves every layer */
    for (int i = 0; i < net->n; ++i) {
        w.layer = i;
        if (add_layer(&w, &net->layers[i])) goto oom;
        hpsgd_registry_end_layer(r, i);
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory listing the network's tensors");
    hpsgd_registry_free(r);
    return -1;
}

/* ---------------------------------------------------------------- files */

size_t hpsgd_dn_weights_header_bytes(FILE *f)
{
    /* load_weights_upto(): seen is a uint32_t before version 0.2. */
    int32_t v[2] = {0, 0};
    if (fread(v, sizeof(int32_t), 2, f) != 2) return 0;
    return ((long)v[0] * 10 + v[1]) >= 2 ? HPSGD_WEIGHTS_HEADER_BYTES : 3 * sizeof(int32_t) + sizeof(uint32_t);
}

int hpsgd_dn_write_header(FILE *f, size_t seen)
{
    /* save_weights_upto(): the version of version.h, then seen as a uint64_t. */
    int32_t version[3] = {MAJOR_VERSION, MINOR_VERSION, PATCH_VERSION};
    uint64_t s = seen;
    return fwrite(version, sizeof(int32_t), 3, f) == 3 && fwrite(&s, sizeof s, 1, f) == 1 ? 0 : -1;
}

void hpsgd_dn_label_path(char *image, char *label) { replace_image_to_label(image, label); }

void hpsgd_dn_save_weights(network *net, char *filename) { save_weights(*net, filename); }

/* ------------------------------------------------------------------ cfg */

int hpsgd_options_take_sections(hpsgd_options *o, const char *cfgfile, struct list *sections, char *err,
                                size_t errlen)
{
    return take_sections(o, cfgfile, sections, err, errlen);
}

/* What each rank would change on its own, differently or out of step with
 * the merged model (README, "Coming from AlexeyAB's Darknet"). */
int hpsgd_dn_refuse(network *net, const char *cfgfile, char *err, size_t errlen)
{
    const char *key = net->ema_alpha != 0        ? "ema_alpha"
                      : net->dynamic_minibatch   ? "dynamic_minibatch"
                      : net->weights_reject_freq ? "weights_reject_freq"
                                                 : NULL;
    if (!key) return 0;
    snprintf(err, errlen, "%s: [net] %s is not supported with [hpsgd] (remove it from the cfg)", cfgfile, key);
    return -1;
}

/* ---------------------------------------------------------- fingerprint */

void hpsgd_dn_facts(network *net, hpsgd_net_facts *facts)
{
    memset(facts, 0, sizeof *facts);
    uint64_t types = 0;
    for (int i = 0; i < net->n; ++i) {
        int type = (int)net->layers[i].type;
        types = hpsgd_hash(&type, sizeof type, types);
    }
    /* Everything get_current_rate() and the layers' update read: the policy
     * and its parameters, steps= with scales=, SGDR's cycle, Adam, and every
     * layer's own rate scale and clipping. */
    double lr[19] = {net->learning_rate, net->momentum, net->decay, (double)net->policy, (double)net->burn_in,
                     (double)net->max_batches, (double)net->num_steps, net->power, (double)net->adam, net->B1, net->B2,
                     net->eps, net->gamma, net->scale, (double)net->step, net->learning_rate_min,
                     net->learning_rate_max, (double)net->batches_per_cycle, (double)net->batches_cycle_mult};
    uint64_t update = hpsgd_hash(lr, sizeof lr, 0);
    if (net->num_steps > 0 && net->steps) update = hpsgd_hash(net->steps, (size_t)net->num_steps * sizeof(int), update);
    if (net->num_steps > 0 && net->scales)
        update = hpsgd_hash(net->scales, (size_t)net->num_steps * sizeof(float), update);
    for (int i = 0; i < net->n; ++i) {
        double per_layer[2] = {net->layers[i].learning_rate_scale, net->layers[i].clip};
        update = hpsgd_hash(per_layer, sizeof per_layer, update);
    }
    facts->layers = (uint64_t)net->n;
    facts->layer_types = types;
    facts->batch = (uint64_t)net->batch;
    facts->subdivisions = (uint64_t)net->subdivisions;
    facts->width = (uint64_t)net->w;
    facts->height = (uint64_t)net->h;
    facts->channels = (uint64_t)net->c;
    facts->update = update;
}
