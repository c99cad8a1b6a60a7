# lib-ab.sh - helpers of the AlexeyAB end-to-end tests (sourced after ../lib.sh).
BASE="$ROOT/tests/cfg/ab-yolov4-tiny.cfg"

# ab_case NAME NP MAX [hpsgd lines...]: detector train of $BASE (or $CFG_BASE)
# under mpirun, each rank in $WORK/NAME/rankN with its own backup/, from
# $WORK/start.weights; extra Darknet flags in AB_FLAGS, mpirun's in MPIRUN_ARGS. Status in $WORK/NAME/status.
ab_case() {
    local name=$1 np=$2 max=$3
    shift 3
    local dir="$WORK/$name"
    mkdir -p "$dir"
    cfg_with "${CFG_BASE:-$BASE}" "$dir/$name.cfg" "$max" "$@"
    sed "s|^backup=.*|backup=backup|" "$WORK/data/detect.data" >"$dir/run.data"
    for r in $(seq 0 $((np - 1))); do mkdir -p "$dir/rank$r/backup"; done
    run_np "$np" "$dir/log" ${MPIRUN_ARGS:-} "$ROOT/tests/e2e/in-rank-dir.sh" "$dir" \
        "$DARKNET" detector train "$dir/run.data" "$dir/$name.cfg" "$WORK/start.weights" -dont_show ${AB_FLAGS:-}
    echo $? >"$dir/status"
}

# ab_checks NAME NP: every rank ended, rank 0 alone wrote, the saved file is
# the model every rank agreed on (verify=1 checks every merge).
ab_checks() {
    local name=$1 np=$2 dir="$WORK/$1"
    local final="$dir/rank0/backup/${name}_final.weights"
    check "$name: mpirun -np $np exits 0" test "$(cat "$dir/status")" = 0
    check "$name: rank 0 wrote the final weights" test -s "$final"
    local others=0 r
    for r in $(seq 1 $((np - 1))); do [ -z "$(find "$dir/rank$r" -type f)" ] || others=1; done
    check "$name: ranks 1..$((np - 1)) wrote no file" test $others = 0
    local printed
    printed=$(printed_checksum "$dir/log")
    check "$name: all $np ranks agreed on the final global model" test -n "$printed"
    check "$name: the saved file is that model (checksum $printed)" test "$(file_hash "$final")" = "$printed"
    check "$name: verify=1 found no divergence" bash -c "! grep -q 'holds a different global model' '$dir/log'"
}
