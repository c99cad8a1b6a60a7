/*
 * alexeyab/test_registry.c - the AlexeyAB adapter's tensor registry against
 * the .weights files AlexeyAB's save_weights() writes, for every layer type
 * it saves (AlexeyAB parses no [deconvolutional]); layer order and sizes per
 * type as save_weights_upto() has them.
 *
 * With stats=1 the fused buffer must be byte for byte the body of the file
 * save_weights() writes: same tensors, same order, same sizes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "darknet/fork.h"
#include "parser.h"
#include "fingerprint.h"
#include "registry.h"

typedef struct {
    const char *name;
    const char *cfg;
    size_t stat_floats; /* rolling mean + variance floats in the network */
} net_case;

#define NET_IMG "[net]\nbatch=2\nwidth=8\nheight=8\nchannels=3\n"
/* AlexeyAB divides by the count of layers with w, h > 1: a 2x2 maxpool first. */
#define NET_VEC "[net]\nbatch=2\nwidth=2\nheight=2\nchannels=3\ntime_steps=1\n[maxpool]\nsize=1\nstride=1\n"

static const net_case cases[] = {
    {"convolutional with and without batch-norm, connected, softmax",
     NET_IMG "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\nstride=1\npad=1\nactivation=mish\n"
             "[maxpool]\nsize=2\nstride=2\n"
             "[convolutional]\nfilters=5\nsize=1\nstride=1\npad=0\nactivation=linear\n"
             "[connected]\noutput=7\nactivation=leaky\n"
             "[connected]\nbatch_normalize=1\noutput=3\nactivation=linear\n[softmax]\n",
     2 * 4 + 2 * 3},
    {"grouped convolutional and route groups",
     NET_IMG "[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\nstride=1\npad=1\nactivation=leaky\n"
             "[route]\nlayers=-1\ngroups=2\ngroup_id=1\n"
             "[convolutional]\nbatch_normalize=1\ngroups=2\nfilters=4\nsize=3\nstride=1\npad=1\nactivation=leaky\n",
     2 * 8 + 2 * 4},
    {"shortcut weights, per_channel and per_feature",
     NET_IMG "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\nstride=1\npad=1\nactivation=leaky\n"
             "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\nstride=1\npad=1\nactivation=leaky\n"
             "[shortcut]\nfrom=-2\nweights_type=per_channel\nweights_normalization=relu\nactivation=linear\n"
             "[shortcut]\nfrom=-3\nweights_type=per_feature\nweights_normalization=softmax\nactivation=linear\n"
             "[shortcut]\nfrom=-4\nactivation=linear\n",
     2 * 4 * 2},
    {"implicit",
     NET_IMG "[convolutional]\nfilters=4\nsize=3\nstride=1\npad=1\nactivation=linear\n"
             "[implicit]\nfilters=4\n[implicit]\nfilters=2\n",
     0},
    {"a convolutional sharing another's weights is not saved",
     NET_IMG "[convolutional]\nfilters=4\nsize=3\nstride=1\npad=1\nactivation=leaky\n"
             "[convolutional]\nfilters=4\nsize=3\nstride=1\npad=1\nactivation=leaky\n"
             "[convolutional]\nshare_index=1\nfilters=4\nsize=3\nstride=1\npad=1\nactivation=leaky\n",
     0},
    {"standalone batchnorm (with its biases)",
     NET_IMG "[convolutional]\nfilters=4\nsize=3\nstride=1\npad=1\nactivation=linear\n[batchnorm]\n",
     2 * 4},
    {"local", NET_IMG "[local]\nfilters=3\nsize=3\nstride=1\npad=1\nactivation=leaky\n", 0},
    {"rnn", NET_VEC "[rnn]\nbatch_normalize=1\nhidden=5\noutput=5\nactivation=leaky\n[rnn]\nhidden=3\noutput=4\nactivation=leaky\n",
     2 * (5 + 5 + 5)},
    {"gru", NET_VEC "[gru]\nbatch_normalize=1\noutput=5\n[gru]\noutput=3\n", 6 * 2 * 5},
    {"lstm", NET_VEC "[lstm]\nbatch_normalize=1\noutput=4\n[lstm]\noutput=3\n", 8 * 2 * 4},
    {"crnn",
     NET_IMG "[crnn]\nbatch_normalize=1\noutput=4\nhidden=4\nsize=3\npad=1\nactivation=leaky\n"
             "[crnn]\noutput=2\nhidden=2\nsize=3\npad=1\nactivation=leaky\n",
     2 * (4 + 4 + 4)},
    {"conv_lstm with peepholes, and without",
     NET_IMG "[conv_lstm]\nbatch_normalize=1\noutput=4\nsize=3\npad=1\npeephole=1\n"
             "[conv_lstm]\noutput=2\nsize=3\npad=1\npeephole=0\n",
     11 * 2 * 4},
};

