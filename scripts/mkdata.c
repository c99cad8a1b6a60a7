/* mkdata.c -- turn Fashion-MNIST into Darknet training sets.
 *
 *   mkdata classify OUTDIR [--train N] [--test N] [--size S]
 *   mkdata detect   OUTDIR [--train N] [--valid N] [--size S] [--seed X]
 *                          [--min-objects A] [--max-objects B] [--classes LIST]
 *
 * "classify" writes one grayscale PNG per Fashion-MNIST image, laid out the
 * way Darknet's "classifier train" wants it (the class is found by strstr()
 * on the path).  "detect" composes synthetic scenes: a few tinted garments at
 * several scales on a noisy gradient, with YOLO label files, for
 * "detector train".  Training canvases are made from Fashion-MNIST's train
 * split, the valid ones and heldout.png from its test split.  --classes
 * (names such as "trouser,bag" or "fm-bag", or label numbers 0-9) keeps
 * only those garments, numbered 0.. in the order given.
 *
 * The dataset is read from Debian's dataset-fashion-mnist package (or from
 * $MKDATA_FASHION_DIR) through "gzip -dc", so there is no zlib dependency.
 * PNGs are written with Darknet's bundled stb_image_write.h.
 *
 * Everything that reaches a pixel is integer arithmetic driven by our own
 * PRNG, so the same arguments give byte-identical output on any machine.
 */

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

/* Third-party header: gcc 12 is quiet on it today, but keep any warnings a
 * newer compiler finds there out of our -Werror build. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include "stb_image_write.h"
#pragma GCC diagnostic pop

#define NCLASSES 10
#define DIGIT 28                   /* Fashion-MNIST images are 28x28 */
#define MAXPATH 4096               /* Darknet's own path buffers are 4096 */
#define DEFAULT_FASHION_DIR "/usr/share/datasets/fashion-mnist"

/* Labels 0..9 in Fashion-MNIST order.  No name is a substring of another,
 * because Darknet's classifier picks the class by strstr(path, name); the
 * "fm-" prefix keeps ordinary directory names ("laptop", "address",
 * "/boot") from matching a class. */
static const char *class_names[NCLASSES] = {
    "fm-top", "fm-trouser", "fm-pullover", "fm-dress", "fm-coat",
    "fm-sandal", "fm-shirt", "fm-sneaker", "fm-bag", "fm-boot"
};

/* ---------------------------------------------------------------- errors */

static void die(int code, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));

