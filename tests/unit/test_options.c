/*
 * test_options.c - the [hpsgd] section: defaults, every key, every rejection,
 * and the section-level rules, through Darknet's own cfg reader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "option_list.h"
#include "darknet/fork.h"
#include "options.h"
#include "ring.h"

/* Darknet's parser.c section and its release function (not in a header). */
typedef struct {
    char *type;
    list *options;
} section;
void free_section(section *s);

static void free_sections(list *sections)
{
    for (node *n = sections->front; n; n = n->next) free_section((section *)n->val);
    free_list(sections);
}

/* Writes text to a temporary cfg file (path) and reads it with Darknet's
 * read_cfg(); the caller unlinks path. */
static list *sections_from(const char *text, char *path)
{
    strcpy(path, "/tmp/hpsgd-test-XXXXXX.cfg");
    int fd = mkstemps(path, 4);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return read_cfg(path);
}

/* Parses "[net]\n[hpsgd]\n<body>" and returns the rc; err holds the message. */
static int parse_body(const char *body, hpsgd_options *o, char *err, size_t errlen)
{
    char text[2048], path[64];
    snprintf(text, sizeof text, "[net]\nbatch=1\n\n[hpsgd]\n%s\n\n[convolutional]\nfilters=1\n", body);
    list *sections = sections_from(text, path);
    hpsgd_options_defaults(o);
    err[0] = '\0';
    int rc = hpsgd_options_take_sections(o, path, sections, err, errlen);
    /* The [hpsgd] section is gone either way; [net] and the layer remain. */
    assert_int_equal(sections->size, 2);
    free_sections(sections);
    unlink(path);
    /* Messages start with the file and the line of the first body line. */
    if (rc) {
        char where[80];
        snprintf(where, sizeof where, "%s:", path);
        assert_memory_equal(err, where, strlen(where));
    }
    return rc;
}

static void test_defaults(void **state)
{
    (void)state;
    hpsgd_options o;
    hpsgd_options_defaults(&o);
    assert_int_equal(o.present, 0);
    assert_int_equal(o.mode, HPSGD_MODE_HPSGD);
    assert_int_equal(o.merge, HPSGD_MERGE_EAGER);
    assert_int_equal(o.interval, 4);
    assert_true(o.lookahead == HPSGD_LOOKAHEAD_AUTO);
    assert_true(hpsgd_lookahead_for(&o, 1) == 0);
    assert_true(hpsgd_lookahead_for(&o, 2) == 1);
    assert_true(hpsgd_lookahead_for(&o, 3) == 0);
    assert_true(hpsgd_lookahead_for(&o, 64) == 0);
    o.lookahead = 0.5;
    assert_true(hpsgd_lookahead_for(&o, 1) == 0.5f);
    assert_true(hpsgd_lookahead_for(&o, 4) == 0.5f);
    assert_int_equal(o.max_stale, HPSGD_MAX_STALE_AUTO);
    assert_int_equal(hpsgd_max_stale_for(&o, 1), 2);
    assert_int_equal(hpsgd_max_stale_for(&o, 2), 2);
    assert_int_equal(hpsgd_max_stale_for(&o, 3), 1);
    assert_int_equal(hpsgd_max_stale_for(&o, 64), 1);
    o.max_stale = 0;
    assert_int_equal(hpsgd_max_stale_for(&o, 64), 0);
    o.max_stale = 5;
    assert_int_equal(hpsgd_max_stale_for(&o, 2), 5);
    assert_int_equal(o.sync_warmup, HPSGD_SYNC_WARMUP_AUTO);
    assert_int_equal(hpsgd_sync_warmup_for(&o, 1, 400), 0);
    assert_int_equal(hpsgd_sync_warmup_for(&o, 2, 400), 0);
    assert_int_equal(hpsgd_sync_warmup_for(&o, 3, 400), 100);
    assert_int_equal(hpsgd_sync_warmup_for(&o, 64, 403), 100);
    assert_int_equal(hpsgd_sync_warmup_for(&o, 64, 0), 0);
    o.sync_warmup = 0;
    assert_int_equal(hpsgd_sync_warmup_for(&o, 64, 400), 0);
    o.sync_warmup = 7;
    assert_int_equal(hpsgd_sync_warmup_for(&o, 2, 400), 7);
    assert_true(o.chunk_mb == 1);
    assert_int_equal(o.stats, 1);
    assert_int_equal(o.seed, 0);
    assert_int_equal(o.shard, HPSGD_SHARD_RANK);
    assert_int_equal(o.verify, 0);
    assert_true(o.timeout == 300);
    assert_string_equal(o.log, "");
    assert_int_equal(o.lr_scale, HPSGD_LR_LINEAR);
    assert_int_equal(o.loader_threads, 0);
    assert_int_equal(o.print_all, 0);
    assert_int_equal(o.compress, HPSGD_COMPRESS_NONE);
    assert_int_equal(o.hierarchical, HPSGD_HIER_AUTO);
    assert_int_equal(o.chunks_in_flight, HPSGD_RING_DEFAULT_IN_FLIGHT);
}

