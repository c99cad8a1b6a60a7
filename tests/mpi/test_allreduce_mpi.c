/*
 * test_allreduce_mpi.c - allreduce=mpi (mpi_allreduce.c): Open MPI's own
 * MPI_Allreduce on the MPI thread, flat over all ranks (run by
 * tests/mpi/run.sh at 2 and 4 ranks).
 *
 * The standard promises no particular summation order, so the test checks
 * what the plugin needs: every rank holds the same bits (gathered and
 * compared), within float32 rounding of the exact sum, the extras sum
 * exactly, and the byte counters carry the nominal 2(N-1)/N marked as
 * estimated. A 16-bit buffer is refused (options.c refuses the combination
 * before it gets here; this is the MPI thread's own guard: not run, it
 * aborts). Prints TAP-like lines; exits non-zero on any failure.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "mpi_check.h"
#include "hash.h"

static hpsgd_comm c;

int main(void)
{
    char err[512];
    hpsgd_comm_settings set = {60, 50000, 0, 1};
    if (hpsgd_comm_start_with(&c, &set, err, sizeof err)) {
        fprintf(stderr, "cannot start: %s\n", err);
        return 1;
    }
    CHECK(c.allreduce_mpi == 1 && c.hierarchical == 0, "settings: allreduce_mpi %d hierarchical %d", c.allreduce_mpi,
          c.hierarchical);
    const size_t sizes[] = {1, 1000, 123457, 1000003};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; ++s) {
        size_t n = sizes[s], far = 0;
        float *buf = allreduce_round(&c, n, s + 1);
        uint64_t sent = c.job_bytes_sent;
        int estimated = c.job_bytes_estimated;
        for (size_t i = 0; i < n; ++i) {
            double want = 0, mag = 0;
            for (int r = 0; r < c.size; ++r) want += input(r, i), mag += fabs(input(r, i));
            far += fabs(buf[i] - want) > 4 * c.size * 6e-8 * mag + 1e-30;
        }
        CHECK(far == 0, "n=%zu: %zu elements beyond float32 rounding of the exact sum", n, far);
        uint64_t mine = hpsgd_hash(buf, n * sizeof(float), 0), *all = calloc((size_t)c.size, sizeof *all);
        hpsgd_job job = {.kind = HPSGD_JOB_ALLGATHER, .data = &mine, .out = all, .bytes = sizeof mine};
        snprintf(job.what, sizeof job.what, "compare %zu", s + 1);
        CHECK(hpsgd_comm_run(&c, &job, err, sizeof err) == 0, "gather failed: %s", err);
        int same = 1;
        for (int r = 1; r < c.size; ++r) same &= all[r] == all[0];
        CHECK(same, "n=%zu: ranks hold different sums", n);
        uint64_t want = (uint64_t)(2.0 * (c.size - 1) / c.size * (double)n * sizeof(float)) +
                        (uint64_t)(2.0 * (c.size - 1) / c.size * 2 * sizeof(int64_t));
        CHECK(sent == want && estimated == 1, "n=%zu: counted %llu bytes (estimated %d), expected %llu (1)", n,
              (unsigned long long)sent, estimated, (unsigned long long)want);
        if (c.rank == 0 && far == 0 && same)
            printf("ok - MPI_Allreduce of %zu floats on %d ranks: the same bits on every rank, within rounding\n", n,
                   c.size);
        free(all);
        free(buf);
    }
    hpsgd_comm_stop(&c);
    return failures ? 1 : 0;
}
