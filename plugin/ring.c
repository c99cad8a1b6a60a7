/*
 * ring.c - the ring all-reduce (see ring.h). MPI thread only.
 */
#include "ring.h"

#include <stdint.h>
#include <stdlib.h>

#include "comm_internal.h"

static void reduce_f32(void *acc, const void *in, size_t n, float *lost)
{
    (void)lost; /* float32 sums are the reference: nothing to feed back */
    float *a = acc;
    const float *b = in;
    for (size_t i = 0; i < n; ++i) a[i] = b[i] + a[i];
}

const hpsgd_wire_type hpsgd_wire_f32 = {"float32", sizeof(float), reduce_f32};

static void reduce_i64(void *acc, const void *in, size_t n, float *lost)
{
    (void)lost; /* integer sums are exact */
    int64_t *a = acc;
    const int64_t *b = in;
    for (size_t i = 0; i < n; ++i) a[i] = b[i] + a[i];
}

const hpsgd_wire_type hpsgd_wire_i64 = {"int64", sizeof(int64_t), reduce_i64};

/* Segment s of a chunk of len elements: [s*len/N, (s+1)*len/N). */
static size_t seg_begin(size_t len, int s, int n) { return (size_t)((unsigned long long)len * (unsigned)s / (unsigned)n); }

/* One ring step: what this rank sends to the right and receives from the left. */
typedef struct {
    int left, right;       /* group ranks */
    size_t sb, se, rb, re; /* [send begin, end), [receive begin, end), in elements */
} ring_step;

static ring_step ring_step_at(const hpsgd_group *g, size_t len, int send_seg, int recv_seg)
{
    int n = g->size;
    ring_step st = {(g->rank + n - 1) % n, (g->rank + 1) % n, seg_begin(len, send_seg, n),
                    seg_begin(len, send_seg + 1, n), seg_begin(len, recv_seg, n), seg_begin(len, recv_seg + 1, n)};
    return st;
}

static int world_of(const hpsgd_group *g, int r) { return g->world ? g->world[r] : r; }

/* The element as one MPI type, so that counts stay ints for big segments. */
MPI_Datatype hpsgd_element_type(size_t elem_size)
{
    static MPI_Datatype types[9];
    if (elem_size == sizeof(float)) return MPI_FLOAT;
    if (elem_size < sizeof types / sizeof types[0] && types[elem_size] == 0) {
        MPI_Type_contiguous((int)elem_size, MPI_BYTE, &types[elem_size]);
        MPI_Type_commit(&types[elem_size]);
    }
    return elem_size < sizeof types / sizeof types[0] ? types[elem_size] : MPI_DATATYPE_NULL;
}

typedef struct {
    hpsgd_comm *c;
    const hpsgd_group *g;
    unsigned char *chunk;
    size_t len, esize;
    MPI_Datatype dt;
    float *lost; /* the chunk's part of it, or NULL */
    double deadline;
    const char *what;
} ring_run;

/* Sends this step's segment (reqs[0] is the posted receive) and waits for both. */
static void ring_exchange(ring_run *run, const ring_step *st, MPI_Request reqs[2])
{
    hpsgd_comm *c = run->c;
    MPI_Isend(run->chunk + st->sb * run->esize, (int)(st->se - st->sb), run->dt, st->right, HPSGD_TAG_RING,
              run->g->comm, &reqs[1]);
    uint64_t bytes = (st->se - st->sb) * run->esize;
    c->job_bytes_sent += bytes;
    if (hpsgd_other_host(c, world_of(run->g, st->right))) c->job_bytes_inter += bytes;
    if (hpsgd_wait_all(c, 2, reqs, run->deadline))
        hpsgd_stall_abort(c, "%s stalled: ring exchange with ranks %d (left) and %d (right) not finished after %.0f s",
                          run->what, world_of(run->g, st->left), world_of(run->g, st->right), c->timeout_s);
}

