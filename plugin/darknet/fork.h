/*
 * darknet/fork.h - everything the plugin knows about a Darknet fork's
 * structs, behind one small interface. One adapter per fork implements it
 * (darknet/pjreddie.c, darknet/alexeyab.c); the Makefile compiles the one FORK names, with
 * that fork's darknet.h. The rest of plugin/ reaches Darknet only through
 * these functions (and hpsgd.h's hook signatures).
 */
#ifndef HPSGD_DARKNET_FORK_H
#define HPSGD_DARKNET_FORK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "darknet.h"
#include "options.h"
#include "registry.h"

struct list; /* list.h: AlexeyAB's darknet.h does not declare it */

/* ------------------------------------------------------------- counters */

/* Images seen by the whole job: Darknet's `seen`. */
size_t hpsgd_dn_seen(network *net);
void hpsgd_dn_set_seen(network *net, size_t seen);
/* The global iteration Darknet's loop and schedule use (seen / images per step). */
long hpsgd_dn_iteration(network *net);
/* Images one local step adds: batch x subdivisions. */
size_t hpsgd_dn_images_per_step(network *net);
/* The iteration the cfg ends training at (max_batches; 0: no end). */
long hpsgd_dn_max_iterations(network *net);
/* Ends the training loop at its next check (an agreed stop); loops that run
 * on a copy of net also ask hpsgd_stopped(). */
void hpsgd_dn_end_training(network *net);
/* The learning rate of this iteration, and the base rate scaled (lr_scale). */
float hpsgd_dn_current_rate(network *net);
float hpsgd_dn_scale_learning_rate(network *net, double scale);

/* -------------------------------------------------------------- tensors */

/* 1 when this process trains on a GPU (a GPU build with a device chosen). */
int hpsgd_dn_uses_gpu(void);
/* Lists every trainable tensor of net in save_weights() order. Returns 0, or
 * -1 (out of memory) with err set. */
int hpsgd_registry_build(hpsgd_registry *r, network *net, int with_stats, int use_gpu, char *err, size_t errlen);
/* n floats between a device tensor and its host copy. */
void hpsgd_dn_copy_device(float *gpu, float *host, size_t n, int to_host);

/* ---------------------------------------------------------------- files */

/* Header bytes of an existing weights file, by the fork's own reading rule;
 * 0 when the file is too short to have one. */
size_t hpsgd_dn_weights_header_bytes(FILE *f);
/* The header save_weights() writes (HPSGD_WEIGHTS_HEADER_BYTES). */
int hpsgd_dn_write_header(FILE *f, size_t seen);
/* The label file Darknet's loader derives from an image path (label: at
 * least HPSGD_PATH_MAX bytes). */
void hpsgd_dn_label_path(char *image, char *label);
/* Darknet's own save (a cfg without [hpsgd]). */
void hpsgd_dn_save_weights(network *net, char *filename);

/* ------------------------------------------------------------------ cfg */

/* Takes every [hpsgd] section out of Darknet's parsed section list (freeing
 * it) and parses it into o (options.h has the rules). Returns 0, or -1 with
 * a one-line message. */
int hpsgd_options_take_sections(hpsgd_options *o, const char *cfgfile, struct list *sections, char *err,
                                size_t errlen);

/* Network settings the plugin cannot carry across ranks: 0, or -1 with a
 * one-line message naming the cfg key. */
int hpsgd_dn_refuse(network *net, const char *cfgfile, char *err, size_t errlen);

/* ---------------------------------------------------------- fingerprint */

/* What ranks must agree on about the network (fingerprint.c adds the rest). */
typedef struct hpsgd_net_facts {
    uint64_t layers;        /* number of layers */
    uint64_t layer_types;   /* hash of every layer's type, in order */
    uint64_t batch, subdivisions, width, height, channels;
    uint64_t update;        /* hash of what shapes the update: learning rate, momentum, decay, policy, burn_in,
                               max_batches, steps */
} hpsgd_net_facts;
void hpsgd_dn_facts(network *net, hpsgd_net_facts *facts);

#endif
