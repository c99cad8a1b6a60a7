/*
 * comm.h - the background MPI thread.
 *
 * One pthread owns every MPI call, from MPI_Init_thread to MPI_Finalize (as in
 * Horovod's background thread). The training thread hands it one job at a
 * time and either polls for completion or waits with a bound; it never calls
 * MPI itself. Every job starts with a tiny negotiation through rank 0, which
 * is how the stall inspector knows which ranks have not joined, and every
 * wait inside the thread has a deadline: a stall aborts the job, it never
 * hangs it.
 */
#ifndef HPSGD_COMM_H
#define HPSGD_COMM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ring.h"

typedef enum {
    HPSGD_JOB_BCAST = 1, /* bytes from rank 0 to every rank */
    HPSGD_JOB_ALLGATHER, /* bytes from every rank into out[size * bytes] */
    HPSGD_JOB_ALLREDUCE  /* sum over ranks, in place, same bits everywhere (ring.c) */
} hpsgd_job_kind;

typedef struct hpsgd_job {
    hpsgd_job_kind kind;
    void *data;         /* bcast, allgather: this rank's bytes */
    void *out;          /* allgather: size * bytes */
    size_t bytes;       /* bcast, allgather */
    void *buf;          /* allreduce: count elements of `type` */
    size_t count;
    const hpsgd_wire_type *type; /* NULL: float32 sums */
    float *lost;        /* allreduce: NULL, or count floats where this rank's reductions put what they dropped */
    int64_t *exact;     /* allreduce: integers summed exactly, beside buf (may be NULL) */
    size_t nexact;
    char what[64];      /* "round 12", for messages */
} hpsgd_job;

/* What the MPI thread is set up with (fixed for the job). */
typedef struct hpsgd_comm_settings {
    double timeout_s;     /* one job's bound */
    size_t chunk_floats;  /* the all-reduce chunk, in float32 elements (chunk_mb) */
    int hierarchical;     /* 0: one flat ring; 1: reduce on each host, ring across hosts, broadcast on each
                           * host (hier.c); 2: auto, 1 when there are 2 or more hosts and one of them runs
                           * more than one rank ([hpsgd] hierarchical) */
    int chunks_in_flight; /* chunks a ring works on at once, 1..HPSGD_RING_MAX_IN_FLIGHT; 0: the default */
} hpsgd_comm_settings;

typedef enum {
    HPSGD_COMM_STARTING,
    HPSGD_COMM_IDLE,
    HPSGD_COMM_QUEUED,
    HPSGD_COMM_BUSY,
    HPSGD_COMM_DONE,
    HPSGD_COMM_FAILED,
    HPSGD_COMM_STOPPED
} hpsgd_comm_state;

