/*
 * codec.h - the change on the wire. The round's change D is encoded into the
 * buffer the ring all-reduces, in this file alone, and the sum A is decoded
 * from it; the ring learns the element size and the reduction from the
 * codec's wire type. The extras (image counts, the stop flag) never pass
 * through here: they travel as exact integers beside the model (rounds.h).
 *
 * Today's one codec, `none`, sends float32 as it is: the wire buffer is the
 * change buffer itself, so encoding and decoding cost nothing. A 16-bit
 * codec keeps its own wire buffer and its rounding residual here.
 */
#ifndef HPSGD_CODEC_H
#define HPSGD_CODEC_H

#include <stddef.h>

#include "ring.h"

typedef enum { HPSGD_CODEC_NONE } hpsgd_codec_kind;

typedef struct hpsgd_codec {
    hpsgd_codec_kind kind;
    const hpsgd_wire_type *type; /* what the ring moves and adds */
    float *change;               /* D on the way out, A on the way back (the replica's buffer) */
    size_t n;
} hpsgd_codec;

/* change: the replica's n-float change buffer. Returns 0 or -1 (memory). */
int hpsgd_codec_init(hpsgd_codec *k, hpsgd_codec_kind kind, float *change, size_t n);
void hpsgd_codec_free(hpsgd_codec *k);

/* D (in change) -> the wire buffer to all-reduce, of n elements of k->type. */
void *hpsgd_codec_encode(hpsgd_codec *k);

/* The summed wire buffer -> A, in change. */
void hpsgd_codec_decode(hpsgd_codec *k);

/* Bytes the codec holds beyond the change buffer. */
size_t hpsgd_codec_overhead_bytes(const hpsgd_codec *k);

#endif
