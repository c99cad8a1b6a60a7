/*
 * test_comm.c - the hand-off between the training thread and the MPI thread
 * (world size 1, MPI started as a singleton): start, jobs, polling, and
 * shutdown with a round still in flight. Run under ASan or valgrind this is
 * also the leak check of the thread's life cycle. MPI can start only once per
 * process, so the steps run in order in one test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "comm.h"

static void ignore(int sig) { (void)sig; }

/* hpsgd_comm_abort() waits for the MPI thread's MPI_Abort for abort_wait_s
 * even while signals keep arriving (sleep() used to return at the first).
 * Here no thread will abort, so the child must take the whole wait. Runs
 * before MPI starts in this process (fork after MPI_Init is not allowed). */
static void test_abort_waits_through_signals(void **state)
{
    (void)state;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = ignore;
        sigaction(SIGUSR1, &sa, NULL);
        static hpsgd_comm c; /* a thread that never reaches MPI_Abort */
        pthread_mutex_init(&c.lock, NULL);
        pthread_cond_init(&c.cond, NULL);
        c.thread_started = 1;
        c.abort_wait_s = 1;
        hpsgd_comm_abort(&c, 3);
    }
    int status = 0, reaped = 0;
    for (int i = 0; i < 40 && !reaped; ++i) {
        struct timespec tick = {0, 50 * 1000 * 1000};
        nanosleep(&tick, NULL);
        kill(pid, SIGUSR1);
        reaped = waitpid(pid, &status, WNOHANG) == pid;
    }
    if (!reaped) waitpid(pid, &status, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    assert_true(took >= 0.95);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 3);
}

static void test_life_cycle(void **state)
{
    (void)state;
    hpsgd_comm c;
    char err[512];
    assert_int_equal(hpsgd_comm_start(&c, 30, 1000, err, sizeof err), 0);
    assert_int_equal(c.rank, 0);
    assert_int_equal(c.size, 1);
    assert_int_equal(c.local_size, 1);
    assert_int_equal(hpsgd_comm_finished(&c), 1); /* idle */

    /* Broadcast and gather on one rank leave the data as it is. */
    uint64_t word = 0x1234, all = 0;
    hpsgd_job job = {.kind = HPSGD_JOB_BCAST, .data = &word, .bytes = sizeof word};
    strcpy(job.what, "test broadcast");
    assert_int_equal(hpsgd_comm_run(&c, &job, err, sizeof err), 0);
    assert_int_equal(word, 0x1234);
    job = (hpsgd_job){.kind = HPSGD_JOB_ALLGATHER, .data = &word, .out = &all, .bytes = sizeof word};
    strcpy(job.what, "test gather");
    assert_int_equal(hpsgd_comm_run(&c, &job, err, sizeof err), 0);
    assert_int_equal(all, 0x1234);

    /* An all-reduce over one rank is the identity; submit, then poll. */
    size_t n = 100000;
    float *buf = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; ++i) buf[i] = (float)i * 0.5f;
    job = (hpsgd_job){.kind = HPSGD_JOB_ALLREDUCE, .buf = buf, .count = n};
    strcpy(job.what, "round 1");
    uint64_t before = c.jobs_done;
    hpsgd_comm_submit(&c, &job);
    struct timespec tick = {0, 1000000};
    for (int i = 0; i < 10000 && !hpsgd_comm_finished(&c); ++i) nanosleep(&tick, NULL);
    assert_int_equal(hpsgd_comm_finished(&c), 1);
    assert_int_equal(hpsgd_comm_wait(&c, err, sizeof err), 0);
    assert_int_equal(c.jobs_done, before + 1);
    for (size_t i = 0; i < n; ++i) assert_true(buf[i] == (float)i * 0.5f);
    assert_true(c.job_ms >= 0);

    /* Waiting with nothing in flight returns at once. */
    assert_int_equal(hpsgd_comm_wait(&c, err, sizeof err), 0);

    /* Shut down with a round in flight: stop waits for it, finalizes, joins. */
    job.what[6] = '2';
    hpsgd_comm_submit(&c, &job);
    hpsgd_comm_stop(&c);
    assert_int_equal(c.thread_started, 0);
    assert_int_equal(c.state, HPSGD_COMM_STOPPED);
    assert_int_equal(c.jobs_done, before + 2);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_abort_waits_through_signals),
        cmocka_unit_test(test_life_cycle),
    };
    return cmocka_run_group_tests_name("comm", tests, NULL, NULL);
}
