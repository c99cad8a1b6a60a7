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

/* One of the chunks in flight: slot s works on chunks s, s + K, s + 2K, ...
 * (K = chunks_in_flight), one ring step at a time, with its own tag, so that
 * its messages pair up on every rank whichever slot runs ahead (MPI keeps
 * the order of messages with one tag between two ranks). A step sends a
 * whole segment as one message: on a shaped TCP link every message boundary
 * costs a rendezvous round trip queued behind bulk data (measured at 120
 * Mbit/s: 1 MB pieces reached 62 Mbit/s, whole segments 113). */
typedef struct {
    size_t start, len;      /* the chunk: elements [start, start + len) of the buffer */
    int step;               /* 0 .. n-2: reduce-scatter; n-1 .. 2n-3: all-gather */
    int busy;               /* 0: no chunk left for this slot */
    int recv_seg;           /* the segment this step receives */
    unsigned char *scratch; /* a reduce step's incoming segment */
} ring_slot;

typedef struct {
    hpsgd_comm *c;
    const hpsgd_group *g;
    const hpsgd_wire_type *type;
    unsigned char *buf;
    size_t count, chunk_elems, esize;
    MPI_Datatype dt;
    float *lost; /* the whole buffer's, or NULL */
    int left, right, slots;
    ring_slot slot[HPSGD_RING_MAX_IN_FLIGHT];
    MPI_Request reqs[2 * HPSGD_RING_MAX_IN_FLIGHT]; /* slot s: [2s] its receive, [2s+1] its send */
} ring_run;

/* Posts slot s's current step: the receive from the left, the send to the
 * right. Segment r - k starts at rank r - k and collects ranks r - k + 1,
 * ... in that order (the reduce-scatter); after n-1 steps rank r holds the
 * sum of segment r + 1, which the all-gather passes on. */
static void ring_post(ring_run *run, int s)
{
    ring_slot *sl = &run->slot[s];
    int n = run->g->size, r = run->g->rank, k = sl->step;
    int reduce = k < n - 1, j = reduce ? k : k - (n - 1);
    int send_seg = reduce ? (r - j + n) % n : (r + 1 - j + n) % n;
    sl->recv_seg = reduce ? (r - j - 1 + n) % n : (r - j + n) % n;
    size_t sb = seg_begin(sl->len, send_seg, n), se = seg_begin(sl->len, send_seg + 1, n);
    size_t rb = seg_begin(sl->len, sl->recv_seg, n), re = seg_begin(sl->len, sl->recv_seg + 1, n);
    unsigned char *chunk = run->buf + sl->start * run->esize;
    int tag = HPSGD_TAG_RING + s;
    MPI_Irecv(reduce ? sl->scratch : chunk + rb * run->esize, (int)(re - rb), run->dt, run->left, tag, run->g->comm,
              &run->reqs[2 * s]);
    MPI_Isend(chunk + sb * run->esize, (int)(se - sb), run->dt, run->right, tag, run->g->comm, &run->reqs[2 * s + 1]);
    uint64_t bytes = (se - sb) * run->esize;
    run->c->job_bytes_sent += bytes;
    if (hpsgd_other_host(run->c, world_of(run->g, run->right))) run->c->job_bytes_inter += bytes;
}

/* Slot s's step is done: add what came in (reduce-scatter), then post the
 * next step, or the slot's next chunk; 0 when the slot has no chunk left. */
static int ring_advance(ring_run *run, int s)
{
    ring_slot *sl = &run->slot[s];
    int n = run->g->size;
    if (sl->step < n - 1) {
        size_t rb = seg_begin(sl->len, sl->recv_seg, n), re = seg_begin(sl->len, sl->recv_seg + 1, n);
        size_t at = sl->start + rb;
        run->type->reduce(run->buf + at * run->esize, sl->scratch, re - rb, run->lost ? run->lost + at : NULL);
    }
    if (++sl->step == 2 * (n - 1)) {
        sl->step = 0;
        sl->start += (size_t)run->slots * run->chunk_elems;
        if (sl->start >= run->count) return 0;
        sl->len = hpsgd_chunk_len(run->count, sl->start, run->chunk_elems);
    }
    ring_post(run, s);
    return 1;
}