static void die(int code, const char *fmt, ...) {
    va_list ap;
    fputs("mkdata: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(code);
}

static void usage(void) {
    fputs("usage: mkdata classify OUTDIR [--train N] [--test N] [--size S]\n"
          "       mkdata detect   OUTDIR [--train N] [--valid N] [--size S]"
          " [--seed X]\n"
          "                       [--min-objects A] [--max-objects B]"
          " [--classes LIST]\n",
          stderr);
    exit(2);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die(1, "out of memory (%zu bytes)", n);
    return p;
}

/* snprintf into a MAXPATH buffer; a truncated path would silently point
 * somewhere else, so treat it as fatal. */
static void pathf(char *dst, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void pathf(char *dst, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, MAXPATH, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= MAXPATH) die(1, "path too long (%d bytes)", n);
}

/* ------------------------------------------------------------------ PRNG */

/* splitmix64: tiny, well mixed, and identical everywhere (unlike rand()). */
static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform integer in [0, n) by multiply-shift; n > 0. */
static uint32_t rng_below(uint64_t *s, uint32_t n) {
    return (uint32_t)(((rng_next(s) >> 32) * (uint64_t)n) >> 32);
}

/* An independent stream per (seed, purpose, image index): image i then does
 * not depend on how many images come before it or on --train/--valid. */
static uint64_t rng_stream(uint64_t seed, uint32_t stream, uint32_t index) {
    uint64_t s = seed;
    uint64_t x = rng_next(&s) ^ ((uint64_t)stream << 40) ^ index;
    rng_next(&x);
    return x;
}

/* --------------------------------------------------------------- dataset */

typedef struct {
    uint32_t n;             /* number of images */
    unsigned char *pix;     /* n * 28 * 28 bytes, row major */
    unsigned char *lab;     /* n labels, 0..9 */
} split;

/* Where the dataset lives: Debian's package, or $MKDATA_FASHION_DIR. */
static const char *dataset_dir(void) {
    const char *dir = getenv("MKDATA_FASHION_DIR");
    return dir && *dir ? dir : DEFAULT_FASHION_DIR;
}

static void dataset_path(char *dst, const char *prefix, const char *kind) {
    pathf(dst, "%s/%s-%s-ubyte.gz", dataset_dir(), prefix, kind);
}

/* Check every input file up front, so a missing dataset fails before
 * anything is written and the error names the file, not a gzip status. */
static void probe_dataset(void) {
    static const char *files[4][2] = {
        { "train", "images-idx3" }, { "train", "labels-idx1" },
        { "t10k", "images-idx3" }, { "t10k", "labels-idx1" }
    };
    char path[MAXPATH];
    for (int i = 0; i < 4; i++) {
        dataset_path(path, files[i][0], files[i][1]);
        FILE *f = fopen(path, "rb");
        if (!f) die(1, "cannot open %s: %s", path, strerror(errno));
        fclose(f);
    }
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Read one gzipped IDX file through "gzip -dc".  The header is read first
 * so the payload goes straight into a buffer of the right size.  dims[]
 * receives the ndim dimensions; the payload (unsigned bytes) is returned. */
static unsigned char *read_idx(const char *path, int ndim, uint32_t *dims) {
    /* Single-quote the path for the shell ('  ->  '\''). */
    char cmd[2 * MAXPATH];
    const char *pre = "gzip -dc -- '";
    size_t o = strlen(pre);
    memcpy(cmd, pre, o);
    for (const char *p = path; *p; p++) {
        if (o + 8 >= sizeof(cmd)) die(1, "path too long: %s", path);
        if (*p == '\'') { memcpy(cmd + o, "'\\''", 4); o += 4; }
        else cmd[o++] = *p;
    }
    cmd[o++] = '\'';
    cmd[o] = '\0';

    FILE *f = popen(cmd, "r");
    if (!f) die(1, "cannot run gzip for %s: %s", path, strerror(errno));

    /* Magic: two zero bytes, 0x08 (unsigned byte data), rank. */
    unsigned char hdr[4 + 4 * 3];
    size_t hlen = 4 + 4 * (size_t)ndim;
    if (fread(hdr, 1, hlen, f) != hlen || hdr[0] || hdr[1] ||
        hdr[2] != 0x08 || hdr[3] != ndim)
        die(1, "%s: not a rank-%d IDX file of unsigned bytes", path, ndim);
    uint64_t total = 1;
    for (int i = 0; i < ndim; i++) {
        dims[i] = be32(hdr + 4 + 4 * i);
        total *= dims[i];
    }
    if (dims[0] == 0 || total > (1ULL << 32))
        die(1, "%s: implausible IDX dimensions", path);

    unsigned char *buf = xmalloc((size_t)total);
    if (fread(buf, 1, (size_t)total, f) != total)
        die(1, "%s: truncated (%llu data bytes announced)", path,
            (unsigned long long)total);
    /* Drain to EOF so gzip exits normally and reports CRC errors. */
    char sink[4096];
    while (fread(sink, 1, sizeof(sink), f) > 0) {}
    int st = pclose(f);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        die(1, "gzip failed to decompress %s", path);
    return buf;
}

/* Load "<prefix>-images-idx3-ubyte.gz" and its labels, validating the
 * shapes so a truncated or foreign file fails loudly. */
static void load_split(const char *prefix, split *sp) {
    char ipath[MAXPATH], lpath[MAXPATH];
    uint32_t idims[3], ldims[1];
    dataset_path(ipath, prefix, "images-idx3");
    dataset_path(lpath, prefix, "labels-idx1");

    sp->pix = read_idx(ipath, 3, idims);
    if (idims[1] != DIGIT || idims[2] != DIGIT)
        die(1, "%s: images are %ux%u, expected 28x28", ipath,
            idims[1], idims[2]);
    sp->lab = read_idx(lpath, 1, ldims);
    if (ldims[0] != idims[0])
        die(1, "%s: %u labels for %u images in %s", lpath, ldims[0],
            idims[0], ipath);
    sp->n = idims[0];
    for (uint32_t i = 0; i < sp->n; i++)
        if (sp->lab[i] >= NCLASSES)
            die(1, "%s: label %u out of range at index %u", lpath,
                sp->lab[i], i);
}

static void load_dataset(split *train, split *test) {
    load_split("train", train);
    load_split("t10k", test);
}

static void free_dataset(split *train, split *test) {
    free(train->pix); free(train->lab);
    free(test->pix); free(test->lab);
}

/* ----------------------------------------------------------------- image */

/* Bilinear resize of a 1-channel image, pixel centres aligned.  Fixed point
 * (8 fractional bits) instead of floats keeps output bit-exact across
 * compilers and CPUs. */
static void resize_bilinear(const unsigned char *src, int sw, int sh,
                            unsigned char *dst, int dw, int dh) {
    for (int dy = 0; dy < dh; dy++) {
        int sy = (int)(((int64_t)(2 * dy + 1) * sh * 256) / (2 * dh)) - 128;
        if (sy < 0) sy = 0;
        if (sy > (sh - 1) * 256) sy = (sh - 1) * 256;
        int y0 = sy >> 8, fy = sy & 255, y1 = y0 + 1 < sh ? y0 + 1 : y0;
        for (int dx = 0; dx < dw; dx++) {
            int sx = (int)(((int64_t)(2 * dx + 1) * sw * 256) / (2 * dw)) - 128;
            if (sx < 0) sx = 0;
            if (sx > (sw - 1) * 256) sx = (sw - 1) * 256;
            int x0 = sx >> 8, fx = sx & 255, x1 = x0 + 1 < sw ? x0 + 1 : x0;
            int a = src[y0 * sw + x0], b = src[y0 * sw + x1];
            int c = src[y1 * sw + x0], d = src[y1 * sw + x1];
            int top = a * (256 - fx) + b * fx;
            int bot = c * (256 - fx) + d * fx;
            dst[dy * dw + dx] =
                (unsigned char)((top * (256 - fy) + bot * fy + 32768) >> 16);
        }
    }
}

static void write_png(const char *path, int s, int comp,
                      const unsigned char *data) {
    if (!stbi_write_png(path, s, s, comp, data, s * comp))
        die(1, "cannot write %s: %s", path, strerror(errno));
}

/* ------------------------------------------------------------ filesystem */

/* mkdir -p; an existing directory is fine.  Errors name both the
 * requested directory and the component that failed. */
static void mkdir_p(const char *path) {
    char tmp[MAXPATH];
    pathf(tmp, "%s", path);
    for (char *p = tmp + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            struct stat st;
            if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
                die(1, "cannot create directory %s: %s: %s", path, tmp,
                    strerror(errno));
            if (stat(tmp, &st) != 0)
                die(1, "cannot create directory %s: %s: %s", path, tmp,
                    strerror(errno));
            if (!S_ISDIR(st.st_mode))
                die(1, "cannot create directory %s: %s is not a directory",
                    path, tmp);
            *p = saved;
            if (saved == '\0') break;
        }
    }
}

static FILE *xfopen(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) die(1, "cannot write %s: %s", path, strerror(errno));
    return f;
}

