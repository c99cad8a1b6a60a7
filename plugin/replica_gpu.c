/*
 * replica_gpu.c - the replica's device twin (replica.h, replica_gpu.h): G and
 * B (merge=eager) in one device allocation beside the round's buffer there;
 * R is Darknet's own `*_gpu` tensors, merged in place by merge_gpu.cu's
 * kernels, one launch per travelling tensor's slice, on a stream of ours.
 *
 * Only the change and the sum cross to the host, through the pinned comm
 * buffer, with cudaMemcpyAsync on that stream. Each operation ends by
 * waiting for the stream, so when it returns the change is in comm (the
 * training thread then hands the round to the MPI thread, which touches
 * host buffers only and makes no CUDA call) and R is merged before Darknet
 * queues its next step. On an H200 the host merge of yolov3-tiny cost 28 to
 * 44 ms per merge, mostly the pull and push of every tensor
 * (tests/gpu/RESULTS.md); here two copies of the model's size remain.
 */
#include "replica_gpu.h"

#include <cuda_runtime_api.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "merge.h"

struct hpsgd_replica_dev {
    int device;           /* the training thread's: the saver thread selects it too */
    cudaStream_t stream;  /* the merges and their copies */
    float *mem;           /* the one allocation: G, the round's buffer, B */
    float *g, *c, *b;     /* b: NULL with merge=reset */
};

static void check(cudaError_t e, const char *what)
{
    if (e != cudaSuccess) hpsgd_fatal("CUDA error in the device merge (%s): %s", what, cudaGetErrorString(e));
}

static size_t bytes(const hpsgd_replica *p) { return p->n * sizeof(float); }

int hpsgd_replica_gpu_init(hpsgd_replica *p, int eager)
{
    struct hpsgd_replica_dev *d = calloc(1, sizeof *d);
    size_t n = p->n ? p->n : 1;
    p->global = malloc(n * sizeof(float));
    if (!d || !p->global) {
        free(d);
        free(p->global);
        p->global = NULL;
        return -1;
    }
    p->dev = d;
    check(cudaGetDevice(&d->device), "cudaGetDevice");
    /* Non-blocking: ordered against Darknet's streams only where we say so. */
    check(cudaStreamCreateWithFlags(&d->stream, cudaStreamNonBlocking), "cudaStreamCreate");
    void *comm = NULL;
    if (cudaMalloc((void **)&d->mem, (eager ? 3 : 2) * n * sizeof(float)) != cudaSuccess ||
        cudaHostAlloc(&comm, n * sizeof(float), cudaHostAllocDefault) != cudaSuccess) {
        (void)cudaGetLastError(); /* the allocation's error is not sticky: report it as memory */
        hpsgd_replica_gpu_free(p);
        return -1;
    }
    p->comm = comm;
    memset(p->comm, 0, n * sizeof(float));
    d->g = d->mem;
    d->c = d->mem + n;
    d->b = eager ? d->mem + 2 * n : NULL;
    hpsgd_replica_gpu_reset_global(p);
    return 0;
}

/* Errors are ignored: this may run at exit, after the CUDA runtime. */
void hpsgd_replica_gpu_free(hpsgd_replica *p)
{
    struct hpsgd_replica_dev *d = p->dev;
    if (!d) return;
    if (d->mem) (void)cudaFree(d->mem);
    if (p->comm) (void)cudaFreeHost(p->comm);
    if (d->stream) (void)cudaStreamDestroy(d->stream);
    free(p->global);
    free(d);
    p->dev = NULL;
    p->global = p->comm = p->base = NULL;
}

size_t hpsgd_replica_gpu_overhead_bytes(const hpsgd_replica *p)
{
    return bytes(p) * (p->dev->b ? 3 : 2) /* device */ + bytes(p) * 2 /* host: comm, G's copy */;
}

/* Waits for the queued work, and reports a kernel that failed to launch. */
static void finish(struct hpsgd_replica_dev *d, const char *what)
{
    check(cudaGetLastError(), what);
    check(cudaStreamSynchronize(d->stream), what);
}

