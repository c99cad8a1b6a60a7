/*
 * options.h - the [hpsgd] cfg section: keys, defaults, validation.
 */
#ifndef HPSGD_OPTIONS_H
#define HPSGD_OPTIONS_H

#include <stddef.h>
#include "darknet.h"

typedef enum { HPSGD_MODE_HPSGD, HPSGD_MODE_SYNC, HPSGD_MODE_AVERAGE } hpsgd_mode;
typedef enum { HPSGD_MERGE_RESET, HPSGD_MERGE_EAGER } hpsgd_merge;
typedef enum { HPSGD_SHARD_RANK, HPSGD_SHARD_NONE } hpsgd_shard;
typedef enum { HPSGD_LR_NONE, HPSGD_LR_LINEAR, HPSGD_LR_SQRT } hpsgd_lr_scale;

#define HPSGD_PATH_MAX 4096

typedef struct hpsgd_options {
    int present;            /* the cfg had an [hpsgd] section */
    hpsgd_mode mode;        /* hpsgd | sync | average */
    hpsgd_merge merge;      /* reset | eager (hpsgd mode) */
    int interval;           /* average mode: local steps between rounds */
    int max_stale;          /* hpsgd: local steps with a round in flight before waiting; 0 = never wait */
    double chunk_mb;        /* size of one reduction chunk of the fused buffer */
    int stats;              /* average batch-norm rolling statistics too */
    unsigned long seed;     /* data seed; 0 = rank 0 picks one */
    hpsgd_shard shard;      /* rank: each rank samples its own images; none: all alike */
    int verify;             /* every N merges check that all ranks hold the same G; 0 = off */
    double timeout;         /* seconds one collective may take before the job is aborted */
    char log[HPSGD_PATH_MAX]; /* CSV written by rank 0; "" = none */
    hpsgd_lr_scale lr_scale; /* learning rate x N (linear), x sqrt(N), or as in the cfg */
    int loader_threads;     /* image loader threads per rank; 0 = cores per rank */
    int print_all;          /* every rank prints Darknet's lines, not only rank 0 */
} hpsgd_options;

void hpsgd_options_defaults(hpsgd_options *o);

/* Takes every [hpsgd] section out of Darknet's parsed section list (freeing
 * it) and parses it, from cfgfile, into o. Rejects a duplicate section, one
 * placed before [net], misspellings such as [HPSGD], and every bad key or
 * value. Returns 0, or -1 with a one-line message naming file, line, key,
 * value and what is allowed. */
int hpsgd_options_take_sections(hpsgd_options *o, const char *cfgfile, list *sections,
                                char *err, size_t errlen);

/* Names for printing. */
const char *hpsgd_mode_name(hpsgd_mode m);
const char *hpsgd_merge_name(hpsgd_merge m);
const char *hpsgd_lr_scale_name(hpsgd_lr_scale s);

#endif
