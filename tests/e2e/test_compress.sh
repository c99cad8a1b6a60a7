#!/usr/bin/env bash
# compress=fp16 on real training:
# - 2 ranks, every mode, verify=1: every rank holds the same G after every
#   merge, and the final model is identical on all ranks and is what is saved;
# - bytes per round from the summary: at most 0.55x of compress=none (the
#   rounds send half the bytes; the final flush is one full float32 round);
# - the residuals reach the saved model: one 16-bit round of 200 steps, then
#   the final flush (float32, the residuals) ends within float32 rounding of
#   compress=none's one float32 round (measured relative L2 1.1e-8; a flush
#   that dropped the residuals measured 1.4e-4);
# - 1 rank, sync, on the smooth classifier, 12 steps: within a relative L2 of
#   1e-7 of compress=none (measured 1.9e-8 and 2.5e-8; dropping the residuals
#   at the flush gave 6.7e-7, a lost step 1e-3 or more).
source "$(dirname "$0")/lib.sh"

detection_data "$WORK/data"
BASE="$ROOT/tests/cfg/tiny-det.cfg"
initial_weights "$BASE" "$WORK/data/detect.data" "$WORK/start.weights"
SAME=("shard=none" "lr_scale=none" "seed=4242" "loader_threads=1")

# run NAME NP MAX [hpsgd lines...]: final weights in $WORK/NAME/backup.
run() {
    local name=$1 np=$2 max=$3
    shift 3
    local dir="$WORK/$name"
    mkdir -p "$dir"
    cfg_with "$BASE" "$dir/$name.cfg" "$max" "$@"
    data_file "$WORK/data/detect.data" "$dir/backup" "$dir/run.data"
    (cd "$dir" && run_np "$np" "$dir/log" "$DARKNET" detector train "$dir/run.data" "$dir/$name.cfg" "$WORK/start.weights")
}
final() { echo "$WORK/$1/backup/$1_final.weights"; }
# bytes_per_round NAME: the summary's MB sent / rounds, in bytes.
bytes_per_round() {
    sed -n 's/.*hpsgd: \([0-9]*\) rounds in .* \([0-9.]*\) MB sent.*/\1 \2/p' "$WORK/$1/log" | tail -1 |
        awk '{ printf "%.0f", $2 * 1e6 / $1 }'
}
# same_everywhere NAME: the printed final checksum is the saved file's.
same_everywhere() {
    local sum
    sum=$(printed_checksum "$WORK/$1/log")
    [ -n "$sum" ] && [ "$sum" = "$(file_hash "$(final "$1")")" ]
}

for mode in "mode=hpsgd merge=reset" "mode=hpsgd merge=eager" "mode=sync" "mode=average interval=3"; do
    name=$(echo "$mode" | tr -cd 'a-z')
    # shellcheck disable=SC2086
    check "fp16, 2 ranks, $mode, verify=1" run "f$name" 2 40 $mode "compress=fp16" "verify=1" "seed=4242" \
        "loader_threads=1"
    check "... the final model is identical on both ranks and saved" same_everywhere "f$name"
done

check "none, 2 ranks, mode=sync (for bytes per round)" run nsync 2 40 "mode=sync" "seed=4242" "loader_threads=1"
none=$(bytes_per_round nsync)
half=$(bytes_per_round fmodesync)
check "bytes per round: fp16 $half, none $none (at most 0.55x)" \
    awk -v a="${half:-0}" -v b="${none:-0}" 'BEGIN { exit !(b > 0 && a > 0 && a <= 0.55 * b) }'

# One round of 200 local steps per rank (`seen` moves only at rounds), then
# the loop ends; fp16 adds the final flush of the residuals.
check "none, 2 ranks, one round" run flushn 2 12 "mode=average" "interval=200" "${SAME[@]}"
check "fp16, 2 ranks, one round and the flush" run flushf 2 12 "mode=average" "interval=200" "compress=fp16" "${SAME[@]}"
"$WCMP" --rel 1 "$(final flushf)" "$(final flushn)" | sed 's/^/# /'
check "the flush sent the residuals: fp16 within 1e-6 relative of none" \
    "$WCMP" --rel 1e-6 "$(final flushf)" "$(final flushn)"

# 1 rank, the smooth classifier (tests/cfg/smooth-cls.cfg says why).
classification_data "$WORK/cls"
CLS="$ROOT/tests/cfg/smooth-cls.cfg"
initial_weights "$CLS" "$WORK/cls/fashion.data" "$WORK/cls-start.weights" classifier
crun() {
    local name=$1 max=$2
    shift 2
    local dir="$WORK/$name"
    mkdir -p "$dir"
    cfg_with "$CLS" "$dir/$name.cfg" "$max" "$@"
    data_file "$WORK/cls/fashion.data" "$dir/backup" "$dir/run.data"
    (cd "$dir" && run_np 1 "$dir/log" "$DARKNET" classifier train "$dir/run.data" "$dir/$name.cfg" "$WORK/cls-start.weights")
}
cfinal() { echo "$WORK/$1/backup/$1.weights"; }
check "none, 1 rank, sync, 12 iterations" crun cnone 12 "mode=sync" "${SAME[@]}"
check "fp16, 1 rank, sync, 12 iterations" crun cfp16 12 "mode=sync" "compress=fp16" "${SAME[@]}"
"$WCMP" --rel 1 "$(cfinal cfp16)" "$(cfinal cnone)" | sed 's/^/# /'
check "fp16 on 1 rank is within 1e-7 relative of none" "$WCMP" --rel 1e-7 "$(cfinal cfp16)" "$(cfinal cnone)"
check "... and is not the same bytes (the rounds were 16-bit)" "$WCMP" --differ "$(cfinal cfp16)" "$(cfinal cnone)"
finish
