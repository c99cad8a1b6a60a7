/*
 * log.h - the plugin's messages and its one fatal-exit path.
 *
 * Every line starts "hpsgd: " and, once the rank is known, "rank N: ". A
 * fatal error runs the registered clean-ups (newest first) and exits 1; the
 * owners of threads and of MPI register theirs, so no caller needs to know
 * which of them are running.
 */
#ifndef HPSGD_LOG_H
#define HPSGD_LOG_H

/* rank: this process's rank, or -1 when it runs alone (no launcher). notes:
 * whether this rank prints informational lines (rank 0 only, in a job). */
void hpsgd_log_set_rank(int rank, int notes);

/* After a signal stdout may be a pipe nobody reads: notes go to stderr.
 * Async-signal-safe. */
void hpsgd_log_stdout_gone(void);

/* One error or warning line on stderr. */
void hpsgd_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One informational line ("hpsgd: ..."), rank 0 only. */
void hpsgd_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* How the process leaves, for the clean-ups. */
typedef enum {
    HPSGD_EXIT_ABORT,    /* a fatal error on this rank: the job must end now, other ranks may wait for us */
    HPSGD_EXIT_TOGETHER, /* every rank saw the same error and leaves alike (MPI_Finalize) */
    HPSGD_EXIT_QUICK     /* the process is already leaving (Darknet's own exit): stop threads, nothing more */
} hpsgd_exit_kind;
typedef void (*hpsgd_cleanup_fn)(void *arg, hpsgd_exit_kind how);
void hpsgd_at_exit(hpsgd_cleanup_fn fn, void *arg);
void hpsgd_forget_exit(hpsgd_cleanup_fn fn, void *arg);
/* Runs (and forgets) every clean-up, newest first. */
void hpsgd_run_cleanups(hpsgd_exit_kind how);

/* A fatal error on this rank: one line, clean-ups, exit 1 (the MPI thread's
 * clean-up ends the whole job, so no other rank waits for us). */
_Noreturn void hpsgd_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* An error every rank has seen alike (settings, fingerprints): print it if
 * `print`, clean up gracefully (MPI_Finalize), exit 1 on every rank. */
_Noreturn void hpsgd_exit_together(int print, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