static network *load_cfg(const char *text)
{
    char path[] = "/tmp/hpsgd-reg-XXXXXX.cfg";
    int fd = mkstemps(path, 4);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    /* AlexeyAB returns the network by value; the tests keep it on the heap. */
    network *net = malloc(sizeof *net);
    *net = parse_network_cfg(path);
    unlink(path);
    return net;
}

/* Reads a whole file; *bytes gets its size. */
static unsigned char *slurp(const char *path, size_t *bytes)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    unsigned char *buf = malloc((size_t)st.st_size + 1);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(buf, 1, (size_t)st.st_size, f), (size_t)st.st_size);
    fclose(f);
    *bytes = (size_t)st.st_size;
    return buf;
}

/* Gives every float of every tensor a distinct value, so order errors show. */
static void fill_distinct(hpsgd_registry *r)
{
    float v = 1.0f;
    for (int i = 0; i < r->count; ++i)
        for (size_t k = 0; k < r->tensors[i].n; ++k) (*r->tensors[i].slot)[k] = v++;
}

static void check_case(const net_case *c)
{
    char err[256];
    print_message("case: %s\n", c->name);
    network *net = load_cfg(c->cfg);
    hpsgd_registry with, without;
    assert_int_equal(hpsgd_registry_build(&with, net, 1, 0, err, sizeof err), 0);
    assert_int_equal(hpsgd_registry_build(&without, net, 0, 0, err, sizeof err), 0);
    fill_distinct(&with);

    char path[] = "/tmp/hpsgd-reg-XXXXXX.weights";
    int fd = mkstemps(path, 8);
    close(fd);
    save_weights(*net, path);
    size_t bytes;
    unsigned char *file = slurp(path, &bytes);

    if (bytes != HPSGD_WEIGHTS_HEADER_BYTES + with.saved_floats * sizeof(float))
        fail_msg("%s: file has %zu bytes, registry says %zu floats", c->name, bytes, with.saved_floats);
    assert_int_equal(hpsgd_registry_match_file_size(&with, bytes) >= 0, 1);
    assert_int_equal(hpsgd_registry_match_file_size(&with, bytes - 4), -1);
    assert_int_equal(hpsgd_registry_match_file_size(&with, bytes + 4), -1);

    /* stats=0 leaves out exactly the rolling statistics. */
    assert_int_equal(with.fused_floats - without.fused_floats, c->stat_floats);
    assert_int_equal(with.saved_floats, without.saved_floats);

    float *fused = malloc(with.fused_floats * sizeof(float) + 1);
    hpsgd_registry_gather(&with, fused);
    int all_saved = 1; /* every registered tensor is saved: a shared layer is not registered */
    if (all_saved) {
        assert_int_equal(with.fused_floats, with.saved_floats);
        if (memcmp(fused, file + HPSGD_WEIGHTS_HEADER_BYTES, with.saved_floats * sizeof(float)))
            fail_msg("%s: fused buffer differs from the .weights body", c->name);
    } else {
        assert_true(with.fused_floats > with.saved_floats);
    }

    /* hpsgd_registry_write() writes the same bytes as save_weights(), with
     * the statistics travelling (stats=1) or kept aside (stats=0). */
    assert_int_equal(with.local_floats, 0);
    assert_int_equal(without.local_floats, c->stat_floats);
    *net->seen = 4242;
    save_weights(*net, path);
    free(file);
    file = slurp(path, &bytes);
    float *fused_without = malloc(without.fused_floats * sizeof(float) + 1);
    float *local = malloc(without.local_floats * sizeof(float) + 1);
    hpsgd_registry_gather(&without, fused_without);
    hpsgd_registry_pull_local(&without); /* a no-op on the CPU, as in the plugin before each gather */
    hpsgd_registry_gather_local(&without, local);
    const hpsgd_registry *regs[2] = {&with, &without};
    const float *fuseds[2] = {fused, fused_without};
    for (int k = 0; k < 2; ++k) {
        char mine[] = "/tmp/hpsgd-reg-XXXXXX.weights";
        int mfd = mkstemps(mine, 8);
        FILE *f = fdopen(mfd, "wb");
        assert_int_equal(hpsgd_registry_write(regs[k], f, *net->seen, fuseds[k], local), 0);
        fclose(f);
        size_t mbytes;
        unsigned char *written = slurp(mine, &mbytes);
        unlink(mine);
        if (mbytes != bytes || memcmp(written, file, bytes))
            fail_msg("%s: hpsgd_registry_write (stats=%d) differs from save_weights", c->name, k == 0);
        free(written);
    }
    free(local);
    free(fused_without);

    for (size_t k = 0; k < with.fused_floats; ++k) fused[k] = -(float)k;

    /* scatter is gather's inverse. */
    hpsgd_registry_scatter(&with, fused);
    float *back = malloc(with.fused_floats * sizeof(float) + 1);
    hpsgd_registry_gather(&with, back);
    assert_memory_equal(back, fused, with.fused_floats * sizeof(float));

    unlink(path);
    free(back);
    free(fused);
    free(file);
    hpsgd_registry_free(&with);
    hpsgd_registry_free(&without);
    free_network(*net);
    free(net);
}

