/*
 * log.c - messages and the fatal-exit path (see log.h).
 */
#include "log.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int log_rank = -1;
static int log_notes = 1;
static volatile sig_atomic_t log_stdout_gone;

/* Clean-ups: few (the MPI thread, the saver, the exit guard). */
#define MAX_CLEANUPS 8
static struct {
    hpsgd_cleanup_fn fn;
    void *arg;
} cleanups[MAX_CLEANUPS];
static int ncleanups;

void hpsgd_log_set_rank(int rank, int notes)
{
    log_rank = rank;
    log_notes = notes;
}

void hpsgd_log_stdout_gone(void) { log_stdout_gone = 1; }

static void vsay(const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (log_rank >= 0) fprintf(stderr, "hpsgd: rank %d: %s\n", log_rank, msg);
    else fprintf(stderr, "hpsgd: %s\n", msg);
    fflush(stderr);
}

void hpsgd_say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay(fmt, ap);
    va_end(ap);
}

void hpsgd_note(const char *fmt, ...)
{
    if (!log_notes) return;
    FILE *out = log_stdout_gone ? stderr : stdout;
    va_list ap;
    va_start(ap, fmt);
    fprintf(out, "hpsgd: ");
    vfprintf(out, fmt, ap);
    fprintf(out, "\n");
    va_end(ap);
    fflush(out);
}

void hpsgd_at_exit(hpsgd_cleanup_fn fn, void *arg)
{
    if (ncleanups < MAX_CLEANUPS) {
        cleanups[ncleanups].fn = fn;
        cleanups[ncleanups++].arg = arg;
    }
}

void hpsgd_forget_exit(hpsgd_cleanup_fn fn, void *arg)
{
    for (int i = 0; i < ncleanups; ++i) {
        if (cleanups[i].fn != fn || cleanups[i].arg != arg) continue;
        for (int j = i + 1; j < ncleanups; ++j) cleanups[j - 1] = cleanups[j];
        --ncleanups;
        return;
    }
}

void hpsgd_run_cleanups(hpsgd_exit_kind how)
{
    /* Newest first: the saver stops before the MPI thread ends the job. Each
     * runs once, even if it fails again. */
    while (ncleanups > 0) {
        --ncleanups;
        cleanups[ncleanups].fn(cleanups[ncleanups].arg, how);
    }
}

void hpsgd_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay(fmt, ap);
    va_end(ap);
    hpsgd_run_cleanups(HPSGD_EXIT_ABORT);
    exit(1);
}

void hpsgd_exit_together(int print, const char *fmt, ...)
{
    if (print) {
        va_list ap;
        va_start(ap, fmt);
        vsay(fmt, ap);
        va_end(ap);
    }
    hpsgd_run_cleanups(HPSGD_EXIT_TOGETHER);
    exit(1);
}
