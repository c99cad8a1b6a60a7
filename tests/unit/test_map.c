/*
 * test_map.c - the AP arithmetic of `detector map` (plugin/map_ap.c) on
 * hand-placed boxes, with each expected AP worked out by hand below.
 *
 * Boxes are 0.2 x 0.2 squares (centre, size). A detection placed exactly on a
 * labelled box has IoU 1; one placed at (0.5, 0.9) overlaps no labelled box.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map_ap.h"

#define EPS 1e-12

static const map_box T1 = {.25f, .25f, .2f, .2f};
static const map_box T2 = {.75f, .75f, .2f, .2f};
static const map_box NOWHERE = {.5f, .9f, .2f, .2f};

static map_item item(map_box b, int cls, float prob)
{
    return (map_item){b, cls, prob};
}

static void assert_near(double got, double want)
{
    if (got < want - EPS || got > want + EPS) fail_msg("got %.15f, want %.15f", got, want);
}

/*
 * One image, one class, labelled boxes T1 and T2. Detections, in rank order:
 *   0.9 on T1   TP   precision 1/1, recall 1/2
 *   0.8 on T1   FP   (duplicate: T1 is taken) precision 1/2, recall 1/2
 *   0.7 nowhere FP   precision 1/3, recall 1/2
 *   0.6 on T2   TP   precision 2/4, recall 2/2
 */
static void add_duplicates_image(map_eval *e)
{
    map_item t[] = {item(T1, 0, 0), item(T2, 0, 0)};
    map_item d[] = {item(T1, 0, .9f), item(T1, 0, .8f), item(NOWHERE, 0, .7f), item(T2, 0, .6f)};
    assert_int_equal(map_add_image(e, t, 2, d, 4), 0);
}

/* Every unique recall: recall 0 -> 1/2 at the best precision from there on
 * (1), 1/2 -> 1 at the best from there on (2/4): 0.5 * 1 + 0.5 * 0.5 = 0.75. */
static void test_every_point_duplicate_is_fp(void **state)
{
    (void)state;
    map_eval e;
    assert_int_equal(map_init(&e, 1, .5f, .65f), 0);
    add_duplicates_image(&e);
    double ap[1], map;
    assert_int_equal(map_compute(&e, 0, ap, &map), 0);
    assert_near(ap[0], .75);
    assert_near(map, .75);
    map_free(&e);
}

/* 11 points: recall >= 0, .1, .2, .3, .4, .5 (6 points) reach precision 1;
 * >= .6 ... 1.0 (5 points) only 2/4: (6 * 1 + 5 * 0.5) / 11 = 8.5 / 11. */
static void test_11_points(void **state)
{
    (void)state;
    map_eval e;
    assert_int_equal(map_init(&e, 1, .5f, .65f), 0);
    add_duplicates_image(&e);
    double ap[1], map;
    assert_int_equal(map_compute(&e, 11, ap, &map), 0);
    assert_near(ap[0], 8.5 / 11);
    map_free(&e);
}

/* 101 points: recall >= 0/100 ... 50/100 (51 points) give 1 (recall 1/2
 * equals 50/100 exactly), 51/100 ... 100/100 (50 points) give 0.5:
 * (51 + 25) / 101 = 76 / 101. */
static void test_101_points(void **state)
{
    (void)state;
    map_eval e;
    assert_int_equal(map_init(&e, 1, .5f, .65f), 0);
    add_duplicates_image(&e);
    double ap[1], map;
    assert_int_equal(map_compute(&e, 101, ap, &map), 0);
    assert_near(ap[0], 76.0 / 101);
    map_free(&e);
}

/* Ties in confidence keep the detector's order (AlexeyAB's stable qsort).
 * Image 1 holds T1, image 2 holds T2 (at T1's place: truths are per image).
 * FP first: ranks FP (0, 0), TP (1/2, 1/2), TP (2/3, 1); area:
 *   1/2 * max(1/2, 2/3) + 1/2 * 2/3 = 2/3.
 * TP first: ranks TP (1, 1/2), FP (1/2, 1/2), TP (2/3, 1); area:
 *   1/2 * 1 + 1/2 * 2/3 = 5/6. */
static double tie_ap(int fp_first)
{
    map_eval e;
    assert_int_equal(map_init(&e, 1, .5f, .25f), 0);
    map_item t1[] = {item(T1, 0, 0)}, t2[] = {item(T1, 0, 0)};
    map_item fp_tp[] = {item(NOWHERE, 0, .8f), item(T1, 0, .8f)};
    map_item tp_fp[] = {item(T1, 0, .8f), item(NOWHERE, 0, .8f)};
    map_item d2[] = {item(T1, 0, .5f)};
    assert_int_equal(map_add_image(&e, t1, 1, fp_first ? fp_tp : tp_fp, 2), 0);
    assert_int_equal(map_add_image(&e, t2, 1, d2, 1), 0);
    double ap[1], map;
    assert_int_equal(map_compute(&e, 0, ap, &map), 0);
    map_free(&e);
    return ap[0];
}

static void test_ties_keep_arrival_order(void **state)
{
    (void)state;
    assert_near(tie_ap(1), 2.0 / 3);
    assert_near(tie_ap(0), 5.0 / 6);
}