static void test_every_key(void **state)
{
    (void)state;
    hpsgd_options o;
    char err[512];
    int rc = parse_body("mode=average\nmerge=eager\ninterval=7\nmax_stale=0\nchunk_mb=0.5\nstats=0\nseed=4294967295\n"
                        "shard=none\nverify=3\ntimeout=2.5\nlog=build/x.csv\nlr_scale=sqrt\nloader_threads=3\nprint=all\n"
                        "compress=fp16\nhierarchical=1\nchunks_in_flight=16\nlookahead=0.75\nsync_warmup=300",
                        &o, err, sizeof err);
    assert_int_equal(rc, 0);
    assert_int_equal(o.present, 1);
    assert_int_equal(o.mode, HPSGD_MODE_AVERAGE);
    assert_int_equal(o.merge, HPSGD_MERGE_EAGER);
    assert_int_equal(o.interval, 7);
    assert_int_equal(o.max_stale, 0);
    assert_true(o.chunk_mb == 0.5);
    assert_int_equal(o.stats, 0);
    assert_true(o.seed == 4294967295UL);
    assert_int_equal(o.shard, HPSGD_SHARD_NONE);
    assert_int_equal(o.verify, 3);
    assert_true(o.timeout == 2.5);
    assert_string_equal(o.log, "build/x.csv");
    assert_int_equal(o.lr_scale, HPSGD_LR_SQRT);
    assert_int_equal(o.loader_threads, 3);
    assert_int_equal(o.print_all, 1);
    assert_int_equal(o.compress, HPSGD_COMPRESS_FP16);
    assert_int_equal(o.hierarchical, HPSGD_HIER_ON);
    assert_int_equal(o.chunks_in_flight, 16);
    assert_true(o.lookahead == 0.75);
    assert_int_equal(parse_body("hierarchical=0\nchunks_in_flight=1", &o, err, sizeof err), 0);
    assert_int_equal(o.hierarchical, HPSGD_HIER_OFF);
    assert_int_equal(o.chunks_in_flight, 1);
    assert_int_equal(parse_body("hierarchical=auto\ncompress=none", &o, err, sizeof err), 0);
    assert_int_equal(o.hierarchical, HPSGD_HIER_AUTO);
    assert_int_equal(o.chunks_in_flight, HPSGD_RING_DEFAULT_IN_FLIGHT);

    assert_int_equal(parse_body("mode=sync\nlr_scale=none\nshard=rank\nprint=rank0\ncompress=none", &o, err, sizeof err), 0);
    assert_int_equal(o.compress, HPSGD_COMPRESS_NONE);
    assert_int_equal(o.mode, HPSGD_MODE_SYNC);
    assert_int_equal(o.lr_scale, HPSGD_LR_NONE);
    /* Darknet's reader strips blanks: "mode = hpsgd" is "mode=hpsgd". */
    assert_int_equal(parse_body("mode = hpsgd\n  max_stale = 5  ", &o, err, sizeof err), 0);
    assert_int_equal(o.max_stale, 5);
    /* An empty section is valid: all defaults. */
    assert_int_equal(parse_body("", &o, err, sizeof err), 0);
    assert_int_equal(o.present, 1);
}

