#!/usr/bin/env bash
# AlexeyAB build, the arithmetic on a YOLOv4-tiny-style detector (route
# groups, weighted shortcut, mish, CIoU, scale_x_y, resize, greedynms with
# beta_nms, two yolo heads, 64 px): sync on 2 ranks for 2T global iterations,
# every rank reading the same images, leaves the same tensor bytes as 1 rank
# for T, and the header counts twice the images; the iteration counter and
# AlexeyAB's saves follow the global count.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/lib-ab.sh"

detection_data "$WORK/data"
initial_weights "$BASE" "$WORK/data/detect.data" "$WORK/start.weights"
SAME=("shard=none" "lr_scale=none" "seed=4242" "loader_threads=1")
final() { echo "$WORK/$1/rank0/backup/$1_final.weights"; }

ab_case sync1 1 12 "mode=sync" "${SAME[@]}"
ab_case sync2 2 24 "mode=sync" "verify=1" "${SAME[@]}"
check "sync, 1 rank, T=12: exits 0" test "$(cat "$WORK/sync1/status")" = 0
check "sync, 2 ranks, 2T=24: exits 0" test "$(cat "$WORK/sync2/status")" = 0
check "2 ranks x 2T leave the same tensor bytes as 1 rank x T" "$WCMP" "$(final sync1)" "$(final sync2)"
check "... and the headers count 2x the images" \
    test "$("$WCMP" --seen "$(final sync2)")" -eq $((2 * $("$WCMP" --seen "$(final sync1)")))
check "the iteration moves by 2 per step (cur_iteration follows seen): 24/24 printed" grep -q '^ 24: ' "$WORK/sync2/log"
check "no iteration past max_batches" bash -c "! grep -q '^ 26: ' '$WORK/sync2/log'"
ab_checks sync2 2

# AlexeyAB's saves (_N every saveweights=, _last every savelast=) with the count jumping by 3.
sed "s|^backup=.*|backup=backup|" "$WORK/data/detect.data" >"$WORK/saves.data"
mkdir -p "$WORK/saves"
cfg_with "$BASE" "$WORK/saves/saves.cfg" 60 "mode=sync"
printf 'saveweights=20\nsavelast=10\n' >>"$WORK/saves.data"
for r in 0 1 2; do mkdir -p "$WORK/saves/rank$r/backup"; done
run_np 3 "$WORK/saves/log" "$ROOT/tests/e2e/in-rank-dir.sh" "$WORK/saves" \
    "$DARKNET" detector train "$WORK/saves.data" "$WORK/saves/saves.cfg" "$WORK/start.weights" -dont_show
check "saves: mpirun -np 3 exits 0" test $? = 0
for f in saves_21.weights saves_42.weights saves_last.weights saves_final.weights; do
    check "saves: rank 0 wrote $f (the count moves 3 at a time)" test -s "$WORK/saves/rank0/backup/$f"
done
check "saves: ranks 1 and 2 wrote nothing" test -z "$(find "$WORK/saves/rank1" "$WORK/saves/rank2" -type f)"
finish