/* Buffered write errors (e.g. disk full) only surface here. */
static void xfclose(FILE *f, const char *path) {
    if (ferror(f) | (fclose(f) != 0))
        die(1, "error writing %s: %s", path, strerror(errno));
}

static void write_names(const char *path) {
    FILE *f = xfopen(path);
    for (int i = 0; i < NCLASSES; i++) fprintf(f, "%s\n", class_names[i]);
    xfclose(f, path);
}

/* -------------------------------------------------------------- arguments */

typedef struct {
    const char *mode;
    char outdir[MAXPATH];
    long train, test, size;         /* test doubles as --valid for detect */
    uint64_t seed;
    long min_obj, max_obj;
    int nclasses;                   /* detect: classes kept, in this order */
    int classes[NCLASSES];
} options;

static long parse_long(const char *opt, const char *s, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        die(2, "%s: expected an integer in %ld..%ld, got '%s'", opt, lo, hi, s);
    return v;
}

static uint64_t parse_seed(const char *s) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || *s == '-' || *s == '+')
        die(2, "--seed: expected a non-negative integer, got '%s'", s);
    return (uint64_t)v;
}

/* --classes: a comma-separated list of class names (with or without the
 * "fm-" prefix) or label numbers, each at most once. */
static void parse_classes(const char *s, options *o) {
    char buf[256];
    if (strlen(s) >= sizeof(buf)) die(2, "--classes: list too long");
    snprintf(buf, sizeof(buf), "%s", s);
    o->nclasses = 0;
    int seen[NCLASSES] = { 0 };
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int c = -1;
        for (int i = 0; i < NCLASSES && c < 0; i++)
            if (!strcmp(t, class_names[i]) || !strcmp(t, class_names[i] + 3))
                c = i;
        if (c < 0 && t[0] >= '0' && t[0] <= '9' && t[1] == '\0') c = t[0] - '0';
        if (c < 0)
            die(2, "--classes: unknown class '%s' (top, trouser, pullover, "
                "dress, coat, sandal, shirt, sneaker, bag, boot or 0-9)", t);
        if (seen[c]) die(2, "--classes: '%s' given twice", t);
        seen[c] = 1;
        o->classes[o->nclasses++] = c;
    }
    if (!o->nclasses) die(2, "--classes: no class in '%s'", s);
}

