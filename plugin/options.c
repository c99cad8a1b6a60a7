/*
 * options.c - parsing and validation of the [hpsgd] cfg section.
 *
 * Darknet's own option_find_* functions silently fall back to defaults on a
 * typo and accept "abc" as 0. A distributed job that starts with a wrong
 * setting wastes a cluster, so every key here is checked strictly and every
 * rejection names the file, the key, the value and what is allowed.
 */
#include "options.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ring.h"
#include "utils.h"

typedef enum { KEY_ENUM, KEY_INT, KEY_ULONG, KEY_REAL, KEY_PATH } key_kind;

/* One row per key: where its value goes (offsetof) and what is allowed. A
 * new key is one row here and one field in hpsgd_options. */
typedef struct {
    const char *name;
    key_kind kind;
    size_t field;               /* offsetof(hpsgd_options, ...) */
    const char *const *choices; /* KEY_ENUM: NULL-terminated names, index = value (an int-sized field) */
    double min, max;            /* KEY_INT, KEY_ULONG, KEY_REAL: inclusive range */
    int min_exclusive;          /* KEY_REAL: value must be > min */
    const char *why_min;        /* extra words when below min, e.g. "0 is meaningless" */
} key_spec;

static const char *const mode_names[] = {"hpsgd", "sync", "average", NULL};
static const char *const merge_names[] = {"reset", "eager", NULL};
static const char *const shard_names[] = {"rank", "none", NULL};
static const char *const lr_scale_names[] = {"none", "linear", "sqrt", NULL};
static const char *const print_names[] = {"rank0", "all", NULL};
static const char *const compress_names[] = {"none", "fp16", NULL};
static const char *const hierarchical_names[] = {"0", "1", "auto", NULL};

#define AT(f) offsetof(hpsgd_options, f)
static const key_spec keys[] = {
    {"mode", KEY_ENUM, AT(mode), mode_names, 0, 0, 0, NULL},
    {"merge", KEY_ENUM, AT(merge), merge_names, 0, 0, 0, NULL},
    {"interval", KEY_INT, AT(interval), NULL, 1, 1000000, 0, "a round needs at least one step"},
    {"lookahead", KEY_REAL, AT(lookahead), NULL, 0, 4, 0, NULL},
    {"max_stale", KEY_INT, AT(max_stale), NULL, 0, 1000000, 0, NULL},
    {"sync_warmup", KEY_INT, AT(sync_warmup), NULL, 0, 2147483647.0, 0, NULL},
    {"chunk_mb", KEY_REAL, AT(chunk_mb), NULL, 0.0625, 4096, 0, NULL},
    {"stats", KEY_INT, AT(stats), NULL, 0, 1, 0, NULL},
    {"seed", KEY_ULONG, AT(seed), NULL, 0, 4294967295.0, 0, NULL},
    {"shard", KEY_ENUM, AT(shard), shard_names, 0, 0, 0, NULL},
    {"verify", KEY_INT, AT(verify), NULL, 0, 1000000000, 0, NULL},
    {"timeout", KEY_REAL, AT(timeout), NULL, 0, 604800, 1, "a round needs time"},
    {"log", KEY_PATH, AT(log), NULL, 0, 0, 0, NULL},
    {"lr_scale", KEY_ENUM, AT(lr_scale), lr_scale_names, 0, 0, 0, NULL},
    {"loader_threads", KEY_INT, AT(loader_threads), NULL, 0, 256, 0, NULL},
    {"print", KEY_ENUM, AT(print_all), print_names, 0, 0, 0, NULL},
    {"compress", KEY_ENUM, AT(compress), compress_names, 0, 0, 0, NULL},
    {"hierarchical", KEY_ENUM, AT(hierarchical), hierarchical_names, 0, 0, 0, NULL},
    {"chunks_in_flight", KEY_INT, AT(chunks_in_flight), NULL, 1, HPSGD_RING_MAX_IN_FLIGHT, 0,
     "a ring works on at least one chunk"},
};
#undef AT
#define NKEYS (sizeof(keys) / sizeof(keys[0]))
/* KEY_ENUM fields are written as int. */
_Static_assert(sizeof(hpsgd_mode) == sizeof(int) && sizeof(hpsgd_merge) == sizeof(int) &&
                   sizeof(hpsgd_shard) == sizeof(int) && sizeof(hpsgd_lr_scale) == sizeof(int) &&
                   sizeof(hpsgd_compress) == sizeof(int) && sizeof(hpsgd_hierarchical) == sizeof(int),
               "enum keys are stored as int");

const char *hpsgd_mode_name(hpsgd_mode m) { return mode_names[m]; }
const char *hpsgd_merge_name(hpsgd_merge m) { return merge_names[m]; }
const char *hpsgd_lr_scale_name(hpsgd_lr_scale s) { return lr_scale_names[s]; }
const char *hpsgd_compress_name(hpsgd_compress c) { return compress_names[c]; }

