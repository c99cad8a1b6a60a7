# hpsgd-darknet: Darknet with the HPSGD distributed-training plugin.
#
#   make                 build/darknet (CPU), patched Darknet with the plugin
#   make GPU=1 [CUDNN=1] [CUDA_ARCH=sm_90 | CUDA_ARCH='-gencode ...']   the same with CUDA
#   make OPENMP=1        CPU with OpenMP
#   make test [SAN=1]    unit, MPI and end-to-end tests (SAN=1: ASan+UBSan)
#   make demo            the README's main command: 2-rank training on Fashion-MNIST
#   make bench | bench-scale | chunk-sweep | scale | study [WHAT=cells|ablation|lr|det|compress]   benchmarks and studies (BENCHMARKS.md)
#   make fuzz            libFuzzer over the [hpsgd] option parser
#   make patches-check   the patch series applies cleanly to pristine Darknet
#   make DARKNET_SRC=/path/to/darknet   build from a checkout of pjreddie/darknet 61c9d02e
#   FORK=pjreddie        the Darknet fork: its patches (patches/$(FORK)/series) and
#                        its adapter (plugin/darknet/$(FORK).c)
#   make FORK=alexeyab [DARKNET_TARBALL=path | DARKNET_SRC=checkout]   the same on
#                        AlexeyAB/darknet 59596d78 (variant dirs build/alexeyab-*)
#   make FORK=alexeyab OPENCV=1   with OpenCV (Debian's libopencv-dev, installed
#                        if missing): mosaic=1 needs it (variant build/alexeyab-cpu-opencv)
#
# Darknet's source is never stored here: pjreddie's is the .orig.tar.xz of
# Debian's source package darknet, fetched into build/ and checked by sha256;
# AlexeyAB's is a tarball of that commit (../shared/darknet/ by default),
# checked against the .sha256 file beside it.

SHELL := /bin/bash
.DEFAULT_GOAL := all
.DELETE_ON_ERROR:

