#!/usr/bin/env bash
# Beyond two hosts, on the emulated testbed (scripts/testbed, 8 hosts):
# - 8 hosts x 1 rank, mode=hpsgd, verify=1: the job finishes with the final
#   model identical on all 8 ranks (Open MPI's daemons route directly);
# - 2 hosts x 2 ranks, hierarchical=1, shard=none, mode=sync: 4 ranks x 4T
#   global iterations leave the same tensor bytes as 1 rank x T (every rank
#   sends the same change, and equal changes sum exactly in any order);
# - the same with the flat ring, 64 KB chunks and 16 of them in flight (the
#   pipelined ring: several chunks per round, each its own tag);
# - 2 x 2, hierarchical=1, mode=average with compress=fp16 and verify=1: the
#   node level keeps G identical with 16-bit changes;
# - a rank killed with SIGKILL on a 2 x 2 job ends the whole job, non-zero,
#   with no rank left running; a rank whose training thread hangs on a 2 x 2
#   job is named by rank 0's stall inspector.
# No timed assertions: every job runs under a generous `timeout`.
# Exit 77 (skip) where network namespaces are not permitted.
source "$(dirname "$0")/lib.sh"

testbed_up hps 76 8 1gbit
ok "testbed up: 8 hosts"

detection_data "$WORK/data"
BASE="$ROOT/tests/cfg/tiny-det.cfg"
initial_weights "$BASE" "$WORK/data/detect.data" "$WORK/start.weights"
SAME=("shard=none" "lr_scale=none" "seed=4242" "loader_threads=1")
export TESTBED_MPIRUN_ARGS="-x DARKNET_LOADER_THREADS -x HPSGD_TEST_HANG_RANK -x HPSGD_TEST_HANG_STEP"

# tb NAME PER_HOST NP MAX [hpsgd lines...]: trains on the testbed from
# start.weights in $WORK/NAME/rankN; final weights in $WORK/NAME/backup.
tb() {
    local name=$1 per_host=$2 np=$3 max=$4
    shift 4
    local dir="$WORK/$name"
    mkdir -p "$dir/backup"
    cfg_with "$BASE" "$dir/$name.cfg" "$max" "$@"
    data_file "$WORK/data/detect.data" "$dir/backup" "$dir/run.data"
    timeout --kill-after=5 240 "$testbed" run --prefix "$prefix" --ranks-per-host "$per_host" --np "$np" -- \
        "$ROOT/tests/e2e/in-rank-dir.sh" "$dir" "$DARKNET" detector train "$dir/run.data" "$dir/$name.cfg" \
        "$WORK/start.weights" >"$dir/log" 2>&1 </dev/null
}
final() { echo "$WORK/$1/backup/$1_final.weights"; }
# finished NAME N: the run printed the final checksum line for N ranks, and
# the saved model is the one they agreed on.
finished() {
    grep -q "final model identical on all $2 ranks" "$WORK/$1/log" &&
        test "$(file_hash "$(final "$1")")" = "$(printed_checksum "$WORK/$1/log")"
}

# --- 8 hosts -------------------------------------------------------------------
check "8 hosts x 1 rank, mode=hpsgd, verify=1: exits 0" tb hosts8 1 8 48 "mode=hpsgd" "verify=1" "timeout=120"
check "... on 8 hosts" grep -q "hpsgd: 8 ranks on 8 hosts" "$WORK/hosts8/log"
check "... final model identical on all 8 ranks, and saved" finished hosts8 8
check "... with the defaults of more than 2 ranks: lookahead 0, a sync warm-up of a quarter of the run" \
    grep -q "mode=hpsgd merge=eager max_stale=1 lookahead=0 sync_warmup=12," "$WORK/hosts8/log"

# --- 2 hosts x 2 ranks: 4 ranks x 4T == 1 rank x T --------------------------
mkdir -p "$WORK/one/backup"
cfg_with "$BASE" "$WORK/one/one.cfg" 6 "mode=sync" "${SAME[@]}"
data_file "$WORK/data/detect.data" "$WORK/one/backup" "$WORK/one/run.data"
(cd "$WORK/one" && run_np 1 "$WORK/one/log" "$DARKNET" detector train "$WORK/one/run.data" "$WORK/one/one.cfg" \
    "$WORK/start.weights")
check "sync, 1 rank, T=6 iterations: exits 0" test $? = 0

check "sync, 2 hosts x 2 ranks, hierarchical=1, 4T=24 global iterations" \
    tb hier 2 4 24 "mode=sync" "hierarchical=1" "${SAME[@]}"