typedef struct hpsgd_comm {
    pthread_t thread;
    int thread_started;
    pthread_mutex_t lock;
    pthread_cond_t cond;        /* every state change, both directions */

    /* Under lock. */
    hpsgd_comm_state state;
    int stop_requested;
    hpsgd_job job;
    char error[512];

    /* Written by the MPI thread before it reports IDLE the first time. */
    int rank, size, local_rank, local_size;
    int nodes, max_local;       /* hosts in the job, and the most ranks one of them runs */
    int hierarchical;           /* in effect (hier.c decides auto) */

    /* Settings, fixed at start. */
    double timeout_s;           /* one job's bound */
    size_t chunk_bytes;         /* allreduce chunk, whatever the element size */
    long poll_us;               /* sleep between MPI_Testall calls while waiting */
    long test_round_delay_us;   /* tests only: HPSGD_TEST_ROUND_DELAY_US lengthens each round */
    int abort_wait_s;           /* how long a fatal error waits for the MPI thread's MPI_Abort (10) */
    int hier_requested;         /* hpsgd_comm_settings.hierarchical */
    int chunks_in_flight;       /* hpsgd_comm_settings.chunks_in_flight */

    /* Figures of the last finished job (read after DONE). */
    double job_ms;              /* wall time of the job, negotiation included */
    double job_cpu_ms;          /* CPU time the MPI thread used for it */
    uint64_t job_bytes_sent;    /* every byte this rank sent, to any rank */
    uint64_t job_bytes_inter;   /* of those, to ranks on other hosts (the network) */
    uint64_t jobs_done;

    /* Set while the training thread waits for the job: nothing else wants
     * the core then (used when all ranks share this node's memory). */
    _Atomic int training_waits;
    /* A fatal error seen by the training thread: the MPI thread calls MPI_Abort. */
    _Atomic int abort_code;
    /* This rank was asked to stop (async-signal-safe to set): the stall
     * inspector's beats carry it to rank 0 at once. */
    _Atomic int stop_notice;
    /* Rank 0: called on the MPI thread when another rank's stop request
     * arrives (once); under lock. */
    void (*on_stop_notice)(void *arg, int from_rank);
    void *on_stop_arg;
    /* When the MPI thread last polled (ms on the monotonic clock): the
     * training thread's outer bound is on this, not on a job's length. */
    _Atomic uint64_t alive_ms;

    /* MPI thread only. */
    uint64_t seq;               /* jobs started, the same on every rank */
    struct hpsgd_stall *stall;  /* heartbeats (stall.c) */
    void *ring_scratch;         /* one segment of a chunk per chunk in flight, for receiving while adding */
    size_t ring_scratch_bytes;
    struct hpsgd_topo *topo;    /* hosts, the leaders' ring, the node-level buffers (hier.c) */
    int polling_node;           /* in a node-level phase (shared memory): see hpsgd_poll_pause() */
} hpsgd_comm;

/* Starts the thread, which initialises MPI and finds the hosts; waits
 * (bounded) until it reports rank and size. Returns 0, or -1 with err set. */
int hpsgd_comm_start_with(hpsgd_comm *c, const hpsgd_comm_settings *s, char *err, size_t errlen);

/* The same with a flat ring (hierarchical=0) and the default chunks in flight.
 * chunk_floats: the all-reduce chunk, in float32 elements (chunk_mb). */
int hpsgd_comm_start(hpsgd_comm *c, double timeout_s, size_t chunk_floats, char *err, size_t errlen);

/* Queues a job; the thread must be idle (no job in flight). */
void hpsgd_comm_submit(hpsgd_comm *c, const hpsgd_job *job);

/* 1 when the job in flight has finished (or failed), without waiting. */
int hpsgd_comm_finished(hpsgd_comm *c);

/* Waits for the job in flight, however long the other ranks compute (the
 * stall inspector bounds that); -1 with err set if the job failed or the MPI
 * thread stopped polling for 2 x timeout + 60 s. */
int hpsgd_comm_wait(hpsgd_comm *c, char *err, size_t errlen);

/* This rank was asked to stop: tell rank 0 now. Async-signal-safe. */
void hpsgd_comm_notify_stop(hpsgd_comm *c);

/* Rank 0: fn(arg, rank) runs on the MPI thread when another rank's stop
 * request arrives. */
void hpsgd_comm_on_stop(hpsgd_comm *c, void (*fn)(void *arg, int from_rank), void *arg);

/* submit + wait. */
int hpsgd_comm_run(hpsgd_comm *c, const hpsgd_job *job, char *err, size_t errlen);

/* A gather job: every rank's `bytes` of mine into all[size * bytes]. */
int hpsgd_comm_allgather(hpsgd_comm *c, const void *mine, size_t bytes, void *all, const char *what, char *err,
                         size_t errlen);

/* Bytes of the all-reduce's own buffers (the ring's and the node level's);
 * read when no job is in flight. */
size_t hpsgd_comm_buffer_bytes(const hpsgd_comm *c);

/* Waits for any job in flight, has the thread call MPI_Finalize, joins it. */
void hpsgd_comm_stop(hpsgd_comm *c);

/* Has the thread call MPI_Abort (a fatal error seen by the training thread),
 * so that no other rank waits in a collective this rank will never enter.
 * Does not return. */
void hpsgd_comm_abort(hpsgd_comm *c, int code);

#endif
