#!/usr/bin/env bash
# scripts/show-detections: the grid PNG and the text summary from known truth
# and hand-made detector valid results: a right prediction, a wrong class, a
# misplaced box, one under the threshold, one box under two classes, and the
# text of a canvas with many predictions; one-line errors (and no picture)
# for a missing results file, image or label file and a bad threshold.
source "$(dirname "$0")/lib.sh"
SHOW="$ROOT/scripts/show-detections"
command -v gnuplot >/dev/null || die "gnuplot is not installed (make test installs gnuplot-nox)"

is_png() { [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; }
png_size() { printf '%dx%d' "0x$(od -An -tx1 -j16 -N4 "$1" | tr -d ' \n')" "0x$(od -An -tx1 -j20 -N4 "$1" | tr -d ' \n')"; }

detection_data "$WORK/data"
D="$WORK/data"
mapfile -t imgs < <(head -3 "$D/valid.list")
mapfile -t names <"$D/names"
# Truth of canvas 1, in detector valid's pixel corners (1-based), from its label file.
corners() { awk -v s=64 -v n="$2" 'NR == n { printf "%.2f %.2f %.2f %.2f\n", ($2 - $4 / 2) * s + 1, ($3 - $5 / 2) * s + 1, ($2 + $4 / 2) * s + 1, ($3 + $5 / 2) * s + 1 }' "$1"; }
l1="$D/labels/valid/000001.txt"
c1=$(awk 'NR == 1 { print $1 }' "$l1")
wrong=$(((c1 + 1) % 10))
mkdir -p "$WORK/results"
for n in "${names[@]}"; do : >"$WORK/results/comp4_det_test_$n.txt"; done
{
    echo "000001 0.900000 $(corners "$l1" 1)"  # right class, right place
    echo "000002 0.100000 1 1 20 20"           # under 25%: not drawn, not counted
} >>"$WORK/results/comp4_det_test_${names[$c1]}.txt"
# The same box under a second class (Darknet writes one line per class): only its best class is shown.
echo "000001 0.300000 $(corners "$l1" 1)" >>"$WORK/results/comp4_det_test_${names[$wrong]}.txt"
# A second box, 1 px to the right, of the wrong class.
echo "000001 0.600000 $(corners "$l1" 1 | awk '{ print $1 + 1, $2, $3 + 1, $4 }')" >>"$WORK/results/comp4_det_test_${names[$wrong]}.txt"
echo "000003 0.500000 1 1 4 4" >>"$WORK/results/comp4_det_test_${names[$c1]}.txt"  # nowhere near a garment

"$SHOW" -o "$WORK/grid.png" -T "test grid" "$D/names" "$WORK/results" "${imgs[@]}" >"$WORK/out" 2>"$WORK/err"
rc=$?
cat "$WORK/out"
check "show-detections exits 0 (stderr: $(head -1 "$WORK/err"))" test $rc = 0
check "a PNG of 2 pairs x 2 rows of 400 px panels plus the title (got $(png_size "$WORK/grid.png"))" \
    bash -c "$(declare -f is_png png_size); is_png '$WORK/grid.png' && test \$(png_size '$WORK/grid.png') = 1600x850"
short1=${names[$c1]#fm-} shortw=${names[$wrong]#fm-}
check "canvas 1: the right prediction first (its 30% second class left out), the wrong class marked" \
    grep -q "^  000001: truth .*; predicted $short1 90%, $shortw 60% (wrong)\$" "$WORK/out"
check "canvas 2: the prediction under 25% is left out" grep -q "^  000002: truth .*; predicted nothing\$" "$WORK/out"
check "canvas 3: a misplaced box is wrong" grep -q "^  000003: truth .*; predicted $short1 50% (wrong)\$" "$WORK/out"
nt=$(cat "$D"/labels/valid/00000[123].txt | wc -l)
check "the total: 1 of $nt garments, 2 wrong" \
    grep -q "^  found 1 of $nt garments with the right class; 2 wrong or extra detections (score >= 25%)\$" "$WORK/out"
check "it says where the picture is" grep -qx "show-detections: wrote $WORK/grid.png" "$WORK/out"
"$SHOW" -t 0.05 -c 3 -s 200 -o "$WORK/grid5.png" "$D/names" "$WORK/results" "${imgs[@]}" >"$WORK/out5" 2>&1
check "-t 0.05: the low score is counted too" grep -q "^  000002: truth .*; predicted $short1 10% (wrong)\$" "$WORK/out5"
check "-c 3 -s 200: one row of 3 pairs of 200 px (got $(png_size "$WORK/grid5.png"))" test "$(png_size "$WORK/grid5.png")" = 1200x250

# Many predictions: the text names the first 6, best first, and counts the rest.
mkdir -p "$WORK/many"
for n in "${names[@]}"; do : >"$WORK/many/comp4_det_test_$n.txt"; done
for i in $(seq 10 19); do echo "000001 0.$i 1 1 $i $i"; done >"$WORK/many/comp4_det_test_${names[$wrong]}.txt"
"$SHOW" -t 0.1 -o "$WORK/many.png" "$D/names" "$WORK/many" "${imgs[0]}" >"$WORK/outm" 2>&1
check "many predictions: 6 named, best first, and 4 more" \
    grep -q "^  000001: truth .*; predicted $shortw 19% (wrong), $shortw 18% (wrong), .*, $shortw 14% (wrong) and 4 more\$" "$WORK/outm"

# expect_error NAME PATTERN ARGS...: exit non-zero, one stderr line matching PATTERN, no picture.
expect_error() {
    local name=$1 pattern=$2 rc=0
    shift 2
    rm -f "$WORK/err.png"
    "$SHOW" -o "$WORK/err.png" "$@" >/dev/null 2>"$WORK/$name.err" || rc=$?
    check "$name: exits non-zero" test $rc != 0
    check "$name: one line: $(head -1 "$WORK/$name.err")" \
        bash -c "test \$(wc -l <'$WORK/$name.err') = 1 && grep -qE '^show-detections: error: $pattern' '$WORK/$name.err'"
    check "$name: no picture" test ! -e "$WORK/err.png"
}
mkdir -p "$WORK/partial"
cp "$WORK/results"/*.txt "$WORK/partial/" && rm "$WORK/partial/comp4_det_test_fm-bag.txt"
expect_error "missing results file" ".*comp4_det_test_fm-bag.txt: missing" "$D/names" "$WORK/partial" "${imgs[@]}"
expect_error "missing image" ".*/nothing.png: no such image" "$D/names" "$WORK/results" "$WORK/nothing.png"
mkdir -p "$WORK/bare"
cp "${imgs[0]}" "$WORK/bare/x.png"
expect_error "missing label file" ".*x.png: no label file" "$D/names" "$WORK/results" "$WORK/bare/x.png"
expect_error "bad threshold" "-t 2: a score between 0 and 1" -t 2 "$D/names" "$WORK/results" "${imgs[@]}"
finish
