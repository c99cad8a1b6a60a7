#!/usr/bin/env bash
# make-kit.sh [CUDA_ARCH]: builds the GPU variant here (Debian 12, nvcc, no GPU
# needed) and gathers what tests/gpu/device-check.sh needs on a GPU machine
# that has no package registry: build/devkit (under 20 MB).
set -euo pipefail
cd "$(dirname "$0")/../.."
arch=${1:--gencode arch=compute_90,code=sm_90}
K=build/devkit
# The variant's own binary: build/darknet (the CPU tests' binary) stays as it is.
make GPU=1 CUDA_ARCH="$arch" build/gpu/darknet/darknet >/dev/null
make GPU=1 CUDA_ARCH="$arch" build/tests/gpu/test_options build/tests/gpu/test_registry build/tests/gpu/test_replica \
    build/tests/gpu/test_comm build/tests/gpu/test_ring build/tests/gpu/test_merge_device \
    build/tests/gpu/test_replica_device build/tests/gpu/wcmp build/mkdata >/dev/null
rm -rf "$K" && mkdir -p "$K/tests" "$K/debs"
cp build/gpu/darknet/darknet "$K/darknet"
cp build/tests/gpu/test_options build/tests/gpu/test_registry build/tests/gpu/test_replica build/tests/gpu/test_comm \
    build/tests/gpu/test_ring build/tests/gpu/test_merge_device build/tests/gpu/test_replica_device \
    build/tests/gpu/wcmp "$K/tests/"
build/mkdata detect "$K/data" --train 40 --valid 8 --size 64 --seed 11 >/dev/null
build/mkdata detect "$K/data128" --train 160 --valid 8 --size 128 --seed 1 >/dev/null
# Open MPI's runtime and cmocka, as Debian packages (the device unpacks what it lacks).
(cd "$K/debs" && apt-get download -q libopenmpi3 openmpi-bin openmpi-common libpmix2 libhwloc15 libhwloc-plugins \
    libevent-core-2.1-7 libevent-pthreads-2.1-7 libfabric1 libucx0 libpsm2-2 libpsm-infinipath1 libibverbs1 \
    ibverbs-providers librdmacm1 libnl-3-200 libnl-route-3-200 libnuma1 libmunge2 libcmocka0 libxnvctrl0 \
    libpciaccess0 ocl-icd-libopencl1 libltdl7 >/dev/null 2>&1)
echo "make-kit: $K ready ($(du -sh "$K" | cut -f1)); on the GPU machine: tests/gpu/device-check.sh"
