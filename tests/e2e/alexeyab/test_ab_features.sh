#!/usr/bin/env bash
# AlexeyAB build, the fork's extra training state under [hpsgd]:
# - refused with one line naming the cfg and the key: ema_alpha,
#   dynamic_minibatch, weights_reject_freq (README says why), and -gpus 0,1;
# - trained on 2 ranks with verify=1: random=1 (shared resize draws: every
#   rank resizes alike), mixup, adam, loss_scale (local: the GPU's
#   mixed precision, no effect on a CPU build);
# - mosaic=1 needs OpenCV in AlexeyAB: on a build without it every rank stops
#   on AlexeyAB's own error, bounded in time (no hang);
# - -map during training: rank 0 evaluates and writes _best, the others train on.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/lib-ab.sh"
RUN_LIMIT=120

detection_data "$WORK/data"
initial_weights "$BASE" "$WORK/data/detect.data" "$WORK/start.weights"

# with_net KEY=VALUE OUT: $BASE with the line added to [net].
with_net() { sed "0,/^\[net\]/s//[net]\n$1/" "$BASE" >"$2"; }
# with_yolo KEY=VALUE OUT: $BASE with every yolo layer's random= replaced.
for kv in ema_alpha=0.9998 dynamic_minibatch=1 weights_reject_freq=10; do
    key=${kv%%=*}
    with_net "$kv" "$WORK/$key.cfg"
    CFG_BASE="$WORK/$key.cfg" ab_case "refuse-$key" 2 8 "mode=sync"
    check "$key: refused (mpirun exits non-zero)" test "$(cat "$WORK/refuse-$key/status")" != 0
    check "$key: one line names the cfg and the key" \
        grep -q "hpsgd: .*refuse-$key.cfg: \[net\] $key is not supported with \[hpsgd\]" "$WORK/refuse-$key/log"
    check "$key: nothing was trained or written" test -z "$(find "$WORK/refuse-$key" -name '*.weights')"
done

AB_FLAGS="-gpus 0,1" ab_case refuse-gpus 1 8 "mode=sync"
check "-gpus 0,1: refused with one line" grep -q "one GPU per rank" "$WORK/refuse-gpus/log"

# random=1: AlexeyAB's resize every 10 local steps, drawn alike on every
# rank (it uses the largest size in the last 100 iterations, so 240). On
# tiny-det.cfg: on the route-group cfg (ab-yolov4-tiny.cfg) with random=1
# the loss often goes NaN and AlexeyAB's CPU backward_route_layer then
# segfaults after a resize, in unpatched AlexeyAB too (README, random=1).
sed 's/^random=0/random=1/' "$ROOT/tests/cfg/tiny-det.cfg" >"$WORK/random.cfg"
cp "$WORK/start.weights" "$WORK/ab-start.weights"
initial_weights "$WORK/random.cfg" "$WORK/data/detect.data" "$WORK/start.weights"
MPIRUN_ARGS=--tag-output CFG_BASE="$WORK/random.cfg" ab_case ab-random 2 240 "mode=sync" "verify=1" "print=all" "seed=7"
cp "$WORK/ab-start.weights" "$WORK/start.weights"
ab_checks ab-random 2
sizes() { grep -aE "^\[1,$1\]<stdout>: *[0-9]+ x [0-9]+ *$" "$WORK/ab-random/log" | sed 's/.*>: *//'; }
n=$(sizes 0 | sort -u | wc -l)
check "random=1: rank 0 resized to $n different sizes" test "$n" -ge 2
check "random=1: rank 1 resized to the same sizes in the same order ($(sizes 1 | wc -l) resizes)" \
    bash -c "test '$(sizes 0 | tr '\n' ' ')' = '$(sizes 1 | tr '\n' ' ')' && test -n '$(sizes 1)'"

for kv in mixup=1 adam=1 loss_scale=128; do
    key=${kv%%=*}
    with_net "$kv" "$WORK/$key.cfg"
    CFG_BASE="$WORK/$key.cfg" ab_case "ab-$key" 2 12 "mode=hpsgd" "verify=1"
    ab_checks "ab-$key" 2
done

# (With OpenCV, make test OPENCV=1, test_ab_mosaic trains it instead.)
if ! ldd "$DARKNET" 2>/dev/null | grep -q libopencv_core; then
    with_net mosaic=1 "$WORK/mosaic.cfg"
    start=$SECONDS
    CFG_BASE="$WORK/mosaic.cfg" ab_case ab-mosaic 2 12 "mode=sync"
    check "mosaic=1 on a build without OpenCV: AlexeyAB's own error, every rank stops ($((SECONDS - start)) s)" \
        bash -c "test \"\$(cat '$WORK/ab-mosaic/status')\" != 0 && test \"\$(cat '$WORK/ab-mosaic/status')\" != 124 && grep -q 'compile Darknet with OpenCV' '$WORK/ab-mosaic/log'"
fi

# -map: rank 0 evaluates (every 100 iterations and at the end), the others train on.
AB_FLAGS="-map" ab_case ab-map 2 24 "mode=sync" "verify=1"
ab_checks ab-map 2
check "-map: rank 0 computed the mAP" grep -q 'mean_average_precision (mAP@0.50)' "$WORK/ab-map/log"
check "-map: rank 0 wrote _best.weights" test -s "$WORK/ab-map/rank0/backup/ab-map_best.weights"
check "-map: once per evaluation (rank 0 only)" test "$(grep -c 'mean_average_precision (mAP@0.50)' "$WORK/ab-map/log")" = 1
finish
