#!/usr/bin/env bash
# Counting steps and ends:
# - resuming from a `seen` that is not a multiple of batch x subdivisions (a
#   file from a run with another batch=): stock Darknet shortens only the first
#   step; the plugin takes exactly the steps and images stock takes on 1 rank,
#   and on 2 ranks counts every step's real images;
# - a stop request that rides the last round of a finished training ends it
#   as a normal end does (_final.weights), while an earlier one cuts it short
#   (only .backup), as before.
source "$(dirname "$0")/lib.sh"

detection_data "$WORK/data"
sed 's/^batch=.*/batch=8/; s/^subdivisions=.*/subdivisions=4/' "$ROOT/tests/cfg/tiny-det.cfg" >"$WORK/b8s4.cfg"
initial_weights "$WORK/b8s4.cfg" "$WORK/data/detect.data" "$WORK/start.weights"
# seen = 4: half a step of 8 images (the header's size_t at byte 12).
printf '\004\000\000\000\000\000\000\000' | dd of="$WORK/start.weights" bs=1 seek=12 conv=notrunc status=none
test "$("$WCMP" --seen "$WORK/start.weights")" -eq 4 || die "could not set seen=4"

# train NAME NP DARKNET [hpsgd lines...]: rank 0's log and the final weights.
train() {
    local name=$1 np=$2 bin=$3 dir="$WORK/$1"
    shift 3
    mkdir -p "$dir"
    cfg_with "$WORK/b8s4.cfg" "$dir/$name.cfg" 4 "$@"
    data_file "$WORK/data/detect.data" "$dir/backup" "$dir/run.data"
    (cd "$dir" && run_np "$np" "$dir/log" "$bin" detector train "$dir/run.data" "$dir/$name.cfg" "$WORK/start.weights")
}
steps() { grep -cE '^[0-9]+: [-0-9.]+, ' "$WORK/$1/log"; }
seen() { "$WCMP" --seen "$WORK/$1/backup/$1_final.weights"; }

check "stock Darknet from seen=4" train stock 1 "$DARKNET"
check "sync on 1 rank from seen=4" train one 1 "$DARKNET" "mode=sync" "loader_threads=1"
echo "# stock: $(steps stock) steps to seen $(seen stock); plugin: $(steps one) steps to seen $(seen one)"
check "1 rank takes the steps stock takes (4)" test "$(steps one)" -eq "$(steps stock)" -a "$(steps stock)" -eq 4
# Darknet's train_network() runs all 4 sub-batches of a load, so its last
# update (at seen 32) is followed by 2 sub-batches it never applies: stock's
# header counts them (36), the plugin's counts the images in applied steps.
check "... and the plugin's seen is stock's at its last update (32 of 36)" \
    test "$(seen one)" -eq 32 -a "$(seen stock)" -eq 36
check "hpsgd on 2 ranks from seen=4" train two 2 "$DARKNET" "max_stale=1" "loader_threads=1"
k=$(steps two)
# Every rank: a first step of 4 images, then k-1 steps of 8.
check "2 ranks count their real images: seen = 4 + 2 x (4 + 8 x (k-1)) with k=$k" \
    test "$(seen two)" -eq $((4 + 2 * (4 + 8 * (k - 1))))

# Stops: sync on 2 ranks, max_batches=8, a round adds 2 iterations: 4 rounds.
stop_run() {
    local name=$1 round=$2 dir="$WORK/$1"
    mkdir -p "$dir"
    cfg_with "$ROOT/tests/cfg/tiny-det.cfg" "$dir/$name.cfg" 8 "mode=sync"
    data_file "$WORK/data/detect.data" "$dir/backup" "$dir/run.data"
    (cd "$dir" && HPSGD_TEST_STOP_AT_ROUND=$round run_np 2 "$dir/log" -x HPSGD_TEST_STOP_AT_ROUND \
        "$DARKNET" detector train "$dir/run.data" "$dir/$name.cfg")
}
check "a stop riding the last round: the job exits 0" stop_run last 4
check "... and writes _final.weights, as a normal end does" test -f "$WORK/last/backup/last_final.weights"
check "a stop riding round 2 of 4: the job exits 0" stop_run early 2
check "... and ends early with .backup only" \
    test -f "$WORK/early/backup/early.backup" -a ! -f "$WORK/early/backup/early_final.weights"
check "... at iteration 4" grep -q "stopped by a signal at iteration 4;" "$WORK/early/log"
finish