/* Three classes. Class 0: T1, found at 0.9 (AP 1). Class 1: no labelled box,
 * one detection (recall stays 0: AP 0 in every mode). Class 2: nothing at
 * all (AP 0). A detection of class 1 on T1 is no match for class 0's box.
 * mAP = (1 + 0 + 0) / 3 in every mode (11 points: precision 1 at every
 * recall up to 1). */
static void test_class_without_truth(void **state)
{
    (void)state;
    int modes[] = {0, 11, 101};
    for (int m = 0; m < 3; ++m) {
        map_eval e;
        assert_int_equal(map_init(&e, 3, .5f, .25f), 0);
        map_item t[] = {item(T1, 0, 0)};
        map_item d[] = {item(T1, 0, .9f), item(T1, 1, .7f)};
        assert_int_equal(map_add_image(&e, t, 1, d, 2), 0);
        double ap[3], map;
        assert_int_equal(map_compute(&e, modes[m], ap, &map), 0);
        assert_near(ap[0], 1);
        assert_near(ap[1], 0);
        assert_near(ap[2], 0);
        assert_near(map, 1.0 / 3);
        map_free(&e);
    }
}

/* IoU: a 0.2 square shifted by 0.1 shares 0.1 x 0.2 = 0.02 of 0.06 (1/3 <
 * 0.5): FP at the default threshold, TP at -iou_thresh 0.3. */
static void test_iou_threshold(void **state)
{
    (void)state;
    map_box shifted = {.35f, .25f, .2f, .2f};
    assert_true(map_iou(T1, shifted) > .333f && map_iou(T1, shifted) < .334f);
    float thresholds[] = {.5f, .3f};
    double want[] = {0, 1};
    for (int k = 0; k < 2; ++k) {
        map_eval e;
        assert_int_equal(map_init(&e, 1, thresholds[k], .25f), 0);
        map_item t[] = {item(T1, 0, 0)}, d[] = {item(shifted, 0, .9f)};
        assert_int_equal(map_add_image(&e, t, 1, d, 1), 0);
        double ap[1], map;
        assert_int_equal(map_compute(&e, 0, ap, &map), 0);
        assert_near(ap[0], want[k]);
        map_free(&e);
    }
}

/* No detections at all (AlexeyAB reads before its array there): AP 0. */
static void test_no_detections(void **state)
{
    (void)state;
    map_eval e;
    assert_int_equal(map_init(&e, 2, .5f, .25f), 0);
    map_item t[] = {item(T1, 0, 0), item(T2, 1, 0)};
    assert_int_equal(map_add_image(&e, t, 2, NULL, 0), 0);
    double ap[2], map = -1;
    assert_int_equal(map_compute(&e, 0, ap, &map), 0);
    assert_near(map, 0);
    map_free(&e);
}

static void test_rejects(void **state)
{
    (void)state;
    map_eval e;
    assert_int_equal(map_init(&e, 0, .5f, .25f), -1);
    assert_int_equal(map_init(&e, 2, .5f, .25f), 0);
    map_item bad[] = {item(T1, 2, 0)};
    assert_int_equal(map_add_image(&e, bad, 1, NULL, 0), -2);
    assert_int_equal(map_add_image(&e, NULL, 0, bad, 1), -2);
    assert_int_equal(e.ndets, 0);
    assert_int_equal(e.ntruths, 0);
    double ap[2], map;
    assert_int_equal(map_compute(&e, 1, ap, &map), -2);
    map_free(&e);
}

/* AlexeyAB's lines, byte for byte. Counts at 0.65 in the duplicates image:
 * 0.9 on T1 TP, 0.8 on T1 FP (T1 already found), 0.7 nowhere FP, 0.6 below. */
static void test_report_format(void **state)
{
    (void)state;
    map_eval e;
    assert_int_equal(map_init(&e, 1, .5f, .65f), 0);
    add_duplicates_image(&e);
    double ap[1], map;
    assert_int_equal(map_compute(&e, 0, ap, &map), 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    char *names[] = {"obj"};
    map_report(f, &e, 0, ap, map, names);
    fclose(f);
    assert_string_equal(buf, "class_id = 0, name = obj, ap = 75.00%   \t (TP = 1, FP = 2) \n"
                             "\n for conf_thresh = 0.65, precision = 0.33, recall = 0.50, F1-score = 0.40 \n"
                             " for conf_thresh = 0.65, TP = 1, FP = 2, FN = 1, average IoU = 33.33 % \n"
                             "\n IoU threshold = 50 %, used Area-Under-Curve for each unique Recall \n"
                             " mean average precision (mAP@0.50) = 0.750000, or 75.00 % \n");
    free(buf);
    map_free(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_point_duplicate_is_fp),
        cmocka_unit_test(test_11_points),
        cmocka_unit_test(test_101_points),
        cmocka_unit_test(test_ties_keep_arrival_order),
        cmocka_unit_test(test_class_without_truth),
        cmocka_unit_test(test_iou_threshold),
        cmocka_unit_test(test_no_detections),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_report_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