static void test_layer_types(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) check_case(&cases[i]);
}

/* A prefix of whole layers (as darknet53.conv.74) is a valid weights file. */
static void test_prefix_sizes(void **state)
{
    (void)state;
    char err[256];
    network *net = load_cfg(cases[0].cfg);
    hpsgd_registry r;
    assert_int_equal(hpsgd_registry_build(&r, net, 1, 0, err, sizeof err), 0);
    for (int i = 0; i < r.nlayers; ++i) {
        size_t bytes = HPSGD_WEIGHTS_HEADER_BYTES + r.saved_upto[i] * sizeof(float);
        assert_true(hpsgd_registry_match_file_size(&r, bytes) >= 0);
    }
    assert_int_equal(hpsgd_registry_match_file_size(&r, HPSGD_WEIGHTS_HEADER_BYTES), 0);
    assert_int_equal(hpsgd_registry_match_file_size(&r, 3), -1);
    assert_int_equal(hpsgd_registry_match_file_size(&r, HPSGD_WEIGHTS_HEADER_BYTES + 2), -1);
    hpsgd_registry_free(&r);
    free_network(*net);
    free(net);
}

/* The fingerprint separates layouts and settings that must agree. */
static void test_fingerprint(void **state)
{
    (void)state;
    char err[256];
    network *a = load_cfg(cases[0].cfg), *b = load_cfg(cases[1].cfg);
    hpsgd_registry ra, rb;
    assert_int_equal(hpsgd_registry_build(&ra, a, 1, 0, err, sizeof err), 0);
    assert_int_equal(hpsgd_registry_build(&rb, b, 1, 0, err, sizeof err), 0);
    hpsgd_options o;
    hpsgd_options_defaults(&o);
    hpsgd_fingerprint fa, fa2, fb, fmode;
    hpsgd_fingerprint_make(&fa, a, &ra, &o);
    hpsgd_fingerprint_make(&fa2, a, &ra, &o);
    hpsgd_fingerprint_make(&fb, b, &rb, &o);
    assert_memory_equal(&fa, &fa2, sizeof fa);
    assert_memory_not_equal(&fa.v[1], &fb.v[1], sizeof fa.v[1]);
    o.mode = HPSGD_MODE_SYNC;
    hpsgd_fingerprint_make(&fmode, a, &ra, &o);
    assert_true(fmode.v[9] != fa.v[9]);
    a->learning_rate *= 2;
    hpsgd_fingerprint_make(&fa2, a, &ra, &o);
    assert_true(fa2.v[8] != fmode.v[8]);
    /* steps= with other scales=, and a layer's own learning-rate scale,
     * change the update too (issue 16.6). */
    int steps[1] = {100}, *steps0 = a->steps, n0 = a->num_steps;
    float scales[1] = {0.1f}, *scales0 = a->scales;
    a->steps = steps, a->scales = scales, a->num_steps = 1;
    hpsgd_fingerprint with_steps, other_scale, layer_scale;
    hpsgd_fingerprint_make(&with_steps, a, &ra, &o);
    scales[0] = 0.5f;
    hpsgd_fingerprint_make(&other_scale, a, &ra, &o);
    assert_true(other_scale.v[8] != with_steps.v[8]);
    a->layers[0].learning_rate_scale *= 3;
    hpsgd_fingerprint_make(&layer_scale, a, &ra, &o);
    assert_true(layer_scale.v[8] != other_scale.v[8]);
    a->steps = steps0, a->scales = scales0, a->num_steps = n0;
    hpsgd_registry_free(&ra);
    hpsgd_registry_free(&rb);
    free_network(*a);
    free(a);
    free_network(*b);
    free(b);
}

int main(void)
{
    /* The tensors under test live on the host: with a CUDA build Darknet's
     * save_weights() would otherwise pull the (untouched) device copies over
     * them first, as the plugin also prevents when it saves G. */
    gpu_index = -1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layer_types),
        cmocka_unit_test(test_prefix_sizes),
        cmocka_unit_test(test_fingerprint),
    };
    return cmocka_run_group_tests_name("registry", tests, NULL, NULL);
}
