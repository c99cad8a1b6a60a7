/*
 * hier.c - the hosts of the job, and the hierarchical all-reduce
 * ([hpsgd] hierarchical=1; Horovod's hierarchical all-reduce). MPI thread only.
 *
 * At start-up (hpsgd_topo_start, before the first job) the ranks that share a
 * host's memory (MPI_Comm_split_type, MPI_COMM_TYPE_SHARED) form a host; its
 * lowest world rank is its leader. Every rank learns every rank's host, so the
 * ring can count the bytes it sends to other hosts, and all decide alike
 * whether to go hierarchical: `auto` (the default) does when there are 2 or
 * more hosts and one of them runs more than one rank. On one host there is no
 * network to spare, and the node-level reduction would put every addition on
 * one rank where the flat ring spreads them over all.
 *
 * The hierarchical all-reduce, in three phases over the whole buffer:
 *   1. node reduce, one chunk (chunk_mb) at a time: the leader adds its
 *      host's other ranks' chunks into its own, in local rank order 1, 2,
 *      ..., L-1 (acc = in + acc, the ring's rule), through shared memory;
 *   2. the leaders all-reduce the buffer across hosts: the plugin's ring on
 *      the leaders' communicator, with its chunks in flight (chunks_in_flight);
 *   3. node broadcast, chunk by chunk: each leader sends the result to its
 *      host's ranks.
 * The phases follow each other rather than chunk by chunk so that the
 * network phase keeps several chunks in flight; the shared-memory phases are
 * short beside it (35 MB in about 10 ms, see comm.c).
 * Every addition happens once, in an order fixed by the ranks' places, so G
 * stays bit-identical on every rank. The wire type's own reduce does the
 * adding: with compress=fp16 the node reduce decodes, adds in float32 and
 * re-encodes like the ring, and what it rounds away goes to the leader's
 * residual (lost), so sent + residual summed over ranks is conserved as in
 * the flat ring (codec.h). Per host, one change crosses the network instead
 * of the flat ring's 2(N-1)/N per rank on the hosts' boundary ranks: the
 * inter-host bytes are (H-1)/H / ((N-1)/N) of the flat ring's with H hosts of
 * N ranks, 2/3 for 2 x 2, 4/7 for 2 x 4.
 *
 * Stalls: the negotiation before every job still runs over all ranks (stall.c),
 * and every wait here has the job's deadline, naming the rank it waits for.
 *
 * Test knob: HPSGD_TEST_RANKS_PER_HOST=k makes world ranks r/k one host (the
 * MPI tests emulate 2 hosts on one machine with it).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "comm_internal.h"
#include "util.h"

struct hpsgd_topo {
    int *host_of;          /* by world rank: the world rank of its host's leader */
    MPI_Comm local;        /* this host's ranks (hierarchical only) */
    hpsgd_group leaders;   /* the leaders; comm is MPI_COMM_NULL on other ranks */
    int *leader_world;     /* world rank of each leader */
    void *scratch[2];      /* leader: two chunks from its host's ranks, one arriving while one is added */
    size_t scratch_bytes;
};