void hpsgd_ring_allreduce(hpsgd_comm *c, void *buf, size_t count, const hpsgd_wire_type *type, float *lost,
                          double deadline, const char *what)
{
    hpsgd_group world = {MPI_COMM_WORLD, c->rank, c->size, NULL};
    hpsgd_ring_allreduce_in(c, &world, buf, count, type, lost, deadline, what);
}

/* Chunks are independent rings: each segment of each chunk is still summed
 * once, in its fixed order, however many are in flight, so the bits do not
 * depend on chunks_in_flight. One chunk at a time, every step waits for its
 * slowest pair and pays a message's latency (at 8 ranks and 1 MB chunks the
 * ring reached 0.66 of the bandwidth bound, 0.88 at 2 and 4; BENCHMARKS.md);
 * with several in flight, one chunk's data flows while another waits. */
void hpsgd_ring_allreduce_in(hpsgd_comm *c, const hpsgd_group *g, void *buf, size_t count,
                             const hpsgd_wire_type *type, float *lost, double deadline, const char *what)
{
    int n = g->size;
    if (n == 1 || count == 0) return;
    ring_run run = {.c = c, .g = g, .type = type, .buf = buf, .count = count, .esize = type->elem_size,
                    .dt = hpsgd_element_type(type->elem_size), .lost = lost,
                    .left = (g->rank + n - 1) % n, .right = (g->rank + 1) % n};
    if (run.dt == MPI_DATATYPE_NULL) hpsgd_stall_abort(c, "%s: no MPI type for %zu-byte elements", what, run.esize);
    run.chunk_elems = c->chunk_bytes / run.esize ? c->chunk_bytes / run.esize : 1;
    size_t chunks = (count + run.chunk_elems - 1) / run.chunk_elems;
    run.slots = c->chunks_in_flight; /* 1..HPSGD_RING_MAX_IN_FLIGHT (comm.c) */
    if ((size_t)run.slots > chunks) run.slots = (int)chunks;
    /* Each slot's largest segment arrives in its own part of the scratch
     * buffer while ours is added to: allocated on first use, the same size
     * every round after. */
    size_t chunk = count < run.chunk_elems ? count : run.chunk_elems;
    size_t seg_bytes = (chunk / (size_t)n + 1) * run.esize, need = seg_bytes * (size_t)run.slots;
    if (need > c->ring_scratch_bytes) {
        void *scratch = realloc(c->ring_scratch, need);
        if (!scratch) hpsgd_stall_abort(c, "%s: out of memory for the ring buffer (%zu bytes; lower chunk_mb)", what, need);
        c->ring_scratch = scratch;
        c->ring_scratch_bytes = need;
    }
    for (int s = 0; s < run.slots; ++s) {
        ring_slot *sl = &run.slot[s];
        sl->start = (size_t)s * run.chunk_elems;
        sl->len = hpsgd_chunk_len(count, sl->start, run.chunk_elems);
        sl->step = 0;
        sl->busy = 1;
        sl->scratch = (unsigned char *)c->ring_scratch + (size_t)s * seg_bytes;
        ring_post(&run, s);
    }
    int done[2 * HPSGD_RING_MAX_IN_FLIGHT]; /* MPI_Testsome's indices; the slots' requests tell the same */
    for (int active = run.slots; active;) {
        int got = hpsgd_wait_some(c, 2 * run.slots, run.reqs, done, deadline);
        if (got < 0)
            hpsgd_stall_abort(c, "%s stalled: ring exchange with ranks %d (left) and %d (right) not finished after %.0f s",
                              what, world_of(g, run.left), world_of(g, run.right), c->timeout_s);
        if (got == 0) /* none pending while a slot is busy: a bug; abort rather than loop */
            hpsgd_stall_abort(c, "%s: the ring has %d chunks in flight but no request pending", what, active);
        /* A slot's step is done when both its requests are (MPI sets them to
         * MPI_REQUEST_NULL). */
        for (int s = 0; s < run.slots; ++s) {
            ring_slot *sl = &run.slot[s];
            if (sl->busy && run.reqs[2 * s] == MPI_REQUEST_NULL && run.reqs[2 * s + 1] == MPI_REQUEST_NULL) {
                sl->busy = ring_advance(&run, s);
                active -= !sl->busy;
            }
        }
    }
}
