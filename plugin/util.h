/*
 * util.h - the plugin's one clock, one environment parser, the signal mask of
 * its helper threads and the comparison of gathered reports. Header-only: the
 * MPI thread's tests build comm.c without the rest of the plugin.
 */
#ifndef HPSGD_UTIL_H
#define HPSGD_UTIL_H

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Seconds on the monotonic clock. */
static inline double hpsgd_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of the calling thread, in ms. */
static inline double hpsgd_thread_cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

/* An integer from the environment; def when unset, empty, not a whole
 * number or outside [lo, hi]. */
static inline long hpsgd_env_long(const char *name, long def, long lo, long hi)
{
    const char *s = getenv(name);
    if (!s || !*s) return def;
    char *end;
    long v = strtol(s, &end, 10);
    return (*end || v < lo || v > hi) ? def : v;
}

/* SIGINT/SIGTERM belong to the training thread (lifecycle.c): the plugin's
 * own threads block them, so they never cut short an MPI call or a save. */
static inline void hpsgd_block_stop_signals(void)
{
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, NULL);
}

/* The first rank whose `bytes`-byte report in all[0..n) differs from rank
 * 0's, or -1 when all agree. */
static inline int hpsgd_first_differing(const void *all, size_t bytes, int n)
{
    const unsigned char *p = all;
    for (int r = 1; r < n; ++r)
        if (memcmp(p, p + (size_t)r * bytes, bytes)) return r;
    return -1;
}

#endif
