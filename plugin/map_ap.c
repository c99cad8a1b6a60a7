/*
 * map_ap.c - AP and mAP as AlexeyAB's validate_detector_map computes them
 * (src/detector.c of AlexeyAB/darknet 59596d78), so that both forks print the
 * same figures for the same detections.
 */
#include "map_ap.h"

#include <stdlib.h>
#include <string.h>

int map_init(map_eval *e, int classes, float iou_thresh, float count_thresh)
{
    memset(e, 0, sizeof *e);
    if (classes < 1) return -1;
    e->classes = classes;
    e->iou_thresh = iou_thresh;
    e->count_thresh = count_thresh;
    e->truths_per_class = calloc((size_t)classes, sizeof(int));
    e->tp_per_class = calloc((size_t)classes, sizeof(int));
    e->fp_per_class = calloc((size_t)classes, sizeof(int));
    if (!e->truths_per_class || !e->tp_per_class || !e->fp_per_class) {
        map_free(e);
        return -1;
    }
    return 0;
}

void map_free(map_eval *e)
{
    free(e->dets);
    free(e->truths_per_class);
    free(e->tp_per_class);
    free(e->fp_per_class);
    memset(e, 0, sizeof *e);
}

/* Darknet's overlap(): the length two intervals share (negative if none). */
static float overlap(float x1, float w1, float x2, float w2)
{
    float l1 = x1 - w1 / 2, l2 = x2 - w2 / 2;
    float left = l1 > l2 ? l1 : l2;
    float r1 = x1 + w1 / 2, r2 = x2 + w2 / 2;
    float right = r1 < r2 ? r1 : r2;
    return right - left;
}

float map_iou(map_box a, map_box b)
{
    float w = overlap(a.x, a.w, b.x, b.w), h = overlap(a.y, a.h, b.y, b.h);
    float inter = (w < 0 || h < 0) ? 0 : w * h;
    float uni = a.w * a.h + b.w * b.h - inter;
    /* Darknet divides anyway; its NaN fails every "> thresh" just as 0 does. */
    return uni > 0 ? inter / uni : 0;
}

int map_add_image(map_eval *e, const map_item *truths, int ntruths, const map_item *dets, int ndets)
{
    for (int j = 0; j < ntruths; ++j)
        if (truths[j].class_id < 0 || truths[j].class_id >= e->classes) return -2;
    for (int i = 0; i < ndets; ++i)
        if (dets[i].class_id < 0 || dets[i].class_id >= e->classes) return -2;
    if (e->ndets + (size_t)ndets > e->cap) {
        size_t cap = e->cap ? e->cap : 256;
        while (cap < e->ndets + (size_t)ndets) cap *= 2;
        map_det *d = realloc(e->dets, cap * sizeof *d);
        if (!d) return -1;
        e->dets = d;
        e->cap = cap;
    }
    for (int j = 0; j < ntruths; ++j) e->truths_per_class[truths[j].class_id]++;

    size_t first = e->ndets; /* this image's detections start here */
    for (int i = 0; i < ndets; ++i) {
        const map_item *d = &dets[i];
        /* The best labelled box of the same class with IoU > iou_thresh;
         * whether an earlier detection took it is decided after the sort. */
        int best = -1;
        float best_iou = 0;
        for (int j = 0; j < ntruths; ++j) {
            float iou = map_iou(d->box, truths[j].box);
            if (iou > e->iou_thresh && d->class_id == truths[j].class_id && iou > best_iou) {
                best_iou = iou;
                best = e->ntruths + j;
            }
        }
        map_det *m = &e->dets[e->ndets];
        m->prob = d->prob;
        m->class_id = d->class_id;
        m->truth = best;
        m->seq = e->ndets;
        e->ndets++;

        /* AlexeyAB's counts at -thresh: a TP is the first detection of this
         * image, in the detector's order, to match its box (not the most
         * confident one). */
        if (d->prob > e->count_thresh) {
            int found = 0;
            for (size_t k = first; k + 1 < e->ndets && !found; ++k) found = e->dets[k].truth == best;
            if (best > -1 && !found) {
                e->iou_sum += best_iou;
                e->tp++;
                e->tp_per_class[d->class_id]++;
            } else {
                e->fp++;
                e->fp_per_class[d->class_id]++;
            }
        }
    }
    e->ntruths += ntruths;
    return 0;
}

/* Most confident first; ties keep their arrival order, as glibc's merge-sort
 * qsort does in AlexeyAB. */
