#!/usr/bin/env bash
# scripts/plot-log: a PNG from a synthetic [hpsgd] log and from the log of a
# 1-rank training run; two logs on one chart; a text rendering; one-line
# errors (and no chart) for a missing, empty, header-only or malformed log.
source "$(dirname "$0")/lib.sh"
PLOT="$ROOT/scripts/plot-log"
HEADER="iteration,wall_s,loss,avg_loss,learning_rate,images,round,local_steps,allreduce_ms,wait_ms,images_per_s"
command -v gnuplot >/dev/null || die "gnuplot is not installed (make test installs gnuplot-nox)"

# is_png FILE MIN_BYTES: PNG signature, at least MIN_BYTES.
is_png() {
    [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] && [ "$(stat -c %s "$1")" -ge "$2" ]
}
# png_size FILE: width x height from the IHDR chunk.
png_size() { printf '%dx%d' "0x$(od -An -tx1 -j16 -N4 "$1" | tr -d ' \n')" "0x$(od -An -tx1 -j20 -N4 "$1" | tr -d ' \n')"; }

# A synthetic log: 200 iterations, loss falling, a wait now and then.
{
    echo "$HEADER"
    awk 'BEGIN { srand(3); for (i = 1; i <= 200; i++) {
        loss = 100 / (1 + i / 10) * (0.7 + 0.6 * rand()); avg = (i == 1) ? loss : 0.9 * avg + 0.1 * loss
        printf "%d,%.3f,%.6f,%.6f,0.001,%d,%d,1,25.0,%.3f,%.2f\n", i, i * 0.5, loss, avg, 8 * i, i - 1, (i % 7 == 0) ? 40 : 0, 16 }}'
} >"$WORK/synthetic.csv"

out=$("$PLOT" -o "$WORK/synthetic.png" "$WORK/synthetic.csv" 2>&1)
check "synthetic log: plot-log exits 0 and says where the chart is" test "$out" = "plot-log: wrote $WORK/synthetic.png"
check "synthetic log: a PNG of more than 20 kB" is_png "$WORK/synthetic.png" 20000
check "synthetic log: four panels, 1400x880 (got $(png_size "$WORK/synthetic.png"))" \
    test "$(png_size "$WORK/synthetic.png")" = 1400x880
cp "$WORK/synthetic.csv" "$WORK/default.csv"
check "without -o the chart goes beside the log (LOG.png)" \
    bash -c "'$PLOT' '$WORK/default.csv' >/dev/null && test -s '$WORK/default.png'"

# The log of a real run: 1 rank, 30 iterations of the tiny detector.
detection_data "$WORK/data"
mkdir -p "$WORK/run/backup"
cfg_with "$ROOT/tests/cfg/tiny-det.cfg" "$WORK/run/run.cfg" 30 "log=$WORK/run/train.csv"
data_file "$WORK/data/detect.data" "$WORK/run/backup" "$WORK/run/run.data"
(cd "$WORK/run" && timeout 120 "$DARKNET" detector train run.data run.cfg >log 2>&1 </dev/null) ||
    die "the 1-rank training run failed (see $WORK/run/log)"
check "training log: plot-log draws it" "$PLOT" -o "$WORK/train.png" "$WORK/run/train.csv"
check "training log: a PNG of more than 20 kB" is_png "$WORK/train.png" 20000

# Two logs, one chart: one PNG; the text rendering shows both labels on it.
check "two logs: plot-log exits 0" "$PLOT" -o "$WORK/both.png" -t synthetic -t 'real run' \
    "$WORK/synthetic.csv" "$WORK/run/train.csv"
check "two logs: one PNG of more than 20 kB" is_png "$WORK/both.png" 20000
check "two logs: no other chart written" test "$(find "$WORK" -maxdepth 1 -name 'both*' | wc -l)" = 1
check "two logs, text rendering of the loss panel: plot-log exits 0" "$PLOT" -p loss -T "two runs" \
    -o "$WORK/both.txt" -t synthetic -t 'real run' "$WORK/synthetic.csv" "$WORK/run/train.csv"
