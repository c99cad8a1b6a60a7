/*
 * codec.c - the change on the wire (see codec.h).
 *
 * The binary16 conversions are bit manipulations plus float32 arithmetic in
 * the default rounding mode, with no branches on the value's range, so they
 * give the same bits on every rank and compile to straight-line code (weight
 * changes straddle binary16's subnormal limit, 6.1e-5, so a branch on it
 * would be mispredicted often). They follow Marat Dukhan's FP16 library
 * (MIT licence); tests/unit/test_codec.c checks every binary16 value and
 * every rounding boundary.
 */
#include "codec.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HALF_MAX 65504.0f

static inline uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* cond ? a : b on bits, as masks: GCC's vectorizer leaves ?: alone here. */
static inline uint32_t pick(uint32_t cond, uint32_t a, uint32_t b) { return b ^ ((a ^ b) & (0u - cond)); }

/* float32 -> binary16, nearest even; beyond the range -> inf; NaN -> quiet NaN. */
static inline uint16_t to_half(float f)
{
    /* x 2^112 x 2^-110: values binary16 cannot hold overflow to inf here,
     * the rest come out exactly x4 (the exponent's offset is added below). */
    float base = (fabsf(f) * 0x1.0p+112f) * 0x1.0p-110f;
    uint32_t w = bits_of(f), shl1 = w + w, sign = w & 0x80000000u;
    /* Adding 2^(e+13) (at least 2^-1 x 2^-14's scale, for subnormals) makes
     * the float adder round the mantissa at binary16's last bit, ties to even. */
    uint32_t bias = shl1 & 0xFF000000u;
    bias = pick(bias < 0x71000000u, 0x71000000u, bias);
    base = float_of((bias >> 1) + 0x07800000u) + base;
    uint32_t b = bits_of(base);
    uint32_t nonsign = ((b >> 13) & 0x7C00u) + (b & 0x0FFFu);
    return (uint16_t)((sign >> 16) | pick(shl1 > 0xFF000000u, 0x7E00u, nonsign));
}

/* binary16 -> float32, exact (every binary16 value is a float32 value). */
static inline float from_half(uint16_t h)
{
    uint32_t w = (uint32_t)h << 16, sign = w & 0x80000000u, two_w = w + w;
    /* Normal: shift the exponent and mantissa into place, rebias by 2^-112. */
    float normal = float_of((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
    /* Subnormal: the mantissa under 0.5's exponent, minus 0.5. */
    float subnormal = float_of((two_w >> 17) | (126u << 23)) - 0.5f;
    return float_of(sign | pick(two_w < (1u << 27), bits_of(subnormal), bits_of(normal)));
}

/* One element with saturation and what it dropped (codec.h). Selects on
 * bits, no branches: the loops below vectorize. */
static inline uint16_t encode1(float x, float *dropped)
{
    uint32_t w = bits_of(x), mag = w & 0x7fffffffu;
    uint32_t finite = mag < 0x7f800000u, big = mag > 0x477fe000u; /* 65504 */
    float c = float_of(pick(finite & big, (w & 0x80000000u) | 0x477fe000u, w));
    uint16_t h = to_half(c);
    /* Exact: x and its rounding are within a factor of two, or the rounding is 0. */
    *dropped = float_of(bits_of(x - from_half(h)) & (0u - finite));
    return h;
}

/* The loops run in blocks of a fixed length, so that -O2's vectorizer
 * (GCC's "very cheap" model needs a trip count it knows) takes them. For
 * yolov3-tiny's 8.7 M floats on this 2-core machine (tests/unit/test_codec.c):
 * encode 37-95 ms as plain loops, 15-17 ms in blocks; decode 8-22 ms, 3.3 ms;
 * the ring's reduction of the whole buffer 27 ms. */
#define BLOCK 1024

static inline void encode_run(uint16_t *restrict w, const float *restrict d, float *restrict e, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        float dropped;
        w[i] = encode1(d[i] + e[i], &dropped);
        e[i] = dropped;
    }
}

static inline void decode_run(float *restrict a, const uint16_t *restrict w, size_t n)
{
    for (size_t i = 0; i < n; ++i) a[i] = from_half(w[i]);
}

static inline void reduce_run(uint16_t *restrict a, const uint16_t *restrict b, float *restrict dropped, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        float dr;
        a[i] = encode1(from_half(b[i]) + from_half(a[i]), &dr);
        dropped[i] = dr;
    }
}

