/*
 * options.h - the [hpsgd] cfg section: keys, defaults, validation.
 */
#ifndef HPSGD_OPTIONS_H
#define HPSGD_OPTIONS_H

#include <stddef.h>

typedef enum { HPSGD_MODE_HPSGD, HPSGD_MODE_SYNC, HPSGD_MODE_AVERAGE } hpsgd_mode;
typedef enum { HPSGD_MERGE_RESET, HPSGD_MERGE_EAGER } hpsgd_merge;
typedef enum { HPSGD_SHARD_RANK, HPSGD_SHARD_NONE } hpsgd_shard;
typedef enum { HPSGD_LR_NONE, HPSGD_LR_LINEAR, HPSGD_LR_SQRT } hpsgd_lr_scale;
typedef enum { HPSGD_COMPRESS_NONE, HPSGD_COMPRESS_FP16 } hpsgd_compress;
/* The value's index in the key's choices is its meaning: "0", "1", "auto". */
typedef enum { HPSGD_HIER_OFF, HPSGD_HIER_ON, HPSGD_HIER_AUTO } hpsgd_hierarchical;

#define HPSGD_PATH_MAX 4096

typedef struct hpsgd_options {
    int present;            /* the cfg had an [hpsgd] section */
    hpsgd_mode mode;        /* hpsgd | sync | average */
    hpsgd_merge merge;      /* reset | eager (hpsgd mode) */
    int interval;           /* average mode: local steps between rounds */
    double lookahead;       /* merge=eager: rounds of average change the replica starts ahead of G (merge.h);
                             * HPSGD_LOOKAHEAD_AUTO: hpsgd_lookahead_for() */
    int max_stale;          /* hpsgd: local steps with a round in flight before waiting; 0 = never wait;
                             * HPSGD_MAX_STALE_AUTO: hpsgd_max_stale_for() */
    int sync_warmup;        /* hpsgd: global iterations trained as mode=sync before the merge rule takes over;
                             * HPSGD_SYNC_WARMUP_AUTO: hpsgd_sync_warmup_for() */
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
    hpsgd_compress compress; /* the change on the wire: float32, or binary16 with error feedback (codec.h) */
    hpsgd_hierarchical hierarchical; /* reduce on each host first, then across hosts (hier.c); auto: see hier.h */
    int chunks_in_flight;   /* chunks the ring works on at once (ring.c) */
} hpsgd_options;

void hpsgd_options_defaults(hpsgd_options *o);

/* max_stale's default: 2 on up to 2 ranks, 1 on more. Measured (BENCHMARKS.md,
 * eager, held-out top-1 after equal epochs, paired seeds): on 4 ranks 2
 * trailed sync by 2.2 points and 1 by 0.2; on 2 ranks 1 and 2 were within
 * noise of each other and of sync, and 2 gave 1.1x the images/s of 1 where a
 * round takes about a step (make bench). Detection on 2 emulated hosts at 40
 * Mbit/s (make study WHAT=det, 3 paired seeds, lookahead=0): 2 trailed sync
 * by 2.2 points of mAP after equal epochs and 1 by 1.2, but at equal wall
 * time 2 reached 82.6 and 1 74.1 (sync 67.7); on 4 emulated hosts at the
 * cfg's rate x4, 2 gave 9.5 and 1 28.6 (6 seeds, lookahead=1). The stale
 * part of the merged change is the other ranks' share, (N-1)/N of it. */
#define HPSGD_MAX_STALE_AUTO (-1)
static inline int hpsgd_max_stale_for(const hpsgd_options *o, int nranks)
{
    return o->max_stale != HPSGD_MAX_STALE_AUTO ? o->max_stale : nranks <= 2 ? 2 : 1;
}

/* lookahead's default: 1 on 2 ranks, 0 on one (where no change arrives late
 * and eager is Darknet's own SGD, to rounding) and on more than 2 (where
 * max_stale is 1: each round carries one step and is merged before the
 * next, so G + D already stands where the average will, to first order).
 * Measured (BENCHMARKS.md, "The lookahead" and "The sync warm-up", paired
 * seeds, after equal epochs against sync): detection on 2 emulated hosts,
 * mAP x 100, lookahead 0 / 0.5 / 1: -2.2 / +0.4 / +1.2 (+1.8 in the final
 * runs); on 4 ranks at the cfg's rate x4 with the sync warm-up, 1 trailed
 * by 1.8 and 0 by 0.8 (seeds 1-6); classification within 1 point with 0
 * and with 1 on 2 and 4 ranks. */
#define HPSGD_LOOKAHEAD_AUTO (-1.0)
static inline float hpsgd_lookahead_for(const hpsgd_options *o, int nranks)
{
    return (float)(o->lookahead != HPSGD_LOOKAHEAD_AUTO ? o->lookahead : nranks == 2 ? 1 : 0);
}

/* sync_warmup's default: on more than 2 ranks the first quarter of the run
 * (max_batches / 4), 0 on 1 or 2. The first steps, with the largest
 * gradients, set the size of the weights behind every batch norm, and with
 * it the effective step of the rest of the run; on 4 ranks the eager rule
 * alone ended them 0.81-1.09x sync's size (5-7% larger in the seeds that
 * trailed most), after the warm-up 1.000-1.002x. Measured (BENCHMARKS.md,
 * "The sync warm-up"): detection on 4 emulated hosts at the cfg's rate x4,
 * after equal epochs, 18 paired seeds against sync: -0.37 with it, -4.8
 * without; Darknet's burn-in alone (100 of 2200 iterations) was not enough.
 * On 2 ranks the eager rule alone is within 1 point of sync. */
#define HPSGD_SYNC_WARMUP_AUTO (-1)
static inline long hpsgd_sync_warmup_for(const hpsgd_options *o, int nranks, long max_iterations)
{
    return o->sync_warmup != HPSGD_SYNC_WARMUP_AUTO ? o->sync_warmup : nranks > 2 ? max_iterations / 4 : 0;
}

/* Walking Darknet's parsed sections (darknet/<fork>.c): each section's type
 * goes through hpsgd_options_scan_section(), which says whether to take it
 * out (1: an [hpsgd] section), and hpsgd_options_scan_end() then parses the
 * section from the file into o. Rejects a duplicate section, one placed
 * before [net], misspellings such as [HPSGD], and every bad key or value.
 * Both return -1 with a one-line message naming file, line, key, value and
 * what is allowed. */
typedef struct hpsgd_section_scan {
    const char *cfgfile;
    int seen_net, found, failed;
} hpsgd_section_scan;
int hpsgd_options_scan_section(hpsgd_section_scan *s, const char *type, char *err, size_t errlen);
int hpsgd_options_scan_end(hpsgd_section_scan *s, hpsgd_options *o, char *err, size_t errlen);

/* Names for printing. */
const char *hpsgd_mode_name(hpsgd_mode m);
const char *hpsgd_merge_name(hpsgd_merge m);
const char *hpsgd_lr_scale_name(hpsgd_lr_scale s);
const char *hpsgd_compress_name(hpsgd_compress c);

#endif
