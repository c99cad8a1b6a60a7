/*
 * metrics.c - the CSV log. One row per iteration, flushed, so a run that is
 * killed still leaves a readable log up to its last iteration.
 */
#include "metrics.h"

#include <time.h>

double hpsgd_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int hpsgd_metrics_open_log(hpsgd_metrics *m, const char *path)
{
    m->log = fopen(path, "w");
    if (!m->log) return -1;
    fprintf(m->log, "iteration,wall_s,loss,avg_loss,learning_rate,images,round,local_steps,allreduce_ms,wait_ms,"
                    "images_per_s\n");
    fflush(m->log);
    return 0;
}

void hpsgd_metrics_row(hpsgd_metrics *m, long iteration, float loss, float avg_loss, float rate, double images)
{
    double wall = hpsgd_now() - m->t0;
    double ips = wall > 0 ? (images - m->seen0) / wall : 0;
    if (m->log) {
        fprintf(m->log, "%ld,%.3f,%.6f,%.6f,%.8g,%.0f,%ld,%ld,%.3f,%.3f,%.2f\n", iteration, wall, loss, avg_loss,
                rate, images, m->rounds, m->round_steps, m->round_allreduce_ms, m->wait_ms, ips);
        fflush(m->log);
    }
}

void hpsgd_metrics_close(hpsgd_metrics *m)
{
    if (m->log) fclose(m->log);
    m->log = NULL;
}