static void parse_args(int argc, char **argv, options *o) {
    if (argc < 2) usage();
    o->mode = argv[1];
    int detect = strcmp(o->mode, "detect") == 0;
    if (!detect && strcmp(o->mode, "classify") != 0) {
        fprintf(stderr, "mkdata: unknown mode '%s'\n", o->mode);
        usage();
    }
    o->train = detect ? 2000 : 60000;
    o->test = detect ? 200 : 10000;
    o->size = detect ? 128 : 28;
    o->seed = 1;
    o->min_obj = 1;
    o->max_obj = 4;
    o->nclasses = NCLASSES;
    for (int i = 0; i < NCLASSES; i++) o->classes[i] = i;
    o->outdir[0] = '\0';

    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] == '\0') {
            if (o->outdir[0]) die(2, "unexpected argument '%s'", a);
            if (strlen(a) >= 3000) die(2, "OUTDIR too long");
            snprintf(o->outdir, sizeof(o->outdir), "%s", a);
            continue;
        }
        if (i + 1 >= argc) die(2, "%s needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--train"))
            o->train = parse_long(a, v, 0, detect ? 999999 : 60000);
        else if (!strcmp(a, "--test") && !detect)
            o->test = parse_long(a, v, 0, 10000);
        else if (!strcmp(a, "--valid") && detect)
            o->test = parse_long(a, v, 0, 999999);
        else if (!strcmp(a, "--size"))
            o->size = detect ? parse_long(a, v, 32, 2048)
                             : parse_long(a, v, 8, 1024);
        else if (!strcmp(a, "--seed") && detect)
            o->seed = parse_seed(v);
        else if (!strcmp(a, "--min-objects") && detect)
            o->min_obj = parse_long(a, v, 0, 32);
        else if (!strcmp(a, "--max-objects") && detect)
            o->max_obj = parse_long(a, v, 1, 32);
        else if (!strcmp(a, "--classes") && detect)
            parse_classes(v, o);
        else
            die(2, "unknown option '%s' for %s", a, o->mode);
    }
    if (!o->outdir[0]) usage();
    if (o->min_obj > o->max_obj)
        die(2, "--min-objects (%ld) exceeds --max-objects (%ld)",
            o->min_obj, o->max_obj);

    /* "out/" and "out" should give the same list paths. */
    size_t n = strlen(o->outdir);
    while (n > 1 && o->outdir[n - 1] == '/') o->outdir[--n] = '\0';
}

