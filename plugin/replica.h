/*
 * replica.h - the buffers of the global model G, the round's buffer and B,
 * and the merges of the three modes over the travelling tensors' slices
 * (merge.h has the per-element contract; README, "How it works").
 *
 * R is Darknet's own live weights; G and the round's buffer are ours:
 *   global  G   identical on every rank, the model that is saved;
 *   comm        n floats handed to the MPI thread (through codec.h): this
 *               rank's change D on the way out, the sum A on the way back;
 *   base    B   merge=eager only: G plus this rank's change still in flight,
 *               plus the lookahead (merge.h).
 * Memory: 2n floats (reset) or 3n (eager) on top of Darknet's own model.
 *
 * With a device twin (replica_gpu.c: a GPU build training on a device), G
 * and B live on the device beside Darknet's own `*_gpu` tensors, and the
 * merges run there; on the host stay comm (pinned: the MPI thread's and the
 * codec's) and `global`, a copy of G that is current only after
 * hpsgd_replica_fetch_global().
 */
#ifndef HPSGD_REPLICA_H
#define HPSGD_REPLICA_H

#include <stddef.h>

#include "registry.h"

struct hpsgd_replica_dev;

typedef struct hpsgd_replica {
    const hpsgd_registry *reg;
    size_t n;       /* floats in the fused model */
    float *global;  /* G (with a device twin: its host copy, see above) */
    float *base;    /* B, or NULL with merge=reset (with a device twin: NULL, B is there) */
    float *comm;    /* D, then A */
    float lookahead; /* merge=eager: rounds of average change B runs ahead of G (merge.h) */
    struct hpsgd_replica_dev *dev; /* the device twin (replica_gpu.c), or NULL */
} hpsgd_replica;

/* Allocates G (copied from the live host tensors), comm, and B when eager;
 * lookahead: the eager rule's (options.h), ignored with reset.
 * device: merge on the GPU when every travelling tensor has a device copy
 * (a GPU build only; the host tensors must hold what the device holds). */
int hpsgd_replica_init(hpsgd_replica *p, const hpsgd_registry *reg, int eager, float lookahead, int device);
void hpsgd_replica_free(hpsgd_replica *p);
size_t hpsgd_replica_overhead_bytes(const hpsgd_replica *p);

/* 1 when the merges run on the device: R is then never copied to the host
 * (no hpsgd_registry_pull/push around them). */
int hpsgd_replica_on_device(const hpsgd_replica *p);

/* With a device twin: waits for the device work Darknet has queued (its
 * step, asynchronous on the GPU), which every merge also does first; called
 * apart so that this wait does not count as the merge's own work. */
void hpsgd_replica_settle(hpsgd_replica *p);

/* Re-reads G from the live host tensors (after rank 0's broadcast lands in
 * them, and with a device twin in their device copies too). */
void hpsgd_replica_reset_global(hpsgd_replica *p);

/* Makes `global` hold G (a device-to-host copy with a device twin, else
 * nothing). It writes `global`: callers hold the checkpoint's lock, as
 * every reader of it on another thread does. Any thread but the MPI one. */
void hpsgd_replica_fetch_global(hpsgd_replica *p);

/* mode=hpsgd, at a merge point, in one pass:
 *   D = R - G (reset) or R - B (eager);  if have_round: G += A/N;
 *   comm = D;  R = G (reset) or B = G + lookahead * A/N + D, R = B (eager). */
void hpsgd_replica_merge_launch(hpsgd_replica *p, int have_round, float nranks);

/* mode=hpsgd at the end: merge the last round without launching another:
 *   G += A/N;  R = G + (steps since the launch: R - G_old, or R - B when eager). */
void hpsgd_replica_merge_last(hpsgd_replica *p, float nranks);

/* Blocking rounds (sync, average, the final round): comm = R - G, then after
 * the all-reduce G += A/N and R = G. */
void hpsgd_replica_diff(hpsgd_replica *p);
void hpsgd_replica_merge(hpsgd_replica *p, float nranks);

#endif
