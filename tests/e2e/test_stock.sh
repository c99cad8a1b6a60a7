#!/usr/bin/env bash
# Stock behaviour is untouched: a cfg without [hpsgd], run without mpirun,
# does not start MPI and trains exactly like unpatched Darknet (identical
# .weights bytes), with the clock frozen (faketime -f) and one loader thread.
source "$(dirname "$0")/lib.sh"

command -v faketime >/dev/null || die "faketime is not installed (make test installs it)"
# Identical bytes need identical code: the sanitized build is compiled differently from stock.
[ "${SAN:-0}" = 1 ] && { echo "ok - # SKIP stock comparison needs the unsanitized build (run make test)"; exit 77; }
detection_data "$WORK/det"
classification_data "$WORK/cls"
export DARKNET_LOADER_THREADS=1

# train BIN TASK DATA CFG NAME: one run in its own dir; clock frozen, so
# srand(time(0)) gives every run the same seed.
train() {
    local bin=$1 task=$2 data=$3 cfg=$4 name=$5
    local dir="$WORK/$name"
    mkdir -p "$dir/tmp"
    # A relative backup dir keeps "Saving weights to backup/..." alike in both logs.
    (cd "$dir" && data_file "$data" backup run.data && TMPDIR="$dir/tmp" faketime -f '2026-01-01 00:00:00' "$bin" "$task" train run.data "$cfg" >"$dir/log" 2>&1)
}

cfg_with "$ROOT/tests/cfg/tiny-det.cfg" "$WORK/det.cfg" 5
cfg_with "$ROOT/tests/cfg/tiny-cls.cfg" "$WORK/cls.cfg" 5

check "stock Darknet trains the detector" train "$DARKNET_STOCK" detector "$WORK/det/detect.data" "$WORK/det.cfg" stock-det
check "patched Darknet trains the detector" train "$DARKNET" detector "$WORK/det/detect.data" "$WORK/det.cfg" patched-det
check "patched Darknet, second run" train "$DARKNET" detector "$WORK/det/detect.data" "$WORK/det.cfg" patched-det2
check "detector: identical .weights bytes, patched vs stock" \
    cmp "$WORK/stock-det/backup/det_final.weights" "$WORK/patched-det/backup/det_final.weights"
check "detector: the run is reproducible (so the comparison means something)" \
    cmp "$WORK/patched-det/backup/det_final.weights" "$WORK/patched-det2/backup/det_final.weights"
check "detector: same output lines as stock (timings aside)" \
    diff <(grep -v seconds "$WORK/stock-det/log") <(grep -v seconds "$WORK/patched-det/log")

check "stock Darknet trains the classifier" train "$DARKNET_STOCK" classifier "$WORK/cls/fashion.data" "$WORK/cls.cfg" stock-cls
check "patched Darknet trains the classifier" train "$DARKNET" classifier "$WORK/cls/fashion.data" "$WORK/cls.cfg" patched-cls
check "classifier: identical .weights bytes, patched vs stock" \
    cmp "$WORK/stock-cls/backup/cls.weights" "$WORK/patched-cls/backup/cls.weights"

# Open MPI leaves a session directory in TMPDIR once it starts, even as a singleton.
check "no MPI start-up without [hpsgd] (TMPDIR stays empty)" \
    test -z "$(find "$WORK/patched-det/tmp" "$WORK/patched-cls/tmp" -mindepth 1)"
check "no plugin output without [hpsgd]" bash -c "! grep -q 'hpsgd' '$WORK/patched-det/log' '$WORK/patched-cls/log'"

# The weights really changed, so identical bytes are not a vacuous result.
initial_weights "$WORK/det.cfg" "$WORK/det/detect.data" "$WORK/start.weights"
check "training moved the weights" "$WCMP" --differ "$WORK/start.weights" "$WORK/patched-det/backup/det_final.weights"
finish
