/*
 * darknet/pjreddie_map.c - `darknet detector map DATA CFG WEIGHTS [-iou_thresh 0.5]
 * [-points 0|11|101]` for pjreddie's Darknet: runs the network over the data
 * file's valid= images the way AlexeyAB's validate_detector_map does and
 * prints its lines; the arithmetic is in map_ap.c.
 */
#include "darknet.h"
#include "darknet/fork.h"
#include "hpsgd.h"
#include "map_ap.h"
#include "option_list.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* AlexeyAB's fixed settings for mAP: keep every detection above 0.5%, NMS at
 * 0.45; its TP/FP lines count detections above its -thresh default. */
#define MAP_THRESH .005f
#define MAP_NMS .45f
#define MAP_COUNT_THRESH .25f

static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    va_list ap;
    fputs("detector map: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* Darknet's own loaders end with exit(0) on a missing file: check first. */
static void need_file(const char *what, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) fail("cannot open %s %s: %s", what, path, strerror(errno));
    fclose(f);
}

/* letter_box=1 in [net]: AlexeyAB then letterboxes the input; pjreddie's
 * parser does not know the key, so read it from the file. */
static int cfg_letter_box(const char *cfgfile)
{
    FILE *f = fopen(cfgfile, "r");
    if (!f) fail("cannot open cfg %s: %s", cfgfile, strerror(errno));
    char line[1024];
    int sections = 0, letter = 0;
    while (fgets(line, sizeof line, f)) {
        char key[64];
        int v;
        const char *p = line + strspn(line, " \t");
        if (*p == '[' && ++sections > 1) break;
        if (sscanf(p, " %63[a-z_] = %d", key, &v) == 2 && strcmp(key, "letter_box") == 0) letter = v;
    }
    fclose(f);
    return letter;
}

static float parse_float(const char *opt, const char *s, float lo, float hi)
{
    char *end;
    errno = 0;
    float v = s ? strtof(s, &end) : 0;
    if (!s || errno || end == s || *end || !(v > lo && v <= hi)) fail("%s: expected a number in (%g, %g]", opt, lo, hi);
    return v;
}

static int parse_points(const char *s)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : -1;
    if (!s || errno || end == s || *end || v < 0 || v == 1 || v > 1000)
        fail("-points: expected 0 (every unique recall), or 2..1000 (11: VOC2007, 101: COCO)");
    return (int)v;
}

/* The last detection layer decides the classes, as in AlexeyAB. */
static layer *detection_layer(network *net)
{
    layer *l = NULL;
    for (int i = 0; i < net->n; ++i)
        if (net->layers[i].type == YOLO || net->layers[i].type == REGION || net->layers[i].type == DETECTION)
            l = &net->layers[i];
    return l;
}

/* One image: predict, NMS, and hand truths and detections to the evaluator. */
static void eval_image(network *net, map_eval *e, char *path, char *labels, int letter)
{
    image im = load_image_color(path, 0, 0);
    image sized = letter ? letterbox_image(im, net->w, net->h) : resize_image(im, net->w, net->h);
    network_predict(net, sized.data);
    int nboxes = 0;
    /* Relative coordinates: with the network's own size no letterbox
     * correction applies (a plain resize, as AlexeyAB's w = h = 1). */
    detection *dets = get_network_boxes(net, letter ? im.w : net->w, letter ? im.h : net->h, MAP_THRESH, 0, 0, 1,
                                        &nboxes);
    do_nms_sort(dets, nboxes, e->classes, MAP_NMS);

    int ntruth = 0;
    box_label *truth = read_boxes(labels, &ntruth);
    map_item *t = calloc((size_t)ntruth + 1, sizeof *t);
    map_item *d = calloc((size_t)nboxes * (size_t)e->classes + 1, sizeof *d);
    if (!t || !d) fail("out of memory");
    for (int j = 0; j < ntruth; ++j)
        t[j] = (map_item){{truth[j].x, truth[j].y, truth[j].w, truth[j].h}, truth[j].id, 0};
    int nd = 0;
    for (int i = 0; i < nboxes; ++i)
        for (int c = 0; c < e->classes; ++c)
            if (dets[i].prob[c] > 0) {
                box b = dets[i].bbox;
                d[nd++] = (map_item){{b.x, b.y, b.w, b.h}, c, dets[i].prob[c]};
            }
    int rc = map_add_image(e, t, ntruth, d, nd);
    if (rc == -2) fail("%s: a class id outside 0..%d", labels, e->classes - 1);
    if (rc) fail("out of memory");
    free(t);
    free(d);
    free(truth);
    free_detections(dets, nboxes);
    if (sized.data != im.data) free_image(sized);
    free_image(im);
}

void hpsgd_detector_map(char *datacfg, char *cfgfile, char *weightfile, int argc, char **argv)
{
    float iou_thresh = .5f;
    int points = 0;
    /* run_detector has taken its own flags out of argv (NULLs at the end). */
    for (int i = 3; i < argc; ++i) {
        if (!argv[i]) continue;
        if (strcmp(argv[i], "-iou_thresh") == 0) iou_thresh = parse_float("-iou_thresh", i + 1 < argc ? argv[++i] : 0, 0, 1);
        else if (strcmp(argv[i], "-points") == 0) points = parse_points(i + 1 < argc ? argv[++i] : 0);
    }
    if (!weightfile || weightfile[0] == '-')
        fail("usage: darknet detector map DATA CFG WEIGHTS [-iou_thresh 0.5] [-points 0|11|101]");
    need_file("data file", datacfg);
    need_file("cfg", cfgfile);
    need_file("weights file", weightfile);

    list *options = read_data_cfg(datacfg);
    char *valid = option_find(options, "valid");
    if (!valid) fail("%s has no valid= line (the list of images to evaluate)", datacfg);
    need_file("valid list", valid);
    char *name_list = option_find_str(options, "names", "data/names.list");
    need_file("names file", name_list);
    list *nlist = get_paths(name_list);
    char **names = (char **)list_to_array(nlist);

    list *plist = get_paths(valid);
    char **paths = (char **)list_to_array(plist);
    int m = plist->size;
    if (m == 0) fail("valid list %s names no image", valid);
    char (*labels)[4096] = calloc((size_t)m, sizeof *labels);
    if (!labels) fail("out of memory");
    for (int i = 0; i < m; ++i) {
        need_file("image", paths[i]);
        hpsgd_dn_label_path(paths[i], labels[i]);
        need_file("label file", labels[i]);
    }

    int letter = cfg_letter_box(cfgfile);
    network *net = load_network(cfgfile, weightfile, 0);
    set_batch_network(net, 1);
    layer *l = detection_layer(net);
    if (!l) fail("%s has no [yolo], [region] or [detection] layer", cfgfile);
    if (l->classes != nlist->size)
        fail("%s has %d names, but classes=%d in %s", name_list, nlist->size, l->classes, cfgfile);

    map_eval e;
    if (map_init(&e, l->classes, iou_thresh, MAP_COUNT_THRESH)) fail("out of memory");
    printf("\n calculation mAP (mean average precision)...\n");
    time_t start = time(0);
    for (int i = 0; i < m; ++i) {
        if (i % 4 == 0) fprintf(stderr, "\r%d", i + 4);
        eval_image(net, &e, paths[i], labels[i], letter);
    }
    printf("\n detections_count = %zu, unique_truth_count = %d  \n", e.ndets, e.ntruths);

    double *ap = calloc((size_t)e.classes, sizeof *ap), map = 0;
    if (!ap || map_compute(&e, points, ap, &map)) fail("out of memory");
    map_report(stdout, &e, points, ap, map, names);
    fprintf(stderr, "Total Detection Time: %d Seconds\n", (int)(time(0) - start));
    fflush(stdout);

    free(ap);
    map_free(&e);
    free(labels);
    free_network(net);
    free(paths);
    free_list_contents(plist);
    free_list(plist);
    for (int i = 0; i < nlist->size; ++i) free(names[i]);
    free(names);
    free_list(nlist);
}
