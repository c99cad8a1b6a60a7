#!/bin/bash
# test_mkdata.sh [MKDATA [SCRATCH]] -- end-to-end checks of the dataset
# generator.  Without arguments (as tests/run-tests calls it) the binary is
# $MKDATA or build/mkdata and the scratch dir is $TEST_TMP/test_mkdata.
#
# Runs mkdata in SCRATCH with relative OUTDIRs, so list files hold relative
# paths and two runs in different parent dirs can be compared byte for byte.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MKDATA=${1:-${MKDATA:-$ROOT/build/mkdata}}
SCRATCH=${2:-${TEST_TMP:-/tmp}/test_mkdata}
case $MKDATA in /*) ;; *) MKDATA=$PWD/$MKDATA ;; esac
[ -x "$MKDATA" ] || { echo "not ok - $MKDATA is not executable"; exit 1; }
mkdir -p "$SCRATCH"
cd "$SCRATCH"
rm -rf cls run1 run2 run3 err fake split
mkdir -p run1 run2 run3 err

FAILS=0
ok()    { echo "ok - $*"; }
notok() { echo "not ok - $*"; FAILS=$((FAILS + 1)); }
check() { # check DESCRIPTION COMMAND...
    local d=$1; shift
    if "$@"; then ok "$d"; else notok "$d"; fi
}
count_files() { find "$1" -type f -name "$2" | wc -l; }
nlines() { wc -l < "$1" | tr -d ' '; }

NAMES="fm-top fm-trouser fm-pullover fm-dress fm-coat fm-sandal fm-shirt fm-sneaker fm-bag fm-boot"

# ---------------------------------------------------------------- classify
if "$MKDATA" classify cls --train 200 --test 50 > err/cls.out 2> err/cls.err
then ok "classify runs"; else notok "classify runs: $(cat err/cls.err)"; fi

check "classify: 200 train images" [ "$(count_files cls/train '*.png')" -eq 200 ]
check "classify: 50 test images" [ "$(count_files cls/test '*.png')" -eq 50 ]
check "classify: train.list has 200 lines" [ "$(nlines cls/train.list)" -eq 200 ]
check "classify: test.list has 50 lines" [ "$(nlines cls/test.list)" -eq 50 ]
check "classify: labels.txt has 10 lines" [ "$(nlines cls/labels.txt)" -eq 10 ]
check "classify: backup dir exists" [ -d cls/backup ]
check "classify: fashion.data names the lists" \
    grep -qx 'train=cls/train.list' cls/fashion.data

missing=0
while read -r p; do [ -f "$p" ] || missing=$((missing + 1)); done \
    < <(cat cls/train.list cls/test.list)
check "classify: every list path exists" [ "$missing" -eq 0 ]

# Darknet's classifier takes the class from strstr(path, name).
bad=$(cat cls/train.list cls/test.list | awk -v names="$NAMES" '
    BEGIN { n = split(names, nm, " ") }
    { c = 0; for (i = 1; i <= n; i++) if (index($0, nm[i])) c++
      if (c != 1) bad++ }
    END { print bad + 0 }')
check "classify: every path contains exactly one class name" [ "$bad" -eq 0 ]

# ------------------------------------------------------------------ detect
for r in run1 run2; do
    if (cd "$r" && "$MKDATA" detect det --train 40 --valid 10 --size 128 \
            --seed 7 > ../err/$r.out 2> ../err/$r.err)
    then ok "detect runs ($r)"; else notok "detect runs ($r): $(cat err/$r.err)"; fi
done
D=run1/det

check "detect: 40 train images" [ "$(count_files $D/images/train '*.png')" -eq 40 ]
check "detect: 10 valid images" [ "$(count_files $D/images/valid '*.png')" -eq 10 ]
check "detect: 40 train labels" [ "$(count_files $D/labels/train '*.txt')" -eq 40 ]
check "detect: 10 valid labels" [ "$(count_files $D/labels/valid '*.txt')" -eq 10 ]
check "detect: train.list has 40 lines" [ "$(nlines $D/train.list)" -eq 40 ]
check "detect: valid.list has 10 lines" [ "$(nlines $D/valid.list)" -eq 10 ]
check "detect: names has 10 lines" [ "$(nlines $D/names)" -eq 10 ]
check "detect: heldout.png exists" [ -f $D/heldout.png ]
check "detect: backup dir exists" [ -d $D/backup ]
check "detect: detect.data names the lists" \
    grep -qx 'valid=det/valid.list' $D/detect.data

# Derive label paths the way Darknet does; the lists are relative to run1.
# (Forks are slow on some hosts, so counting is batched into one wc.)
nolabel=0; labels=()
while read -r p; do
    l=${p/images/labels}; l=${l%.png}.txt
    if [ -f "run1/$p" ] && [ -f "run1/$l" ]; then labels+=("run1/$l")
    else nolabel=$((nolabel + 1)); fi
done < <(cat $D/train.list $D/valid.list)
check "detect: every listed image has a label file" [ "$nolabel" -eq 0 ]
badcount=$(wc -l "${labels[@]}" | awk '$2 != "total" && ($1 < 1 || $1 > 4) { b++ }
                                      END { print b + 0 }')
check "detect: every image has 1..4 boxes" [ "$badcount" -eq 0 ]

badlines=$(cat "${labels[@]}" | awk '
    NF != 5 || $1 !~ /^[0-9]$/ { bad++; next }
    { for (i = 2; i <= 5; i++) if ($i < 0 || $i > 1) { bad++; next }
      if ($4 <= 0 || $5 <= 0) bad++ }
    END { print bad + 0 }')
check "detect: label lines are 'class x y w h' with class 0..9, coords in [0,1], w,h > 0" \
    [ "$badlines" -eq 0 ]

# Several garment scales: distinct box sizes, and a real spread of the
# larger box side (in pixels at 128).
read -r distinct spread < <(cat "${labels[@]}" | awk '
    { s = ($4 > $5 ? $4 : $5) * 128; k = sprintf("%.0f", s)
      if (!(k in seen)) { seen[k] = 1; d++ }
      if (min == "" || s < min) min = s; if (s > max) max = s }
    END { printf "%d %d\n", d, max - min }')
check "detect: at least two distinct box sizes ($distinct)" [ "$distinct" -ge 2 ]
check "detect: box sizes spread over >= 16 px ($spread)" [ "$spread" -ge 16 ]

# Bytes 0..7: PNG signature; 16..23: IHDR width and height, big-endian.
badpng=$(for f in $D/images/*/*.png $D/heldout.png; do
             echo "file $f"; od -An -tu1 -N24 "$f"
         done | awk '
    function done_file() { if (f != "" && b != want) bad++ }
    $1 == "file" { done_file(); f = $2; b = ""; next }
    { for (i = 1; i <= NF; i++) b = b " " $i }
    END { done_file(); print bad + 0 }
    BEGIN { want = " 137 80 78 71 13 10 26 10 0 0 0 13 73 72 68 82 0 0 0 128 0 0 0 128" }')