/* Reduce-scatter step: send segment `send_seg` to the right while segment
 * `recv_seg` comes from the left into the scratch buffer, then add it into
 * ours. Whole segments in one message each: on a shaped TCP link every
 * message boundary costs a rendezvous round trip queued behind bulk data
 * (measured at 120 Mbit/s: 1 MB pieces reached 62 Mbit/s, whole segments 113). */
static void ring_reduce_step(ring_run *run, const hpsgd_wire_type *type, int send_seg, int recv_seg)
{
    ring_step st = ring_step_at(run->g, run->len, send_seg, recv_seg);
    MPI_Request reqs[2];
    MPI_Irecv(run->c->ring_scratch, (int)(st.re - st.rb), run->dt, st.left, HPSGD_TAG_RING, run->g->comm, &reqs[0]);
    ring_exchange(run, &st, reqs);
    type->reduce(run->chunk + st.rb * run->esize, run->c->ring_scratch, st.re - st.rb,
                 run->lost ? run->lost + st.rb : NULL);
}

/* All-gather step: pass a finished segment on, receive the next one in place. */
static void ring_gather_step(ring_run *run, int send_seg, int recv_seg)
{
    ring_step st = ring_step_at(run->g, run->len, send_seg, recv_seg);
    MPI_Request reqs[2];
    MPI_Irecv(run->chunk + st.rb * run->esize, (int)(st.re - st.rb), run->dt, st.left, HPSGD_TAG_RING, run->g->comm,
              &reqs[0]);
    ring_exchange(run, &st, reqs);
}

void hpsgd_ring_allreduce(hpsgd_comm *c, void *buf, size_t count, const hpsgd_wire_type *type, float *lost,
                          double deadline, const char *what)
{
    hpsgd_group world = {MPI_COMM_WORLD, c->rank, c->size, NULL};
    hpsgd_ring_allreduce_in(c, &world, buf, count, type, lost, deadline, what);
}

void hpsgd_ring_allreduce_in(hpsgd_comm *c, const hpsgd_group *g, void *buf, size_t count,
                             const hpsgd_wire_type *type, float *lost, double deadline, const char *what)
{
    int n = g->size, r = g->rank;
    if (n == 1 || count == 0) return;
    size_t esize = type->elem_size;
    MPI_Datatype dt = hpsgd_element_type(esize);
    if (dt == MPI_DATATYPE_NULL) hpsgd_stall_abort(c, "%s: no MPI type for %zu-byte elements", what, esize);
    size_t chunk_elems = c->chunk_bytes / esize ? c->chunk_bytes / esize : 1;
    /* The largest segment of a chunk arrives in the scratch buffer while ours
     * is added to: allocated on first use, the same size every round after. */
    size_t chunk = count < chunk_elems ? count : chunk_elems;
    size_t need = (chunk / (size_t)n + 1) * esize;
    if (need > c->ring_scratch_bytes) {
        void *scratch = realloc(c->ring_scratch, need);
        if (!scratch) hpsgd_stall_abort(c, "%s: out of memory for the ring buffer (%zu bytes; lower chunk_mb)", what, need);
        c->ring_scratch = scratch;
        c->ring_scratch_bytes = need;
    }
    ring_run run = {c, g, NULL, 0, esize, dt, NULL, deadline, what};
    for (size_t start = 0; start < count; start += chunk_elems) {
        run.len = count - start < chunk_elems ? count - start : chunk_elems;
        run.chunk = (unsigned char *)buf + start * esize;
        run.lost = lost ? lost + start : NULL;
        /* Segment s starts at rank s and collects ranks s+1, s+2, ... in that
         * order; after n-1 steps rank r holds the sum of segment r+1. */
        for (int k = 0; k < n - 1; ++k) ring_reduce_step(&run, type, (r - k + n) % n, (r - k - 1 + n) % n);
        for (int k = 0; k < n - 1; ++k) ring_gather_step(&run, (r + 1 - k + n) % n, (r - k + n) % n);
    }
}
