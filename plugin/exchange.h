/*
 * exchange.h - the round state machine's operations, bound to the real
 * parts: the MPI thread (comm.c) carries the round, the codec (codec.c) puts
 * the change on the wire, the replica (replica.c) merges, the checkpoint's
 * lock (checkpoint.c) guards G while it changes, and the report counts it
 * all. Training thread only.
 */
#ifndef HPSGD_EXCHANGE_H
#define HPSGD_EXCHANGE_H

#include "checkpoint.h"
#include "codec.h"
#include "comm.h"
#include "replica.h"
#include "report.h"
#include "rounds.h"

typedef struct hpsgd_exchange {
    hpsgd_comm *comm;
    hpsgd_replica *rep;
    hpsgd_checkpoint *ckpt;
    hpsgd_report *report;
    const hpsgd_rounds *rounds;   /* whose ops these are: names and step counts */
    hpsgd_codec codec;
    int verify;                   /* [hpsgd] verify=N */
    float nranks;
    int64_t extras[HPSGD_EXTRAS_COUNT]; /* the round in flight's counters, then their sums */
} hpsgd_exchange;

extern const hpsgd_round_ops hpsgd_exchange_ops;

/* compress: the codec of the change ([hpsgd] compress). Returns 0, or -1
 * (out of memory). */
int hpsgd_exchange_init(hpsgd_exchange *x, hpsgd_comm *comm, hpsgd_replica *rep, hpsgd_checkpoint *ckpt,
                        hpsgd_report *report, const hpsgd_rounds *rounds, int verify, hpsgd_compress compress);

#endif
