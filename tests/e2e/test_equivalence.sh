#!/usr/bin/env bash
# The arithmetic holds on real training:
# - sync, every rank reading the same images: 2 ranks for 2T global
#   iterations leave the same tensor bytes as 1 rank for T ((x+x)/2 = x);
# - merge=eager on 1 rank matches sync on 1 rank within 1e-5 relative, even
#   when rounds are slow and several local steps run while one is pending
#   (merge=reset, stale by design, does not: the comparison can fail; nor
#   does eager with lookahead=1, whose default is 0 on one rank), on a
#   classifier (classifier train) with a smooth loss;
# - the background round really overlaps: local steps are taken while a
#   round is in flight, shown by the plugin's per-round counters.
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

check "sync, 1 rank, T=12 iterations" run sync1 1 12 "mode=sync" "${SAME[@]}"
check "sync, 2 ranks, 2T=24 global iterations" run sync2 2 24 "mode=sync" "${SAME[@]}"
check "2 ranks x 2T leave the same tensor bytes as 1 rank x T" "$WCMP" "$(final sync1)" "$(final sync2)"
check "... and the headers count 2x the images" \
    test "$("$WCMP" --seen "$(final sync2)")" -eq $((2 * $("$WCMP" --seen "$(final sync1)")))

# Slow rounds (a test knob of the MPI thread), so several steps run per round,
# on a classifier with a smooth loss (tests/cfg/smooth-cls.cfg says why).
classification_data "$WORK/cls"
CLS="$ROOT/tests/cfg/smooth-cls.cfg"
initial_weights "$CLS" "$WORK/cls/fashion.data" "$WORK/cls-start.weights" classifier
# crun NAME MAX [hpsgd lines...]: classifier train on 1 rank; weights in $WORK/NAME/backup/NAME.weights.
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
export HPSGD_TEST_ROUND_DELAY_US=400000
check "hpsgd merge=eager, 1 rank, slow rounds" crun eager1 12 "mode=hpsgd" "merge=eager" "max_stale=4" "${SAME[@]}"
check "hpsgd merge=reset, 1 rank, slow rounds" crun reset1 12 "mode=hpsgd" "merge=reset" "max_stale=4" "${SAME[@]}"
check "hpsgd merge=eager lookahead=1, 1 rank, slow rounds" crun look1 12 "mode=hpsgd" "merge=eager" "max_stale=4" \
    "lookahead=1" "${SAME[@]}"
unset HPSGD_TEST_ROUND_DELAY_US
check "the start-up line gives lookahead=0 on 1 rank by default, and the value set" \
    bash -c "grep -q 'merge=eager max_stale=4 lookahead=0 sync_warmup=0,' '$WORK/eager1/log' &&
             grep -q 'merge=eager max_stale=4 lookahead=1 sync_warmup=0,' '$WORK/look1/log'"
pending=$(sed -n 's/.* \([0-9]*\) local steps ran while a round was pending.*/\1/p' "$WORK/eager1/log")
check "eager: $pending local steps ran while a round was pending" test "${pending:-0}" -gt 0
# hpsgd ends after a whole round, so compare with sync over as many steps (batch 16).
steps=$(( $("$WCMP" --seen "$(cfinal eager1)") / 16 ))
check "sync, 1 rank, $steps iterations (as many as eager took)" crun sync1e "$steps" "mode=sync" "${SAME[@]}"
check "eager on 1 rank matches sync on 1 rank within 1e-5 relative" "$WCMP" --rel 1e-5 "$(cfinal eager1)" "$(cfinal sync1e)"
steps=$(( $("$WCMP" --seen "$(cfinal reset1)") / 16 ))
check "sync, 1 rank, $steps iterations (as many as reset took)" crun sync1r "$steps" "mode=sync" "${SAME[@]}"
check "reset on 1 rank does not (its replica restarts from a stale G)" \
    bash -c "! '$WCMP' --rel 1e-5 '$(cfinal reset1)' '$(cfinal sync1r)'"
steps=$(( $("$WCMP" --seen "$(cfinal look1)") / 16 ))
check "sync, 1 rank, $steps iterations (as many as lookahead=1 took)" crun sync1l "$steps" "mode=sync" "${SAME[@]}"
check "nor does lookahead=1 (its replica starts ahead of G: the key reaches the merge)" \
    bash -c "! '$WCMP' --rel 1e-5 '$(cfinal look1)' '$(cfinal sync1l)'"

# Overlap on 2 ranks: per-round counters in the CSV log and the summary.
export HPSGD_TEST_ROUND_DELAY_US=400000
check "hpsgd, 2 ranks, slow rounds" run overlap2 2 24 "mode=hpsgd" "max_stale=3" "log=$WORK/overlap2/log.csv"
unset HPSGD_TEST_ROUND_DELAY_US
multi=$(awk -F, 'NR > 1 && $8 >= 2 { n++ } END { print n + 0 }' "$WORK/overlap2/log.csv")
check "CSV: $multi rounds had 2 or more local steps (training went on while a round was in flight)" test "$multi" -gt 0
pending=$(sed -n 's/.* \([0-9]*\) local steps ran while a round was pending.*/\1/p' "$WORK/overlap2/log")
check "summary: $pending local steps ran while a round was pending" test "${pending:-0}" -gt 0
check "the start-up line gives lookahead=1 and no sync warm-up on 2 ranks by default" \
    grep -q 'max_stale=3 lookahead=1 sync_warmup=0,' "$WORK/overlap2/log"
check "CSV: the header has every column" \
    test "$(head -1 "$WORK/overlap2/log.csv")" = \
    "iteration,wall_s,loss,avg_loss,learning_rate,images,round,local_steps,allreduce_ms,wait_ms,images_per_s"
finish