static inline void add_run(float *restrict lost, const float *restrict dropped, size_t n)
{
    for (size_t i = 0; i < n; ++i) lost[i] += dropped[i];
}

uint16_t hpsgd_f16_encode(float x, float *dropped) { return encode1(x, dropped); }
float hpsgd_f16_decode(uint16_t h) { return from_half(h); }

/* The ring's reduction: decode both, add in float32 (incoming partial sum
 * first, as reduce_f32 does), re-encode; the rounding goes to this rank's
 * residual, which sends it with the next change. */
static void reduce_f16(void *acc, const void *in, size_t n, float *lost)
{
    uint16_t *a = acc;
    const uint16_t *b = in;
    float dropped[BLOCK];
    size_t i = 0;
    for (; i + BLOCK <= n; i += BLOCK) {
        reduce_run(a + i, b + i, dropped, BLOCK);
        if (lost) add_run(lost + i, dropped, BLOCK);
    }
    reduce_run(a + i, b + i, dropped, n - i);
    if (lost) add_run(lost + i, dropped, n - i);
}

const hpsgd_wire_type hpsgd_wire_f16 = {"float16", sizeof(uint16_t), reduce_f16};

int hpsgd_codec_init(hpsgd_codec *k, hpsgd_codec_kind kind, float *change, size_t n)
{
    memset(k, 0, sizeof *k);
    k->kind = kind;
    k->change = change;
    k->n = n;
    k->type = kind == HPSGD_CODEC_NONE ? &hpsgd_wire_f32 : &hpsgd_wire_f16; /* what a usual round moves */
    if (kind == HPSGD_CODEC_NONE) return 0;
    k->wire = malloc((n ? n : 1) * sizeof *k->wire);
    k->residual = calloc(n ? n : 1, sizeof *k->residual);
    if (!k->wire || !k->residual) {
        hpsgd_codec_free(k);
        return -1;
    }
    return 0;
}

void hpsgd_codec_free(hpsgd_codec *k)
{
    free(k->wire);
    free(k->residual);
    k->wire = NULL;
    k->residual = NULL;
    k->change = NULL;
}

void *hpsgd_codec_encode(hpsgd_codec *k, int full)
{
    if (k->kind == HPSGD_CODEC_NONE) return k->change; /* float32 travels as it is */
    float *d = k->change, *e = k->residual;
    if (full) {
        for (size_t i = 0; i < k->n; ++i) d[i] += e[i];
        memset(e, 0, k->n * sizeof *e);
        k->type = &hpsgd_wire_f32;
        return d;
    }
    uint16_t *w = k->wire;
    size_t i = 0;
    for (; i + BLOCK <= k->n; i += BLOCK) encode_run(w + i, d + i, e + i, BLOCK);
    encode_run(w + i, d + i, e + i, k->n - i);
    k->type = &hpsgd_wire_f16;
    return w;
}

float *hpsgd_codec_lost(const hpsgd_codec *k) { return k->type == &hpsgd_wire_f16 ? k->residual : NULL; }

void hpsgd_codec_decode(hpsgd_codec *k)
{
    if (k->type != &hpsgd_wire_f16) return; /* float32: the sum landed in place */
    size_t i = 0;
    for (; i + BLOCK <= k->n; i += BLOCK) decode_run(k->change + i, k->wire + i, BLOCK);
    decode_run(k->change + i, k->wire + i, k->n - i);
}

size_t hpsgd_codec_overhead_bytes(const hpsgd_codec *k)
{
    return k->kind == HPSGD_CODEC_NONE ? 0 : k->n * (sizeof *k->wire + sizeof *k->residual);
}
