#!/usr/bin/env bash
# same-bytes.sh OUT: trains a fixed matrix of short, deterministic runs (every
# mode, 1, 2 and 4 ranks, detector and classifier, stats=0, resume) and
# writes "NAME MD5" of each final weights file to OUT. Two builds that train
# the same bytes give the same OUT: how a refactoring shows it changed no
# behaviour. Deterministic because the start weights are made under faketime
# (Darknet seeds its initialisation from time(0)), the data seed is fixed,
# one loader thread, and hpsgd runs with max_stale=1 (every step waits for
# its round, so the schedule does not depend on timing).
#
# Environment as for the e2e tests (run through make test TESTS=same_bytes,
# or set DARKNET, MKDATA, TEST_DIR, TEST_TMP).
source "$(dirname "$0")/../e2e/lib.sh"
OUT=${1:?usage: same-bytes.sh OUT}
: >"$OUT"

detection_data "$WORK/data"
classification_data "$WORK/cls"
DET="$ROOT/tests/cfg/tiny-det.cfg"
CLS="$ROOT/tests/cfg/smooth-cls.cfg"
FT=(faketime -f "@2026-01-01 00:00:00")

# start weights: fixed bytes, whatever the day.
start_weights() {
    local cfg=$1 data=$2 out=$3 kind=$4 steps=0
    local dir="$WORK/init-$kind"
    [ "$kind" = classifier ] && steps=1
    mkdir -p "$dir"
    sed "s/^max_batches=.*/max_batches=$steps/" "$cfg" >"$dir/init.cfg"
    data_file "$data" "$dir" "$dir/init.data"
    (cd "$dir" && DARKNET_LOADER_THREADS=1 "${FT[@]}" "$DARKNET" "$kind" train "$dir/init.data" "$dir/init.cfg" \
        >"$dir/log" 2>&1) || die "could not make $kind start weights"
    mv "$(ls "$dir"/init*.weights | head -1)" "$out"
}
start_weights "$DET" "$WORK/data/detect.data" "$WORK/det.weights" detector
start_weights "$CLS" "$WORK/cls/fashion.data" "$WORK/cls.weights" classifier
echo "start-detector $(md5sum <"$WORK/det.weights" | cut -d' ' -f1)" >>"$OUT"
echo "start-classifier $(md5sum <"$WORK/cls.weights" | cut -d' ' -f1)" >>"$OUT"

# one NAME KIND NP MAX WEIGHTS [hpsgd lines...]
one() {
    local name=$1 kind=$2 np=$3 max=$4 weights=$5
    shift 5
    local dir="$WORK/$name" base=$DET data="$WORK/data/detect.data"
    [ "$kind" = classifier ] && base=$CLS data=$WORK/cls/fashion.data
    mkdir -p "$dir"
    cfg_with "$base" "$dir/$name.cfg" "$max" "$@"
    data_file "$data" "$dir/backup" "$dir/run.data"
    # Without [hpsgd], Darknet seeds its data order from time(0): fix the clock.
    local launch=(run_np "$np" "$dir/log")
    [ $# -eq 0 ] && launch=(run_np "$np" "$dir/log" "${FT[@]}")
    if ! (cd "$dir" && "${launch[@]}" "$DARKNET" "$kind" train "$dir/run.data" "$dir/$name.cfg" "$weights"); then
        not_ok "$name: training failed (see $dir/log)"
        return
    fi
    local f
    f=$(ls "$dir"/backup/"$name"_final.weights "$dir"/backup/"$name".weights 2>/dev/null | head -1)
    [ -n "$f" ] || { not_ok "$name: no final weights"; return; }
    echo "$name $(md5sum <"$f" | cut -d' ' -f1)" >>"$OUT"
    ok "$name"
}
S=("seed=4242" "loader_threads=1")
one stock-det detector 1 8 "$WORK/det.weights"
one sync-np1 detector 1 8 "$WORK/det.weights" mode=sync "${S[@]}"
one sync-np2 detector 2 12 "$WORK/det.weights" mode=sync "${S[@]}"
one sync-np4 detector 4 16 "$WORK/det.weights" mode=sync "${S[@]}" verify=1
one sync-np2-stats0 detector 2 12 "$WORK/det.weights" mode=sync stats=0 "${S[@]}"
one average-np2 detector 2 12 "$WORK/det.weights" mode=average interval=3 "${S[@]}"
one average-np4 detector 4 16 "$WORK/det.weights" mode=average interval=2 lr_scale=sqrt "${S[@]}"
one reset-np1 detector 1 8 "$WORK/det.weights" merge=reset max_stale=1 "${S[@]}"
one reset-np2 detector 2 12 "$WORK/det.weights" merge=reset max_stale=1 "${S[@]}" verify=1
one reset-np4 detector 4 16 "$WORK/det.weights" merge=reset max_stale=1 shard=none "${S[@]}"
one eager-np2 detector 2 12 "$WORK/det.weights" merge=eager max_stale=1 "${S[@]}"
one eager-np4 detector 4 16 "$WORK/det.weights" merge=eager max_stale=1 lr_scale=none "${S[@]}"
one resume-np2 detector 2 20 "$WORK/sync-np2/backup/sync-np2_final.weights" merge=reset max_stale=1 "${S[@]}"
one cls-sync-np2 classifier 2 10 "$WORK/cls.weights" mode=sync "${S[@]}"
one cls-eager-np2 classifier 2 10 "$WORK/cls.weights" merge=eager max_stale=1 "${S[@]}"
one cls-average-np2 classifier 2 10 "$WORK/cls.weights" mode=average interval=2 "${S[@]}"
finish
