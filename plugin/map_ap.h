/*
 * map_ap.h - mean average precision of a detector, computed as AlexeyAB's
 * `detector map` (validate_detector_map) does, with no Darknet types so that
 * the arithmetic is tested on its own (tests/unit/test_map.c).
 *
 * Use: map_init(), map_add_image() once per image with its labelled boxes
 * and the detections left after NMS, map_compute(), map_report(), map_free().
 */
#ifndef HPSGD_MAP_AP_H
#define HPSGD_MAP_AP_H

#include <stddef.h>
#include <stdio.h>

/* A box by centre and size, in any unit used alike for truths and detections. */
typedef struct {
    float x, y, w, h;
} map_box;

/* A labelled box (prob unused) or a detection of one class. */
typedef struct {
    map_box box;
    int class_id;
    float prob;
} map_item;

/* One detection as ranked for the precision/recall curves. */
typedef struct {
    float prob;
    int class_id;
    int truth;   /* index over all images' truths of the best match, or -1 */
    size_t seq;  /* arrival order: ties in prob keep it (a stable sort) */
} map_det;

typedef struct {
    int classes;
    float iou_thresh;   /* a match needs IoU > this, and the same class */
    float count_thresh; /* TP/FP counts and average IoU: detections above it */

    map_det *dets;
    size_t ndets, cap;
    int ntruths;         /* all images' labelled boxes so far */
    int *truths_per_class;

    /* At count_thresh, per class and in total (AlexeyAB's "(TP = .., FP = ..)"). */
    int *tp_per_class, *fp_per_class;
    int tp, fp;
    double iou_sum; /* IoU of the TPs above count_thresh */
} map_eval;

/* 0, or -1 when out of memory or classes < 1. */
int map_init(map_eval *e, int classes, float iou_thresh, float count_thresh);
void map_free(map_eval *e);

/* One image: its labelled boxes and its detections in the detector's order
 * (box by box, class by class within a box). 0; -1 when out of memory; -2
 * when a class id is outside 0..classes-1 (nothing is added then). */
int map_add_image(map_eval *e, const map_item *truths, int ntruths, const map_item *dets, int ndets);

/* Darknet's box_iou (0 where it would divide by 0). */
float map_iou(map_box a, map_box b);

/* ap[class] for every class and, returned through *map, their mean over all
 * classes (a class without labelled boxes counts as 0, as in AlexeyAB).
 * points 0: area under the curve at every unique recall; N >= 2: mean of the
 * highest precision at recall >= i/(N-1), i = 0..N-1 (11: VOC2007, 101: COCO).
 * 0, -1 when out of memory, -2 for another number of points. */
int map_compute(const map_eval *e, int points, double *ap, double *map);

/* AlexeyAB's lines: one per class, the counts at count_thresh, the mAP. */
void map_report(FILE *out, const map_eval *e, int points, const double *ap, double map, char **names);

#endif
