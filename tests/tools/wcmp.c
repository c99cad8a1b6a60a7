/*
 * wcmp - compares two Darknet .weights files (tests' helper).
 *
 *   wcmp A B            exit 0 when the tensor bytes after the header are equal
 *   wcmp --rel TOL A B  exit 0 when ||A - B|| / ||B|| <= TOL
 *   wcmp --differ A B   exit 0 when the tensor bytes differ
 *   wcmp --seen A       print the header's images-seen count
 *   wcmp --hash A       print the plugin's checksum (hpsgd_hash) of the tensors
 *
 * Always prints one line: sizes, seen, max |A-B| and the relative L2 difference.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h" /* the plugin's checksum */

typedef struct {
    int major, minor, revision;
    uint64_t seen;
    float *data;
    size_t n;
} weights;

static int load(const char *path, weights *w)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "wcmp: cannot open %s\n", path);
        return -1;
    }
    int head[3];
    if (fread(head, sizeof(int), 3, f) != 3) goto short_file;
    w->major = head[0];
    w->minor = head[1];
    w->revision = head[2];
    if (w->major * 10 + w->minor >= 2) {
        if (fread(&w->seen, sizeof(uint64_t), 1, f) != 1) goto short_file;
    } else {
        int seen;
        if (fread(&seen, sizeof(int), 1, f) != 1) goto short_file;
        w->seen = (uint64_t)seen;
    }
    long start = ftell(f);
    fseek(f, 0, SEEK_END);
    long end = ftell(f);
    fseek(f, start, SEEK_SET);
    w->n = (size_t)(end - start) / sizeof(float);
    w->data = malloc(w->n * sizeof(float) + 1);
    if (!w->data || fread(w->data, sizeof(float), w->n, f) != w->n) goto short_file;
    fclose(f);
    return 0;
short_file:
    fprintf(stderr, "wcmp: %s is not a weights file\n", path);
    fclose(f);
    return -1;
}

int main(int argc, char **argv)
{
    double rel_tol = -1;
    int want_differ = 0, seen_only = 0, hash_only = 0, i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; ++i) {
        if (!strcmp(argv[i], "--rel") && i + 1 < argc) rel_tol = atof(argv[++i]);
        else if (!strcmp(argv[i], "--differ")) want_differ = 1;
        else if (!strcmp(argv[i], "--seen")) seen_only = 1;
        else if (!strcmp(argv[i], "--hash")) hash_only = 1;
        else {
            fprintf(stderr, "wcmp: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    weights a = {0}, b = {0};
    if (seen_only || hash_only) {
        if (i >= argc || load(argv[i], &a)) return 2;
        if (seen_only) printf("%llu\n", (unsigned long long)a.seen);
        else printf("%016llx\n", (unsigned long long)hpsgd_hash(a.data, a.n * sizeof(float), 0));
        free(a.data);
        return 0;
    }
    if (i + 2 != argc) {
        fprintf(stderr, "usage: wcmp [--rel TOL | --differ] A B | wcmp --seen A | wcmp --hash A\n");
        return 2;
    }
    if (load(argv[i], &a) || load(argv[i + 1], &b)) return 2;
    if (a.n != b.n) {
        printf("sizes differ: %zu vs %zu floats\n", a.n, b.n);
        return 1;
    }
    double maxabs = 0, diff2 = 0, norm2 = 0;
    for (size_t k = 0; k < a.n; ++k) {
        double d = (double)a.data[k] - (double)b.data[k];
        if (fabs(d) > maxabs) maxabs = fabs(d);
        diff2 += d * d;
        norm2 += (double)b.data[k] * (double)b.data[k];
    }
    double rel = norm2 > 0 ? sqrt(diff2 / norm2) : sqrt(diff2);
    int equal = memcmp(a.data, b.data, a.n * sizeof(float)) == 0;
    printf("%zu floats, seen %llu vs %llu, %s, max |diff| %.3g, relative L2 diff %.3g\n", a.n,
           (unsigned long long)a.seen, (unsigned long long)b.seen, equal ? "bit-identical" : "different", maxabs, rel);
    free(a.data);
    free(b.data);
    if (want_differ) return equal ? 1 : 0;
    if (rel_tol >= 0) return rel <= rel_tol ? 0 : 1;
    return equal ? 0 : 1;
}
