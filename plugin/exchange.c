/*
 * exchange.c - the rounds' operations on the real parts (see exchange.h).
 */
#include "exchange.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "lifecycle.h"
#include "log.h"
#include "util.h"

int hpsgd_exchange_init(hpsgd_exchange *x, hpsgd_comm *comm, hpsgd_replica *rep, hpsgd_checkpoint *ckpt,
                        hpsgd_report *report, const hpsgd_rounds *rounds, int verify, hpsgd_compress compress)
{
    memset(x, 0, sizeof *x);
    x->comm = comm;
    x->rep = rep;
    x->ckpt = ckpt;
    x->report = report;
    x->rounds = rounds;
    x->verify = verify;
    x->nranks = (float)comm->size;
    hpsgd_codec_kind kind = compress == HPSGD_COMPRESS_FP16 ? HPSGD_CODEC_FP16 : HPSGD_CODEC_NONE;
    return hpsgd_codec_init(&x->codec, kind, rep->comm, rep->n);
}

/* Encoding and decoding run on the training thread at merge points: they
 * count as host work per merge, beside the merge itself. */
static void launch(void *ctx, const hpsgd_extras *mine, int full)
{
    hpsgd_exchange *x = ctx;
    memcpy(x->extras, mine, sizeof x->extras);
    double t = hpsgd_now();
    void *wire = hpsgd_codec_encode(&x->codec, full);
    x->report->total_host_ms += 1e3 * (hpsgd_now() - t);
    hpsgd_job job = {.kind = HPSGD_JOB_ALLREDUCE,
                     .buf = wire,
                     .count = x->rep->n,
                     .type = x->codec.type,
                     .lost = hpsgd_codec_lost(&x->codec),
                     .exact = x->extras,
                     .nexact = HPSGD_EXTRAS_COUNT};
    snprintf(job.what, sizeof job.what, "round %ld", x->rounds->launched);
    hpsgd_comm_submit(x->comm, &job);
}

static int finished(void *ctx) { return hpsgd_comm_finished(((hpsgd_exchange *)ctx)->comm); }

static void wait_round(void *ctx, hpsgd_extras *sum)
{
    hpsgd_exchange *x = ctx;
    char err[600];
    double t = hpsgd_now();
    if (hpsgd_comm_wait(x->comm, err, sizeof err)) hpsgd_fatal("%s", err);
    hpsgd_report_round(x->report, 1e3 * (hpsgd_now() - t), x->comm->job_ms, x->comm->job_cpu_ms,
                       x->comm->job_bytes_sent, x->comm->job_bytes_inter, x->rounds->steps_in_flight);
    t = hpsgd_now();
    hpsgd_codec_decode(&x->codec);
    x->report->total_host_ms += 1e3 * (hpsgd_now() - t);
    memcpy(sum, x->extras, sizeof *sum);
}

static int64_t max_over_ranks(void *ctx, int64_t mine)
{
    hpsgd_exchange *x = ctx;
    int64_t *all = hpsgd_gather(x->comm, &mine, sizeof mine, "end-of-training check"), most = all[0];
    for (int r = 1; r < x->comm->size; ++r) most = all[r] > most ? all[r] : most;
    free(all);
    return most;
}

/* G with its `seen` changed only under the checkpoint's lock. A GPU build
 * merging on the host copies R from the device and back around the merge;
 * a device twin merges R where it is. */
static void model(void *ctx, hpsgd_model_op op, int have_round, size_t merged_seen)
{
    hpsgd_exchange *x = ctx;
    const hpsgd_registry *reg = x->rep->reg;
    int host = !hpsgd_replica_on_device(x->rep);
    hpsgd_replica_settle(x->rep); /* Darknet's own step, still running on the device, is not merge work */
    double t = hpsgd_now();
    if (host && op != HPSGD_MODEL_MERGE) hpsgd_registry_pull(reg); /* MERGE follows DIFF's pull */
    if (op == HPSGD_MODEL_DIFF) {
        hpsgd_replica_diff(x->rep); /* G does not change */
    } else {
        hpsgd_checkpoint_lock(x->ckpt);
        if (op == HPSGD_MODEL_LAUNCH) hpsgd_replica_merge_launch(x->rep, have_round, x->nranks);
        else if (op == HPSGD_MODEL_MERGE) hpsgd_replica_merge(x->rep, x->nranks);
        else hpsgd_replica_merge_last(x->rep, x->nranks);
        x->ckpt->seen = merged_seen;
        hpsgd_checkpoint_unlock(x->ckpt);
        if (host) hpsgd_registry_push(reg);
    }
    x->report->total_host_ms += 1e3 * (hpsgd_now() - t);
}

/* verify=N: every N merges all ranks compare a checksum of G. */
static void merged(void *ctx, long merges)
{
    hpsgd_exchange *x = ctx;
    if (!x->verify || merges % x->verify) return;
    char what[64];
    snprintf(what, sizeof what, "verify after merge %ld", merges);
    hpsgd_checkpoint_lock(x->ckpt); /* the host copy of G is shared with the saver thread */
    hpsgd_replica_fetch_global(x->rep);
    uint64_t mine = hpsgd_hash(x->rep->global, x->rep->n * sizeof(float), 0);
    hpsgd_checkpoint_unlock(x->ckpt);
    uint64_t *all = hpsgd_gather(x->comm, &mine, sizeof mine, what);
    int r = hpsgd_first_differing(all, sizeof mine, x->comm->size);
    uint64_t a = all[0], b = r >= 0 ? all[r] : 0;
    free(all);
    if (r >= 0)
        hpsgd_fatal("verify: after merge %ld rank %d holds a different global model than rank 0 (checksum %016llx vs "
                    "%016llx)",
                    merges, r, (unsigned long long)b, (unsigned long long)a);
}

const hpsgd_round_ops hpsgd_exchange_ops = {launch, finished, wait_round, max_over_ranks, model, merged};
