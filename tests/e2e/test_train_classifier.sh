#!/usr/bin/env bash
# darknet classifier train under mpirun, 2 ranks, hpsgd and sync: exit 0;
# only rank 0 writes; the saved weights are the global model every rank
# agreed on; they load in a single-process `classifier predict` and differ
# from the start; a resumed run starts at the saved iteration.
source "$(dirname "$0")/lib.sh"

classification_data "$WORK/data"
BASE="$ROOT/tests/cfg/tiny-cls.cfg"
initial_weights "$BASE" "$WORK/data/fashion.data" "$WORK/start.weights" classifier

# train_case NAME NP MAX START [hpsgd lines...]
train_case() {
    local name=$1 np=$2 max=$3 start=$4
    shift 4
    local dir="$WORK/$name"
    mkdir -p "$dir"
    cfg_with "$BASE" "$dir/$name.cfg" "$max" "$@" "log=train.csv" "verify=1"
    sed "s|^backup=.*|backup=backup|" "$WORK/data/fashion.data" >"$dir/run.data"
    for r in $(seq 0 $((np - 1))); do mkdir -p "$dir/rank$r/backup"; done
    run_np "$np" "$dir/log" "$ROOT/tests/e2e/in-rank-dir.sh" "$dir" \
        "$DARKNET" classifier train "$dir/run.data" "$dir/$name.cfg" "$start"
    echo $? >"$dir/status"
}

for mode in hpsgd sync; do
    name="cls-$mode"
    dir="$WORK/$name"
    train_case "$name" 2 30 "$WORK/start.weights" "mode=$mode"
    final="$dir/rank0/backup/$name.weights"
    check "$name: mpirun -np 2 exits 0" test "$(cat "$dir/status")" = 0
    check "$name: rank 0 wrote the final weights" test -s "$final"
    check "$name: rank 1 wrote no file" test -z "$(find "$dir/rank1" -type f)"
    check "$name: the saved file is the global model all ranks agreed on" \
        test "$(file_hash "$final")" = "$(printed_checksum "$dir/log")"
    check "$name: the final weights differ from the start weights" "$WCMP" --differ "$WORK/start.weights" "$final"
    check "$name: the final weights load in a single-process classifier predict" \
        bash -c "cd '$dir' && '$DARKNET' classifier predict '$dir/run.data' '$dir/$name.cfg' '$final' \
                 '$(head -1 "$WORK/data/test.list")' > predict.log 2>&1 && grep -q '%: fm-' predict.log"
    # Each rank ran about 15 steps; the iteration and the image count are global.
    last=$(grep -E '^[0-9]+, [0-9.]+: .* images$' "$dir/log" | tail -1)
    iter=${last%%,*}
    images=$(echo "$last" | awk '{ print $(NF - 1) }')
    check "$name: the iteration line counts all ranks' images (iteration $iter, $images images)" \
        test "${iter:-0}" -ge 28 -a "${images:-0}" -eq $((${iter:-0} * 16))
done

# Resume from the final weights of the hpsgd run (iteration ~30) up to 50.
train_case cls-resume 2 50 "$WORK/cls-hpsgd/rank0/backup/cls-hpsgd.weights" "mode=hpsgd"
saved=$(($("$WCMP" --seen "$WORK/cls-hpsgd/rank0/backup/cls-hpsgd.weights") / 16))
check "resume: mpirun exits 0" test "$(cat "$WORK/cls-resume/status")" = 0
check "resume: starts at the saved iteration $saved" grep -q "iteration $saved\$" "$WORK/cls-resume/log"
check "resume: ends at max_batches 50" \
    test "$("$WCMP" --seen "$WORK/cls-resume/rank0/backup/cls-resume.weights")" -ge $((50 * 16))
finish