typedef struct {
    const char *body;
    const char *expect[3]; /* substrings of the one-line message */
} bad_case;

static const bad_case bad_cases[] = {
    {"mdoe=hpsgd", {":5: [hpsgd] mdoe=hpsgd: unknown key", "allowed keys: mode, merge", NULL}},
    {"mode=", {":5: [hpsgd] mode=: empty value", NULL}},
    {"mode=fast", {"mode=fast: unknown value", "allowed: hpsgd | sync | average", NULL}},
    {"mode=HPSGD", {"mode=HPSGD: unknown value", NULL}},
    {"merge=lazy", {"merge=lazy: unknown value", "reset | eager", NULL}},
    {"shard=some", {"shard=some: unknown value", "rank | none", NULL}},
    {"lr_scale=2", {"lr_scale=2: unknown value", "none | linear | sqrt", NULL}},
    {"print=some", {"print=some: unknown value", "rank0 | all", NULL}},
    {"compress=bf16", {"compress=bf16: unknown value", "none | fp16", NULL}},
    {"hierarchical=yes", {"hierarchical=yes: unknown value", "allowed: 0 | 1 | auto", NULL}},
    {"hierarchical=2", {"hierarchical=2: unknown value", NULL}},
    {"allreduce=mpi", {"allreduce=mpi: unknown key", NULL}},
    {"chunks_in_flight=0",
     {"chunks_in_flight=0: zero is meaningless here (a ring works on at least one chunk)", "an integer from 1 to 16",
      NULL}},
    {"chunks_in_flight=17", {"chunks_in_flight=17: out of range", NULL}},
    {"chunks_in_flight=two", {"chunks_in_flight=two: not an integer", NULL}},
    {"interval=abc", {"interval=abc: not an integer", "an integer from 1 to 1000000", NULL}},
    {"interval=0", {"interval=0: zero is meaningless here (a round needs at least one step)", NULL}},
    {"interval=-3", {"interval=-3: negative", NULL}},
    {"interval=2.5", {"interval=2.5: not an integer", NULL}},
    {"interval=1000001", {"interval=1000001: out of range", NULL}},
    {"interval=99999999999999999999999", {"out of range", NULL}},
    {"interval=4x", {"interval=4x: not an integer", NULL}},
    {"max_stale=-1", {"max_stale=-1: negative", "from 0 to 1000000", NULL}},
    {"max_stale=1e3", {"max_stale=1e3: not an integer", NULL}},
    {"sync_warmup=-5", {"sync_warmup=-5: negative", NULL}},
    {"chunk_mb=0", {"chunk_mb=0: zero is meaningless here", NULL}},
    {"chunk_mb=0.01", {"chunk_mb=0.01: too small", "from 0.0625 and at most 4096", NULL}},
    {"chunk_mb=5000", {"chunk_mb=5000: too large", NULL}},
    {"chunk_mb=nan", {"chunk_mb=nan: not a number", NULL}},
    {"chunk_mb=inf", {"chunk_mb=inf: out of range", NULL}},
    {"chunk_mb=1e999", {"chunk_mb=1e999: out of range", NULL}},
    {"chunk_mb=16MB", {"chunk_mb=16MB: not a number", NULL}},
    {"chunk_mb=-2", {"chunk_mb=-2: negative", NULL}},
    {"lookahead=-0.5", {"lookahead=-0.5: negative", "from 0 and at most 4", NULL}},
    {"lookahead=5", {"lookahead=5: too large", NULL}},
    {"lookahead=half", {"lookahead=half: not a number", NULL}},
    {"stats=2", {"stats=2: out of range", "from 0 to 1", NULL}},
    {"stats=yes", {"stats=yes: not an integer", NULL}},
    {"seed=4294967296", {"seed=4294967296: out of range", NULL}},
    {"seed=-1", {"seed=-1: negative", NULL}},
    {"verify=-1", {"verify=-1: negative", NULL}},
    {"timeout=0", {"timeout=0: zero is meaningless here (a round needs time)", NULL}},
    {"timeout=-5", {"timeout=-5: negative", NULL}},
    {"timeout=1e9", {"timeout=1e9: too large", NULL}},
    {"loader_threads=1000", {"loader_threads=1000: out of range", NULL}},
    {"log=", {"log=: empty value", NULL}},
    {"mode=sync\nmode=hpsgd", {":6: [hpsgd] mode=hpsgd: key given twice", NULL}},
    {"mode", {":5: [hpsgd] mode: not a key=value line", NULL}},
    {"# a comment\n\nverify=x", {":7: [hpsgd] verify=x: not an integer", NULL}},
};

