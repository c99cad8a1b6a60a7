#!/usr/bin/env bash
# Failing fast and saying why: mismatched ranks, a stalled rank, a killed
# rank, SIGTERM (to one rank, and to mpirun, with and without time to stop
# together) then resume. Every case is
# bounded in time; the seconds each failure takes to surface are printed.
source "$(dirname "$0")/lib.sh"

detection_data "$WORK/data"
BASE="$ROOT/tests/cfg/tiny-det.cfg"
RUN_LIMIT=90

# start_job NAME NP MAX [hpsgd lines...]: trains in the background in
# $WORK/NAME/rankN; sets JOB (mpirun's pid) and DIR.
start_job() {
    local name=$1 np=$2 max=$3
    shift 3
    DIR="$WORK/$name"
    mkdir -p "$DIR"
    cfg_with "$BASE" "$DIR/$name.cfg" "$max" "$@"
    sed "s|^backup=.*|backup=backup|" "$WORK/data/detect.data" >"$DIR/run.data"
    for r in $(seq 0 $((np - 1))); do mkdir -p "$DIR/rank$r/backup"; done
    START=$(date +%s.%N)
    (run_np "$np" "$DIR/log" ${MPIRUN_ARGS:-} "$ROOT/tests/e2e/in-rank-dir.sh" "$DIR" \
        "$DARKNET" detector train "$DIR/run.data" "$DIR/$name.cfg"; echo $? >"$DIR/status") &
    JOB=$!
}
# wait_job: waits for the job; sets RC and TOOK (seconds since start, or since $MARK).
wait_job() {
    wait "$JOB"
    RC=$(cat "$DIR/status")
    TOOK=$(echo "$(date +%s.%N) - ${MARK:-$START}" | bc)
    TOOK=$(printf '%.1f' "$TOOK")
    MARK=
}
# rank_pid R: the pid of rank R of the running job (in-rank-dir.sh execs Darknet).
rank_pid() {
    local r=$1 pid
    for pid in $(pgrep -f "$DARKNET detector train $DIR/run.data"); do
        [ "$(readlink "/proc/$pid/cwd")" = "$DIR/rank$r" ] && { echo "$pid"; return; }
    done
}
# wait_for FILE: until FILE exists (bounded).
wait_for() {
    local i
    for i in $(seq 1 300); do [ -e "$1" ] && return 0; sleep 0.1; done
    return 1
}

# 1. Ranks with different cfgs: the start-up check stops both, naming rank and field.
name=mismatch
DIR="$WORK/$name"
mkdir -p "$DIR/rank0/backup" "$DIR/rank1/backup"
cfg_with "$BASE" "$DIR/a.cfg" 20 "mode=hpsgd"
cfg_with "$BASE" "$DIR/b.cfg" 20 "mode=sync"
sed "s|^backup=.*|backup=backup|" "$WORK/data/detect.data" >"$DIR/run.data"
START=$(date +%s.%N)
timeout 60 mpirun -np 1 "$ROOT/tests/e2e/in-rank-dir.sh" "$DIR" "$DARKNET" detector train "$DIR/run.data" "$DIR/a.cfg" : \
    -np 1 "$ROOT/tests/e2e/in-rank-dir.sh" "$DIR" "$DARKNET" detector train "$DIR/run.data" "$DIR/b.cfg" >"$DIR/log" 2>&1
RC=$?
TOOK=$(printf '%.1f' "$(echo "$(date +%s.%N) - $START" | bc)")
check "mismatch: the job exits non-zero (after ${TOOK}s)" test "$RC" != 0
check "mismatch: rank 0 says which rank differs and in what" grep -q "rank 1 differs from rank 0 in \[hpsgd\] mode" "$DIR/log"
check "mismatch: no weights were written" test -z "$(find "$DIR" -name '*.weights')"
echo "# mismatch surfaced in ${TOOK}s"

# 2. A stalled rank (SIGSTOP): the stall inspector names it and aborts the job.
start_job stall 2 100000 "mode=hpsgd" "timeout=3"
wait_for "$DIR/rank0/backup/stall.backup" || not_ok "stall: training never reached iteration 100"
kill -STOP "$(rank_pid 1)"
MARK=$(date +%s.%N)
wait_job
check "stall: the job exits non-zero (${TOOK}s after rank 1 stopped; timeout=3)" test "$RC" != 0
# Before the round: "rank 1 has not joined"; stopped in the middle of one: the ring names it.
check "stall: rank 0 names the stalled rank" \
    grep -qE "rank 0: round [0-9]+ stalled: (rank 1 has not joined after 3 s|ring exchange with ranks 1 \(left\) and 1)" "$DIR/log"
# (Open MPI's own "MPI_ABORT was invoked" banner is not always printed under load.)
check "stall: and says it aborts the job" grep -qE "rank 0: round [0-9]+ stalled: .*; aborting the job" "$DIR/log"
check "stall: it surfaced within the timeout plus 10 s" test "$(echo "$TOOK < 13" | bc)" = 1
echo "# stall surfaced in ${TOOK}s"