void hpsgd_replica_gpu_reset_global(hpsgd_replica *p)
{
    struct hpsgd_replica_dev *d = p->dev;
    hpsgd_registry_gather(p->reg, p->global);
    check(cudaMemcpyAsync(d->g, p->global, bytes(p), cudaMemcpyHostToDevice, d->stream), "G to the device");
    if (d->b) check(cudaMemcpyAsync(d->b, d->g, bytes(p), cudaMemcpyDeviceToDevice, d->stream), "B = G");
    finish(d, "G to the device");
}

/* Also from rank 0's saver thread: a thread's device is its own setting.
 * G changes only under the checkpoint's lock, which the caller holds, and
 * every merge has waited for its stream before releasing it. */
void hpsgd_replica_gpu_fetch_global(hpsgd_replica *p)
{
    struct hpsgd_replica_dev *d = p->dev;
    check(cudaSetDevice(d->device), "cudaSetDevice");
    check(cudaMemcpy(p->global, d->g, bytes(p), cudaMemcpyDeviceToHost), "G from the device");
}

/* Darknet queued its update of R on its own stream (pjreddie: the legacy
 * default stream; AlexeyAB with CUDNN: a non-blocking one): all of it must
 * be done before a kernel reads R. */
static void begin(void) { check(cudaDeviceSynchronize(), "waiting for Darknet's step"); }

void hpsgd_replica_gpu_settle(hpsgd_replica *p)
{
    (void)p;
    begin();
}

static void sum_to_device(hpsgd_replica *p)
{
    check(cudaMemcpyAsync(p->dev->c, p->comm, bytes(p), cudaMemcpyHostToDevice, p->dev->stream), "the sum A to the device");
}

static void change_to_host(hpsgd_replica *p)
{
    check(cudaMemcpyAsync(p->comm, p->dev->c, bytes(p), cudaMemcpyDeviceToHost, p->dev->stream), "the change D to the host");
}

/* Runs stmt with r, g, c, b (NULL when reset) and count set to each
 * travelling tensor's device slice (replica.c's FOR_EACH_SLICE on the device). */
#define FOR_EACH_SLICE(p, stmt)                                                   \
    for (int ti = 0; ti < (p)->reg->count; ++ti) {                                \
        const hpsgd_tensor *t = &(p)->reg->tensors[ti];                           \
        if (!t->travels) continue;                                                \
        float *r = t->gpu;                                                        \
        float *g = (p)->dev->g + t->offset;                                       \
        float *c = (p)->dev->c + t->offset;                                       \
        float *b = (p)->dev->b ? (p)->dev->b + t->offset : NULL;                  \
        size_t count = t->n;                                                      \
        (void)b;                                                                  \
        stmt;                                                                     \
    }

void hpsgd_replica_gpu_merge_launch(hpsgd_replica *p, int have_round, float inv)
{
    cudaStream_t s = p->dev->stream;
    begin();
    if (have_round) sum_to_device(p);
    FOR_EACH_SLICE(p, hpsgd_merge_launch_gpu(r, g, c, b, count, have_round, inv, p->lookahead, s));
    change_to_host(p);
    finish(p->dev, "merge and launch");
}

void hpsgd_replica_gpu_merge_last(hpsgd_replica *p, float inv)
{
    cudaStream_t s = p->dev->stream;
    begin();
    sum_to_device(p);
    FOR_EACH_SLICE(p, hpsgd_merge_last_gpu(r, g, c, b, count, inv, s));
    finish(p->dev, "last merge");
}

void hpsgd_replica_gpu_diff(hpsgd_replica *p)
{
    cudaStream_t s = p->dev->stream;
    begin();
    FOR_EACH_SLICE(p, hpsgd_merge_diff_gpu(r, g, c, count, s));
    change_to_host(p);
    finish(p->dev, "change of the round");
}

void hpsgd_replica_gpu_merge(hpsgd_replica *p, float inv)
{
    struct hpsgd_replica_dev *d = p->dev;
    begin();
    sum_to_device(p);
    FOR_EACH_SLICE(p, hpsgd_merge_gpu(r, g, c, count, inv, d->stream));
    if (d->b) check(cudaMemcpyAsync(d->b, d->g, bytes(p), cudaMemcpyDeviceToDevice, d->stream), "B = G");
    finish(d, "merge");
}