/* -------------------------------------------------------------- classify */

static int count_class_names(const char *s) {
    int c = 0;
    for (int i = 0; i < NCLASSES; i++)
        if (strstr(s, class_names[i])) c++;
    return c;
}

static void classify_split(const char *outdir, const char *name,
                           const split *sp, long count, int size,
                           unsigned char *buf) {
    char path[MAXPATH], listpath[MAXPATH], dir[MAXPATH];
    pathf(dir, "%s/%s", outdir, name);
    mkdir_p(dir);
    pathf(listpath, "%s/%s.list", outdir, name);
    FILE *list = xfopen(listpath);
    for (long i = 0; i < count; i++) {
        const unsigned char *src = sp->pix + (size_t)i * DIGIT * DIGIT;
        const char *cls = class_names[sp->lab[i]];
        pathf(path, "%s/%05ld_%s.png", dir, i + 1, cls);
        /* Darknet would silently mislabel an ambiguous path. */
        if (count_class_names(path) != 1)
            die(1, "%s: path matches more than one class name", path);
        if (size == DIGIT) {
            write_png(path, size, 1, src);
        } else {
            resize_bilinear(src, DIGIT, DIGIT, buf, size, size);
            write_png(path, size, 1, buf);
        }
        fprintf(list, "%s\n", path);
    }
    xfclose(list, listpath);
}

/* Both commands: the dataset is there, OUTDIR and its backup/ exist, and
 * both splits are loaded. */
static void prepare(const char *out, split *train, split *test) {
    probe_dataset();
    char path[MAXPATH];
    mkdir_p(out);
    pathf(path, "%s/backup", out);
    mkdir_p(path);
    load_dataset(train, test);
}

static void cmd_classify(const options *o) {
    const char *out = o->outdir;
    for (int i = 0; i < NCLASSES; i++)
        if (strstr(out, class_names[i]))
            die(2, "OUTDIR '%s' contains the class name '%s'; Darknet finds "
                "the class by substring, pick another directory",
                out, class_names[i]);

    split train, test;
    char path[MAXPATH];
    prepare(out, &train, &test);
    if ((uint32_t)o->train > train.n)
        die(2, "--train %ld: the train split has only %u images",
            o->train, train.n);
    if ((uint32_t)o->test > test.n)
        die(2, "--test %ld: the test split has only %u images",
            o->test, test.n);

    int s = (int)o->size;
    unsigned char *buf = xmalloc((size_t)s * s);
    classify_split(out, "train", &train, o->train, s, buf);
    classify_split(out, "test", &test, o->test, s, buf);
    free(buf);
    free_dataset(&train, &test);

    pathf(path, "%s/labels.txt", out);
    write_names(path);

    pathf(path, "%s/fashion.data", out);
    FILE *f = xfopen(path);
    fprintf(f, "classes=%d\ntrain=%s/train.list\nvalid=%s/test.list\n"
               "labels=%s/labels.txt\nbackup=%s/backup\ntop=2\n",
            NCLASSES, out, out, out, out);
    xfclose(f, path);

    printf("mkdata: wrote %ld train and %ld test images to %s\n",
           o->train, o->test, out);
}

