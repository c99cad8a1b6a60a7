/*
 * hpsgd.h - the hooks that patched Darknet calls (see patches/).
 *
 * Every hook is a no-op that reproduces stock Darknet when the cfg has no
 * [hpsgd] section, so an unmodified cfg trains exactly as before. Only the
 * training thread calls these functions.
 */
#ifndef HPSGD_H
#define HPSGD_H

#include "darknet.h"

struct list;

/* Which training command called hpsgd_train_begin(). */
#define HPSGD_DETECTOR 1
#define HPSGD_CLASSIFIER 2

/* examples/darknet.c, main(): remembers the command line; returns the GPU a
 * rank should use when neither -i nor -gpus is given (stock: 0). */
int hpsgd_main(int argc, char **argv);

/* src/parser.c: takes every [hpsgd] section out of the parsed cfg, so that it
 * is neither a layer nor counted in make_network(), and validates it. (struct
 * list: AlexeyAB's darknet.h has no `list` typedef; both forks name the tag.) */
void hpsgd_cfg_sections(char *cfgfile, struct list *sections);

/* examples/{detector,classifier}.c, after the network is loaded and the train
 * list is read: starts MPI and the background thread, makes every rank hold
 * rank 0's model, seeds the data sampling. */
void hpsgd_train_begin(network *net, int task, char **paths, int npaths, int ngpus, char *weightfile,
                       char *backup_dir, char *base);

/* Loader threads for load_data(): stock_default, the [hpsgd] key, the
 * DARKNET_LOADER_THREADS environment variable, or a per-rank share of cores. */
int hpsgd_loader_threads(int stock_default);

/* rand() for choices every rank must make alike (random=1 resize). */
int hpsgd_shared_rand(void);

/* src/network.c, right after update_network(): the HPSGD step. */
void hpsgd_after_update(network *net);

/* After Darknet's per-iteration line: the plugin's figures and CSV row. */
void hpsgd_iteration_end(network *net, float loss, float avg_loss);

/* Saving cadence: the multiple of `period` that the global iteration reached in
 * this iteration, or 0. Stock: get_current_batch(net) when it is a multiple. */
int hpsgd_crossed(network *net, int period);

/* save_weights() of the global model, by rank 0 only, written atomically. */
void hpsgd_save_weights(network *net, char *filename);

/* 1 once the ranks agreed to stop (a signal): for training loops that work on
 * a copy of the network (AlexeyAB), where max_batches cannot be lowered. */
int hpsgd_stopped(void);

/* 1 when this process runs the evaluations of a training run (-map): rank 0
 * under [hpsgd], every process without it. */
int hpsgd_evaluates(void);

/* AlexeyAB's rand_scale(s) drawn with hpsgd_shared_rand(), so that every rank
 * resizes alike (random=1); without [hpsgd] the same draws as rand_scale().
 * In the AlexeyAB adapter (darknet/alexeyab.c). */
float hpsgd_rand_scale(float s);

/* Before the final save: finish the round in flight, merge, agree on the end,
 * and load the global model into the network. */
void hpsgd_train_end(network *net);

/* src/image.c, load_alphabet(): a Darknet data path such as "data/labels",
 * relative to the working directory if it exists there (stock), else beside
 * the executable if it exists there, else unchanged. The result stays valid
 * until the next call. */
const char *hpsgd_data_path(const char *rel);

/* examples/detector.c: `detector map DATA CFG WEIGHTS [-iou_thresh T]
 * [-points N]`, mAP as AlexeyAB's Darknet computes it (darknet/pjreddie_map.c). */
void hpsgd_detector_map(char *datacfg, char *cfgfile, char *weightfile, int argc, char **argv);

#endif