check "... ran hierarchical on 2 hosts" grep -q "hpsgd: 4 ranks on 2 hosts, mode=sync, .*hierarchical=1," "$WORK/hier/log"
check "... final model identical on all 4 ranks" finished hier 4
check "4 ranks x 4T (hierarchical) leave the same tensor bytes as 1 rank x T" "$WCMP" "$(final one)" "$(final hier)"
check "... and the header counts 4x the images" \
    test "$("$WCMP" --seen "$(final hier)")" -eq $((4 * $("$WCMP" --seen "$(final one)")))

check "the same flat, 64 KB chunks, 16 in flight" \
    tb pipe 2 4 24 "mode=sync" "hierarchical=0" "chunk_mb=0.0625" "chunks_in_flight=16" "verify=1" "${SAME[@]}"
check "... ran the flat ring with 16 chunks in flight" grep -q "hierarchical=0, chunks_in_flight=16)" "$WORK/pipe/log"
check "... final model identical on all 4 ranks" finished pipe 4
check "4 ranks x 4T (flat ring, 16 chunks in flight) leave the same tensor bytes as 1 rank x T" \
    "$WCMP" "$(final one)" "$(final pipe)"

# A warm-up as long as the run is sync: mode=hpsgd gives sync's bytes. With
# lookahead=1, as without the warm-up they differ (every rank reads the same
# images here, so eager with lookahead 0 would follow sync's bytes anyway).
check "hpsgd with sync_warmup=24 lookahead=1, 2 hosts x 2 ranks, 4T=24 global iterations" \
    tb warm 2 4 24 "mode=hpsgd" "sync_warmup=24" "lookahead=1" "hierarchical=0" "${SAME[@]}"
check "... printed the warm-up" grep -q "lookahead=1 sync_warmup=24," "$WORK/warm/log"
check "... final model identical on all 4 ranks" finished warm 4
check "4 ranks x 4T (hpsgd, all of it the sync warm-up) leave the same tensor bytes as 1 rank x T" \
    "$WCMP" "$(final one)" "$(final warm)"
check "the same without the warm-up" \
    tb nowarm 2 4 24 "mode=hpsgd" "sync_warmup=0" "lookahead=1" "hierarchical=0" "${SAME[@]}"
check "... does not (the key reaches the rounds)" bash -c "! '$WCMP' '$(final one)' '$(final nowarm)'"

# --- 16-bit changes through the node level ------------------------------------
check "average, compress=fp16, 2 hosts x 2 ranks, hierarchical=1, verify=1" \
    tb hier16 2 4 32 "mode=average" "interval=2" "compress=fp16" "hierarchical=1" "verify=1"
check "... final model identical on all 4 ranks" finished hier16 4

# --- failures on a 2 x 2 job ----------------------------------------------------
# rank_pid DIR R: the pid of rank R of the job running in DIR.
rank_pid() {
    local pid
    for pid in $(pgrep -f "$DARKNET detector train $1/run.data"); do
        [ "$(readlink "/proc/$pid/cwd")" = "$1/rank$2" ] && { echo "$pid"; return; }
    done
}
dir="$WORK/killed"
( tb killed 2 4 100000 "mode=hpsgd" "hierarchical=1" "timeout=10"; echo $? >"$dir.status" ) &
job=$!
for _ in $(seq 1 600); do grep -q "^hpsgd: round 3," "$dir/log" 2>/dev/null && break; sleep 0.1; done
pid=$(rank_pid "$dir" 3)
if [ -n "$pid" ]; then kill -KILL "$pid"; else not_ok "killed: rank 3 not found running"; fi
wait "$job"
RC=$(cat "$dir.status")
check "killed: SIGKILL to rank 3 (host 2's second rank) ends the 2 x 2 job non-zero ($RC)" test "$RC" != 0
check "killed: ... because of the kill, not the test's time bound (mpirun says so)" \
    grep -qE "rank 3 .*exited on signal 9|exited on signal 9 \(Killed\)" "$dir/log"
check "killed: no rank of the job is left running" test -z "$(pgrep -f "$DARKNET detector train $dir/run.data")"

HPSGD_TEST_HANG_RANK=3 HPSGD_TEST_HANG_STEP=5 tb hung 2 4 100000 "mode=hpsgd" "hierarchical=1" "timeout=2"
RC=$?
check "hung: a 2 x 2 job whose rank 3 hangs exits non-zero ($RC, not the test's timeout)" \
    test "$RC" != 0 -a "$RC" != 124 -a "$RC" != 137
check "hung: rank 0 names rank 3" grep -qE "rank 0: round [0-9]+ stalled: rank 3 has not joined" "$WORK/hung/log"
check "hung: no rank of the job is left running" test -z "$(pgrep -f "$DARKNET detector train $WORK/hung/run.data")"

"$testbed" down --prefix "$prefix" >"$WORK/down.log" 2>&1
check "testbed down" test -z "$(ip netns list | grep "^${prefix}h")"
finish
