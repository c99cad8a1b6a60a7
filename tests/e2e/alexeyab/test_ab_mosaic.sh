#!/usr/bin/env bash
# AlexeyAB build with OpenCV (make test OPENCV=1): mosaic=1 trains on 2 ranks
# with verify=1 (AlexeyAB's mosaic is OpenCV code; its draws come from each
# rank's own seeded loader). With OpenCV AlexeyAB also saves its loss chart
# (chart*.png, every 100 iterations): rank 0 alone does. Without OpenCV in the
# build: one skipped line (test_ab_features checks AlexeyAB's error there).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/lib-ab.sh"
RUN_LIMIT=120

if ! ldd "$DARKNET" 2>/dev/null | grep -q libopencv_core; then
    echo "skipped: $DARKNET is built without OpenCV (make test OPENCV=1 builds AlexeyAB's with it)"
    exit 77
fi

detection_data "$WORK/data"
sed "0,/^\[net\]/s//[net]\nmosaic=1/" "$BASE" >"$WORK/mosaic.cfg"
initial_weights "$WORK/mosaic.cfg" "$WORK/data/detect.data" "$WORK/start.weights"
CFG_BASE="$WORK/mosaic.cfg" ab_case ab-mosaic 2 120 "mode=sync" "verify=1"
ab_checks ab-mosaic 2
check "ab-mosaic: rank 0 saved the loss chart (and no other rank did: above)" test -s "$WORK/ab-mosaic/rank0/chart.png"
finish