GPU ?= 0
CUDNN ?= 0
OPENMP ?= 0
SAN ?= 0
DEBUG ?= 0
OPENCV ?= 0
CUDA_PATH ?= /usr/local/cuda
CUDA_ARCH ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=[sm_90,compute_90]
# CUDA_ARCH=sm_90 (or "sm_80 sm_90") is short for -gencode arch=compute_90,code=sm_90.
ifeq ($(filter-out sm_%,$(CUDA_ARCH)),)
override CUDA_ARCH := $(foreach a,$(CUDA_ARCH),-gencode arch=compute_$(patsubst sm_%,%,$(a)),code=$(a))
endif
DARKNET_SRC ?=
FORK ?= pjreddie
ifeq ($(wildcard plugin/darknet/$(FORK).c),)
$(error FORK=$(FORK): no adapter plugin/darknet/$(FORK).c; supported: $(patsubst plugin/darknet/%.c,%,$(wildcard plugin/darknet/*.c)))
endif
# OPENCV=1 applies to AlexeyAB's build only (mosaic=1 needs it there); not
# tried with pjreddie's 2018 Darknet (written for OpenCV 2/3; Debian 12 has 4.6).
DN_OPENCV := $(if $(and $(filter alexeyab,$(FORK)),$(filter 1,$(OPENCV))),1,0)
PATCH_DIR := patches/$(FORK)
# AlexeyAB/darknet: a tarball of the commit its patches are made for.
# (ALEXEYAB_TARBALL= is its older name.)
ALEXEYAB_TARBALL ?= ../shared/darknet/darknet-alexeyab-59596d78.tar.gz
DARKNET_TARBALL ?= $(ALEXEYAB_TARBALL)
FORK_COMMIT := $(if $(filter alexeyab,$(FORK)),AlexeyAB/darknet 59596d78,pjreddie/darknet 61c9d02e)

BUILD := build
DL := $(BUILD)/dl
ALEXEYAB_PRISTINE := $(BUILD)/alexeyab-pristine
PRISTINE := $(if $(DARKNET_SRC),$(BUILD)/darknet-ext,$(if $(filter alexeyab,$(FORK)),$(ALEXEYAB_PRISTINE),$(BUILD)/darknet-pristine))
VARIANT := $(if $(filter-out pjreddie,$(FORK)),$(FORK)-)$(if $(filter 1,$(GPU)),gpu,cpu)$(if $(filter 1,$(CUDNN)),-cudnn)$(if $(filter 1,$(OPENMP)),-omp)$(if $(filter 1,$(SAN)),-san)$(if $(filter 1,$(DEBUG)),-debug)$(if $(filter 1,$(FUZZ_BUILD)),-fuzz)$(if $(DARKNET_SRC),-ext)$(if $(filter 1,$(DN_OPENCV)),-opencv)
VDIR := $(BUILD)/$(VARIANT)
TREE := $(VDIR)/darknet
PLUGIN_LIB := $(VDIR)/libhpsgd.a
DARKNET := $(BUILD)/darknet
STOCK_TREE := $(BUILD)/stock/darknet
MPICC ?= mpicc

# Debian packages each target needs; scripts/ensure-packages installs what is missing.
BUILD_PKGS := gcc make patch xz-utils dpkg-dev libopenmpi-dev openmpi-bin
ifeq ($(DN_OPENCV),1)
BUILD_PKGS += g++ pkg-config libopencv-dev
endif
# (make test OPENCV=1 builds AlexeyAB's test build with it: TEST_PKGS.)
TEST_PKGS := $(BUILD_PKGS) g++ libcmocka-dev faketime dataset-fashion-mnist iproute2 valgrind gnuplot-nox \
             $(if $(filter 1,$(OPENCV)),pkg-config libopencv-dev)
DEMO_PKGS := $(BUILD_PKGS) dataset-fashion-mnist gnuplot-nox
# make bench and bench-scale put a round's bytes per step on the links with iperf3.
BENCH_PKGS := iperf3
FUZZ_PKGS := $(BUILD_PKGS) clang libclang-rt-14-dev

# Darknet itself gets -fno-sanitize=shift under SAN: its bundled stb_image_write
# shifts signed ints (harmless; not our code). The plugin gets every check.
ifeq ($(SAN),1)
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif
# make fuzz builds its own variant with clang (through mpicc) and libFuzzer hooks.
ifeq ($(FUZZ_BUILD),1)
SAN_FLAGS := -fsanitize=address,undefined,fuzzer-no-link -fno-omit-frame-pointer -fno-sanitize-recover=undefined
MPICC := OMPI_CC=clang mpicc
DN_CXX := clang++
endif
DN_CXX ?= g++
ifeq ($(DEBUG),1)
OPT_FLAGS := -O0 -g
else
OPT_FLAGS := -O2 -g
endif

# The plugin sees darknet.h with exactly the library's GPU/CUDNN defines.
DN_DEFS := $(if $(filter 1,$(GPU)),-DGPU -isystem $(CUDA_PATH)/include) $(if $(filter 1,$(CUDNN)),-DCUDNN)
PLUGIN_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fPIC $(OPT_FLAGS) $(SAN_FLAGS) $(DN_DEFS) \
                 -isystem $(TREE)/include -isystem $(TREE)/src -Iplugin
# Every fork-independent part, and the one fork adapter with its own commands.
# GPU=1 adds the device merge: replica_gpu.c and the kernels of merge_gpu.cu.
PLUGIN_SRCS := $(filter-out $(if $(filter 1,$(GPU)),,plugin/replica_gpu.c),$(wildcard plugin/*.c)) \
               plugin/darknet/$(FORK).c $(wildcard plugin/darknet/$(FORK)_*.c)
PLUGIN_CU_SRCS := $(if $(filter 1,$(GPU)),$(wildcard plugin/*.cu))
PLUGIN_HDRS := $(wildcard plugin/*.h plugin/darknet/*.h)
PLUGIN_OBJS := $(patsubst plugin/%.c,$(VDIR)/plugin/%.o,$(PLUGIN_SRCS)) $(patsubst plugin/%.cu,$(VDIR)/plugin/%.o,$(PLUGIN_CU_SRCS))
NVCC := $(CUDA_PATH)/bin/nvcc
# -fmad=false: no FMA contraction, so the device merge rounds each add and
# multiply as the host does and gives merge_cpu.c's bits (merge_gpu.cu).
NVCC_FLAGS = -std=c++17 -O3 -fmad=false $(CUDA_ARCH) -Xcompiler -fPIC$(,)-Wall$(,)-Wextra$(,)-Werror -Iplugin

, := ,
DN_LDFLAGS := $(SAN_FLAGS) $(if $(filter 1,$(GPU)),-L$(CUDA_PATH)/lib64 -L$(CUDA_PATH)/lib64/stubs -Wl$(,)-rpath$(,)$(CUDA_PATH)/lib64)
# AlexeyAB links with its C++ compiler: Open MPI's link flags come from mpicc.
ifeq ($(FORK),alexeyab)
DN_LDFLAGS += $$($(MPICC) --showme:link)
DN_CPP := $(DN_CXX)
DN_TARGETS := darknet AVX=0 LIBSO=0
else
DN_CPP := $(DN_CXX)
DN_TARGETS := obj darknet
endif
DN_MAKE_VARS := CC="$(MPICC)" CPP="$(DN_CPP)" GPU=$(GPU) CUDNN=$(CUDNN) OPENMP=$(OPENMP) DEBUG=$(DEBUG) OPENCV=$(DN_OPENCV) \
                NVCC=$(CUDA_PATH)/bin/nvcc ARCH="$(CUDA_ARCH)" \
                HPSGD_CFLAGS="$(SAN_FLAGS) $(if $(SAN_FLAGS),-fno-sanitize=shift) $(if $(filter 1,$(GPU)),-I$(CUDA_PATH)/include)" \
                HPSGD_LDFLAGS="$(DN_LDFLAGS)"

.PHONY: all deps patches-check test unit demo bench study fuzz clean distclean FORCE

all: $(DARKNET)

# One package check per make run (apt holds a lock): what the goals need.
NEEDED_PKGS := $(BUILD_PKGS) $(if $(filter test unit,$(MAKECMDGOALS)),$(TEST_PKGS)) \
               $(if $(filter demo bench bench-scale study,$(MAKECMDGOALS)),$(DEMO_PKGS) $(TEST_PKGS)) \
               $(if $(filter bench bench-scale,$(MAKECMDGOALS)),$(BENCH_PKGS)) \
               $(if $(filter fuzz,$(MAKECMDGOALS)),$(FUZZ_PKGS))
deps:
	@scripts/ensure-packages $(sort $(NEEDED_PKGS))
	@$(if $(filter 1,$(GPU)),test -x $(CUDA_PATH)/bin/nvcc || { echo "error: GPU=1 needs nvcc at $(CUDA_PATH)/bin/nvcc (set CUDA_PATH)" >&2; exit 1; })

# ---------------------------------------------------------------- sources

$(BUILD)/darknet-pristine/.stamp: scripts/fetch-darknet | deps
	@scripts/fetch-darknet $(DL) $(BUILD)/darknet-pristine
	@touch $@

$(BUILD)/darknet-ext/.stamp: FORCE | deps
	@test -f "$(DARKNET_SRC)/src/network.c" || { echo "error: DARKNET_SRC=$(DARKNET_SRC) is not a Darknet tree (no src/network.c)" >&2; exit 1; }
	@if [ ! -f $@ ] || [ "$$(cat $@)" != "$(abspath $(DARKNET_SRC))" ]; then \
	    rm -rf $(BUILD)/darknet-ext && mkdir -p $(BUILD)/darknet-ext && \
	    tar -C "$(DARKNET_SRC)" --exclude=.git -cf - . | tar -C $(BUILD)/darknet-ext -xf - && \
	    { git -C "$(DARKNET_SRC)" rev-parse HEAD 2>/dev/null | grep -q '^$(lastword $(FORK_COMMIT))' || \
	      echo "warning: $(DARKNET_SRC) is not $(FORK_COMMIT); the patches may not apply" >&2; } && \
	    echo "$(abspath $(DARKNET_SRC))" > $@; fi

# AlexeyAB's tarball, checked against the .sha256 beside it (also the source
# of the unpatched AlexeyAB build of the tests).
$(ALEXEYAB_PRISTINE)/.stamp: $(DARKNET_TARBALL) | deps
	@test -f $<.sha256 || { echo "error: $<.sha256 not found (the tarball's checksum)" >&2; exit 1; }
	@want=$$(cut -d' ' -f1 $<.sha256); got=$$(sha256sum $< | cut -d' ' -f1); \
	    [ "$$want" = "$$got" ] || { echo "error: checksum mismatch for $<: got $$got, want $$want" >&2; exit 1; }
	@rm -rf $(@D) && mkdir -p $(@D) && tar -xzf $< -C $(@D) --strip-components=1
	@mkdir -p $(@D)/obj $(@D)/backup $(@D)/results
	@touch $@

# A patched copy per variant, re-made whenever a patch changes.
$(TREE)/.patched: $(PRISTINE)/.stamp $(PATCH_DIR)/series $(wildcard $(PATCH_DIR)/*.patch)
	@rm -rf $(TREE).tmp && mkdir -p $(VDIR) && cp -a $(PRISTINE) $(TREE).tmp && rm -f $(TREE).tmp/.stamp
	@for p in $$(grep -v '^#' $(PATCH_DIR)/series); do \
	    patch -d $(TREE).tmp -p1 --fuzz=0 --forward --no-backup-if-mismatch -s < $(PATCH_DIR)/$$p >$(TREE).tmp/.patch.log 2>&1 || \
	    { echo "error: $(PATCH_DIR)/$$p does not apply to $(PRISTINE) (see $(TREE).tmp/.patch.log); is it $(FORK_COMMIT)?" >&2; exit 1; }; \
	done
	@rm -rf $(TREE) && mv $(TREE).tmp $(TREE) && touch $@

patches-check: $(PRISTINE)/.stamp
	@rm -rf $(BUILD)/patches-check && cp -a $(PRISTINE) $(BUILD)/patches-check
	@n=0; for p in $$(grep -v '^#' $(PATCH_DIR)/series); do \
	    patch -d $(BUILD)/patches-check -p1 --fuzz=0 --forward --no-backup-if-mismatch < $(PATCH_DIR)/$$p > $(BUILD)/patches-check.log 2>&1 || \
	    { echo "error: $(PATCH_DIR)/$$p does not apply cleanly:" >&2; cat $(BUILD)/patches-check.log >&2; exit 1; }; \
	    if grep -qiE 'offset|fuzz' $(BUILD)/patches-check.log; then echo "error: $(PATCH_DIR)/$$p needs offset or fuzz:" >&2; cat $(BUILD)/patches-check.log >&2; exit 1; fi; \
	    n=$$((n+1)); done; \
	for p in $(PATCH_DIR)/*.patch; do grep -qx "$$(basename $$p)" $(PATCH_DIR)/series || { echo "error: $$p is not in $(PATCH_DIR)/series" >&2; exit 1; }; done; \
	echo "patches-check: $$n patches of $(PATCH_DIR) apply to pristine Darknet ($(FORK)) without offset or fuzz"
	@rm -rf $(BUILD)/patches-check $(BUILD)/patches-check.log

# ------------------------------------------------------------------ build

$(TREE)/src/hpsgd.h: plugin/hpsgd.h $(TREE)/.patched
	@cp $< $@

# The plugin's objects are rebuilt when its flags change.
$(VDIR)/plugin-flags: FORCE | deps
	@mkdir -p $(@D)
	@echo '$(MPICC) $(PLUGIN_CFLAGS) $(if $(PLUGIN_CU_SRCS),$(NVCC_FLAGS))' | cmp -s - $@ || \
	    echo '$(MPICC) $(PLUGIN_CFLAGS) $(if $(PLUGIN_CU_SRCS),$(NVCC_FLAGS))' > $@

$(VDIR)/plugin/%.o: plugin/%.c $(PLUGIN_HDRS) $(TREE)/.patched $(VDIR)/plugin-flags | deps
	@mkdir -p $(@D)
	$(MPICC) $(PLUGIN_CFLAGS) -c $< -o $@

$(VDIR)/plugin/%.o: plugin/%.cu $(PLUGIN_HDRS) $(VDIR)/plugin-flags | deps
	@mkdir -p $(@D)
	$(NVCC) $(NVCC_FLAGS) -c $< -o $@

$(PLUGIN_LIB): $(PLUGIN_OBJS)
	@rm -f $@
	ar rcs $@ $^

# Darknet's objects depend on its own Makefile: touch it when the flags change.
$(TREE)/darknet: $(PLUGIN_LIB) $(TREE)/src/hpsgd.h FORCE
	@echo '$(DN_MAKE_VARS)' | cmp -s - $(TREE)/.hpsgd-flags || { echo '$(DN_MAKE_VARS)' > $(TREE)/.hpsgd-flags; touch $(TREE)/Makefile; }
	+@$(if $(filter 1,$(GPU)),LIBRARY_PATH=$(CUDA_PATH)/lib64/stubs) $(MAKE) --no-print-directory -C $(TREE) $(DN_TARGETS) \
	    $(DN_MAKE_VARS) HPSGD_LIB=$(abspath $(PLUGIN_LIB)) > $(VDIR)/darknet-build.log 2>&1 || \
	    { tail -30 $(VDIR)/darknet-build.log >&2; echo "error: building Darknet ($(VARIANT)) failed; full log: $(VDIR)/darknet-build.log" >&2; exit 1; }

# build/darknet is the binary of the variant built last (rename: it may be running).
$(DARKNET): $(TREE)/darknet $(if $(filter pjreddie,$(FORK)),$(BUILD)/data/labels/.copied) FORCE
	@cmp -s $< $@ || { cp $< $@.tmp && mv -f $@.tmp $@ && echo "built $@ ($(VARIANT))"; }

# detector test draws labels with Darknet's glyphs: patched Darknet looks for
# data/labels beside its executable when the working directory has none (the
# variant trees have their own).
$(BUILD)/data/labels/.copied: $(PRISTINE)/.stamp
	@rm -rf $(@D) && mkdir -p $(dir $(@D)) && cp -a $(PRISTINE)/data/labels $(@D) && touch $@

# Unpatched Darknet, for the stock-behaviour test; one change: DARKNET_LOADER_THREADS.
$(STOCK_TREE)/.prepared: $(PRISTINE)/.stamp tests/stock-loader-threads.patch
	@rm -rf $(STOCK_TREE) && mkdir -p $(dir $(STOCK_TREE)) && cp -a $(PRISTINE) $(STOCK_TREE) && rm -f $(STOCK_TREE)/.stamp
	@patch -d $(STOCK_TREE) -p1 --fuzz=0 -s < tests/stock-loader-threads.patch
	@touch $@

$(BUILD)/darknet-stock: $(STOCK_TREE)/.prepared FORCE
	+@$(MAKE) --no-print-directory -C $(STOCK_TREE) obj darknet CC="$(MPICC)" OPENCV=0 > $(BUILD)/stock/build.log 2>&1 || \
	    { tail -30 $(BUILD)/stock/build.log >&2; echo "error: building stock Darknet failed" >&2; exit 1; }
	@cmp -s $(STOCK_TREE)/darknet $@ || { cp $(STOCK_TREE)/darknet $@.tmp && mv -f $@.tmp $@; }

# ------------------------------------------------------------------ tests

include tests/tests.mk

# ------------------------------------------------------- demo, bench, fuzz

include scripts/scripts.mk

clean:
	rm -rf $(BUILD)/cpu* $(BUILD)/gpu* $(BUILD)/alexeyab-cpu* $(BUILD)/alexeyab-gpu* $(BUILD)/stock $(BUILD)/tests $(DARKNET) $(BUILD)/darknet-stock \
	    $(BUILD)/alexeyab-stock $(BUILD)/darknet-alexeyab-stock

distclean:
	rm -rf $(BUILD)

FORCE:
