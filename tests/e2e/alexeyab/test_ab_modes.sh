#!/usr/bin/env bash
# AlexeyAB build, every mode on 2 and 4 ranks with verify=1 (each merge
# checked identical on every rank): exit 0, rank 0 alone writes, the saved
# file is the model all ranks agreed on; it loads in a single-process
# detector test; and with the tarball's unpatched AlexeyAB when it is there.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/lib-ab.sh"

detection_data "$WORK/data"
initial_weights "$BASE" "$WORK/data/detect.data" "$WORK/start.weights"

for np in 2 4; do
    for mode in "hpsgd reset" "hpsgd eager" "sync" "average"; do
        set -- $mode
        name="ab-$1${2:+-$2}-np$np"
        ab_case "$name" "$np" $((np * 6)) "mode=$1" ${2:+"merge=$2"} "interval=3" "verify=1"
        ab_checks "$name" "$np"
    done
done

final="$WORK/ab-sync-np2/rank0/backup/ab-sync-np2_final.weights"
check "the final weights differ from the start" "$WCMP" --differ "$WORK/start.weights" "$final"
for bin in "$DARKNET" ${DARKNET_STOCK:+"$DARKNET_STOCK"}; do
    tdir="$WORK/test-$(basename "$bin")"
    mkdir -p "$tdir"
    check "$(basename "$bin") detector test loads the final weights" \
        bash -c "cd '$tdir' && '$bin' detector test '$WORK/data/detect.data' '$BASE' '$final' '$WORK/data/heldout.png' \
                 -dont_show -thresh 0.01 > test.log 2>&1 && grep -q 'Predicted in' test.log"
done
finish