void hpsgd_options_defaults(hpsgd_options *o)
{
    memset(o, 0, sizeof(*o));
    o->mode = HPSGD_MODE_HPSGD;
    /* Measured (BENCHMARKS.md, make study WHAT=ablation, 3 runs per cell, 2
     * ranks): at learning rate 0.1 x 2 eager 73.1% held-out top-1, sync 72.9,
     * reset (the paper's rule) 68.5; at 0.05 x 2 all three within 0.6 points.
     * Reset's loss comes from its own change arriving a round late under
     * momentum at a large rate; eager keeps that change in the replica. */
    o->merge = HPSGD_MERGE_EAGER;
    o->lookahead = HPSGD_LOOKAHEAD_AUTO; /* 1 on 2 ranks, else 0: options.h */
    o->interval = 4;
    o->max_stale = HPSGD_MAX_STALE_AUTO; /* 2 or 1 by the ranks: options.h */
    o->sync_warmup = HPSGD_SYNC_WARMUP_AUTO; /* a quarter of the run on more than 2 ranks: options.h */
    /* Measured on a 120 Mbit/s testbed link (make chunk-sweep, README): 1 MB
     * chunks kept the link within noise of one 35 MB chunk (106-108 vs
     * 103-113 Mbit/s) with the ring's receive buffer at chunk/N. */
    o->chunk_mb = 1;
    o->stats = 1;
    o->seed = 0;
    o->shard = HPSGD_SHARD_RANK;
    o->verify = 0;
    o->timeout = 300;
    o->lr_scale = HPSGD_LR_LINEAR;
    o->loader_threads = 0;
    o->print_all = 0;
    o->compress = HPSGD_COMPRESS_NONE;
    o->hierarchical = HPSGD_HIER_AUTO;
    o->chunks_in_flight = HPSGD_RING_DEFAULT_IN_FLIGHT;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static void list_choices(const char *const *choices, char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; choices[i]; ++i) {
        int n = snprintf(out + used, outlen - used, "%s%s", i ? " | " : "", choices[i]);
        if (n < 0 || (size_t)n >= outlen - used) break;
        used += (size_t)n;
    }
}

static void list_keys(char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < NKEYS; ++i) {
        int n = snprintf(out + used, outlen - used, "%s%s", i ? ", " : "", keys[i].name);
        if (n < 0 || (size_t)n >= outlen - used) break;
        used += (size_t)n;
    }
}

static const key_spec *find_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; ++i)
        if (strcmp(keys[i].name, name) == 0) return &keys[i];
    return NULL;
}

/* Strict numbers: the whole value must be one decimal number in range. */
static int parse_number(const key_spec *k, const char *cfgfile, const char *val,
                        double *out, char *err, size_t errlen)
{
    char range[96];
    int integer = k->kind == KEY_INT || k->kind == KEY_ULONG;
    if (integer)
        snprintf(range, sizeof range, "an integer from %.0f to %.0f", k->min, k->max);
    else
        snprintf(range, sizeof range, "a number %s %g and at most %g",
                 k->min_exclusive ? "above" : "from", k->min, k->max);

    const char *p = val;
    while (*p == ' ' || *p == '\t') ++p;
    errno = 0;
    char *end = NULL;
    double v;
    if (integer) {
        if (*p == '-' && strspn(p + 1, "0123456789") == strlen(p + 1) && p[1])
            return fail(err, errlen, "%s: [hpsgd] %s=%s: negative; allowed: %s", cfgfile, k->name, val, range);
        if (!*p || strspn(p, "+0123456789") != strlen(p) || strchr(p + 1, '+'))
            return fail(err, errlen, "%s: [hpsgd] %s=%s: not an integer; allowed: %s", cfgfile, k->name, val, range);
        unsigned long long u = strtoull(p, &end, 10);
        if (errno == ERANGE || u > (unsigned long long)k->max)
            return fail(err, errlen, "%s: [hpsgd] %s=%s: out of range; allowed: %s", cfgfile, k->name, val, range);
        v = (double)u;
    } else {
        v = strtod(p, &end);
        if (end == p || *end != '\0' || isnan(v))
            return fail(err, errlen, "%s: [hpsgd] %s=%s: not a number; allowed: %s", cfgfile, k->name, val, range);
        if (errno == ERANGE || isinf(v))
            return fail(err, errlen, "%s: [hpsgd] %s=%s: out of range; allowed: %s", cfgfile, k->name, val, range);
        if (v < 0)
            return fail(err, errlen, "%s: [hpsgd] %s=%s: negative; allowed: %s", cfgfile, k->name, val, range);
    }
    if (v < k->min || (k->min_exclusive && v <= k->min)) {
        if (v == 0 && k->why_min)
            return fail(err, errlen, "%s: [hpsgd] %s=%s: zero is meaningless here (%s); allowed: %s", cfgfile,
                        k->name, val, k->why_min, range);
        if (v == 0)
            return fail(err, errlen, "%s: [hpsgd] %s=%s: zero is meaningless here; allowed: %s", cfgfile, k->name,
                        val, range);
        return fail(err, errlen, "%s: [hpsgd] %s=%s: too small; allowed: %s", cfgfile, k->name, val, range);
    }
    if (v > k->max)
        return fail(err, errlen, "%s: [hpsgd] %s=%s: too large; allowed: %s", cfgfile, k->name, val, range);
    *out = v;
    return 0;
}