check "two logs, text rendering: both labels and the title in one chart" \
    bash -c "grep -q synthetic '$WORK/both.txt' && grep -q 'real run' '$WORK/both.txt' && grep -c 'two runs' '$WORK/both.txt' | grep -qx 1"
check "two logs, default labels: the file names" bash -c \
    "'$PLOT' -p ips -o '$WORK/names.txt' '$WORK/synthetic.csv' '$WORK/default.csv' >/dev/null &&
     grep -q synthetic.csv '$WORK/names.txt' && grep -q default.csv '$WORK/names.txt'"

# A log still being written may end in half a row: drawn without it.
{ cat "$WORK/synthetic.csv"; printf '201,100.5,3.1'; } >"$WORK/partial.csv"
check "a log ending in half a row is drawn" "$PLOT" -o "$WORK/partial.png" "$WORK/partial.csv"

# one_error_line FILE PATTERN: FILE is one line, plot-log's error matching PATTERN.
one_error_line() { [ "$(wc -l <"$1")" = 1 ] && grep -qE "^plot-log: error: $2" "$1"; }
# expect_error NAME PATTERN ARGS...: exit 1, one line on stderr matching
# PATTERN, and no chart.
expect_error() {
    local name=$1 pattern=$2 rc=0
    shift 2
    rm -f "$WORK/err.png"
    "$PLOT" -o "$WORK/err.png" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
    check "$name: exit 1 (got $rc)" test $rc = 1
    check "$name: one line: $(head -1 "$WORK/$name.err")" one_error_line "$WORK/$name.err" "$pattern"
    check "$name: no chart written" test ! -e "$WORK/err.png"
}
: >"$WORK/empty.csv"
echo "$HEADER" >"$WORK/header-only.csv"
{ head -5 "$WORK/synthetic.csv"; echo "5,2.5,abc,2,0.001,40,4,1,25,0,16"; } >"$WORK/not-a-number.csv"
{ head -5 "$WORK/synthetic.csv"; echo "5,2.5,3.0"; echo "6,3.0,2.9,2,0.001,48,5,1,25,0,16"; } >"$WORK/short-row.csv"
printf '1: 6.1, 7.0 avg, 0.002 rate, 0.5 seconds, 16 images\n' >"$WORK/stdout.log"
expect_error missing ".*/no-such.csv: no such file" "$WORK/no-such.csv"
expect_error empty ".*/empty.csv: empty file" "$WORK/empty.csv"
expect_error header-only ".*/header-only.csv: no rows after the header" "$WORK/header-only.csv"
expect_error not-a-number ".*/not-a-number.csv: line 6: loss is not a number: \"abc\"" "$WORK/not-a-number.csv"
expect_error short-row ".*/short-row.csv: line 6: 3 fields, the header has 11" "$WORK/short-row.csv"
expect_error not-a-log ".*/stdout.log: not an \[hpsgd\] log= CSV" "$WORK/stdout.log"
expect_error bad-panel "unknown panel 'speed'" -p speed "$WORK/synthetic.csv"
expect_error too-many-labels "3 labels \(-t\) for 1 logs" -t a -t b -t c "$WORK/synthetic.csv"
expect_error one-bad-of-two ".*/empty.csv: empty file" "$WORK/synthetic.csv" "$WORK/empty.csv"
rc=0
"$PLOT" -o "$WORK/err.jpg" "$WORK/synthetic.csv" 2>"$WORK/jpg.err" || rc=$?
check "-o with another extension: exit 1 and one line" \
    bash -c "test $rc = 1 && grep -qx 'plot-log: error: -o .*err.jpg: the chart is a .png or a .txt' '$WORK/jpg.err'"
rc=0
"$PLOT" >/dev/null 2>"$WORK/usage.err" || rc=$?
check "no log: usage and exit 2" bash -c "test $rc = 2 && grep -q '^usage: scripts/plot-log' '$WORK/usage.err'"

finish
