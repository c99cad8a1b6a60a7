/*
 * rounds.c - the round state machine (see rounds.h).
 *
 * Iteration counting (README, "Iterations and learning rate"): Darknet's
 * `seen` counts the images of all ranks. It changes only at merge points, to
 * a value every rank computes from the same merged extras, so loop
 * conditions, learning-rate schedules and saving cadence agree across ranks.
 */
#include "rounds.h"

void hpsgd_rounds_init(hpsgd_rounds *r, const hpsgd_options *o, int nranks, size_t images_per_step, size_t seen,
                       long max_iterations, const hpsgd_round_ops *ops, void *ctx)
{
    *r = (hpsgd_rounds){0};
    r->mode = o->mode;
    r->max_stale = hpsgd_max_stale_for(o, nranks);
    r->interval = o->interval;
    r->nranks = nranks;
    if (o->mode == HPSGD_MODE_HPSGD)
        r->sync_until_seen = (size_t)hpsgd_sync_warmup_for(o, nranks, max_iterations) * images_per_step;
    r->lossy = o->compress != HPSGD_COMPRESS_NONE;
    r->images_per_step = images_per_step;
    r->ops = ops;
    r->ctx = ctx;
    r->merged_seen = r->shown_seen = seen;
}

static void launch(hpsgd_rounds *r, int stop_requested, int full)
{
    hpsgd_extras mine = {r->images_since_launch, stop_requested ? 1 : 0};
    r->steps_in_flight = r->steps_since_launch;
    r->steps_since_launch = 0;
    r->images_since_launch = 0;
    ++r->launched;
    r->ops->launch(r->ctx, &mine, full);
    r->in_flight = 1;
}

/* Waits for the round in flight; its sums become the agreed counters. The
 * model op that follows applies them to G under the same lock. */
static void finish(hpsgd_rounds *r)
{
    hpsgd_extras sum;
    r->rounds_hidden += r->ops->finished(r->ctx);
    r->ops->wait(r->ctx, &sum);
    r->in_flight = 0;
    r->merged_seen += (size_t)sum.images;
    if (sum.stop > 0) r->stop_agreed = 1;
}

/* Darknet updates when seen / batch is a multiple of subdivisions: a shown
 * `seen` that is a multiple of images_per_step keeps every later step whole
 * (stock Darknet shortens only the first step after a misaligned resume).
 * The iteration, seen / images_per_step, is the same either way. */
static size_t aligned(const hpsgd_rounds *r, size_t seen)
{
    return r->images_per_step ? seen - seen % r->images_per_step : seen;
}

/* Between rounds `seen` stays as agreed; only a misaligned start is moved up
 * to the next multiple, so that the step after a shortened one is whole on
 * every rank alike. */
static void keep_whole_steps(hpsgd_rounds *r)
{
    size_t rem = r->images_per_step ? r->shown_seen % r->images_per_step : 0;
    if (rem) r->shown_seen += r->images_per_step - rem;
}

static void merged(hpsgd_rounds *r)
{
    ++r->merges;
    if (r->ops->merged) r->ops->merged(r->ctx, r->merges);
}

/* mode=hpsgd merge point: merge the finished round (if any), launch the next. */
static void merge_point(hpsgd_rounds *r, int have_round, int stop_requested)
{
    r->ops->model(r->ctx, HPSGD_MODEL_LAUNCH, have_round, r->merged_seen);
    if (have_round) merged(r);
    launch(r, stop_requested, 0);
    /* G holds every round merged so far, and the round just launched holds at
     * least one step of every rank: a count all ranks agree on that never
     * runs ahead of the truth, so training never ends short of max_batches. */
    r->shown_seen = aligned(r, r->merged_seen + (size_t)r->nranks * r->images_per_step);
}

/* sync, average and the final flush (full): D = R - G, all-reduce, G += A/N, R = G. */
static void blocking_round(hpsgd_rounds *r, int stop_requested, int full)
{
    r->ops->model(r->ctx, HPSGD_MODEL_DIFF, 0, r->merged_seen);
    launch(r, stop_requested, full);
    finish(r);
    r->ops->model(r->ctx, HPSGD_MODEL_MERGE, 1, r->merged_seen);
    merged(r);
    r->shown_seen = aligned(r, r->merged_seen);
}

int hpsgd_rounds_after_step(hpsgd_rounds *r, int64_t images, int stop_requested)
{
    ++r->steps_since_launch;
    r->images_since_launch += images;
    switch (r->mode) {
    case HPSGD_MODE_SYNC:
        blocking_round(r, stop_requested, 0);
        return 1;
    case HPSGD_MODE_AVERAGE:
        if (r->steps_since_launch < r->interval) {
            keep_whole_steps(r);
            return 0;
        }
        blocking_round(r, stop_requested, 0);
        return 1;
    case HPSGD_MODE_HPSGD:
        /* The warm-up (options.h): blocking rounds, which leave B = G, so
         * the first merge point after it launches from a clean start. */
        if (!r->in_flight && r->merged_seen < r->sync_until_seen) {
            blocking_round(r, stop_requested, 0);
            return 1;
        }
        if (!r->in_flight) {
            merge_point(r, 0, stop_requested);
            return 0;
        }
        /* The paper's overlap: keep training the replica while the round is
         * pending, up to max_stale steps (0: never wait). */
        if (!r->ops->finished(r->ctx) && (r->max_stale == 0 || r->steps_since_launch < r->max_stale)) {
            ++r->steps_overlapped;
            keep_whole_steps(r);
            return 0;
        }
        finish(r);
        merge_point(r, 1, stop_requested);
        return 1;
    }
    return 0;
}

void hpsgd_rounds_finish(hpsgd_rounds *r, int stop_requested)
{
    /* Not counted as a merge (no verify): the flush or the final checksum follows. */
    if (r->in_flight) {
        finish(r);
        r->ops->model(r->ctx, HPSGD_MODEL_MERGE_LAST, 1, r->merged_seen);
    }
    /* Local steps not yet in any round (none when the loop ended at a merge
     * point, the usual case): if any rank has some, all run one more round.
     * A lossy codec's residuals are unsent on every rank (the setting is in
     * the fingerprint, so all ranks take this branch without asking). */
    if (r->lossy || r->ops->max_over_ranks(r->ctx, r->steps_since_launch) > 0) blocking_round(r, stop_requested, 1);
    r->shown_seen = aligned(r, r->merged_seen);
}
