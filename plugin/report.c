/*
 * report.c - the per-iteration line, the CSV log and the summary. One CSV
 * row per iteration, flushed, so a run that is killed still leaves a
 * readable log up to its last iteration.
 */
#include "report.h"

#include <stdio.h>

#include "log.h"
#include "util.h"

int hpsgd_report_start(hpsgd_report *m, double seen, const char *path)
{
    m->t0 = hpsgd_now();
    m->seen0 = seen;
    if (!path || !path[0]) return 0;
    m->log = fopen(path, "w");
    if (!m->log) return -1;
    fprintf(m->log, "iteration,wall_s,loss,avg_loss,learning_rate,images,round,local_steps,allreduce_ms,wait_ms,"
                    "images_per_s\n");
    fflush(m->log);
    return 0;
}

void hpsgd_report_round(hpsgd_report *m, double waited_ms, double allreduce_ms, double cpu_ms, uint64_t bytes_sent,
                        uint64_t bytes_inter, long steps)
{
    m->total_bytes_inter += bytes_inter;
    m->wait_ms += waited_ms;
    m->total_wait_ms += waited_ms;
    m->round_allreduce_ms = allreduce_ms;
    m->total_allreduce_ms += allreduce_ms;
    m->total_allreduce_cpu_ms += cpu_ms;
    m->total_bytes_sent += bytes_sent;
    m->round_steps = steps;
    ++m->rounds;
}

void hpsgd_report_iteration(hpsgd_report *m, int print, long iteration, float loss, float avg_loss, float rate,
                            double seen)
{
    if (!print) {
        m->wait_ms = 0;
        return;
    }
    double wall = hpsgd_now() - m->t0;
    double ips = wall > 0 ? (seen - m->seen0) / wall : 0;
    printf("hpsgd: round %ld, %ld local step%s, all-reduce %.1f ms, wait %.1f ms, %.1f images/s\n", m->rounds,
           m->round_steps, m->round_steps == 1 ? "" : "s", m->round_allreduce_ms, m->wait_ms, ips);
    if (m->log) {
        fprintf(m->log, "%ld,%.3f,%.6f,%.6f,%.8g,%.0f,%ld,%ld,%.3f,%.3f,%.2f\n", iteration, wall, loss, avg_loss,
                rate, seen, m->rounds, m->round_steps, m->round_allreduce_ms, m->wait_ms, ips);
        fflush(m->log);
    }
    m->wait_ms = 0;
}

void hpsgd_report_summary(const hpsgd_report *m, long merges, long steps_overlapped, long rounds_hidden,
                          double overhead_mb, double model_mb, const hpsgd_wire_report *w)
{
    double wall = hpsgd_now() - m->t0;
    double rounds = m->rounds > 0 ? (double)m->rounds : 1;
    char inter[200];
    snprintf(inter, sizeof inter, "%.3f MB to other hosts; all ranks %.3f MB to other hosts per round, %d host%s, "
             "hierarchical=%d", m->total_bytes_inter / 1e6, w->inter_mb_all_ranks / rounds, w->hosts,
             w->hosts == 1 ? "" : "s", w->hierarchical);
    hpsgd_note("%ld rounds in %.1f s: all-reduce %.1f ms per round (MPI thread CPU %.0f%% of a core while busy), "
               "training waited %.1f s (%.1f%%), host work %.2f ms per merge, %.3f MB sent (%s), %ld local steps ran "
               "while a round was pending, %ld rounds finished before they were needed, overhead %.1f MB for a %.1f MB "
               "model",
               m->rounds, wall, m->total_allreduce_ms / rounds,
               m->total_allreduce_ms > 0 ? 100 * m->total_allreduce_cpu_ms / m->total_allreduce_ms : 0,
               m->total_wait_ms / 1e3, wall > 0 ? 100 * m->total_wait_ms / 1e3 / wall : 0,
               m->total_host_ms / (merges > 0 ? (double)merges : 1), m->total_bytes_sent / 1e6, inter,
               steps_overlapped, rounds_hidden, overhead_mb, model_mb);
}

void hpsgd_report_close(hpsgd_report *m)
{
    if (m->log) fclose(m->log);
    m->log = NULL;
}
