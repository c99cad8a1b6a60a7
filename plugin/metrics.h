/*
 * metrics.h - per-round figures, the per-iteration line and the CSV log.
 */
#ifndef HPSGD_METRICS_H
#define HPSGD_METRICS_H

#include <stdint.h>
#include <stdio.h>

typedef struct hpsgd_metrics {
    FILE *log;                /* rank 0's CSV, or NULL */
    double t0;                /* wall clock at the start of training */
    double seen0;             /* global images at the start (resume) */

    /* The last merged round. */
    long round_steps;         /* this rank's local steps in it */
    double round_allreduce_ms; /* the MPI thread's wall time for it */

    /* Since the previous iteration line. */
    double wait_ms;           /* training thread waiting for the MPI thread */

    /* Totals for the summary at the end. */
    long rounds;              /* rounds merged so far */
    double total_allreduce_ms;
    double total_allreduce_cpu_ms;
    double total_wait_ms;
    double total_host_ms;     /* diff, add and copy at merge points */
    uint64_t total_bytes_sent;
} hpsgd_metrics;

double hpsgd_now(void);

/* Opens path for the CSV log and writes the header. Returns 0 or -1 (errno). */
int hpsgd_metrics_open_log(hpsgd_metrics *m, const char *path);

/* One CSV row per iteration (rank 0). */
void hpsgd_metrics_row(hpsgd_metrics *m, long iteration, float loss, float avg_loss, float rate, double images);

void hpsgd_metrics_close(hpsgd_metrics *m);

#endif