static int by_prob(const void *pa, const void *pb)
{
    const map_det *a = pa, *b = pb;
    if (a->prob != b->prob) return a->prob < b->prob ? 1 : -1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* AP of one class from its precision/recall after each of its n detections. */
static double class_ap(const double *prec, const double *rec, int n, int points)
{
    double ap = 0;
    if (n == 0) return 0;
    if (points == 0) {
        /* Right to left: each step in recall times the highest precision
         * reached at that recall or beyond (VOC2010+ area under the curve). */
        double last_rec = rec[n - 1], last_prec = prec[n - 1];
        for (int r = n - 2; r >= 0; --r) {
            double delta = last_rec - rec[r];
            last_rec = rec[r];
            if (prec[r] > last_prec) last_prec = prec[r];
            ap += delta * last_prec;
        }
        return ap + last_rec * last_prec; /* from recall 0 to the first detection's */
    }
    for (int p = 0; p < points; ++p) {
        double want = p * 1.0 / (points - 1), best = 0;
        for (int r = 0; r < n; ++r)
            if (rec[r] >= want && prec[r] > best) best = prec[r];
        ap += best;
    }
    return ap / points;
}

int map_compute(const map_eval *e, int points, double *ap, double *map)
{
    if (points != 0 && points < 2) return -2;
    size_t n = e->ndets;
    map_det *sorted = malloc((n ? n : 1) * sizeof *sorted);
    char *taken = calloc(e->ntruths > 0 ? (size_t)e->ntruths : 1, 1);
    int *cls_tp = calloc((size_t)e->classes, sizeof(int)), *cls_fp = calloc((size_t)e->classes, sizeof(int));
    int *cls_n = calloc((size_t)e->classes, sizeof(int));
    double *prec = malloc((n ? n : 1) * sizeof(double)), *rec = malloc((n ? n : 1) * sizeof(double));
    size_t *start = calloc((size_t)e->classes + 1, sizeof(size_t)); /* each class's points, apart */
    int rc = -1;
    if (!sorted || !taken || !cls_tp || !cls_fp || !cls_n || !prec || !rec || !start) goto out;
    if (n) memcpy(sorted, e->dets, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, by_prob);

    /* One pass in rank order: the first detection to claim a box is a TP,
     * later ones (duplicates) FPs. */
    for (size_t r = 0; r < n; ++r) cls_n[sorted[r].class_id]++;
    for (int c = 0; c < e->classes; ++c) start[c + 1] = start[c] + (size_t)cls_n[c];
    memset(cls_n, 0, (size_t)e->classes * sizeof(int));
    for (size_t r = 0; r < n; ++r) {
        const map_det *d = &sorted[r];
        int c = d->class_id;
        if (d->truth > -1 && !taken[d->truth]) {
            taken[d->truth] = 1;
            cls_tp[c]++;
        } else {
            cls_fp[c]++;
        }
        int tp = cls_tp[c], fp = cls_fp[c], truths = e->truths_per_class[c];
        size_t at = start[c] + (size_t)cls_n[c]++;
        prec[at] = (double)tp / (double)(tp + fp);
        rec[at] = truths > 0 ? (double)tp / (double)truths : 0;
    }
    double sum = 0;
    for (int c = 0; c < e->classes; ++c) {
        ap[c] = class_ap(prec + start[c], rec + start[c], cls_n[c], points);
        sum += ap[c];
    }
    *map = sum / e->classes;
    rc = 0;
out:
    free(start);
    free(sorted);
    free(taken);
    free(cls_tp);
    free(cls_fp);
    free(cls_n);
    free(prec);
    free(rec);
    return rc;
}

void map_report(FILE *out, const map_eval *e, int points, const double *ap, double map, char **names)
{
    for (int c = 0; c < e->classes; ++c)
        fprintf(out, "class_id = %d, name = %s, ap = %2.2f%%   \t (TP = %d, FP = %d) \n", c, names[c], ap[c] * 100,
                e->tp_per_class[c], e->fp_per_class[c]);

    /* AlexeyAB prints nan for 0/0 here; 0 is what a script can read. */
    int truths = e->ntruths, tp = e->tp, fp = e->fp;
    float precision = tp + fp > 0 ? (float)tp / ((float)tp + (float)fp) : 0;
    float recall = truths > 0 ? (float)tp / (float)truths : 0;
    float f1 = precision + recall > 0 ? 2.F * precision * recall / (precision + recall) : 0;
    float avg_iou = tp + fp > 0 ? (float)(e->iou_sum / (tp + fp)) : 0; /* sic: over TP + FP */
    fprintf(out, "\n for conf_thresh = %1.2f, precision = %1.2f, recall = %1.2f, F1-score = %1.2f \n",
            e->count_thresh, precision, recall, f1);
    fprintf(out, " for conf_thresh = %0.2f, TP = %d, FP = %d, FN = %d, average IoU = %2.2f %% \n", e->count_thresh, tp,
            fp, truths - tp, avg_iou * 100);
    fprintf(out, "\n IoU threshold = %2.0f %%, ", e->iou_thresh * 100);
    if (points) fprintf(out, "used %d Recall-points \n", points);
    else fprintf(out, "used Area-Under-Curve for each unique Recall \n");
    fprintf(out, " mean average precision (mAP@%0.2f) = %f, or %2.2f %% \n", e->iou_thresh, map, map * 100);
}
