#!/usr/bin/env bash
# darknet detector train under mpirun, every mode, 2 ranks (4 for hpsgd):
# exit 0 everywhere; only rank 0 writes; the final weights are G on every
# rank (the plugin gathers checksums; the file must hash to the same), load in
# a single-process `detector test` and differ from the start; the saving
# cadence holds when the global count jumps; a resumed run starts at the
# saved iteration.
source "$(dirname "$0")/lib.sh"

detection_data "$WORK/data"
BASE="$ROOT/tests/cfg/tiny-det.cfg"
initial_weights "$BASE" "$WORK/data/detect.data" "$WORK/start.weights"

# train_case NAME NP MAX_BATCHES [hpsgd lines...]: runs in $WORK/NAME/rankN.
train_case() {
    local name=$1 np=$2 max=$3
    shift 3
    local dir="$WORK/$name"
    mkdir -p "$dir"
    cfg_with "$BASE" "$dir/$name.cfg" "$max" "$@" "log=train.csv" "verify=1"
    sed "s|^backup=.*|backup=backup|" "$WORK/data/detect.data" >"$dir/run.data"
    for r in $(seq 0 $((np - 1))); do mkdir -p "$dir/rank$r/backup"; done
    run_np "$np" "$dir/log" "$ROOT/tests/e2e/in-rank-dir.sh" "$dir" \
        "$DARKNET" detector train "$dir/run.data" "$dir/$name.cfg" "$WORK/start.weights"
}

# check_case NAME NP: the checks every mode must pass.
check_case() {
    local name=$1 np=$2 dir="$WORK/$1"
    local final="$dir/rank0/backup/${name}_final.weights"
    check "$name: mpirun -np $np exits 0" test "$(cat "$dir/status")" = 0
    check "$name: rank 0 wrote the final weights" test -s "$final"
    local others=0
    for r in $(seq 1 $((np - 1))); do
        [ -z "$(find "$dir/rank$r" -type f)" ] || others=1
    done
    check "$name: ranks 1..$((np - 1)) wrote no file (no weights, no log)" test $others = 0
    check "$name: rank 0 wrote the CSV log" test -s "$dir/rank0/train.csv"
    check "$name: no temporary .part file is left" test -z "$(find "$dir" -name '*.part')"
    local printed
    printed=$(printed_checksum "$dir/log")
    check "$name: all $np ranks agreed on the final global model" test -n "$printed"
    check "$name: the saved file is that global model (checksum $printed)" test "$(file_hash "$final")" = "$printed"
    check "$name: the final weights differ from the start weights" "$WCMP" --differ "$WORK/start.weights" "$final"
    local tdir="$dir/test"
    mkdir -p "$tdir"
    check "$name: the final weights load in a single-process detector test" \
        bash -c "cd '$tdir' && '$DARKNET' detector test '$WORK/data/detect.data' '$dir/$name.cfg' '$final' \
                 '$WORK/data/heldout.png' -thresh 0.01 > test.log 2>&1 && test -s predictions.jpg"
}

for mode in "hpsgd reset" "hpsgd eager" "sync" "average"; do
    set -- $mode
    name="det-$1${2:+-$2}"
    train_case "$name" 2 20 "mode=$1" ${2:+"merge=$2"} "interval=3"
    echo $? >"$WORK/$name/status"
    check_case "$name" 2
done

# Four ranks on two cores, hpsgd: no hang (run_np bounds it), same checks.
train_case det-hpsgd-np4 4 24 "mode=hpsgd"
echo $? >"$WORK/det-hpsgd-np4/status"
check_case det-hpsgd-np4 4

# Three ranks in sync: the global iteration moves by 3 (99 -> 102), and the
# checkpoints the cfg implies at 100 and 200 are still written.
train_case det-cadence 3 204 "mode=sync"
echo $? >"$WORK/det-cadence/status"
check "cadence: mpirun -np 3 exits 0" test "$(cat "$WORK/det-cadence/status")" = 0
check "cadence: the iteration moves by 3 per step" grep -q '^102: ' "$WORK/det-cadence/log"
for f in det-cadence_100.weights det-cadence_200.weights det-cadence.backup; do
    check "cadence: $f written though the count jumped past its multiple" test -s "$WORK/det-cadence/rank0/backup/$f"
done

# Resume from the .backup (iteration 102: seen 408 images of batch 4).
res="$WORK/det-resume"
mkdir -p "$res/rank0/backup" "$res/rank1/backup"
cfg_with "$BASE" "$res/det-resume.cfg" 240 "mode=hpsgd"
sed "s|^backup=.*|backup=backup|" "$WORK/data/detect.data" >"$res/run.data"
saved=$("$WCMP" --seen "$WORK/det-cadence/rank0/backup/det-cadence.backup")
run_np 2 "$res/log" "$ROOT/tests/e2e/in-rank-dir.sh" "$res" \
    "$DARKNET" detector train "$res/run.data" "$res/det-resume.cfg" "$WORK/det-cadence/rank0/backup/det-cadence.backup"
echo $? >"$res/status"
check "resume: mpirun exits 0" test "$(cat "$res/status")" = 0
check "resume: the plugin starts at the saved iteration $((saved / 4))" grep -q "iteration $((saved / 4))\$" "$res/log"
first=$(grep -m1 -oE '^[0-9]+: ' "$res/log" | tr -d ': ')
check "resume: Darknet's first iteration ($first) follows the saved one ($((saved / 4)))" test "${first:-0}" -ge $((saved / 4))
check "resume: it ends at the cfg's max_batches (240), not 240 more" \
    test "$("$WCMP" --seen "$res/rank0/backup/det-resume_final.weights")" -ge $((240 * 4))
# hpsgd's counter is a lower bound (one step per rank for the round just
# launched), so the last merge can land past 240 by the steps it did not count:
# at most max_stale (2) per rank for that round and the one before it, 2 x 2
# x 2 = 8 global iterations (245 seen once under a load of 15).
check "resume: and not far beyond it" test "$("$WCMP" --seen "$res/rank0/backup/det-resume_final.weights")" -le $((248 * 4))
finish
