/*
 * fingerprint.h - what ranks compare before the first step: the network's
 * layout and every setting that changes the update or the rounds. A rank
 * that differs stops the job before any training (lifecycle.c).
 */
#ifndef HPSGD_FINGERPRINT_H
#define HPSGD_FINGERPRINT_H

#include <stdint.h>

#include "darknet/fork.h"
#include "options.h"
#include "registry.h"

#define HPSGD_FP_FIELDS 14
typedef struct hpsgd_fingerprint {
    uint64_t v[HPSGD_FP_FIELDS];
} hpsgd_fingerprint;
extern const char *const hpsgd_fingerprint_names[HPSGD_FP_FIELDS];

void hpsgd_fingerprint_make(hpsgd_fingerprint *fp, network *net, const hpsgd_registry *r, const hpsgd_options *o);

#endif
