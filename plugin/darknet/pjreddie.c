/*
 * darknet/pjreddie.c - the fork adapter for pjreddie/darknet 61c9d02e (what
 * Debian packages): its structs, save order, header rule and cfg sections
 * (see fork.h).
 */
#include "darknet/fork.h"

#include <stdlib.h>
#include <string.h>

#include "darknet/save_order.h"
#include "darknet/sections.h"
#include "hash.h"
#include "option_list.h"
#include "utils.h"

/* ------------------------------------------------------------- counters */

size_t hpsgd_dn_seen(network *net) { return *net->seen; }
void hpsgd_dn_set_seen(network *net, size_t seen) { *net->seen = seen; }
long hpsgd_dn_iteration(network *net) { return (long)get_current_batch(net); }
size_t hpsgd_dn_images_per_step(network *net) { return (size_t)net->batch * (size_t)net->subdivisions; }
float hpsgd_dn_current_rate(network *net) { return get_current_rate(net); }
long hpsgd_dn_max_iterations(network *net) { return net->max_batches; }

void hpsgd_dn_end_training(network *net)
{
    /* train_detector/train_classifier loop while get_current_batch() < max_batches. */
    int batch = (int)get_current_batch(net);
    net->max_batches = batch > 0 ? batch : 1;
}

float hpsgd_dn_scale_learning_rate(network *net, double scale)
{
    net->learning_rate *= (float)scale;
    return net->learning_rate;
}

/* -------------------------------------------------------------- tensors */

static int add_layer(walk *w, layer *l)
{
    switch (l->type) {
    case CONVOLUTIONAL:
    case DECONVOLUTIONAL:
        return add_conv(w, l);
    case CONNECTED:
        return add_connected(w, l);
    case BATCHNORM: {
        int rc = add(w, &l->scales, GPU_PTR(l, scales), (size_t)l->c, 0);
        rc |= add(w, &l->rolling_mean, GPU_PTR(l, rolling_mean), (size_t)l->c, 1);
        rc |= add(w, &l->rolling_variance, GPU_PTR(l, rolling_variance), (size_t)l->c, 1);
        return rc;
    }
    case RNN:
        return add_connected(w, l->input_layer) | add_connected(w, l->self_layer) |
               add_connected(w, l->output_layer);
    case LSTM:
        return add_connected(w, l->wi) | add_connected(w, l->wf) | add_connected(w, l->wo) |
               add_connected(w, l->wg) | add_connected(w, l->ui) | add_connected(w, l->uf) |
               add_connected(w, l->uo) | add_connected(w, l->ug);
    case GRU:
        return add_connected(w, l->wz) | add_connected(w, l->wr) | add_connected(w, l->wh) |
               add_connected(w, l->uz) | add_connected(w, l->ur) | add_connected(w, l->uh);
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
    walk w = {r, 0, 0};
    for (int i = 0; i < net->n; ++i) {
        w.layer = i;
        w.saved = !net->layers[i].dontsave;
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
    /* load_weights_upto(): seen is a size_t from version 0.2 on, unless major
     * or minor is 1000 or more (transposed files), else an int. */
    int v[2] = {0, 0};
    if (fread(v, sizeof(int), 2, f) != 2) return 0;
    int wide = ((long)v[0] * 10 + v[1]) >= 2 && v[0] < 1000 && v[1] < 1000;
    return wide ? HPSGD_WEIGHTS_HEADER_BYTES : 3 * sizeof(int) + sizeof(int);
}

int hpsgd_dn_write_header(FILE *f, size_t seen)
{
    /* save_weights_upto(): major, minor, revision, then seen as a size_t. */
    int version[3] = {0, 2, 0};
    return fwrite(version, sizeof(int), 3, f) == 3 && fwrite(&seen, sizeof seen, 1, f) == 1 ? 0 : -1;
}

void hpsgd_dn_label_path(char *image, char *label)
{
    /* fill_truth_detection() in src/data.c. */
    find_replace(image, "images", "labels", label);
    find_replace(label, "JPEGImages", "labels", label);
    find_replace(label, "raw", "labels", label);
    find_replace(label, ".jpg", ".txt", label);
    find_replace(label, ".png", ".txt", label);
    find_replace(label, ".JPG", ".txt", label);
    find_replace(label, ".JPEG", ".txt", label);
}

void hpsgd_dn_save_weights(network *net, char *filename) { save_weights(net, filename); }

/* ------------------------------------------------------------------ cfg */

int hpsgd_options_take_sections(hpsgd_options *o, const char *cfgfile, struct list *sections, char *err,
                                size_t errlen)
{
    return take_sections(o, cfgfile, sections, err, errlen);
}

/* Everything pjreddie's Darknet trains travels. */
int hpsgd_dn_refuse(network *net, const char *cfgfile, char *err, size_t errlen)
{
    (void)net, (void)cfgfile, (void)err, (void)errlen;
    return 0;
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
     * and its parameters, steps= with scales=, Adam, clipping, and every
     * layer's own rate scale and switches. */
    double lr[17] = {net->learning_rate, net->momentum, net->decay, (double)net->policy, (double)net->burn_in,
                     (double)net->max_batches, (double)net->num_steps, net->gamma, net->scale, net->power,
                     (double)net->step, (double)net->time_steps, (double)net->adam, net->B1, net->B2, net->eps,
                     net->clip};
    uint64_t update = hpsgd_hash(lr, sizeof lr, 0);
    if (net->num_steps > 0 && net->steps) update = hpsgd_hash(net->steps, (size_t)net->num_steps * sizeof(int), update);
    if (net->num_steps > 0 && net->scales)
        update = hpsgd_hash(net->scales, (size_t)net->num_steps * sizeof(float), update);
    for (int i = 0; i < net->n; ++i) {
        const layer *l = &net->layers[i];
        double per_layer[4] = {l->learning_rate_scale, l->clip, (double)l->stopbackward, l->smooth};
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
