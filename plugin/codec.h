/*
 * codec.h - the change on the wire. The round's change D is encoded into the
 * buffer the ring all-reduces, in this file alone, and the sum A is decoded
 * from it; the ring learns the element size and the reduction from the
 * codec's wire type. The extras (image counts, the stop flag) never pass
 * through here: they travel as exact integers beside the model (rounds.h).
 *
 * `none` sends float32 as it is: the wire buffer is the change buffer itself,
 * so encoding and decoding cost nothing.
 *
 * `fp16` ([hpsgd] compress=fp16) sends IEEE binary16, half the bytes, with
 * error feedback, so that no part of any step is lost:
 *   - encode: v = D + e; the wire gets fp16(v) (round to nearest even; a
 *     finite value beyond +-65504 saturates there); e = v - decoded(wire),
 *     the rounding residual, stays on the rank and rides the next change;
 *   - the ring decodes, adds in float32 and re-encodes the same way, in its
 *     fixed order, so every rank gets the same bits of A; what each addition
 *     rounds away (or saturates) is added to the residual of the rank that
 *     did it, so sum over ranks of (sent + residual) is conserved;
 *   - decode: A = decoded(wire), the same bits on every rank, and G is
 *     updated from it alone;
 *   - a full round (the end-of-training flush, agreed by all ranks) sends
 *     D + e in float32 and zeroes e: the saved model holds every step of
 *     every rank, to float32 rounding, as with `none`.
 * inf and NaN travel as they are (the run has diverged; `none` would put them
 * into G as well) and leave no residual.
 */
#ifndef HPSGD_CODEC_H
#define HPSGD_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "ring.h"

typedef enum { HPSGD_CODEC_NONE, HPSGD_CODEC_FP16 } hpsgd_codec_kind;

/* binary16 elements, float32 sums re-encoded; feeds rounding into lost. */
extern const hpsgd_wire_type hpsgd_wire_f16;

typedef struct hpsgd_codec {
    hpsgd_codec_kind kind;
    const hpsgd_wire_type *type; /* what the ring moves and adds in the round in flight */
    float *change;               /* D on the way out, A on the way back (the replica's buffer) */
    size_t n;
    uint16_t *wire;              /* fp16: the encoded change, then the encoded sum */
    float *residual;             /* fp16: what the wire has not carried yet (e) */
} hpsgd_codec;

/* change: the replica's n-float change buffer. Returns 0 or -1 (memory). */
int hpsgd_codec_init(hpsgd_codec *k, hpsgd_codec_kind kind, float *change, size_t n);
void hpsgd_codec_free(hpsgd_codec *k);

/* D (in change) -> the wire buffer to all-reduce, of n elements of k->type.
 * full: this round carries D and the residual whole, in float32 (every rank
 * must pass the same full for the same round). */
void *hpsgd_codec_encode(hpsgd_codec *k, int full);

/* Where the ring adds what its reductions drop in the round in flight
 * (job.lost), or NULL when that round is exact. */
float *hpsgd_codec_lost(const hpsgd_codec *k);

/* The summed wire buffer -> A, in change. */
void hpsgd_codec_decode(hpsgd_codec *k);

/* Bytes the codec holds beyond the change buffer. */
size_t hpsgd_codec_overhead_bytes(const hpsgd_codec *k);

/* One element: x -> binary16 bits (nearest, ties to even; finite values
 * saturate at +-65504); *dropped = x - decoded, 0 for inf and NaN. */
uint16_t hpsgd_f16_encode(float x, float *dropped);
float hpsgd_f16_decode(uint16_t h);

#endif
