/*
 * report.h - what the plugin tells the user: per-round figures, rank 0's
 * per-iteration line and CSV row, and the summary at the end.
 */
#ifndef HPSGD_REPORT_H
#define HPSGD_REPORT_H

#include <stdint.h>
#include <stdio.h>

typedef struct hpsgd_report {
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
    double total_host_ms;     /* diff, add and copy at merge points, and the codec's encode and decode */
    uint64_t total_bytes_sent;
    uint64_t total_bytes_inter; /* of those, to ranks on other hosts */
} hpsgd_report;

/* Where the rounds' bytes went, over all ranks (hooks.c gathers it at the end). */
typedef struct hpsgd_wire_report {
    double inter_mb_all_ranks; /* MB all ranks sent to other hosts in all rounds */
    int hosts, hierarchical;
} hpsgd_wire_report;

/* Starts the clocks; path: the CSV to write ("" = none). Returns 0 or -1 (errno). */
int hpsgd_report_start(hpsgd_report *m, double seen, const char *path);

/* A finished round: its wait on the training thread and the MPI thread's figures. */
void hpsgd_report_round(hpsgd_report *m, double waited_ms, double allreduce_ms, double cpu_ms, uint64_t bytes_sent,
                        uint64_t bytes_inter, long steps);

/* After Darknet's iteration line: on rank 0 (print) the plugin's line and a
 * CSV row; on every rank the per-iteration figures start again. */
void hpsgd_report_iteration(hpsgd_report *m, int print, long iteration, float loss, float avg_loss, float rate,
                            double seen);

/* The summary line (rank 0). overhead_mb: the plugin's memory; model_mb: the
 * saved model's size. "X MB sent" is this rank's; "(Y MB to other hosts)" the
 * part of it that crossed the network; "all ranks Z MB to other hosts per
 * round" sums that over the ranks (the figure to compare flat and
 * hierarchical rings by). */
void hpsgd_report_summary(const hpsgd_report *m, long merges, long steps_overlapped, long rounds_hidden,
                          double overhead_mb, double model_mb, const hpsgd_wire_report *w);

void hpsgd_report_close(hpsgd_report *m);

#endif
