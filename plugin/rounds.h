/*
 * rounds.h - the round state machine: when a rank launches a round, when it
 * waits for one, what it merges, and the counters every rank agrees on.
 *
 * Pure logic (README, "How it works"): no MPI, no Darknet, no exit(). It
 * reaches the world through hpsgd_round_ops, which the plugin binds to the
 * MPI thread and the replica (exchange.c) and the unit test binds to a fake
 * transport (tests/unit/test_rounds.c). Only the training thread calls it.
 *
 * Modes (README, "How it works"):
 *   sync     after every local step: a blocking round;
 *   average  every `interval` local steps: a blocking round;
 *   hpsgd    after every local step, if the round in flight has finished or
 *            `max_stale` local steps have passed since it launched: wait for
 *            it, merge it and launch the next; otherwise keep training. While
 *            G holds fewer than `sync_warmup` iterations' images: as sync.
 * At the end: merge the round in flight, then one blocking round if any rank
 * still has local steps that no round carried, or always with a lossy codec
 * (the final flush, a full round: nothing stays behind on any rank).
 */
#ifndef HPSGD_ROUNDS_H
#define HPSGD_ROUNDS_H

#include <stddef.h>
#include <stdint.h>

#include "options.h"

/* Exact integers that ride with every round, summed over ranks outside the
 * model's buffer, so they stay exact whatever the model's encoding. */
typedef struct hpsgd_extras {
    int64_t images; /* images this rank trained on in the round */
    int64_t stop;   /* 1: this rank was asked to stop (a signal) */
} hpsgd_extras;
#define HPSGD_EXTRAS_COUNT (sizeof(hpsgd_extras) / sizeof(int64_t))

/* What a merge does to the model (replica.h has the arithmetic):
 *   LAUNCH      hpsgd merge point: D = R - G (or R - B); G += A/N if a round
 *               finished; the round's buffer = D; R = G (or B = G + D, R = B)
 *   DIFF        blocking round, before it: the round's buffer = R - G
 *   MERGE       blocking round, after it: G += A/N; R = G
 *   MERGE_LAST  the end, hpsgd: G += A/N; R keeps its unsent steps on top. */
typedef enum { HPSGD_MODEL_LAUNCH, HPSGD_MODEL_DIFF, HPSGD_MODEL_MERGE, HPSGD_MODEL_MERGE_LAST } hpsgd_model_op;

typedef struct hpsgd_round_ops {
    /* Hands the round's buffer and these extras to the transport. full: the
     * round carries the change whole (with a lossy codec: in float32, with
     * everything the codec still holds); the final flush, on every rank. */
    void (*launch)(void *ctx, const hpsgd_extras *mine, int full);
    /* 1 when the round in flight has finished, without waiting. */
    int (*finished)(void *ctx);
    /* Waits for the round in flight; sum = the extras summed over ranks.
     * Errors do not return (the caller's fatal path ends the job). */
    void (*wait)(void *ctx, hpsgd_extras *sum);
    /* The largest of every rank's `mine` (a blocking exchange). */
    int64_t (*max_over_ranks)(void *ctx, int64_t mine);
    /* Applies op to the model; merged_seen: images in G after it (LAUNCH
     * with have_round = 0 and DIFF change no G: the value is unchanged). */
    void (*model)(void *ctx, hpsgd_model_op op, int have_round, size_t merged_seen);
    /* After every merge into G (verify=N hooks in here); may be NULL. */
    void (*merged)(void *ctx, long merges);
} hpsgd_round_ops;

typedef struct hpsgd_rounds {
    /* Settings, fixed at start. */
    hpsgd_mode mode;
    int max_stale;
    int interval;
    int nranks;
    size_t sync_until_seen;     /* hpsgd: blocking rounds while G holds fewer images (sync_warmup) */
    int lossy;                  /* compress != none: the codec holds a residual until a full round */
    size_t images_per_step;     /* batch x subdivisions: what a whole local step adds to seen */
    const hpsgd_round_ops *ops;
    void *ctx;

    /* The round being built and the one in flight. */
    int in_flight;
    long launched;              /* rounds launched so far */
    long steps_since_launch;    /* local steps in the round being built */
    int64_t images_since_launch;
    long steps_in_flight;       /* this rank's steps in the round in flight */

    /* Agreed by all ranks. */
    size_t merged_seen;         /* images merged into G, all ranks */
    size_t shown_seen;          /* what Darknet's `seen` shows between merge points: a multiple of
                                   images_per_step, so Darknet updates every `subdivisions` batches */
    int stop_agreed;            /* some rank asked to stop: every rank ends after this merge */
    long merges;

    /* Figures. */
    long steps_overlapped;      /* local steps taken while a round was pending */
    long rounds_hidden;         /* rounds finished before training needed them */
} hpsgd_rounds;

/* max_iterations: the cfg's max_batches, for sync_warmup's default. */
void hpsgd_rounds_init(hpsgd_rounds *r, const hpsgd_options *o, int nranks, size_t images_per_step, size_t seen,
                       long max_iterations, const hpsgd_round_ops *ops, void *ctx);

/* After every local step (Darknet's update). images: what the step trained
 * on (images_per_step, except a first step that Darknet shortens to reach
 * its update cadence after resuming from a `seen` that is not a multiple of
 * images_per_step). stop_requested: this rank was asked to stop. Returns 1
 * when G changed (a merge happened). Afterwards r->shown_seen is what
 * Darknet's `seen` must show, and r->stop_agreed says whether the training
 * loop must end now. */
int hpsgd_rounds_after_step(hpsgd_rounds *r, int64_t images, int stop_requested);

/* At the end of training: merges the round in flight and flushes the local
 * steps no round carried, on every rank, so G holds every step of every rank.
 * With a lossy codec the flush always runs (the residuals), as a full round.
 * stop_requested rides the flush round like any other. */
void hpsgd_rounds_finish(hpsgd_rounds *r, int stop_requested);

#endif