/* ---------------------------------------------------------------- detect */

typedef struct { int cls, x0, y0, x1, y1; } box;   /* inclusive pixels */

/* Only overlap relative to the smaller box is limited; that bounds IoU
 * too (IoU <= inter/min area) and also stops a small garment from hiding
 * inside a big one. */
static int overlaps(const box *a, const box *b) {
    int ix = (a->x1 < b->x1 ? a->x1 : b->x1) - (a->x0 > b->x0 ? a->x0 : b->x0) + 1;
    int iy = (a->y1 < b->y1 ? a->y1 : b->y1) - (a->y0 > b->y0 ? a->y0 : b->y0) + 1;
    if (ix <= 0 || iy <= 0) return 0;
    int64_t inter = (int64_t)ix * iy;
    int64_t aa = (int64_t)(a->x1 - a->x0 + 1) * (a->y1 - a->y0 + 1);
    int64_t ab = (int64_t)(b->x1 - b->x0 + 1) * (b->y1 - b->y0 + 1);
    int64_t amin = aa < ab ? aa : ab;
    return inter * 10 >= amin * 3;              /* >= 0.3 */
}

/* Smooth gradient between four random corner colours, plus mild noise, so
 * the background is neither black nor trivially separable. */
static void make_background(uint64_t *r, int s, unsigned char *rgb) {
    int corner[4][3];
    for (int k = 0; k < 4; k++)
        for (int c = 0; c < 3; c++)
            corner[k][c] = 30 + (int)rng_below(r, 196);
    int64_t d = (int64_t)(s - 1) * (s - 1);
    for (int y = 0; y < s; y++) {
        for (int x = 0; x < s; x++) {
            int64_t w00 = (int64_t)(s - 1 - x) * (s - 1 - y);
            int64_t w10 = (int64_t)x * (s - 1 - y);
            int64_t w01 = (int64_t)(s - 1 - x) * y;
            int64_t w11 = (int64_t)x * y;
            /* Grey noise (same on all channels) keeps PNGs compressible. */
            int noise = (int)rng_below(r, 9) - 4;
            for (int c = 0; c < 3; c++) {
                int64_t v = corner[0][c] * w00 + corner[1][c] * w10 +
                            corner[2][c] * w01 + corner[3][c] * w11;
                int p = (int)((v + d / 2) / d) + noise;
                rgb[((size_t)y * s + x) * 3 + c] =
                    (unsigned char)(p < 0 ? 0 : p > 255 ? 255 : p);
            }
        }
    }
}