check "detect: PNGs have the PNG signature and are 128x128" [ "$badpng" -eq 0 ]

# ------------------------------------------------------------- determinism
check "detect: same seed gives identical files" diff -r -q run1/det run2/det
if (cd run3 && "$MKDATA" detect det --train 40 --valid 10 --size 128 \
        --seed 8 > ../err/run3.out 2> ../err/run3.err)
then ok "detect runs (seed 8)"; else notok "detect runs (seed 8): $(cat err/run3.err)"; fi
if diff -r -q run1/det/labels run3/det/labels > /dev/null; then
    notok "detect: a different seed gives different labels"
else
    ok "detect: a different seed gives different labels"
fi

# ------------------------------------------------------------ --classes
if (cd run3 && "$MKDATA" detect sub --train 30 --valid 5 --size 64 \
        --classes trouser,fm-bag,7 > ../err/sub.out 2> ../err/sub.err)
then ok "detect --classes runs"; else notok "detect --classes runs: $(cat err/sub.err)"; fi
check "detect --classes: names lists the kept classes in order" \
    [ "$(tr '\n' ' ' < run3/sub/names)" = "fm-trouser fm-bag fm-sneaker " ]
check "detect --classes: detect.data says classes=3" grep -qx 'classes=3' run3/sub/detect.data
check "detect --classes: every label is class 0..2" \
    [ "$(cat run3/sub/labels/*/*.txt | awk '$1 !~ /^[012]$/ { b++ } END { print b + 0 }')" -eq 0 ]
