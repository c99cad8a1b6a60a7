#!/usr/bin/env bash
# scripts/study, shrunk to seconds (make study runs it for an hour): the det
# study with one run per cell and 16 iterations, epochs and budget kinds;
# every run's row in results.tsv with a mAP in [0, 1]; the budget run's
# iterations are the ones fitted from the epochs runs' training times; the
# report replaces its own older section of BENCHMARKS-style file and keeps
# the rest, with the table and the chart; STUDY_APPEND adds a cell and keeps
# the runs before it, STUDY_FIRST_RUN picks its seeds; STUDY_LR sets the
# detector's rate in a study of its own; an unknown study is a one-line error.
source "$(dirname "$0")/lib.sh"
STUDY="$ROOT/scripts/study"
export STUDY_DARKNET=$DARKNET STUDY_OUT=$WORK/out STUDY_RUNS=1 STUDY_DET_ITERS=16
RESULTS=$WORK/out/det/results.tsv
TITLE="## Accuracy study: Fashion-MNIST detection (make study WHAT=det)"

printf '# report\n\n## Before\n\nkept\n\n%s\n\nan older run of this study\n\n## After\n\nkept too\n' \
    "$TITLE" >"$WORK/report.md"
BENCH_REPORT=$WORK/report.md STUDY_ONLY='single|sync-2r|eager-2r' STUDY_KIND='epochs|budget' \
    timeout 600 "$STUDY" det >"$WORK/study.log" 2>&1 || die "scripts/study det failed (see $WORK/study.log)"

check "one row per run: single, sync-2r, eager-2r after equal epochs, eager-2r at sync's time" test \
    "$(cut -f1,3 "$RESULTS" | tr '\t\n' ' ;')" = "single epochs;sync-2r epochs;eager-2r epochs;eager-2r budget;"
check "every run has a mAP in [0, 1] and ran its training (a wall time, a training time)" \
    awk -F'\t' '$5 !~ /^[0-9.]+$/ || $5 > 1 || $6 <= 0 || $9 <= 0 { bad = 1 } END { exit bad || NR != 4 }' "$RESULTS"
check "the epochs runs reach the 16 global iterations" \
    awk -F'\t' '$3 == "epochs" && $7 < 16 { bad = 1 } END { exit bad }' "$RESULTS"
# max_batches of the budget run: 16 x sync's training time / eager's.
fitted=$(awk -F'\t' '$3 == "epochs" && $1 == "sync-2r" { T = $9 } $3 == "epochs" && $1 == "eager-2r" { t = $9 }
    END { printf "%d", 16 * T / t }' "$RESULTS")
check "the budget run's schedule is fitted to sync's time ($fitted global iterations)" \
    grep -qx "max_batches=$fitted" "$WORK/out/det/eager-2r-budget-1/study.cfg"
check "the report: its own section replaced, once, with the table" bash -c "
    test \$(grep -c '^## Accuracy study: Fashion-MNIST detection' '$WORK/report.md') = 1 &&
    ! grep -q 'an older run of this study' '$WORK/report.md' &&
    grep -q '^| cell | ranks | kind | runs | mAP@0.50 x 100 mean |' '$WORK/report.md' &&
    grep -q '^| eager-2r | 2 | budget | 1 |' '$WORK/report.md'"
check "the report: the other sections kept" bash -c "grep -q '^## Before' '$WORK/report.md' &&
    grep -q '^kept too' '$WORK/report.md'"
check "the report: the chart of mAP against wall time, as text, without form feeds" bash -c "
    grep -q 'accuracy against wall time' '$WORK/report.md' && ! grep -q \$'\\f' '$WORK/report.md' &&
    test -s '$WORK/out/det/accuracy-time.png'"

BENCH_REPORT='' STUDY_APPEND=1 STUDY_ONLY=eager-stale1-2r STUDY_KIND=epochs STUDY_FIRST_RUN=2 STUDY_RUNS=2 \
    timeout 300 "$STUDY" det >"$WORK/append.log" 2>&1 || die "STUDY_APPEND run failed (see $WORK/append.log)"
check "STUDY_APPEND: the new cell's run added after the four before" test \
    "$(cut -f1,3 "$RESULTS" | tr '\t\n' ' ;')" = \
    "single epochs;sync-2r epochs;eager-2r epochs;eager-2r budget;eager-stale1-2r epochs;"
check "STUDY_APPEND: the new run trained with max_stale=1" \
    grep -qx "max_stale=1" "$WORK/out/det/eager-stale1-2r-epochs-2/study.cfg"
check "STUDY_FIRST_RUN=2: run 2 only, with seed 2" bash -c "
    test \"\$(cut -f1,4 '$RESULTS' | tail -1)\" = \"eager-stale1-2r\$(printf '\\t')2\" &&
    grep -qx seed=2 '$WORK/out/det/eager-stale1-2r-epochs-2/study.cfg' &&
    test ! -e '$WORK/out/det/eager-stale1-2r-epochs-1'"

BENCH_REPORT='' STUDY_LR=0.00075 STUDY_ONLY=sync-2r STUDY_KIND=epochs \
    timeout 300 "$STUDY" det >"$WORK/lr.log" 2>&1 || die "STUDY_LR run failed (see $WORK/lr.log)"
check "STUDY_LR: its own results, the cfg at that rate, the study above untouched" bash -c "
    test \"\$(cut -f1,3 '$WORK/out/det-lr0.00075/results.tsv')\" = \"sync-2r\$(printf '\t')epochs\" &&
    grep -qx learning_rate=0.00075 '$WORK/out/det-lr0.00075/sync-2r-epochs-1/study.cfg' &&
    grep -qx learning_rate=0.0015 '$WORK/out/det/sync-2r-epochs-1/study.cfg' &&
    test \$(wc -l <'$RESULTS') = 5"

out=$("$STUDY" nonsense 2>&1)
rc=$?
check "an unknown study: non-zero exit, one line naming it" \
    test "$rc" != 0 -a "$out" = "study: error: unknown study 'nonsense' (cells, ablation, lr, det, compress)"
finish