/* Compose one canvas.  Returns the number of boxes written to out[]. */
static int make_canvas(const split *sp, uint64_t r, int s, int min_obj,
                       int max_obj, unsigned char *rgb, unsigned char *patch,
                       box *out) {
    /* Garment side lengths between S/5 and S/2: 25..64 px at S=128. */
    const int sides[] = { s / 5, s / 4, s / 3, s * 5 / 12, s / 2 };
    const int nsides = (int)(sizeof(sides) / sizeof(sides[0]));

    make_background(&r, s, rgb);
    int want = min_obj + (int)rng_below(&r, (uint32_t)(max_obj - min_obj + 1));
    int placed = 0, fails = 0;

    while (placed < want) {
        if (fails >= 500) {
            if (placed >= min_obj) break;     /* crowded: settle for fewer */
            die(1, "cannot fit %d objects on a %dx%d canvas; lower "
                "--min-objects or raise --size", min_obj, s, s);
        }
        int side = sides[rng_below(&r, (uint32_t)nsides)];
        uint32_t idx = rng_below(&r, sp->n);
        resize_bilinear(sp->pix + (size_t)idx * DIGIT * DIGIT, DIGIT, DIGIT,
                        patch, side, side);

        /* Drop the faint halo bilinear smears around the garment, so the
         * tight box below matches what is visible. */
        int bx0 = side, by0 = side, bx1 = -1, by1 = -1;
        for (int y = 0; y < side; y++)
            for (int x = 0; x < side; x++) {
                unsigned char *p = &patch[y * side + x];
                if (*p < 8) { *p = 0; continue; }
                if (x < bx0) bx0 = x;
                if (x > bx1) bx1 = x;
                if (y < by0) by0 = y;
                if (y > by1) by1 = y;
            }
        if (bx1 < 0) { fails++; continue; }   /* blank garment image */

        int px = (int)rng_below(&r, (uint32_t)(s - side + 1));
        int py = (int)rng_below(&r, (uint32_t)(s - side + 1));
        box b = { sp->lab[idx], px + bx0, py + by0, px + bx1, py + by1 };
        int ok = 1;
        for (int k = 0; k < placed && ok; k++)
            if (overlaps(&b, &out[k])) ok = 0;
        if (!ok) { fails++; continue; }

        /* Tint: a random colour that stands out from the background at the
         * garment's centre (bounded tries, then take what we have). */
        const unsigned char *bg =
            &rgb[((size_t)(b.y0 + b.y1) / 2 * s + (b.x0 + b.x1) / 2) * 3];
        int col[3];
        for (int t = 0; t < 64; t++) {
            int dist = 0;
            for (int c = 0; c < 3; c++) {
                col[c] = (int)rng_below(&r, 256);
                dist += abs(col[c] - bg[c]);
            }
            if (dist >= 200) break;
        }

        /* Alpha = garment intensity: only garment pixels paint. */
        for (int y = 0; y < side; y++)
            for (int x = 0; x < side; x++) {
                int a = patch[y * side + x];
                if (!a) continue;
                unsigned char *q = &rgb[((size_t)(py + y) * s + px + x) * 3];
                for (int c = 0; c < 3; c++)
                    q[c] = (unsigned char)((q[c] * (255 - a) + col[c] * a + 127)
                                           / 255);
            }
        out[placed++] = b;
        fails = 0;
    }
    return placed;
}

/* The images of the kept classes, labels renumbered 0.. in --classes order
 * (pixels shared with the full split). */
static split keep_classes(const split *sp, const options *o) {
    int map[NCLASSES];
    for (int i = 0; i < NCLASSES; i++) map[i] = -1;
    for (int k = 0; k < o->nclasses; k++) map[o->classes[k]] = k;
    split r;
    r.n = 0;
    r.pix = xmalloc((size_t)sp->n * DIGIT * DIGIT);
    r.lab = xmalloc(sp->n);
    for (uint32_t i = 0; i < sp->n; i++) {
        if (map[sp->lab[i]] < 0) continue;
        memcpy(r.pix + (size_t)r.n * DIGIT * DIGIT,
               sp->pix + (size_t)i * DIGIT * DIGIT, DIGIT * DIGIT);
        r.lab[r.n++] = (unsigned char)map[sp->lab[i]];
    }
    return r;
}

static void write_labels(const char *path, const box *b, int n, int s) {
    FILE *f = xfopen(path);
    for (int i = 0; i < n; i++) {
        double w = b[i].x1 - b[i].x0 + 1, h = b[i].y1 - b[i].y0 + 1;
        fprintf(f, "%d %.6f %.6f %.6f %.6f\n", b[i].cls,
                (b[i].x0 + w / 2) / s, (b[i].y0 + h / 2) / s, w / s, h / s);
    }
    xfclose(f, path);
}

/* Stream ids keep train, valid and heldout canvases independent. */
enum { STREAM_TRAIN = 1, STREAM_VALID = 2, STREAM_HELDOUT = 3 };