int hpsgd_topo_start(hpsgd_comm *c, char *err, size_t errlen)
{
    struct hpsgd_topo *t = calloc(1, sizeof *t);
    int *count = calloc((size_t)c->size, sizeof *count);
    if (t) t->host_of = malloc((size_t)c->size * sizeof *t->host_of);
    if (!t || !count || !t->host_of) {
        snprintf(err, errlen, "out of memory for the hosts' table");
        if (t) free(t->host_of);
        free(t);
        free(count);
        return -1;
    }
    long k = hpsgd_env_long("HPSGD_TEST_RANKS_PER_HOST", 0, 1, 1L << 20);
    MPI_Comm local;
    if (k) MPI_Comm_split(MPI_COMM_WORLD, (int)(c->rank / k), c->rank, &local);
    else MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &local);
    MPI_Comm_rank(local, &c->local_rank);
    MPI_Comm_size(local, &c->local_size);
    int leader = c->rank; /* local rank 0 has the lowest world rank: the key was the world rank */
    MPI_Bcast(&leader, 1, MPI_INT, 0, local);
    MPI_Allgather(&leader, 1, MPI_INT, t->host_of, 1, MPI_INT, MPI_COMM_WORLD);
    c->nodes = c->max_local = 0;
    for (int r = 0; r < c->size; ++r) {
        c->nodes += t->host_of[r] == r;
        if (++count[t->host_of[r]] > c->max_local) c->max_local = count[t->host_of[r]];
    }
    free(count);
    c->hierarchical = c->hier_requested == 2 ? c->nodes > 1 && c->max_local > 1 : c->hier_requested;
    t->local = MPI_COMM_NULL;
    t->leaders.comm = MPI_COMM_NULL;
    if (!c->hierarchical) {
        MPI_Comm_free(&local);
        c->topo = t;
        return 0;
    }
    t->local = local;
    t->leader_world = malloc((size_t)c->nodes * sizeof *t->leader_world);
    if (!t->leader_world) {
        snprintf(err, errlen, "out of memory for the hosts' table");
        c->topo = t;
        return -1; /* every rank of a host fails alike; MPI_Init's bound ends the rest */
    }
    for (int r = 0, i = 0; r < c->size; ++r)
        if (t->host_of[r] == r) t->leader_world[i++] = r;
    MPI_Comm_split(MPI_COMM_WORLD, c->local_rank == 0 ? 0 : MPI_UNDEFINED, c->rank, &t->leaders.comm);
    t->leaders.size = c->nodes;
    t->leaders.world = t->leader_world;
    if (t->leaders.comm != MPI_COMM_NULL) MPI_Comm_rank(t->leaders.comm, &t->leaders.rank);
    c->topo = t;
    return 0;
}

void hpsgd_topo_stop(hpsgd_comm *c)
{
    struct hpsgd_topo *t = c->topo;
    if (!t) return;
    if (t->leaders.comm != MPI_COMM_NULL) MPI_Comm_free(&t->leaders.comm);
    if (t->local != MPI_COMM_NULL) MPI_Comm_free(&t->local);
    free(t->host_of);
    free(t->leader_world);
    free(t->scratch[0]);
    free(t->scratch[1]);
    free(t);
    c->topo = NULL;
}

int hpsgd_other_host(const hpsgd_comm *c, int r) { return c->topo && c->topo->host_of[r] != c->topo->host_of[c->rank]; }

typedef struct {
    hpsgd_comm *c;
    struct hpsgd_topo *t;
    const hpsgd_wire_type *type;
    MPI_Datatype dt;
    size_t esize;
    double deadline;
    const char *what;
} hier_run;

/* The world rank of local rank j on this host (the leader's host). */
static int local_world(const hier_run *h, int j)
{
    for (int r = h->c->rank, seen = 0; r < h->c->size; ++r)
        if (h->t->host_of[r] == h->c->rank && seen++ == j) return r;
    return -1;
}

static void node_wait(hier_run *h, MPI_Request *req, const char *step, int peer)
{
    if (hpsgd_wait_all(h->c, 1, req, h->deadline))
        hpsgd_stall_abort(h->c, "%s stalled: %s with rank %d on this host not finished after %.0f s", h->what, step,
                          peer, h->c->timeout_s);
}

