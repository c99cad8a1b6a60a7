# tests/tests.mk - included by the top-level Makefile.
#
#   make test          build everything, run unit, MPI and end-to-end tests
#   make test SAN=1    the unit and MPI tests under ASan+UBSan (and the e2e
#                      tests with the sanitized build)
#   make unit          only the cmocka unit tests
#   make test TESTS='options ring'   only tests whose name contains a word

TEST_DIR := $(BUILD)/tests/$(VARIANT)
# The fork-independent unit and MPI tests run on the pjreddie build; another
# fork adds its own (tests/unit/$(FORK)/) and its end-to-end tests
# (tests/e2e/$(FORK)/), which make test runs after pjreddie's.
ifeq ($(FORK),pjreddie)
UNIT_TESTS := $(patsubst tests/unit/%.c,$(TEST_DIR)/%,$(wildcard tests/unit/test_*.c))
MPI_TESTS := $(patsubst tests/mpi/%.c,$(TEST_DIR)/%,$(wildcard tests/mpi/test_*.c))
else
UNIT_TESTS := $(patsubst tests/unit/$(FORK)/%.c,$(TEST_DIR)/%,$(wildcard tests/unit/$(FORK)/test_*.c))
MPI_TESTS :=
endif
TEST_TOOLS := $(patsubst tests/tools/%.c,$(TEST_DIR)/%,$(wildcard tests/tools/*.c))
MKDATA := $(BUILD)/mkdata

# What linking against Darknet's library needs, as in Darknet's own Makefile.
# The plugin and Darknet call each other: one link group.
DN_LIBS := -Wl$(,)--start-group $(PLUGIN_LIB) $(TREE)/libdarknet.a -Wl$(,)--end-group -lm -pthread \
           $(if $(filter alexeyab,$(FORK)),-lstdc++) \
           $(if $(filter 1,$(GPU)),-L$(CUDA_PATH)/lib64 -L$(CUDA_PATH)/lib64/stubs -Wl$(,)-rpath$(,)$(CUDA_PATH)/lib64 -lcuda -lcudart -lcublas -lcurand -lstdc++) \
           $(if $(filter 1,$(CUDNN)),-lcudnn) $(if $(filter 1,$(OPENMP)),-fopenmp) \
           $(if $(filter 1,$(DN_OPENCV)),$$(pkg-config --libs opencv4 2>/dev/null || pkg-config --libs opencv))

.PHONY: test-deps
test-deps: deps

ifeq ($(FORK),alexeyab)
# AlexeyAB's Makefile builds no static library: its objects but main's.
$(TREE)/libdarknet.a: $(TREE)/darknet
	@rm -f $@ && ar rcs $@ $$(ls $(TREE)/obj/*.o | grep -v '/darknet\.o$$')

$(TEST_DIR)/test_%: tests/unit/$(FORK)/test_%.c $(PLUGIN_LIB) $(TREE)/libdarknet.a | test-deps
	@mkdir -p $(@D)
	$(MPICC) $(PLUGIN_CFLAGS) -Itests/unit $< $(DN_LIBS) -lcmocka -o $@
endif

$(TEST_DIR)/test_%: tests/unit/test_%.c $(PLUGIN_LIB) $(TREE)/darknet | test-deps
	@mkdir -p $(@D)
	$(MPICC) $(PLUGIN_CFLAGS) -Itests/unit $< $(DN_LIBS) -lcmocka -o $@

# The fuzz regressions' test includes the fuzz target's source.
$(TEST_DIR)/test_fuzz_regressions: tests/fuzz/fuzz_options.c

$(TEST_DIR)/test_%: tests/mpi/test_%.c tests/mpi/mpi_check.h $(PLUGIN_LIB) $(TREE)/darknet | test-deps
	@mkdir -p $(@D)
	$(MPICC) $(PLUGIN_CFLAGS) $< $(DN_LIBS) -o $@

$(TEST_DIR)/%: tests/tools/%.c plugin/hash.h | test-deps
	@mkdir -p $(@D)
	$(MPICC) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 $(SAN_FLAGS) -Iplugin $< -o $@ -lm

# stb_image_write.h: in src/ (pjreddie) or 3rdparty/stb/include/ (AlexeyAB).
$(MKDATA): scripts/mkdata.c $(PRISTINE)/.stamp
	gcc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -I$(PRISTINE)/src -I$(PRISTINE)/3rdparty/stb/include $< -o $@ -lm

# SAN=1 also builds the thread hand-off tests (MPI thread and its callers)
# under ThreadSanitizer: comm.c compiled with them, no Darknet needed.
TSAN_TESTS := $(if $(filter 1,$(SAN)),$(TEST_DIR)/tsan_test_comm $(TEST_DIR)/tsan_test_ring)
COMM_SRCS := plugin/comm.c plugin/ring.c plugin/stall.c plugin/hier.c
COMM_HDRS := plugin/comm.h plugin/comm_internal.h plugin/ring.h plugin/stall.h plugin/util.h
$(TEST_DIR)/tsan_test_comm: tests/unit/test_comm.c $(COMM_SRCS) $(COMM_HDRS) | test-deps
	@mkdir -p $(@D)
	$(MPICC) -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=thread -Iplugin $< $(COMM_SRCS) -lcmocka -pthread -o $@
$(TEST_DIR)/tsan_test_ring: tests/mpi/test_ring.c tests/mpi/mpi_check.h $(COMM_SRCS) $(COMM_HDRS) plugin/codec.c plugin/codec.h | test-deps
	@mkdir -p $(@D)
	$(MPICC) -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=thread -Iplugin $< $(COMM_SRCS) plugin/codec.c -pthread -lm -o $@

# Unpatched AlexeyAB Darknet, the reference of tests/e2e/test_map.sh and of
# the AlexeyAB stock test; built by make test only when its tarball is there
# (those tests skip otherwise). The tarball is checked and unpacked once
# ($(ALEXEYAB_PRISTINE), Makefile).
ALEXEYAB_TREE := $(BUILD)/alexeyab-stock
ALEXEYAB_STOCK := $(BUILD)/darknet-alexeyab-stock
ALEXEYAB_IF_THERE := $(if $(wildcard $(DARKNET_TARBALL)),$(ALEXEYAB_STOCK))

$(ALEXEYAB_TREE)/.prepared: $(ALEXEYAB_PRISTINE)/.stamp tests/alexeyab-stock-loader-threads.patch
	@rm -rf $(ALEXEYAB_TREE) && cp -a $(ALEXEYAB_PRISTINE) $(ALEXEYAB_TREE) && rm -f $(ALEXEYAB_TREE)/.stamp
	@patch -d $(ALEXEYAB_TREE) -p1 --fuzz=0 -s < tests/alexeyab-stock-loader-threads.patch
	@touch $@

$(ALEXEYAB_STOCK): $(ALEXEYAB_TREE)/.prepared | test-deps
	@echo "building AlexeyAB Darknet (CPU) in $(ALEXEYAB_TREE)"
	+@$(MAKE) --no-print-directory -C $(ALEXEYAB_TREE) darknet GPU=0 CUDNN=0 OPENCV=0 OPENMP=0 AVX=0 LIBSO=0 \
	    > $(ALEXEYAB_TREE)/build.log 2>&1 || \
	    { tail -30 $(ALEXEYAB_TREE)/build.log >&2; echo "error: building AlexeyAB Darknet failed; full log: $(ALEXEYAB_TREE)/build.log" >&2; exit 1; }
	@cp $(ALEXEYAB_TREE)/darknet $@.tmp && mv -f $@.tmp $@

unit: $(UNIT_TESTS)
	@TEST_DIR=$(TEST_DIR) tests/run-tests --only-unit

# The AlexeyAB variant of the same flags, built by a second make (FORK=alexeyab)
# when the tarball is there; its tests are skipped, one line each, otherwise.
AB_VARIANT := alexeyab-$(VARIANT)$(if $(filter 1,$(OPENCV)),-opencv)
AB_BUILD := $(if $(ALEXEYAB_IF_THERE),alexeyab-test-build)
.PHONY: alexeyab-test-build fork-test-build
alexeyab-test-build: | test-deps
	+@$(MAKE) --no-print-directory FORK=alexeyab fork-test-build
fork-test-build: $(TREE)/darknet $(UNIT_TESTS) $(TEST_TOOLS)

ifeq ($(FORK),pjreddie)
test: test-deps all $(BUILD)/darknet-stock $(ALEXEYAB_IF_THERE) $(AB_BUILD) $(UNIT_TESTS) $(MPI_TESTS) $(TSAN_TESTS) $(TEST_TOOLS) $(MKDATA)
	@DARKNET=$(TREE)/darknet DARKNET_STOCK=$(BUILD)/darknet-stock TEST_DIR=$(TEST_DIR) MKDATA=$(MKDATA) \
	    DARKNET_ALEXEYAB=$(ALEXEYAB_IF_THERE) ALEXEYAB_TARBALL=$(DARKNET_TARBALL) \
	    AB_DARKNET=$(if $(AB_BUILD),$(BUILD)/$(AB_VARIANT)/darknet/darknet) AB_TEST_DIR=$(BUILD)/tests/$(AB_VARIANT) \
	    VARIANT=$(VARIANT) SAN=$(SAN) tests/run-tests $(TESTS)
else
# make test covers every fork from the pjreddie side.
test:
	+@$(MAKE) --no-print-directory FORK=pjreddie test
endif

# ------------------------------------------------------------------ fuzzing
#   make fuzz [FUZZ_SECONDS=60]   libFuzzer over the cfg reader and [hpsgd] parser
FUZZ_SECONDS ?= 60
.PHONY: fuzz fuzz-run
fuzz: deps
	+@$(MAKE) --no-print-directory FUZZ_BUILD=1 fuzz-run

$(TEST_DIR)/fuzz_options: tests/fuzz/fuzz_options.c $(PLUGIN_LIB) $(TREE)/darknet
	@mkdir -p $(@D)
	$(MPICC) $(PLUGIN_CFLAGS) -fsanitize=fuzzer $< $(DN_LIBS) -o $@

fuzz-run: $(TEST_DIR)/fuzz_options
	@mkdir -p $(BUILD)/fuzz-corpus $(BUILD)/fuzz-crashes
	@echo "fuzz: $(FUZZ_SECONDS) s over the cfg reader and the [hpsgd] parser (corpus $(BUILD)/fuzz-corpus)"
	@set -o pipefail; cd $(BUILD)/fuzz-crashes && ASAN_OPTIONS=detect_leaks=1 $(abspath $<) -max_total_time=$(FUZZ_SECONDS) \
	    -max_len=4096 -print_final_stats=1 $(abspath $(BUILD)/fuzz-corpus) $(abspath tests/fuzz/corpus) \
	    2>&1 | tail -15 || { echo "fuzz: a crash was found: keep the input from $(BUILD)/fuzz-crashes/ in tests/fuzz/regressions/" >&2; exit 1; }

# The plugin's flags without Darknet's (or CUDA's) headers, for tests that
# build plugin sources alone.
ALONE_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fPIC $(OPT_FLAGS) $(SAN_FLAGS) -Iplugin

# The round state machine alone, with a fake transport: no libmpi, no
# libdarknet, no hooks.c (tests/unit/test_rounds.c).
$(TEST_DIR)/test_rounds: tests/unit/test_rounds.c plugin/rounds.c plugin/rounds.h plugin/options.h | test-deps
	@mkdir -p $(@D)
	gcc $(ALONE_CFLAGS) $< plugin/rounds.c -lcmocka -pthread -lm -o $@

# The device merge's per-thread bodies run on the host against merge_cpu.c:
# no CUDA, no libmpi, no Darknet (tests/unit/test_merge_kernels.c).
$(TEST_DIR)/test_merge_kernels: tests/unit/test_merge_kernels.c plugin/merge_cpu.c plugin/merge.h plugin/merge_kernels.h | test-deps
	@mkdir -p $(@D)
	gcc $(ALONE_CFLAGS) $< plugin/merge_cpu.c -lcmocka -lm -o $@

# GPU=1: the kernels against merge_cpu.c on a GPU (tests/gpu/test_merge_device.cu,
# run by tests/gpu/device-check.sh; compiled by the GPU build test here).
$(TEST_DIR)/test_merge_device: tests/gpu/test_merge_device.cu $(VDIR)/plugin/merge_gpu.o $(VDIR)/plugin/merge_cpu.o | test-deps
	@mkdir -p $(@D)
	$(NVCC) $(NVCC_FLAGS) $< $(VDIR)/plugin/merge_gpu.o $(VDIR)/plugin/merge_cpu.o -o $@

# GPU=1: the replica's device twin against the host replica on a GPU
# (tests/gpu/test_replica_device.c, run by tests/gpu/device-check.sh).
$(TEST_DIR)/test_replica_device: tests/gpu/test_replica_device.c $(PLUGIN_LIB) $(TREE)/darknet | test-deps
	@mkdir -p $(@D)
	$(MPICC) $(PLUGIN_CFLAGS) $< $(DN_LIBS) -o $@
