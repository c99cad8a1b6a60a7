#!/usr/bin/env bash
# darknet detector test as a new user runs it: from a directory that is not
# the Darknet tree (no data/labels there), it finds its label glyphs beside
# the executable, writes predictions.jpg and exits 0; a missing input image
# is a non-zero exit, not Darknet's exit(0).
source "$(dirname "$0")/lib.sh"

detection_data "$WORK/data"
CFG="$ROOT/tests/cfg/tiny-det.cfg"
initial_weights "$CFG" "$WORK/data/detect.data" "$WORK/start.weights"

# detect_case NAME BINARY: detector test of the held-out canvas in $WORK/NAME.
detect_case() {
    local name=$1 bin=$2 dir="$WORK/$1" rc=0
    mkdir -p "$dir"
    (cd "$dir" && "$bin" detector test "$WORK/data/detect.data" "$CFG" "$WORK/start.weights" \
        "$WORK/data/heldout.png" -thresh 0.01 >log 2>&1 </dev/null) || rc=$?
    check "$name: exits 0 outside the Darknet tree (got $rc)" test $rc = 0
    check "$name: found its label glyphs" bash -c "! grep -q 'Cannot load image' '$dir/log'"
    check "$name: wrote predictions.jpg in the working directory" test -s "$dir/predictions.jpg"
}

# The binary the tests build, and build/darknet, the one the README names.
detect_case tested "$DARKNET"
if [ -x "$ROOT/build/darknet" ]; then
    detect_case build-darknet "$ROOT/build/darknet"
fi

# A missing input image: Darknet's "Cannot load image" and a failure status.
dir="$WORK/missing"
mkdir -p "$dir"
rc=0
(cd "$dir" && "$DARKNET" detector test "$WORK/data/detect.data" "$CFG" "$WORK/start.weights" \
    "$WORK/no-such-image.png" >log 2>&1 </dev/null) || rc=$?
check "missing image: non-zero exit (got $rc)" test $rc != 0
check "missing image: Darknet names the file" grep -q 'Cannot load image ".*no-such-image.png"' "$dir/log"
check "missing image: no predictions written" test ! -e "$dir/predictions.jpg"

finish
