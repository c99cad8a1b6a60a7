#!/usr/bin/env bash
# device-check.sh: the GPU checks (make GPU=1) on a machine with an NVIDIA GPU
# but no package registry, from a kit prepared by tests/gpu/make-kit.sh on a
# Debian 12 build machine (build/devkit: the GPU build, its tests, tiny data
# and the Open MPI runtime as .debs). Run from the repository root; the log
# and a tarball of every run's output go to $OUT (default /tmp/gpu-check).
#
#   GPU unit tests (registry on a CUDA build, options, replica, comm) and the
#   MPI ring test; 1-rank GPU training with [hpsgd]; 2 ranks sharing the GPU
#   in hpsgd and sync; determinism of the GPU path (sync 2 ranks x 2T == 1
#   rank x T); eager vs sync on 1 rank; yolov3-tiny 128x128 timings on the GPU.
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
check "1 rank: the saved file is G (checksum)" test "$("$W" --hash "$(final g1)")" = "$(sum g1)"
check "1 rank: the GPU path trained (weights moved)" "$W" --differ "$START" "$(final g1)"
cfg g2 24 mode=hpsgd verify=1
check "2 ranks sharing the GPU, hpsgd, verify=1: exit 0" run 2 g2 "$START"
check "2 ranks: the saved file is the agreed G" test "$("$W" --hash "$(final g2)")" = "$(sum g2)"
cfg s1 12 mode=sync "${SAME[@]}"
cfg s1b 12 mode=sync "${SAME[@]}"
cfg s2 24 mode=sync "${SAME[@]}"
run 1 s1 "$START"; run 1 s1b "$START"; run 2 s2 "$START"
if "$W" "$(final s1)" "$(final s1b)"; then
    ok "GPU training is deterministic run to run"
    check "sync: 2 ranks x 2T == 1 rank x T on the GPU, bit for bit" "$W" "$(final s1)" "$(final s2)"
else
    echo "# GPU training is not bit-reproducible here; comparing within 1e-4"
    check "sync: 2 ranks x 2T ~ 1 rank x T on the GPU" "$W" --rel 1e-4 "$(final s1)" "$(final s2)"
fi
sed -i 's/^learning_rate=.*/learning_rate=0.0001/' "$OUT/s1.cfg"
cfg e1 12 mode=hpsgd merge=eager max_stale=4 "${SAME[@]}"
sed -i 's/^learning_rate=.*/learning_rate=0.0001/' "$OUT/e1.cfg"
HPSGD_TEST_ROUND_DELAY_US=100000 run 1 e1 "$START"
steps=$(($("$W" --seen "$(final e1)") / 4))
sed -i "s/^max_batches=.*/max_batches=$steps/" "$OUT/s1.cfg"
run 1 s1 "$START"
check "eager vs sync on 1 rank (GPU, slow rounds): within 1e-5" "$W" --rel 1e-5 "$(final e1)" "$(final s1)"

# yolov3-tiny 128x128 on the GPU: plain Darknet, then the plugin, 1 and 2 ranks.
sed -e 's/^max_batches=.*/max_batches=60/' -e '/^\[hpsgd\]/,$d' cfg/fashion-yolov3-tiny.cfg >"$OUT/y0.cfg"
mkdir -p "$OUT/y"
sed "s|^backup=.*|backup=$OUT/y|" "$K/data128/detect.data" >"$OUT/y.data"
t0=$(date +%s.%N); timeout 300 "$D" detector train "$OUT/y.data" "$OUT/y0.cfg" >"$OUT/y0.log" 2>&1; t1=$(date +%s.%N)
echo "# yolov3-tiny plain Darknet, GPU, 60 iterations: $(elapsed "$t0" "$t1") s"
for m in "1 sync" "1 hpsgd" "2 sync" "2 hpsgd"; do
    set -- $m
    cp "$OUT/y0.cfg" "$OUT/y$1$2.cfg"
    printf '\n[hpsgd]\nmode=%s\nlog=%s\n' "$2" "$OUT/y$1$2.csv" >>"$OUT/y$1$2.cfg"
    t0=$(date +%s.%N)
    timeout 300 "$MPIRUN" -np "$1" "$D" detector train "$OUT/y.data" "$OUT/y$1$2.cfg" >"$OUT/y$1$2.log" 2>&1
    t1=$(date +%s.%N)
    echo "# yolov3-tiny $2 on $1 rank(s), GPU, 60 global iterations: $(elapsed "$t0" "$t1") s"
    grep -E "^hpsgd: [0-9]+ rounds" "$OUT/y$1$2.log" | sed 's/^/#   /'
done
echo "$pass passed, $fail failed"
tar -C "$OUT" --exclude='*.weights' --exclude='*.backup' -czf "$RESULTS/logs.tgz" . 2>/dev/null
[ $fail -eq 0 ]