/* Step 1: the leader adds local ranks 1..L-1 into chunk, in that order. */
static void node_reduce(hier_run *h, unsigned char *chunk, size_t len, float *lost)
{
    hpsgd_comm *c = h->c;
    int n = c->local_size;
    if (n == 1) return;
    if (c->local_rank != 0) {
        MPI_Request req;
        MPI_Isend(chunk, (int)len, h->dt, 0, HPSGD_TAG_NODE, h->t->local, &req);
        c->job_bytes_sent += len * h->esize;
        node_wait(h, &req, "node reduce (sending to the host's leader)", h->t->host_of[c->rank]);
        return;
    }
    MPI_Request req[2];
    MPI_Irecv(h->t->scratch[0], (int)len, h->dt, 1, HPSGD_TAG_NODE, h->t->local, &req[0]);
    for (int j = 1; j < n; ++j) {
        int b = (j - 1) % 2;
        if (j + 1 < n) MPI_Irecv(h->t->scratch[1 - b], (int)len, h->dt, j + 1, HPSGD_TAG_NODE, h->t->local, &req[1 - b]);
        node_wait(h, &req[b], "node reduce (receiving its change)", local_world(h, j));
        h->type->reduce(chunk, h->t->scratch[b], len, lost);
    }
}

/* Step 3: the leader's result to every rank of its host. */
static void node_bcast(hier_run *h, unsigned char *chunk, size_t len)
{
    hpsgd_comm *c = h->c;
    if (c->local_size == 1) return;
    MPI_Request req;
    MPI_Ibcast(chunk, (int)len, h->dt, 0, h->t->local, &req);
    if (c->local_rank == 0) c->job_bytes_sent += (uint64_t)(c->local_size - 1) * len * h->esize;
    node_wait(h, &req, "node broadcast", c->local_rank == 0 ? local_world(h, 1) : h->t->host_of[c->rank]);
}

static void hier_allreduce(hpsgd_comm *c, void *buf, size_t count, const hpsgd_wire_type *type, float *lost,
                           double deadline, const char *what)
{
    struct hpsgd_topo *t = c->topo;
    hier_run h = {c, t, type, hpsgd_element_type(type->elem_size), type->elem_size, deadline, what};
    if (h.dt == MPI_DATATYPE_NULL) hpsgd_stall_abort(c, "%s: no MPI type for %zu-byte elements", what, h.esize);
    size_t chunk_elems = c->chunk_bytes / h.esize ? c->chunk_bytes / h.esize : 1;
    size_t need = (count < chunk_elems ? count : chunk_elems) * h.esize;
    if (c->local_rank == 0 && c->local_size > 1 && need > t->scratch_bytes) {
        for (int b = 0; b < 2; ++b) {
            void *p = realloc(t->scratch[b], need);
            if (!p) hpsgd_stall_abort(c, "%s: out of memory for the node buffers (%zu bytes; lower chunk_mb)", what, need);
            t->scratch[b] = p;
        }
        t->scratch_bytes = need;
    }
    c->polling_node = 1;
    for (size_t start = 0; start < count; start += chunk_elems)
        node_reduce(&h, (unsigned char *)buf + start * h.esize, hpsgd_chunk_len(count, start, chunk_elems),
                    lost ? lost + start : NULL);
    c->polling_node = 0;
    /* The same chunk boundaries as the node level: each chunk's segments sum
     * in the same order as if the ring ran chunk by chunk. */
    if (t->leaders.comm != MPI_COMM_NULL && t->leaders.size > 1)
        hpsgd_ring_allreduce_in(c, &t->leaders, buf, count, type, lost, deadline, what);
    c->polling_node = 1;
    for (size_t start = 0; start < count; start += chunk_elems)
        node_bcast(&h, (unsigned char *)buf + start * h.esize, hpsgd_chunk_len(count, start, chunk_elems));
    c->polling_node = 0;
}

void hpsgd_allreduce(hpsgd_comm *c, void *buf, size_t count, const hpsgd_wire_type *type, float *lost,
                     double deadline, const char *what)
{
    hpsgd_group world = {MPI_COMM_WORLD, c->rank, c->size, NULL};
    if (c->size == 1 || count == 0) return;
    if (c->hierarchical) hier_allreduce(c, buf, count, type, lost, deadline, what);
    else hpsgd_ring_allreduce_in(c, &world, buf, count, type, lost, deadline, what);
}

size_t hpsgd_comm_buffer_bytes(const hpsgd_comm *c)
{
    return c->ring_scratch_bytes + (c->topo ? 2 * c->topo->scratch_bytes : 0);
}
