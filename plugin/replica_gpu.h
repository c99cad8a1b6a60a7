/*
 * replica_gpu.h - the replica's device twin (replica_gpu.c, GPU builds only):
 * replica.c hands each operation here when p->dev is set. inv is 1/N.
 * CPU builds get stubs that never run (p->dev stays NULL there).
 */
#ifndef HPSGD_REPLICA_GPU_H
#define HPSGD_REPLICA_GPU_H

#include "replica.h"

#ifdef GPU
#define HPSGD_REPLICA_GPU 1
/* Sets p->dev, G and B on the current device (from the host tensors), the
 * pinned comm and the host copy of G. Returns 0, or -1 (out of memory). */
int hpsgd_replica_gpu_init(hpsgd_replica *p, int eager);
void hpsgd_replica_gpu_free(hpsgd_replica *p);
size_t hpsgd_replica_gpu_overhead_bytes(const hpsgd_replica *p);
void hpsgd_replica_gpu_reset_global(hpsgd_replica *p);
void hpsgd_replica_gpu_fetch_global(hpsgd_replica *p);
void hpsgd_replica_gpu_settle(hpsgd_replica *p);
void hpsgd_replica_gpu_merge_launch(hpsgd_replica *p, int have_round, float inv);
void hpsgd_replica_gpu_merge_last(hpsgd_replica *p, float inv);
void hpsgd_replica_gpu_diff(hpsgd_replica *p);
void hpsgd_replica_gpu_merge(hpsgd_replica *p, float inv);
#else
#define HPSGD_REPLICA_GPU 0
static inline int hpsgd_replica_gpu_init(hpsgd_replica *p, int eager) { (void)p, (void)eager; return -1; }
static inline void hpsgd_replica_gpu_free(hpsgd_replica *p) { (void)p; }
static inline size_t hpsgd_replica_gpu_overhead_bytes(const hpsgd_replica *p) { (void)p; return 0; }
static inline void hpsgd_replica_gpu_reset_global(hpsgd_replica *p) { (void)p; }
static inline void hpsgd_replica_gpu_fetch_global(hpsgd_replica *p) { (void)p; }
static inline void hpsgd_replica_gpu_settle(hpsgd_replica *p) { (void)p; }
static inline void hpsgd_replica_gpu_merge_launch(hpsgd_replica *p, int have_round, float inv) { (void)p, (void)have_round, (void)inv; }
static inline void hpsgd_replica_gpu_merge_last(hpsgd_replica *p, float inv) { (void)p, (void)inv; }
static inline void hpsgd_replica_gpu_diff(hpsgd_replica *p) { (void)p; }
static inline void hpsgd_replica_gpu_merge(hpsgd_replica *p, float inv) { (void)p, (void)inv; }
#endif

#endif
