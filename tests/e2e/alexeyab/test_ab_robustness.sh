#!/usr/bin/env bash
# AlexeyAB build, failing fast and stopping cleanly: a killed rank ends the
# job in bounded time with whole checkpoints; SIGTERM to one rank stops every
# rank after the same round (AlexeyAB's loop runs on a copy of the network:
# hpsgd_stopped), rank 0 saves .backup, and training resumes from it at its
# iteration and ends at max_batches; bad input ends with one line.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/lib-ab.sh"
RUN_LIMIT=90

detection_data "$WORK/data"
initial_weights "$BASE" "$WORK/data/detect.data" "$WORK/start.weights"

# start_job NAME NP MAX [hpsgd lines...]: ab_case in the background; JOB, DIR.
start_job() {
    DIR="$WORK/$1"
    ab_case "$@" &
    JOB=$!
    START=$SECONDS
}
rank_pid() {
    local pid
    for pid in $(pgrep -f "$DARKNET detector train $DIR/run.data"); do
        [ "$(readlink "/proc/$pid/cwd")" = "$DIR/rank$1" ] && { echo "$pid"; return; }
    done
}
wait_for() {
    local i
    for i in $(seq 1 300); do [ -e "$1" ] && return 0; sleep 0.1; done
    return 1
}

# A killed rank (savelast=100: _last.weights at iteration 100).
start_job killed 2 100000 "mode=hpsgd" "timeout=10"
wait_for "$DIR/rank0/backup/killed_last.weights" || not_ok "killed: training never reached iteration 100"
sleep 0.5
kill -KILL "$(rank_pid 1)"
mark=$SECONDS
wait "$JOB"
check "killed: the job exits non-zero ($((SECONDS - mark)) s after the kill)" test "$(cat "$DIR/status")" != 0
check "killed: it ended within the timeout plus 10 s" test $((SECONDS - mark)) -lt 20
check "killed: _last.weights is whole" \
    test "$(stat -c %s "$DIR/rank0/backup/killed_last.weights")" = "$(stat -c %s "$WORK/start.weights")"

# SIGTERM to rank 1: an agreed stop, .backup by rank 0, every rank exits 0.
start_job term 2 100000 "mode=hpsgd"
wait_for "$DIR/rank0/backup/term_last.weights"
kill -TERM "$(rank_pid 1)"
mark=$SECONDS
wait "$JOB"
check "SIGTERM to rank 1: every rank exits 0 ($((SECONDS - mark)) s)" test "$(cat "$DIR/status")" = 0
check "SIGTERM to rank 1: rank 0 saved the global model" \
    grep -q "stopped by a signal at iteration [0-9]*; saved the global model" "$DIR/log"
check "SIGTERM to rank 1: rank 1 wrote nothing" test -z "$(find "$DIR/rank1" -type f)"
saved=$(($("$WCMP" --seen "$DIR/rank0/backup/term.backup") / 4))
check "SIGTERM to rank 1: the backup is at the iteration it reports ($saved)" \
    grep -q "stopped by a signal at iteration $saved;" "$DIR/log"
check "SIGTERM to rank 1: no _final.weights (the run did not end)" test ! -e "$DIR/rank0/backup/term_final.weights"

# Resume from it: starts at its iteration, ends at max_batches.
cp "$DIR/rank0/backup/term.backup" "$WORK/resume-from.weights"
cp "$WORK/resume-from.weights" "$WORK/start.weights"
ab_case resume 2 $((saved + 20)) "mode=sync"
check "resume: mpirun exits 0" test "$(cat "$WORK/resume/status")" = 0
check "resume: the plugin starts at the saved iteration $saved" grep -q "iteration $saved\$" "$WORK/resume/log"
first=$(grep -a -m1 -oE '^ [0-9]+: ' "$WORK/resume/log" | tr -d ' :')
check "resume: AlexeyAB's first iteration ($first) follows it" test "${first:-0}" -gt "$saved"
check "resume: it ends at max_batches ($((saved + 20)))" \
    test "$("$WCMP" --seen "$WORK/resume/rank0/backup/resume_final.weights")" -eq $(((saved + 20) * 4))

# Bad input: one line each, nothing trained.
initial_weights "$BASE" "$WORK/data/detect.data" "$WORK/start.weights"
mv "$WORK/data/images/train/000007.txt" "$WORK/label.keep"
ab_case nolabel 2 8 "mode=sync"
mv "$WORK/label.keep" "$WORK/data/images/train/000007.txt"
check "missing label: refused" test "$(cat "$WORK/nolabel/status")" != 0
check "missing label: the line names AlexeyAB's label path" grep -q "images/train/000007.txt" "$WORK/nolabel/log"
ab_case badkey 2 8 "mode=sync" "no_such_key=1"
check "unknown [hpsgd] key: refused with its cfg line" grep -q "badkey.cfg:[0-9]*: \[hpsgd\] no_such_key=1: unknown key" "$WORK/badkey/log"
head -c 1000 "$WORK/start.weights" >"$WORK/short.weights"
cp "$WORK/start.weights" "$WORK/full.weights"
cp "$WORK/short.weights" "$WORK/start.weights"
ab_case shortweights 2 8 "mode=sync"
cp "$WORK/full.weights" "$WORK/start.weights"
check "truncated weights file: refused" test "$(cat "$WORK/shortweights/status")" != 0
check "truncated weights file: the line names it" grep -q "start.weights" "$WORK/shortweights/log"
finish
