/*
 * hash.h - the checksum of a model: FNV-1a over 8-byte words with an extra
 * shift, fast enough to run over G every few merges. Header-only so that
 * tests/tools/wcmp.c computes the very same checksum of a .weights file.
 */
#ifndef HPSGD_HASH_H
#define HPSGD_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t hpsgd_hash(const void *data, size_t bytes, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ULL ^ seed;
    size_t words = bytes / 8;
    for (size_t i = 0; i < words; ++i) {
        uint64_t w;
        memcpy(&w, p + 8 * i, 8);
        h = (h ^ w) * 1099511628211ULL;
        h ^= h >> 29;
    }
    for (size_t i = 8 * words; i < bytes; ++i) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

#endif