static long detect_split(const options *o, const char *name, uint32_t stream,
                         const split *sp, long count, unsigned char *rgb,
                         unsigned char *patch, box *boxes) {
    const char *out = o->outdir;
    int s = (int)o->size;
    char img[MAXPATH], lab[MAXPATH], listpath[MAXPATH], dir[MAXPATH];
    pathf(dir, "%s/images/%s", out, name);
    mkdir_p(dir);
    pathf(dir, "%s/labels/%s", out, name);
    mkdir_p(dir);
    pathf(listpath, "%s/%s.list", out, name);
    FILE *list = xfopen(listpath);
    long total = 0;
    for (long i = 0; i < count; i++) {
        uint64_t r = rng_stream(o->seed, stream, (uint32_t)i);
        int n = make_canvas(sp, r, s, (int)o->min_obj, (int)o->max_obj,
                            rgb, patch, boxes);
        pathf(img, "%s/images/%s/%06ld.png", out, name, i + 1);
        pathf(lab, "%s/labels/%s/%06ld.txt", out, name, i + 1);
        write_png(img, s, 3, rgb);
        write_labels(lab, boxes, n, s);
        /* AlexeyAB's Darknet reads the label beside the image. */
        pathf(lab, "%s/images/%s/%06ld.txt", out, name, i + 1);
        write_labels(lab, boxes, n, s);
        fprintf(list, "%s\n", img);
        total += n;
    }
    xfclose(list, listpath);
    return total;
}

static void cmd_detect(const options *o) {
    const char *out = o->outdir;
    /* Darknet maps an image path to its label path by replacing the first
     * occurrence of these; one inside OUTDIR would point it elsewhere. */
    static const char *bad[] = { "images", "JPEGImages", "raw", "labels",
                                 ".jpg", ".JPG", ".JPEG", ".png" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (strstr(out, bad[i]))
            die(2, "OUTDIR '%s' contains \"%s\"; Darknet rewrites that part "
                "of image paths to find labels, pick another directory",
                out, bad[i]);

    split train, test;
    char path[MAXPATH];
    prepare(out, &train, &test);
    if (o->nclasses < NCLASSES) {
        split t = keep_classes(&train, o), v = keep_classes(&test, o);
        free_dataset(&train, &test);
        train = t;
        test = v;
    }

    int s = (int)o->size;
    unsigned char *rgb = xmalloc((size_t)s * s * 3);
    unsigned char *patch = xmalloc((size_t)s * s);
    box *boxes = xmalloc(sizeof(box) * (size_t)o->max_obj);

    long nbox = detect_split(o, "train", STREAM_TRAIN, &train, o->train,
                             rgb, patch, boxes);
    nbox += detect_split(o, "valid", STREAM_VALID, &test, o->test,
                         rgb, patch, boxes);

    /* One extra unseen scene for "detector test"; its labels ride along
     * for eyeballing the prediction. */
    int n = make_canvas(&test, rng_stream(o->seed, STREAM_HELDOUT, 0), s,
                        (int)o->min_obj, (int)o->max_obj, rgb, patch, boxes);
    pathf(path, "%s/heldout.png", out);
    write_png(path, s, 3, rgb);
    pathf(path, "%s/heldout.txt", out);
    write_labels(path, boxes, n, s);

    pathf(path, "%s/names", out);
    FILE *f = xfopen(path);
    for (int k = 0; k < o->nclasses; k++)
        fprintf(f, "%s\n", class_names[o->classes[k]]);
    xfclose(f, path);

    pathf(path, "%s/detect.data", out);
    f = xfopen(path);
    fprintf(f, "classes=%d\ntrain=%s/train.list\nvalid=%s/valid.list\n"
               "names=%s/names\nbackup=%s/backup\n",
            o->nclasses, out, out, out, out);
    xfclose(f, path);

    free(rgb);
    free(patch);
    free(boxes);
    free_dataset(&train, &test);
    printf("mkdata: wrote %ld train and %ld valid images (%ld boxes) to %s\n",
           o->train, o->test, nbox, out);
}

int main(int argc, char **argv) {
    options o;
    parse_args(argc, argv, &o);
    if (!strcmp(o.mode, "classify")) cmd_classify(&o);
    else cmd_detect(&o);
    return 0;
}
