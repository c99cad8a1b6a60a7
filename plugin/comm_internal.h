/*
 * comm_internal.h - what the MPI thread's algorithms (ring.c) share with the
 * thread itself (comm.c). MPI thread only.
 */
#ifndef HPSGD_COMM_INTERNAL_H
#define HPSGD_COMM_INTERNAL_H

#include <mpi.h>

#include "comm.h"

/* The ring's chunks in flight take HPSGD_TAG_RING + 0 .. HPSGD_RING_MAX_IN_FLIGHT - 1. */
enum { HPSGD_TAG_READY = 7101, HPSGD_TAG_GO = 7102, HPSGD_TAG_BEAT = 7104, HPSGD_TAG_NODE = 7105, HPSGD_TAG_RING = 7200 };

/* The ranks an algorithm runs over: MPI_COMM_WORLD, or the leaders of the
 * hosts (hier.c). world[i]: the world rank of group rank i (for messages and
 * for telling which bytes cross between hosts); NULL when comm is the world. */
typedef struct hpsgd_group {
    MPI_Comm comm;
    int rank, size;
    const int *world;
} hpsgd_group;

/* The length of the chunk of at most chunk elements that starts at start of count. */
static inline size_t hpsgd_chunk_len(size_t count, size_t start, size_t chunk)
{
    return count - start < chunk ? count - start : chunk;
}

/* An element of elem_size bytes as one MPI type (ring.c). */
MPI_Datatype hpsgd_element_type(size_t elem_size);

/* The ring over a group (ring.c); hpsgd_ring_allreduce() is this on the world. */
void hpsgd_ring_allreduce_in(hpsgd_comm *c, const hpsgd_group *g, void *buf, size_t count,
                             const hpsgd_wire_type *type, float *lost, double deadline, const char *what);

/* Hosts: found at start-up (hpsgd_topo_start decides `hierarchical`), freed
 * before MPI_Finalize (hier.c). */
int hpsgd_topo_start(hpsgd_comm *c, char *err, size_t errlen);
void hpsgd_topo_stop(hpsgd_comm *c);
/* 1 when world rank r runs on another host than this rank. */
int hpsgd_other_host(const hpsgd_comm *c, int r);
/* The job's all-reduce, whichever algorithm the settings chose. */
void hpsgd_allreduce(hpsgd_comm *c, void *buf, size_t count, const hpsgd_wire_type *type, float *lost,
                     double deadline, const char *what);

/* The stall inspector (stall.c): a blocking collective has just returned, so
 * every rank took part in it: none has been quiet. */
void hpsgd_stall_all_alive(hpsgd_comm *c);

/* Polls the n requests (with short sleeps, serving the stall inspector)
 * until all are done: 0; or until give_up(c, n, reqs, arg) says so: -1, with
 * the requests still pending (the caller reports and aborts). */
typedef int (*hpsgd_give_up_fn)(hpsgd_comm *c, int n, MPI_Request *reqs, void *arg);
int hpsgd_wait_for(hpsgd_comm *c, int n, MPI_Request *reqs, hpsgd_give_up_fn give_up, void *arg);

/* hpsgd_wait_for() until a deadline on hpsgd_now()'s clock. */
int hpsgd_wait_all(hpsgd_comm *c, int n, MPI_Request *reqs, double deadline);

/* Polls the n requests (as hpsgd_wait_for) until at least one of them is
 * done: how many (their indices in done[n]; MPI sets them to
 * MPI_REQUEST_NULL); 0 when none was pending; -1 past the deadline. */
int hpsgd_wait_some(hpsgd_comm *c, int n, MPI_Request *reqs, int *done, double deadline);

/* One pause between polls (see comm.c), and a sign of life for the training
 * thread's outer bound. */
void hpsgd_poll_pause(hpsgd_comm *c, long *sleep_us);

/* A fatal error seen by the training thread: MPI_Abort now. */
void hpsgd_check_abort_request(hpsgd_comm *c);

/* The stall inspector's verdict: one line on stderr, then MPI_Abort. */
_Noreturn void hpsgd_stall_abort(hpsgd_comm *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
