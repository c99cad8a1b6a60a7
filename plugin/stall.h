/*
 * stall.h - the stall inspector: heartbeats between rank 0 and every other
 * rank, and the negotiation that starts every job. MPI thread only.
 *
 * A job starts when every rank has reached it, and a rank may spend a long
 * time computing before it does: a training step of a big model on a CPU
 * takes minutes. So the time a rank may take to join is not bounded; what is
 * bounded is the time it may go without progress. Every rank's MPI thread
 * sends rank 0 a beat every `timeout`/4 (at most 1 s) with the CPU time its
 * other threads have used (training and loading) and the job it is waiting
 * in, and rank 0 sends the same to every rank. A rank that computes, or
 * waits in a job, makes progress; one that is stopped (SIGSTOP), dead, or
 * hung without using the CPU does not, and is named once `timeout` seconds
 * pass without progress (README, "Errors"). After every rank has joined, the
 * data phase of the job has its own `timeout`.
 *
 * The beats also carry a stop request: a signal to any rank reaches rank 0
 * within a beat's wake-up, not only with the next round, and rank 0 saves.
 */
#ifndef HPSGD_STALL_H
#define HPSGD_STALL_H

#include "comm.h"

/* After MPI_Init (nothing to do on one rank), and before MPI_Finalize. */
void hpsgd_stall_start(hpsgd_comm *c);
void hpsgd_stall_stop(hpsgd_comm *c);

/* Sends and receives the beats that are due; cheap enough to call on every
 * poll. */
void hpsgd_stall_service(hpsgd_comm *c);

/* Every job starts here: each rank tells rank 0 which job it is at; rank 0
 * checks that all agree and says go. A rank that makes no progress for
 * `timeout` is named (rank 0 names the others; the others name rank 0), and
 * the job is aborted. */
struct hpsgd_job;
void hpsgd_negotiate(hpsgd_comm *c, const struct hpsgd_job *job);

/* The job has ended on this rank: from now on it computes again. */
void hpsgd_stall_job_done(hpsgd_comm *c);

#endif