static int apply(hpsgd_options *o, const key_spec *k, const char *cfgfile, const char *val,
                 char *err, size_t errlen)
{
    char *field = (char *)o + k->field;
    if (val[0] == '\0')
        return fail(err, errlen, "%s: [hpsgd] %s=: empty value", cfgfile, k->name);

    if (k->kind == KEY_ENUM) {
        for (int i = 0; k->choices[i]; ++i) {
            if (strcmp(val, k->choices[i]) == 0) {
                *(int *)field = i;
                return 0;
            }
        }
        char allowed[128];
        list_choices(k->choices, allowed, sizeof allowed);
        return fail(err, errlen, "%s: [hpsgd] %s=%s: unknown value; allowed: %s", cfgfile, k->name, val, allowed);
    }

    if (k->kind == KEY_PATH) {
        if (strlen(val) >= sizeof(o->log))
            return fail(err, errlen, "%s: [hpsgd] %s=%.40s...: path too long; allowed: up to %zu bytes", cfgfile,
                        k->name, val, sizeof(o->log) - 1);
        snprintf(field, sizeof o->log, "%s", val);
        return 0;
    }

    double v = 0;
    if (parse_number(k, cfgfile, val, &v, err, errlen)) return -1;
    switch (k->kind) {
    case KEY_INT: *(int *)field = (int)v; break;
    case KEY_ULONG: *(unsigned long *)field = (unsigned long)v; break;
    case KEY_REAL: *(double *)field = v; break;
    default: break;
    }
    return 0;
}

/* One "key=value" line of the section, as Darknet's reader normalised it. */
static int parse_line(hpsgd_options *o, const char *where, char *line, char *seen, char *err, size_t errlen)
{
    char *eq = strchr(line, '=');
    if (!eq)
        return fail(err, errlen, "%s: [hpsgd] %s: not a key=value line", where, line);
    *eq = '\0';
    const char *key = line, *val = eq + 1;
    const key_spec *k = find_key(key);
    if (!k) {
        char allowed[256];
        list_keys(allowed, sizeof allowed);
        return fail(err, errlen, "%s: [hpsgd] %s=%s: unknown key; allowed keys: %s", where, key, val, allowed);
    }
    if (seen[k - keys])
        return fail(err, errlen, "%s: [hpsgd] %s=%s: key given twice; allowed: once per section", where, key, val);
    seen[k - keys] = 1;
    return apply(o, k, where, val, err, errlen);
}

/* Reads the [hpsgd] section from the file itself: Darknet's read_cfg() drops
 * "key=" lines (with a message that names neither file nor section) and we
 * want to reject them, with a line number, like every other bad value. */
static int read_section(hpsgd_options *o, const char *cfgfile, char *err, size_t errlen)
{
    FILE *f = fopen(cfgfile, "r");
    if (!f) return fail(err, errlen, "%s: cannot read it again for [hpsgd]", cfgfile);
    char seen[NKEYS] = {0};
    int lineno = 0, inside = 0, rc = 0;
    char *line;
    o->present = 1;
    while ((line = fgetl(f)) != NULL) {
        ++lineno;
        strip(line);
        if (line[0] == '[') {
            inside = strcmp(line, "[hpsgd]") == 0;
        } else if (inside && rc == 0 && line[0] && line[0] != '#' && line[0] != ';') {
            char where[HPSGD_PATH_MAX + 32];
            snprintf(where, sizeof where, "%s:%d", cfgfile, lineno);
            rc = parse_line(o, where, line, seen, err, errlen);
        }
        free(line);
    }
    fclose(f);
    return rc;
}

int hpsgd_options_scan_section(hpsgd_section_scan *s, const char *type, char *err, size_t errlen)
{
    int is_net = strcmp(type, "[net]") == 0 || strcmp(type, "[network]") == 0;
    int is_ours = strcmp(type, "[hpsgd]") == 0;
    /* The first error is the one reported; the walk goes on taking ours out. */
    if (!is_ours && strcasecmp(type, "[hpsgd]") == 0 && !s->failed)
        s->failed = fail(err, errlen, "%s: section %s: unknown section; did you mean [hpsgd] (lower case)?", s->cfgfile,
                         type);
    if (is_net) s->seen_net = 1;
    if (!is_ours) return 0;
    if (!s->failed && s->found)
        s->failed = fail(err, errlen, "%s: [hpsgd]: section given twice; allowed: one [hpsgd] section", s->cfgfile);
    if (!s->failed && !s->seen_net)
        s->failed = fail(err, errlen, "%s: [hpsgd]: placed before [net]; allowed: after the [net] section", s->cfgfile);
    s->found = 1;
    return 1;
}

int hpsgd_options_scan_end(hpsgd_section_scan *s, hpsgd_options *o, char *err, size_t errlen)
{
    if (s->failed) return -1;
    return s->found ? read_section(o, s->cfgfile, err, errlen) : 0;
}