check "detect --classes: all three classes appear" \
    [ "$(cat run3/sub/labels/*/*.txt | awk '{ print $1 }' | sort -u | wc -l)" -eq 3 ]

# ------------------------------------------------- which split feeds which
# A fake dataset whose train split holds only trousers (1) and whose test
# split only bags (8): training canvases must show trousers, the valid ones
# and heldout.png bags (never a training image).
fake_split() { # fake_split DIR PREFIX LABEL
    { printf '\x00\x00\x08\x03\x00\x00\x00\x0a\x00\x00\x00\x1c\x00\x00\x00\x1c'
      head -c 7840 /dev/zero | tr '\0' '\377'; } | gzip > "$1/$2-images-idx3-ubyte.gz"
    { printf '\x00\x00\x08\x01\x00\x00\x00\x0a'
      printf "\\x0$3%.0s" {1..10}; } | gzip > "$1/$2-labels-idx1-ubyte.gz"
}
mkdir -p fake
fake_split fake train 1
fake_split fake t10k 8
if MKDATA_FASHION_DIR="$PWD/fake" "$MKDATA" detect split --train 20 --valid 10 --size 64 \
        > err/split.out 2> err/split.err
then ok "detect runs on the fake dataset"; else notok "detect runs on the fake dataset: $(cat err/split.err)"; fi
check "training canvases come from the train split (all trousers)" \
    [ "$(cat split/labels/train/*.txt | awk '{ print $1 }' | sort -u | tr -d '\n')" = 1 ]
check "valid canvases come from the test split (all bags)" \
    [ "$(cat split/labels/valid/*.txt | awk '{ print $1 }' | sort -u | tr -d '\n')" = 8 ]
check "heldout.png comes from the test split (all bags)" \
    [ "$(awk '{ print $1 }' split/heldout.txt | sort -u | tr -d '\n')" = 8 ]

# --------------------------------------------------------------- bad input
expect_fail() { # expect_fail DESCRIPTION PATTERN COMMAND...
    local d=$1 pat=$2; shift 2
    local rc=0
    "$@" > err/fail.out 2> err/fail.err || rc=$?
    if [ "$rc" -ne 0 ] && grep -q -- "$pat" err/fail.err; then
        ok "$d"
    else
        notok "$d (rc=$rc, stderr: $(head -c 300 err/fail.err))"
    fi
}
expect_fail "missing dataset file fails and names it" \
    "nonexistent/train-images-idx3-ubyte.gz" \
    env MKDATA_FASHION_DIR="$PWD/nonexistent" "$MKDATA" classify c2 --train 1
expect_fail "detect rejects an OUTDIR containing 'images'" '"images"' \
    "$MKDATA" detect my_images --train 1 --valid 1
expect_fail "classify rejects an OUTDIR containing a class name" "'fm-bag'" \
    "$MKDATA" classify my-fm-bag --train 1 --test 1
expect_fail "bad --train value is rejected" "--train" \
    "$MKDATA" detect d2 --train abc
expect_fail "unknown option is rejected" "--frobnicate" \
    "$MKDATA" detect d2 --frobnicate 1
expect_fail "--classes rejects an unknown class" "unknown class 'hat'" \
    "$MKDATA" detect d2 --classes bag,hat
expect_fail "--classes rejects a class given twice" "given twice" \
    "$MKDATA" detect d2 --classes bag,8
touch afile
expect_fail "unwritable OUTDIR fails and names it" "afile/out" \
    "$MKDATA" detect afile/out --train 1 --valid 1

if [ "$FAILS" -ne 0 ]; then
    echo "# $FAILS check(s) failed"
    exit 1
fi
echo "# all mkdata checks passed"
