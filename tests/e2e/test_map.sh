#!/usr/bin/env bash
# darknet detector map against unpatched AlexeyAB Darknet's detector map: the
# same weights and valid list give the same mAP (within 0.01) on a briefly
# trained tiny detector, at its last checkpoint before 1000 and at the end,
# and with 11 and 101 recall points; AlexeyAB's line format; a missing valid
# list, image or label file ends with one line and a non-zero exit.
source "$(dirname "$0")/lib.sh"

AB=${DARKNET_ALEXEYAB:-}
if [ -z "$AB" ] || [ ! -x "$AB" ]; then
    echo "skip: no AlexeyAB reference build (needs ${ALEXEYAB_TARBALL:-../shared/darknet/darknet-alexeyab-59596d78.tar.gz}; make test builds it from there)"
    exit 77
fi
AB=$(readlink -f "$AB")

# 200 training scenes learn enough in 3000 short steps (~35 s here; much
# longer under SAN=1) for a mAP clearly above 0 (0.1 to 0.16 at 2500 steps in
# trials); 30 valid scenes keep the comparison quick.
data="$WORK/data"
"$MKDATA" detect "$data" --train 200 --valid 30 --size 64 --seed 11 >/dev/null || die "mkdata detect failed"
# AlexeyAB looks for labels beside the images (it maps only images/train2017/
# style folders to labels/); pjreddie's rules read labels/valid/. Both read
# the same files through the same valid list.
for img in "$data"/images/valid/*.png; do
    [ -e "${img%.png}.txt" ] || ln -s "../../labels/valid/$(basename "$img" .png).txt" "${img%.png}.txt"
done
mkdir -p "$WORK/backup"
sed "s|^backup=.*|backup=$WORK/backup|" "$data/detect.data" >"$WORK/map.data"
# Under SAN=1 (several times slower) 1000 steps: the comparison holds at any
# mAP; only the "clearly above 0" check needs the longer training.
steps=3000
[ "${SAN:-0}" = 1 ] && steps=1000
sed -e "s/^max_batches=.*/max_batches=$steps/" -e "s/^learning_rate=.*/learning_rate=0.002/" \
    "$ROOT/tests/cfg/tiny-det.cfg" >"$WORK/det.cfg"
(cd "$WORK" && timeout 400 "$DARKNET" detector train map.data det.cfg >train.log 2>&1) || die "training failed (see $WORK/train.log)"

# mAP FORK_BINARY WEIGHTS LOG [flags]: runs detector map, prints the mAP.
map_of() {
    local bin=$1 w=$2 log=$3
    shift 3
    (cd "$WORK" && timeout 60 "$bin" detector map map.data det.cfg "$w" "$@" >"$log" 2>"$log.err") ||
        { echo "# $bin detector map $w $* failed:" && tail -3 "$log.err"; return 1; }
    sed -n 's/^ mean average precision (mAP@0.50) = \([0-9.]*\), or .*/\1/p' "$log"
}
within() { awk -v a="$1" -v b="$2" -v d="$3" 'BEGIN { x = a - b; if (x < 0) x = -x; exit !(a != "" && b != "" && x <= d) }'; }
above() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a > b) }'; }

best=0
for case in "det_900.weights" "det_final.weights" "det_final.weights -points 11" "det_final.weights -points 101"; do
    set -- $case
    w="$WORK/backup/$1"
    shift
    tag="$(basename "$w" .weights)${1:+ $*}"
    log="$WORK/$(basename "$w" .weights)${2:+-$2}"
    ours=$(map_of "$DARKNET" "$w" "$log.pj.log" "$@")
    theirs=$(map_of "$AB" "$w" "$log.ab.log" "$@")
    echo "# $tag: mAP pjreddie $ours, AlexeyAB $theirs"
    check "$tag: both forks print a mAP" test -n "$ours" -a -n "$theirs"
    check "$tag: the mAPs agree within 0.01 ($ours, $theirs)" within "$ours" "$theirs" 0.01
    above "$ours" "$best" && best=$ours
done
[ "$steps" = 3000 ] &&
    check "the final weights' mAP ($best) is clearly above 0 (a meaningful comparison)" above "$best" 0.05

# The lines scripts read, as AlexeyAB prints them.
pj="$WORK/det_final.pj.log"
check "one AP line per class in AlexeyAB's format" \
    test "$(grep -cE '^class_id = [0-9]+, name = fm-[a-z]+, ap = [0-9]+\.[0-9]{2}%   	 \(TP = [0-9]+, FP = [0-9]+\) $' "$pj")" = 10
for re in '^ for conf_thresh = 0\.25, TP = [0-9]+, FP = [0-9]+, FN = [0-9]+, average IoU = [0-9.]+ % $' \
    '^ IoU threshold = 50 %, used Area-Under-Curve for each unique Recall $' \
    '^ mean average precision \(mAP@0\.50\) = 0\.[0-9]{6}, or [0-9]+\.[0-9]{2} % $'; do
    check "a line like /$re/" grep -qE "$re" "$pj"
    check "... printed by AlexeyAB too" grep -qE "$re" "$WORK/det_final.ab.log"
done
check "-points 11 says so" grep -q '^ IoU threshold = 50 %, used 11 Recall-points $' "$WORK/det_final-11.pj.log"
check "-iou_thresh 0.75 is used" bash -c "cd '$WORK' && '$DARKNET' detector map map.data det.cfg backup/det_final.weights \
    -iou_thresh 0.75 2>/dev/null | grep -q '^ mean average precision (mAP@0.75) = '"

# one_line_error NAME DATAFILE WHAT: exits non-zero with one stderr line naming WHAT.
one_line_error() {
    local name=$1 datafile=$2 what=$3 rc=0
    (cd "$WORK" && "$DARKNET" detector map "$datafile" det.cfg backup/det_final.weights >"$name.out" 2>"$name.err") || rc=$?
    check "$name: exits non-zero" test $rc -ne 0
    check "$name: one line on stderr naming $what ($(head -1 "$WORK/$name.err"))" \
        bash -c "test \$(wc -l <'$WORK/$name.err') = 1 && grep -qF '$what' '$WORK/$name.err'"
}
sed "s|^valid=.*|valid=$WORK/none.list|" "$WORK/map.data" >"$WORK/nolist.data"
one_line_error "missing valid list" nolist.data "$WORK/none.list"
{ head -2 "$data/valid.list" && echo "$data/images/valid/999999.png"; } >"$WORK/noimage.list"
sed "s|^valid=.*|valid=$WORK/noimage.list|" "$WORK/map.data" >"$WORK/noimage.data"
one_line_error "missing image" noimage.data "$data/images/valid/999999.png"
mkdir -p "$WORK/nolabel/images"
cp "$data/images/valid/000001.png" "$WORK/nolabel/images/x.png"
echo "$WORK/nolabel/images/x.png" >"$WORK/nolabel.list"
sed "s|^valid=.*|valid=$WORK/nolabel.list|" "$WORK/map.data" >"$WORK/nolabel.data"
one_line_error "missing label file" nolabel.data "$WORK/nolabel/labels/x.txt"
finish