static void test_rejections(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; ++i) {
        hpsgd_options o;
        char err[512];
        int rc = parse_body(bad_cases[i].body, &o, err, sizeof err);
        if (rc != -1) fail_msg("accepted bad input '%s'", bad_cases[i].body);
        assert_null(strchr(err, '\n'));
        for (int k = 0; k < 3 && bad_cases[i].expect[k]; ++k)
            if (!strstr(err, bad_cases[i].expect[k]))
                fail_msg("for '%s': message '%s' lacks '%s'", bad_cases[i].body, err, bad_cases[i].expect[k]);
    }
}

static int take(const char *text, char *err, size_t errlen, hpsgd_options *o)
{
    char path[64];
    list *sections = sections_from(text, path);
    hpsgd_options_defaults(o);
    int rc = hpsgd_options_take_sections(o, path, sections, err, errlen);
    free_sections(sections);
    unlink(path);
    return rc;
}

static void test_sections(void **state)
{
    (void)state;
    hpsgd_options o;
    char err[512];
    assert_int_equal(take("[net]\nbatch=1\n[convolutional]\nfilters=2\n", err, sizeof err, &o), 0);
    assert_int_equal(o.present, 0);

    assert_int_equal(take("[hpsgd]\nmode=sync\n[net]\nbatch=1\n", err, sizeof err, &o), -1);
    assert_non_null(strstr(err, ".cfg: [hpsgd]: placed before [net]"));

    assert_int_equal(take("[net]\n[hpsgd]\nmode=sync\n[hpsgd]\nmode=hpsgd\n", err, sizeof err, &o), -1);
    assert_non_null(strstr(err, ".cfg: [hpsgd]: section given twice"));

    assert_int_equal(take("[net]\n[HPSGD]\nmode=sync\n", err, sizeof err, &o), -1);
    assert_non_null(strstr(err, "section [HPSGD]: unknown section; did you mean [hpsgd]"));

    /* At the end of the cfg, after the last layer, is fine. */
    assert_int_equal(take("[net]\n[convolutional]\nfilters=2\n[hpsgd]\nmode=average\ninterval=2\n", err, sizeof err, &o),
                     0);
    assert_int_equal(o.mode, HPSGD_MODE_AVERAGE);
    assert_int_equal(o.interval, 2);
}

/* A cfg with [hpsgd] parses into a network with exactly the other layers. */
static void test_network_without_section(void **state)
{
    (void)state;
    char path[] = "/tmp/hpsgd-net-XXXXXX.cfg";
    int fd = mkstemps(path, 4);
    const char *text = "[net]\nbatch=1\nwidth=8\nheight=8\nchannels=1\n[hpsgd]\nmode=sync\n"
                       "[convolutional]\nfilters=2\nsize=3\nstride=1\npad=1\nactivation=leaky\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    network *net = parse_network_cfg(path);
    unlink(path);
    assert_int_equal(net->n, 1);
    assert_int_equal(net->layers[0].type, CONVOLUTIONAL);
    free_network(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_sections),
        cmocka_unit_test(test_network_without_section),
    };
    return cmocka_run_group_tests_name("options", tests, NULL, NULL);
}
