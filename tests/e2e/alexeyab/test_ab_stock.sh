#!/usr/bin/env bash
# AlexeyAB build, stock behaviour untouched: a cfg without [hpsgd], run
# without mpirun, does not start MPI and trains exactly like unpatched
# AlexeyAB Darknet (build/darknet-alexeyab-stock, from the same tarball):
# identical .weights bytes, clock frozen (faketime -f), one loader thread.
source "$(dirname "$0")/../lib.sh"

command -v faketime >/dev/null || die "faketime is not installed (make test installs it)"
[ "${SAN:-0}" = 1 ] && { echo "ok - # SKIP stock comparison needs the unsanitized build (run make test)"; exit 77; }
[ -x "$DARKNET_STOCK" ] || die "no unpatched AlexeyAB build at $DARKNET_STOCK"
detection_data "$WORK/det"
classification_data "$WORK/cls"
export DARKNET_LOADER_THREADS=1

# train BIN TASK DATA CFG NAME: one run in its own dir, clock frozen.
train() {
    local bin=$1 task=$2 data=$3 cfg=$4 name=$5
    local dir="$WORK/$name"
    mkdir -p "$dir/tmp"
    (cd "$dir" && data_file "$data" backup run.data && TMPDIR="$dir/tmp" faketime -f '2026-01-01 00:00:00' \
        "$bin" "$task" train run.data "$cfg" -dont_show >"$dir/log" 2>&1)
}
# Timings and the screen-clearing escape aside, the output lines.
lines() { grep -av 'seconds\|hours left' "$1"; }

cfg_with "$ROOT/tests/cfg/ab-yolov4-tiny.cfg" "$WORK/det.cfg" 5
cfg_with "$ROOT/tests/cfg/tiny-cls.cfg" "$WORK/cls.cfg" 5

check "unpatched AlexeyAB trains the detector" train "$DARKNET_STOCK" detector "$WORK/det/detect.data" "$WORK/det.cfg" stock-det
check "patched AlexeyAB trains the detector" train "$DARKNET" detector "$WORK/det/detect.data" "$WORK/det.cfg" patched-det
check "patched, second run" train "$DARKNET" detector "$WORK/det/detect.data" "$WORK/det.cfg" patched-det2
check "detector: identical .weights bytes, patched vs unpatched" \
    cmp "$WORK/stock-det/backup/det_final.weights" "$WORK/patched-det/backup/det_final.weights"
check "detector: the run is reproducible (so the comparison means something)" \
    cmp "$WORK/patched-det/backup/det_final.weights" "$WORK/patched-det2/backup/det_final.weights"
check "detector: same output lines as unpatched" diff <(lines "$WORK/stock-det/log") <(lines "$WORK/patched-det/log")

check "unpatched AlexeyAB trains the classifier" train "$DARKNET_STOCK" classifier "$WORK/cls/fashion.data" "$WORK/cls.cfg" stock-cls
check "patched AlexeyAB trains the classifier" train "$DARKNET" classifier "$WORK/cls/fashion.data" "$WORK/cls.cfg" patched-cls
check "classifier: identical .weights bytes, patched vs unpatched" \
    cmp "$WORK/stock-cls/backup/cls_final.weights" "$WORK/patched-cls/backup/cls_final.weights"

check "no MPI start-up without [hpsgd] (TMPDIR stays empty)" \
    test -z "$(find "$WORK/patched-det/tmp" "$WORK/patched-cls/tmp" -mindepth 1)"
check "no plugin output without [hpsgd]" bash -c "! grep -q 'hpsgd' '$WORK/patched-det/log' '$WORK/patched-cls/log'"

initial_weights "$WORK/det.cfg" "$WORK/det/detect.data" "$WORK/start.weights"
check "training moved the weights" "$WCMP" --differ "$WORK/start.weights" "$WORK/patched-det/backup/det_final.weights"
finish
