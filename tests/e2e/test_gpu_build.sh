#!/usr/bin/env bash
# test_gpu_build.sh: make GPU=1 compiles and links here, where there is nvcc
# but no GPU: the pjreddie GPU variant's build/gpu/darknet/darknet with the
# device merge in it, and the GPU kit's tests of the kernels and of the
# replica's device twin (tests/gpu/test_merge_device.cu,
# test_replica_device.c; they run on a GPU, by tests/gpu/device-check.sh). The
# kernels' PTX, built with the Makefile's own flags, must hold no fused
# multiply-add (the device merge gives the host's bits only without FMA).
# It builds the variant's own target, never build/darknet (the CPU binary
# the other tests run), and checks that build/darknet did not change.
# Skipped without nvcc. From scratch it takes about 2 minutes on 2 cores.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CUDA_PATH=${CUDA_PATH:-/usr/local/cuda}
NVCC=$CUDA_PATH/bin/nvcc
[ -x "$NVCC" ] || { echo "skipped: no nvcc at $NVCC (set CUDA_PATH)"; exit 77; }
WORK="${TEST_TMP:-/tmp}/test_gpu_build"
rm -rf "$WORK" && mkdir -p "$WORK"
FAILED=0
ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; FAILED=1; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }

cd "$ROOT" || exit 1
# A make of its own: the flags of the make test that runs us (SAN=1 ...) are not this build's.
gmake() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory GPU=1 CUDA_ARCH=sm_90 CUDNN=0 OPENMP=0 SAN=0 \
        DEBUG=0 FORK=pjreddie CUDA_PATH="$CUDA_PATH" "$@"
}
before=$(md5sum build/darknet 2>/dev/null | cut -d' ' -f1)
start=$SECONDS
if gmake build/gpu/darknet/darknet build/tests/gpu/test_merge_device build/tests/gpu/test_replica_device >"$WORK/build.log" 2>&1; then
    ok "make GPU=1 CUDA_ARCH=sm_90 compiles and links build/gpu/darknet/darknet, test_merge_device and test_replica_device ($((SECONDS - start)) s)"
else
    tail -30 "$WORK/build.log"
    not_ok "make GPU=1 CUDA_ARCH=sm_90 (log: $WORK/build.log)"
    exit 1
fi
after=$(md5sum build/darknet 2>/dev/null | cut -d' ' -f1)
check "build/darknet (the CPU binary of the other tests) is untouched" test "$before" = "$after"
syms=$(nm build/gpu/darknet/darknet)
for s in hpsgd_merge_launch_gpu hpsgd_replica_gpu_merge_launch hpsgd_merge_launch_cpu cuda_pull_array; do
    check "the GPU binary has $s" grep -qw "$s" <<<"$syms"
done

# The Makefile's command for merge_gpu.o, with -ptx instead of the object.
cmd=$(gmake -n -W plugin/merge_gpu.cu build/gpu/plugin/merge_gpu.o | grep -E '/nvcc .*merge_gpu\.cu' | tail -1)
check "the Makefile builds merge_gpu.cu with -fmad=false" grep -q -- '-fmad=false' <<<"$cmd"
ptx_cmd=$(sed -E -e 's/ -c / /' -e 's/ -o [^ ]+$//' -e 's/-gencode arch=compute_([0-9]+),code=[^ ]+/-arch=compute_\1/g' <<<"$cmd")
if eval "$ptx_cmd -ptx -o $WORK/merge_gpu.ptx" >"$WORK/ptx.log" 2>&1; then
    check "the kernels' PTX has no fused multiply-add" test "$(grep -c 'fma\.' "$WORK/merge_gpu.ptx")" = 0
    check "the kernels' PTX rounds each multiply and add to nearest (mul.rn, add.rn)" \
        grep -q 'mul\.rn\.f32' "$WORK/merge_gpu.ptx"
else
    cat "$WORK/ptx.log"
    not_ok "PTX of merge_gpu.cu ($ptx_cmd)"
fi
exit $FAILED
