/*
 * ring.h - the ring all-reduce (reduce-scatter, then all-gather) over any
 * element type with a reduction passed in, as Gloo's rings take theirs.
 *
 * Why a hand-written ring rather than MPI_Allreduce: the MPI standard does
 * not promise that every rank gets the same bits from a float sum, and the
 * global model must be bit-identical on all ranks. In a ring reduce-scatter
 * each segment is summed exactly once, in a fixed order (starting at the rank
 * that owns it), and then copied to everyone, so all ranks hold the same
 * bits, run after run. It also moves 2(N-1)/N of the buffer per rank, the
 * bandwidth optimum, and its point-to-point requests can be polled with a
 * deadline, which a blocking collective cannot.
 */
#ifndef HPSGD_RING_H
#define HPSGD_RING_H

#include <stddef.h>

/* How elements travel and add up. reduce: acc[i] = in[i] + acc[i] for i <
 * n, the incoming partial sum first (the ring's fixed order). A type whose
 * elements cannot hold every sum (16 bits) adds what its rounding dropped to
 * lost[i] when lost is not NULL (exact types ignore it). */
typedef struct hpsgd_wire_type {
    const char *name;
    size_t elem_size;
    void (*reduce)(void *acc, const void *in, size_t n, float *lost);
} hpsgd_wire_type;

/* float32 elements, float32 sums: the full-precision change. */
extern const hpsgd_wire_type hpsgd_wire_f32;
/* int64 elements, exact sums: the counters beside the model. */
extern const hpsgd_wire_type hpsgd_wire_i64;

/* Chunks in flight ([hpsgd] chunks_in_flight): the most a ring works on at
 * once (one tag each), and the default, measured (BENCHMARKS.md, make
 * chunk-sweep, 125 Mbit/s links, 34.8 MB, 3 runs): 4 took the flat ring from
 * 0.65 to 0.91 of the bandwidth bound on 8 hosts, 0.89 to 0.93 on 2; 8 did
 * no better than 4. */
#define HPSGD_RING_MAX_IN_FLIGHT 16
#define HPSGD_RING_DEFAULT_IN_FLIGHT 4

struct hpsgd_comm;

/* All-reduces count elements of buf in chunks of c->chunk_bytes, in place,
 * on the MPI thread, c->chunks_in_flight chunks at a time. lost: NULL, or count floats beside buf that receive
 * what this rank's reductions dropped (the codec's residual). A stall past
 * deadline aborts the job (comm.c). */
void hpsgd_ring_allreduce(struct hpsgd_comm *c, void *buf, size_t count, const hpsgd_wire_type *type, float *lost,
                          double deadline, const char *what);

#endif
