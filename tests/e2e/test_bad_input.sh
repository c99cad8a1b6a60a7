#!/usr/bin/env bash
# Bad input under mpirun (2 ranks): one clear line naming the file, key or
# rank; a non-zero exit of the job; no rank left waiting; no weights written.
# Files missing on one rank only are made with per-rank relative paths.
source "$(dirname "$0")/lib.sh"

detection_data "$WORK/data"
BASE="$ROOT/tests/cfg/tiny-det.cfg"
RUN_LIMIT=60

# expect_failure NAME PATTERN CFG [extra args]: runs 2 ranks in $WORK/NAME/rankN
# (run.data and the cfg come from $WORK/NAME) and checks exit, message, time.
expect_failure() {
    local name=$1 pattern=$2 cfg=$3
    shift 3
    local dir="$WORK/$name" start rc took
    start=$(date +%s.%N)
    run_np 2 "$dir/log" "$ROOT/tests/e2e/in-rank-dir.sh" "$dir" "$DARKNET" detector train "$dir/run.data" "$cfg" "$@"
    rc=$?
    took=$(printf '%.1f' "$(echo "$(date +%s.%N) - $start" | bc)")
    check "$name: the job exits non-zero ($rc, after ${took}s)" test "$rc" != 0 -a "$rc" != 124
    if grep -qE -- "$pattern" "$dir/log"; then ok "$name: says: $(grep -m1 -E -- "$pattern" "$dir/log")"; else
        not_ok "$name: no line matching '$pattern' in $dir/log"; fi
    check "$name: no weights written" test -z "$(find "$dir" -name '*.weights' -o -name '*.backup')"
}

# setup NAME: $WORK/NAME with rank dirs, a data file with relative backup dir.
setup() {
    local dir="$WORK/$1"
    mkdir -p "$dir/rank0/backup" "$dir/rank1/backup"
    sed "s|^backup=.*|backup=backup|" "$WORK/data/detect.data" >"$dir/run.data"
}

# Bad [hpsgd] values: every rank stops with the same line.
i=0
while IFS='|' read -r lines pattern; do
    i=$((i + 1))
    name="bad-value-$i"
    setup "$name"
    cfg_with "$BASE" "$WORK/$name/x.cfg" 10
    printf '\n[hpsgd]\n%b\n' "$lines" >>"$WORK/$name/x.cfg"
    expect_failure "$name" "$pattern" "$WORK/$name/x.cfg"
done <<'EOF'
mode=fastest|x.cfg:[0-9]+: \[hpsgd\] mode=fastest: unknown value; allowed: hpsgd \| sync \| average
max_stale=-2|x.cfg:[0-9]+: \[hpsgd\] max_stale=-2: negative
sync_warmup=x|x.cfg:[0-9]+: \[hpsgd\] sync_warmup=x: not an integer
interval=0|x.cfg:[0-9]+: \[hpsgd\] interval=0: zero is meaningless
chunk_mb=lots|x.cfg:[0-9]+: \[hpsgd\] chunk_mb=lots: not a number
seed=99999999999|x.cfg:[0-9]+: \[hpsgd\] seed=99999999999: out of range
timeout=|x.cfg:[0-9]+: \[hpsgd\] timeout=: empty value
colour=blue|x.cfg:[0-9]+: \[hpsgd\] colour=blue: unknown key
mode=sync\nmode=sync|x.cfg:[0-9]+: \[hpsgd\] mode=sync: key given twice
hierarchical=yes|x.cfg:[0-9]+: \[hpsgd\] hierarchical=yes: unknown value; allowed: 0 \| 1 \| auto
chunks_in_flight=0|x.cfg:[0-9]+: \[hpsgd\] chunks_in_flight=0: .*an integer from 1 to 16
EOF

# [hpsgd] twice, and [hpsgd] before [net].
setup twice
cfg_with "$BASE" "$WORK/twice/x.cfg" 10 "mode=sync"
printf '\n[hpsgd]\nmode=hpsgd\n' >>"$WORK/twice/x.cfg"
expect_failure twice "x.cfg: \[hpsgd\]: section given twice" "$WORK/twice/x.cfg"
setup before-net
{ printf '[hpsgd]\nmode=sync\n\n'; sed "s/^max_batches=.*/max_batches=10/" "$BASE"; } >"$WORK/before-net/x.cfg"
expect_failure before-net "x.cfg: \[hpsgd\]: placed before \[net\]" "$WORK/before-net/x.cfg"

cfg_with "$BASE" "$WORK/good.cfg" 10 "mode=hpsgd"

# The data file, missing (every rank).
setup no-data
rm "$WORK/no-data/run.data"
expect_failure no-data "Couldn't open file: .*run.data" "$WORK/good.cfg"
check "no-data: each rank names itself" grep -q "hpsgd: rank 1: Darknet stopped before training finished" "$WORK/no-data/log"

# The train list, missing on rank 1 only (relative path, per-rank directory).
setup no-list
sed -i "s|^train=.*|train=train.list|" "$WORK/no-list/run.data"
cp "$WORK/data/train.list" "$WORK/no-list/rank0/train.list"
expect_failure no-list "hpsgd: rank 1: Darknet stopped before training finished"  "$WORK/good.cfg"
check "no-list: Darknet names the file" grep -q "Couldn't open file: train.list" "$WORK/no-list/log"

# An image, missing on rank 1 only.
setup no-image
sed -i "s|^train=.*|train=train.list|" "$WORK/no-image/run.data"
cp "$WORK/data/train.list" "$WORK/no-image/rank0/train.list"
{ head -3 "$WORK/data/train.list"; echo "$WORK/data/images/train/999999.png"; } >"$WORK/no-image/rank1/train.list"
expect_failure no-image "hpsgd: rank 1: cannot read training image .*/999999.png \(line 4 of the train list\)" "$WORK/good.cfg"
check "no-image: rank 0 reports the agreement" grep -q "1 rank found bad input" "$WORK/no-image/log"

# A label file, missing on rank 1 only.
setup no-label
mkdir -p "$WORK/no-label/d/images/train" "$WORK/no-label/d/labels/train"
cp "$WORK/data/images/train/000001.png" "$WORK/no-label/d/images/train/"
sed -i "s|^train=.*|train=train.list|" "$WORK/no-label/run.data"
cp "$WORK/data/train.list" "$WORK/no-label/rank0/train.list"
echo "$WORK/no-label/d/images/train/000001.png" >"$WORK/no-label/rank1/train.list"
expect_failure no-label "hpsgd: rank 1: cannot read label file .*no-label/d/labels/train/000001.txt" "$WORK/good.cfg"

# A weights file that does not fit the cfg.
setup bad-weights
# (the start of a real weights file, cut inside a layer)
initial_weights "$BASE" "$WORK/data/detect.data" "$WORK/bad-weights/full.weights"
head -c 1000 "$WORK/bad-weights/full.weights" >"$WORK/bad-weights/wrong.bin"
rm "$WORK/bad-weights/full.weights"
expect_failure bad-weights "weights file .*wrong.bin does not fit .*good.cfg: 1000 bytes, but the network takes" \
    "$WORK/good.cfg" "$WORK/bad-weights/wrong.bin"

# A backup directory that does not exist.
setup no-backup
sed -i "s|^backup=.*|backup=$WORK/no-backup/missing-dir|" "$WORK/no-backup/run.data"
expect_failure no-backup "hpsgd: rank 0: backup directory .*missing-dir .* is not a writable directory" "$WORK/good.cfg"

# Several GPUs in one rank.
setup gpus
expect_failure gpus "trains with one GPU per rank" "$WORK/good.cfg" -gpus 0,1
finish
