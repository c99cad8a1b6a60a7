/*
 * codec.c - the change on the wire (see codec.h).
 */
#include "codec.h"

int hpsgd_codec_init(hpsgd_codec *k, hpsgd_codec_kind kind, float *change, size_t n)
{
    k->kind = kind;
    k->change = change;
    k->n = n;
    k->type = &hpsgd_wire_f32;
    return 0;
}

void hpsgd_codec_free(hpsgd_codec *k) { k->change = NULL; }

void *hpsgd_codec_encode(hpsgd_codec *k)
{
    switch (k->kind) {
    case HPSGD_CODEC_NONE: return k->change; /* float32 travels as it is */
    }
    return k->change;
}

void hpsgd_codec_decode(hpsgd_codec *k)
{
    switch (k->kind) {
    case HPSGD_CODEC_NONE: return; /* the sum landed in place */
    }
}

size_t hpsgd_codec_overhead_bytes(const hpsgd_codec *k)
{
    (void)k;
    return 0;
}
