#!/usr/bin/env bash
# device-check.sh: the GPU checks (make GPU=1) on a machine with an NVIDIA GPU
# but no package registry, from a kit prepared by tests/gpu/make-kit.sh on a
# Debian 12 build machine (build/devkit: the GPU build, its tests, tiny data
# and the Open MPI runtime as .debs). Run from the repository root; the log
# and a tarball of every run's output go to $OUT (default /tmp/gpu-check).
#
#   GPU unit tests (registry on a CUDA build, options, replica, comm) and the
#   MPI ring test; the merge kernels against the CPU merge, bit for bit
#   (test_merge_device), and the replica's device twin against the host
#   replica (test_replica_device); 1-rank GPU training with [hpsgd]; every mode on 1
#   and 2 ranks (2 sharing the GPU) with verify=1, the saved file the agreed
#   G; the device merge against the host merge (HPSGD_TEST_HOST_MERGE=1),
#   bit for bit; determinism of the GPU path (sync 2 ranks x 2T == 1 rank x
#   T); eager vs sync on 1 rank; a timings table: device work per merge, and
#   yolov3-tiny at 416 px, batch 64: images/s of plain Darknet, hpsgd on 1
#   rank (merge on the device, and on the host), hpsgd on 2 ranks sharing
#   the GPU. No check asserts a time: the table is for tests/gpu/RESULTS.md.
set -u
K=build/devkit
RESULTS=${OUT:-/tmp/gpu-check}
OUT=/tmp/gpu-check-work
rm -rf "$OUT" && mkdir -p "$OUT" "$RESULTS"
exec > >(tee "$RESULTS/gpu-check.log") 2>&1
pass=0 fail=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
no() { echo "not ok - $*"; fail=$((fail + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else no "$what"; fi; }

# Open MPI's runtime from Debian's packages: only files the machine lacks.
rm -rf /tmp/devroot && mkdir -p /tmp/devroot
for d in "$K"/debs/*.deb; do dpkg -x "$d" /tmp/devroot; done
cp -rn /tmp/devroot/* / 2>/dev/null
ldconfig
# dpkg -x runs no postinst: mpirun's alternatives link is not made.
MPIRUN=$(command -v mpirun.openmpi || command -v mpirun)
mpirun() { "$MPIRUN" "$@"; }
echo "# $(nvidia-smi -L 2>&1 | head -1); mpirun: $MPIRUN ($("$MPIRUN" --version 2>&1 | head -1))"
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_hwloc_base_binding_policy=none DARKNET_LOADER_THREADS=1
D=$PWD/$K/darknet
W=$K/tests/wcmp

for t in test_options test_registry test_replica test_comm; do
    check "unit/$t (GPU build)" "$K/tests/$t"
done
check "mpi/ring at 2 ranks (GPU build)" mpirun -np 2 "$K/tests/test_ring"
"$K/tests/test_merge_device" >"$OUT/merge_device.log" 2>&1
rc=$?
sed 's/^/#   /' "$OUT/merge_device.log"
check "merge kernels == CPU merge, bit for bit, every op, awkward and empty slices" test $rc = 0
DEVICE_MERGE_LINE=$(grep '^# device work' "$OUT/merge_device.log")
"$K/tests/test_replica_device" >"$OUT/replica_device.log" 2>&1
rc=$?
sed 's/^/#   /' "$OUT/replica_device.log"
check "replica's device twin == host replica, bit for bit, every mode (test_replica_device)" test $rc = 0

cfg() {   # cfg NAME MAX [hpsgd lines]: $OUT/NAME.cfg from the tiny detector
    local name=$1 max=$2; shift 2
    sed "s/^max_batches=.*/max_batches=$max/" tests/cfg/tiny-det.cfg >"$OUT/$name.cfg"
    [ $# -gt 0 ] && { printf '\n[hpsgd]\n'; printf '%s\n' "$@"; } >>"$OUT/$name.cfg"
    mkdir -p "$OUT/$name"
    sed "s|^backup=.*|backup=$OUT/$name|" "$K/data/detect.data" >"$OUT/$name.data"
}
run() {   # run NP NAME [weights]
    local np=$1 name=$2; shift 2
    timeout 300 "$MPIRUN" -np "$np" "$D" detector train "$OUT/$name.data" "$OUT/$name.cfg" "$@" >"$OUT/$name.log" 2>&1
}
final() { echo "$OUT/$1/$1_final.weights"; }
sum() { sed -n 's/.*(checksum \([0-9a-f]*\)).*/\1/p' "$OUT/$1.log" | tail -1; }

cfg init 0
timeout 120 "$D" detector train "$OUT/init.data" "$OUT/init.cfg" >"$OUT/init.log" 2>&1
START=$(final init)
check "initial weights on the GPU build" test -s "$START"

SAME=(shard=none lr_scale=none seed=7 loader_threads=1)
cfg g1 12 mode=hpsgd verify=1
check "1 rank, hpsgd, on the GPU: exit 0" run 1 g1 "$START"
check "1 rank: the merge ran on the GPU" grep -q "merging on the GPU" "$OUT/g1.log"
check "1 rank: the saved file is G (checksum)" test "$("$W" --hash "$(final g1)")" = "$(sum g1)"
check "1 rank: the GPU path trained (weights moved)" "$W" --differ "$START" "$(final g1)"

# Every mode on 1 and 2 ranks (2 share the GPU), verify=1 (all ranks compare G
# after every merge); with stats=1 the saved file is the agreed G byte for byte.
for np in 1 2; do
    for m in "sync" "average interval=3" "hpsgd" "hpsgd merge=eager" "hpsgd max_stale=3" "hpsgd compress=fp16" \
        "sync stats=0" "hpsgd merge=eager stats=0"; do
        name=m${np}_$(tr ' =' '__' <<<"$m")
        cfg "$name" $((8 * np)) mode=$m verify=1
        check "$np rank(s), mode=$m: exit 0" run "$np" "$name" "$START"
        case $m in *stats=0*) continue ;; esac
        check "$np rank(s), mode=$m: the saved file is the agreed G" test "$("$W" --hash "$(final "$name")")" = "$(sum "$name")"
    done
done
cfg g2 24 mode=hpsgd verify=1
check "2 ranks sharing the GPU, hpsgd, verify=1: exit 0" run 2 g2 "$START"
check "2 ranks: the saved file is the agreed G" test "$("$W" --hash "$(final g2)")" = "$(sum g2)"
cfg s1 12 mode=sync "${SAME[@]}"
cfg s1b 12 mode=sync "${SAME[@]}"
cfg s2 24 mode=sync "${SAME[@]}"
cfg h1 12 mode=sync "${SAME[@]}"
cfg h2 24 mode=sync "${SAME[@]}"
run 1 s1 "$START"; run 1 s1b "$START"; run 2 s2 "$START"
HPSGD_TEST_HOST_MERGE=1 run 1 h1 "$START"; HPSGD_TEST_HOST_MERGE=1 run 2 h2 "$START"
check "HPSGD_TEST_HOST_MERGE=1 merges on the host" bash -c "! grep -q 'merging on the GPU' '$OUT/h1.log'"
if "$W" "$(final s1)" "$(final s1b)"; then
    ok "GPU training is deterministic run to run"
    check "sync: 2 ranks x 2T == 1 rank x T on the GPU, bit for bit" "$W" "$(final s1)" "$(final s2)"
    check "sync, 1 rank: merge on the device == merge on the host, bit for bit" "$W" "$(final s1)" "$(final h1)"
    check "sync, 2 ranks: merge on the device == merge on the host, bit for bit" "$W" "$(final s2)" "$(final h2)"
else
    echo "# GPU training is not bit-reproducible here; comparing within 1e-4"
    check "sync: 2 ranks x 2T ~ 1 rank x T on the GPU" "$W" --rel 1e-4 "$(final s1)" "$(final s2)"
    check "sync, 1 rank: merge on the device ~ merge on the host" "$W" --rel 1e-4 "$(final s1)" "$(final h1)"
fi
sed -i 's/^learning_rate=.*/learning_rate=0.0001/' "$OUT/s1.cfg"
cfg e1 12 mode=hpsgd merge=eager max_stale=4 "${SAME[@]}"
sed -i 's/^learning_rate=.*/learning_rate=0.0001/' "$OUT/e1.cfg"
HPSGD_TEST_ROUND_DELAY_US=100000 run 1 e1 "$START"
steps=$(($("$W" --seen "$(final e1)") / 4))
sed -i "s/^max_batches=.*/max_batches=$steps/" "$OUT/s1.cfg"
run 1 s1 "$START"
check "eager vs sync on 1 rank (GPU, slow rounds): within 1e-5" "$W" --rel 1e-5 "$(final e1)" "$(final s1)"

# Timings (no check asserts one). yolov3-tiny at 416 px, batch 64 (the 128 px
# images, which Darknet's loader scales to the network). Each run twice, to A
# and to B global iterations: images/s = (B - A) x 64 / (t_B - t_A), so
# start-up cancels. 16 loader threads per process (8 each for 2 ranks).
A=10 B=40
sed -e 's/^width=.*/width=416/' -e 's/^height=.*/height=416/' -e 's/^batch=.*/batch=64/' -e '/^\[hpsgd\]/,$d' \
    cfg/fashion-yolov3-tiny.cfg >"$OUT/y.cfg.in"
mkdir -p "$OUT/y"
sed "s|^backup=.*|backup=$OUT/y|" "$K/data128/detect.data" >"$OUT/y.data"
timed() {   # timed NAME NP MAX [hpsgd lines]: prints the wall seconds of one run
    local name=$1 np=$2 max=$3; shift 3
    sed "s/^max_batches=.*/max_batches=$max/" "$OUT/y.cfg.in" >"$OUT/$name.cfg"
    [ $# -gt 0 ] && { printf '\n[hpsgd]\n'; printf '%s\n' "$@"; } >>"$OUT/$name.cfg"
    local t0 t1 rc
    t0=$(date +%s.%N)
    if [ "$np" = 0 ]; then
        DARKNET_LOADER_THREADS=16 timeout 300 "$D" detector train "$OUT/y.data" "$OUT/$name.cfg" >"$OUT/$name.log" 2>&1
    else
        DARKNET_LOADER_THREADS=$((16 / np)) timeout 300 "$MPIRUN" -np "$np" -x DARKNET_LOADER_THREADS \
            "$D" detector train "$OUT/y.data" "$OUT/$name.cfg" >"$OUT/$name.log" 2>&1
    fi
    rc=$?
    t1=$(date +%s.%N)
    [ $rc = 0 ] || echo "# $name exited $rc (log $OUT/$name.log)" >&2
    elapsed "$t0" "$t1"
}
rate() {   # rate NAME NP [hpsgd lines]: images/s over iterations A..B, and the run's summary line
    local name=$1 np=$2; shift 2
    local ta tb
    ta=$(timed "${name}_a" "$np" $A "$@")
    tb=$(timed "${name}_b" "$np" $B "$@")
    awk -v a=$A -v b=$B -v ta="$ta" -v tb="$tb" 'BEGIN { d = tb - ta; printf "%.0f", d > 0 ? (b - a) * 64 / d : 0 }'
}
per_merge() { sed -n 's/.*host work \([0-9.]*\) ms per merge.*/\1/p' "$OUT/$1_b.log" | head -1; }
plain=$(rate yplain 0)
dev1=$(rate yhp1 1 mode=hpsgd)
host1=$(HPSGD_TEST_HOST_MERGE=1 rate yhost1 1 mode=hpsgd)
sync1=$(rate ysync1 1 mode=sync)
dev2=$(rate yhp2 2 mode=hpsgd)
step_ms=$(awk -v r="$plain" 'BEGIN { printf "%.1f", r > 0 ? 64000 / r : 0 }')
echo "#"
echo "# ${DEVICE_MERGE_LINE#\# }"
echo "# yolov3-tiny 416 px, batch 64, images/s over global iterations $A..$B (one step of plain Darknet: $step_ms ms):"
echo "# | run | images/s | work per merge in the training thread (ms) |"
echo "# |---|---|---|"
echo "# | plain Darknet, 1 process | $plain | - |"
echo "# | hpsgd, 1 rank, merge on the GPU | $dev1 | $(per_merge yhp1) |"
echo "# | hpsgd, 1 rank, merge on the host (HPSGD_TEST_HOST_MERGE=1) | $host1 | $(per_merge yhost1) |"
echo "# | sync, 1 rank, merge on the GPU | $sync1 | $(per_merge ysync1) |"
echo "# | hpsgd, 2 ranks sharing the GPU, merge on the GPU | $dev2 | $(per_merge yhp2) |"
echo "$pass passed, $fail failed"
tar -C "$OUT" --exclude='*.weights' --exclude='*.backup' -czf "$RESULTS/logs.tgz" . 2>/dev/null
[ $fail -eq 0 ]
