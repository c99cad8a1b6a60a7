/*
 * comm_internal.h - what the MPI thread's algorithms (ring.c) share with the
 * thread itself (comm.c). MPI thread only.
 */
#ifndef HPSGD_COMM_INTERNAL_H
#define HPSGD_COMM_INTERNAL_H

#include <mpi.h>

#include "comm.h"

enum { HPSGD_TAG_READY = 7101, HPSGD_TAG_GO = 7102, HPSGD_TAG_RING = 7103, HPSGD_TAG_BEAT = 7104 };

/* Polls the n requests (with short sleeps, serving the stall inspector)
 * until all are done: 0; or until give_up(c, n, reqs, arg) says so: -1, with
 * the requests still pending (the caller reports and aborts). */
typedef int (*hpsgd_give_up_fn)(hpsgd_comm *c, int n, MPI_Request *reqs, void *arg);
int hpsgd_wait_for(hpsgd_comm *c, int n, MPI_Request *reqs, hpsgd_give_up_fn give_up, void *arg);

/* hpsgd_wait_for() until a deadline on hpsgd_now()'s clock. */
int hpsgd_wait_all(hpsgd_comm *c, int n, MPI_Request *reqs, double deadline);

/* One pause between polls (see comm.c), and a sign of life for the training
 * thread's outer bound. */
void hpsgd_poll_pause(hpsgd_comm *c, long *sleep_us);

/* A fatal error seen by the training thread: MPI_Abort now. */
void hpsgd_check_abort_request(hpsgd_comm *c);

/* The stall inspector's verdict: one line on stderr, then MPI_Abort. */
_Noreturn void hpsgd_stall_abort(hpsgd_comm *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