# 3. A rank killed with SIGKILL: the job ends non-zero; the newest checkpoint is whole and loads.
start_job killed 2 100000 "mode=hpsgd" "timeout=10"
wait_for "$DIR/rank0/backup/killed_200.weights" || not_ok "killed: training never reached iteration 200"
kill -KILL "$(rank_pid 1)"
MARK=$(date +%s.%N)
wait_job
check "killed: the job exits non-zero (${TOOK}s after the kill)" test "$RC" != 0
check "killed: it ended within the timeout plus 10 s" test "$(echo "$TOOK < 20" | bc)" = 1
newest=$(ls -t "$DIR"/rank0/backup/*.weights "$DIR"/rank0/backup/*.backup | head -1)
check "killed: the newest checkpoint ($(basename "$newest")) is complete" \
    test "$(stat -c %s "$newest")" = "$(stat -c %s "$DIR/rank0/backup/killed_100.weights")"
check "killed: it loads: a single-process run resumes from it" \
    bash -c "cd '$DIR' && mkdir -p backup && sed 's/^max_batches=.*/max_batches=1/; /^\[hpsgd\]/,\$d' killed.cfg > plain.cfg &&
             '$DARKNET' detector train run.data plain.cfg '$newest' > resume.log 2>&1 && test -s backup/plain_final.weights"
echo "# a killed rank ended the job in ${TOOK}s"

# 4. SIGTERM to one rank: all ranks agree to stop after the same round, rank 0
#    saves the global model, everyone exits 0; the backup resumes.
start_job term-rank 2 100000 "mode=hpsgd"
wait_for "$DIR/rank0/backup/term-rank.backup"
kill -TERM "$(rank_pid 1)"
MARK=$(date +%s.%N)
wait_job
check "SIGTERM to rank 1: every rank exits 0 (${TOOK}s)" test "$RC" = 0
check "SIGTERM to rank 1: rank 0 saved the global model" grep -q "stopped by a signal at iteration [0-9]*; saved the global model" "$DIR/log"
check "SIGTERM to rank 1: rank 1 wrote nothing" test -z "$(find "$DIR/rank1" -type f)"
saved=$(($("$WCMP" --seen "$DIR/rank0/backup/term-rank.backup") / 4))
check "SIGTERM to rank 1: the backup is at the iteration it reports ($saved)" grep -q "stopped by a signal at iteration $saved;" "$DIR/log"

# 5. SIGTERM to mpirun (which gives ranks odls_base_sigkill_timeout seconds):
#    the same, then resume from the backup at the saved iteration.
MPIRUN_ARGS="--mca odls_base_sigkill_timeout 5" start_job term-mpirun 2 100000 "mode=hpsgd"
wait_for "$DIR/rank0/backup/term-mpirun.backup"
mp=$(pgrep -P "$(pgrep -P "$JOB" -f timeout)" mpirun || pgrep -f "mpirun.*$DIR/run.data" | head -1)
kill -TERM "$mp"
MARK=$(date +%s.%N)
wait_job
check "SIGTERM to mpirun: the job ended (${TOOK}s)" test -n "$RC"
check "SIGTERM to mpirun: rank 0 saved the global model" grep -q "stopped by a signal at iteration [0-9]*; saved the global model" "$DIR/log"
saved=$(($("$WCMP" --seen "$DIR/rank0/backup/term-mpirun.backup") / 4))
res="$WORK/term-resume"
mkdir -p "$res/rank0/backup" "$res/rank1/backup"
cfg_with "$BASE" "$res/term-resume.cfg" $((saved + 20)) "mode=hpsgd"
cp "$DIR/run.data" "$res/run.data"
run_np 2 "$res/log" "$ROOT/tests/e2e/in-rank-dir.sh" "$res" "$DARKNET" detector train "$res/run.data" \
    "$res/term-resume.cfg" "$DIR/rank0/backup/term-mpirun.backup"
check "resume after SIGTERM: mpirun exits 0" test $? = 0
check "resume after SIGTERM: starts at the saved iteration $saved" grep -q "iteration $saved\$" "$res/log"

# 6. SIGTERM to mpirun with Open MPI's default of 1 s before SIGKILL, while a
#    round takes 3 s (a test knob): the agreed stop cannot finish in time, but
#    rank 0 wrote G as of the last merge at once. No periodic save comes near
#    (the first is at iteration 100), so a .backup can only be that one.
#    stats=0: rank 0's own rolling statistics go in from its copy of them.
export HPSGD_TEST_ROUND_DELAY_US=3000000
start_job term-default 2 100000 "mode=hpsgd" "stats=0" "log=$WORK/term-default/log.csv"
unset HPSGD_TEST_ROUND_DELAY_US
for i in $(seq 1 300); do
    [ "$(awk -F, 'NR > 1 && $7 >= 2' "$DIR/log.csv" 2>/dev/null | wc -l)" -gt 0 ] && break
    sleep 0.1
done
check "SIGTERM to mpirun, default kill delay: two rounds were merged first" \
    test "$(awk -F, 'NR > 1 && $7 >= 2' "$DIR/log.csv" | wc -l)" -gt 0
mp=$(pgrep -P "$(pgrep -P "$JOB" -f timeout)" mpirun || pgrep -f "mpirun.*$DIR/run.data" | head -1)
kill -TERM "$mp"
MARK=$(date +%s.%N)
wait_job
backup="$DIR/rank0/backup/term-default.backup"
check "SIGTERM to mpirun, default kill delay: the job ended (${TOOK}s)" test "$(echo "$TOOK < 15" | bc)" = 1
check "SIGTERM to mpirun, default kill delay: rank 0 left a whole .backup" \
    test "$(stat -c %s "$backup" 2>/dev/null)" = "$(stat -c %s "$WORK/killed/rank0/backup/killed_100.weights")"
check "SIGTERM to mpirun, default kill delay: no partial file is left" test -z "$(find "$DIR" -name '*.part')"
seen=$("$WCMP" --seen "$backup")
check "SIGTERM to mpirun, default kill delay: the .backup holds merged rounds (seen $seen)" test "${seen:-0}" -gt 0
grep -q "on the signal: saved the global model of iteration $((seen / 4)) " "$DIR/log" &&
    echo "# rank 0 reported the signal-time save before the kill"
check "SIGTERM to mpirun, default kill delay: the .backup loads and training resumes from it" \
    bash -c "cd '$DIR' && mkdir -p backup && sed 's/^max_batches=.*/max_batches=$((seen / 4 + 1))/; /^\[hpsgd\]/,\$d' term-default.cfg > plain.cfg &&
             '$DARKNET' detector train run.data plain.cfg '$backup' > resume.log 2>&1 && test -s backup/plain_final.weights"
echo "# with the default kill delay the job ended in ${TOOK}s; the backup is at iteration $((seen / 4))"
# 7. A healthy rank whose steps take longer than `timeout` (rank 1 computes
#    3 s a step, timeout=1): its progress keeps the job alive to the end.
export HPSGD_TEST_SLOW_RANK=1 HPSGD_TEST_SLOW_MS=3000
start_job slow 2 6 "mode=sync" "timeout=1"
unset HPSGD_TEST_SLOW_RANK HPSGD_TEST_SLOW_MS
wait_job
check "slow steps: the job finishes although rank 1 takes 3 s a step and timeout=1 (${TOOK}s)" test "$RC" = 0
check "slow steps: with the final checksum" grep -q "final model identical on all 2 ranks" "$DIR/log"

# 8. A rank whose training thread hangs without using the CPU while its MPI
#    thread lives on: named within the timeout plus a step.
export HPSGD_TEST_HANG_RANK=1 HPSGD_TEST_HANG_STEP=30
start_job hang 2 100000 "mode=hpsgd" "timeout=2"
unset HPSGD_TEST_HANG_RANK HPSGD_TEST_HANG_STEP
wait_job
check "hung rank: the job exits non-zero (${TOOK}s)" test "$RC" != 0
check "hung rank: rank 0 names rank 1" grep -qE "rank 0: round [0-9]+ stalled: rank 1 has not joined after 2 s" "$DIR/log"
check "hung rank: within the timeout plus 10 s" test "$(echo "$TOOK < 12" | bc)" = 1

# 9. Rank 0 stopped (SIGSTOP): the other rank names it.
start_job stall0 2 100000 "mode=hpsgd" "timeout=2"
wait_for "$DIR/rank0/backup/stall0.backup" || not_ok "stall0: training never reached iteration 100"
kill -STOP "$(rank_pid 0)"
MARK=$(date +%s.%N)
wait_job
check "rank 0 stopped: the job exits non-zero (${TOOK}s after)" test "$RC" != 0
check "rank 0 stopped: rank 1 names rank 0" \
    grep -qE "rank 1: round [0-9]+(: rank 0 has not started it| stalled: (ring exchange with ranks 0|the sum of its counters))" "$DIR/log"
check "rank 0 stopped: within the timeout, the grace of 5 s and 10 s" test "$(echo "$TOOK < 17" | bc)" = 1

# 10. SIGTERM to rank 1 while a round takes 4 s: rank 0 hears of it from the
#     stall inspector's beats and saves at once, not after the round.
export HPSGD_TEST_ROUND_DELAY_US=4000000
start_job notice 2 100000 "mode=hpsgd"
unset HPSGD_TEST_ROUND_DELAY_US
for i in $(seq 1 300); do grep -q "^hpsgd: round 2," "$DIR/log" 2>/dev/null && break; sleep 0.1; done
kill -TERM "$(rank_pid 1)"
T0=$(date +%s.%N)
saved_in=
for i in $(seq 1 60); do
    if grep -q "rank 0: on the signal: saved the global model" "$DIR/log"; then
        saved_in=$(printf '%.1f' "$(echo "$(date +%s.%N) - $T0" | bc)")
        break
    fi
    sleep 0.05
done
wait_job
check "SIGTERM to rank 1: rank 0 saved at once (${saved_in:-never} s; a round takes 4 s)" \
    test -n "$saved_in" -a "$(echo "${saved_in:-99} < 2.5" | bc)" = 1
check "SIGTERM to rank 1 during a slow round: every rank exits 0" test "$RC" = 0
finish
