#!/usr/bin/env bash
# A 2-host hpsgd job across the emulated testbed: two network namespaces on a
# bridge, links shaped to 200 Mbit/s, Open MPI's TCP transport between them.
# Up, a few iterations of detector train, checks, down (also on failure).
# The flat ring, explicitly (hierarchical=0; test_scale.sh runs the
# hierarchical one): every byte of the ring crosses the shaped link.
# Exit 77 (skip) where network namespaces are not permitted.
source "$(dirname "$0")/lib.sh"

testbed_up hpx 78 2 200mbit
ok "testbed up: 2 hosts at 200mbit"

detection_data "$WORK/data"
cfg_with "$ROOT/tests/cfg/tiny-det.cfg" "$WORK/tb.cfg" 30 "mode=hpsgd" "verify=1" "timeout=60" "hierarchical=0"
data_file "$WORK/data/detect.data" "$WORK/backup" "$WORK/run.data"
TESTBED_MPIRUN_ARGS="-x DARKNET_LOADER_THREADS" timeout 120 "$testbed" run --prefix "$prefix" -- \
    "$DARKNET" detector train "$WORK/run.data" "$WORK/tb.cfg" >"$WORK/log" 2>&1
check "a 2-host hpsgd job across the testbed exits 0" test $? = 0
check "the ranks ran on two emulated hosts" grep -q "hpsgd: 2 ranks" "$WORK/log"
check "the final model is the global model both hosts agreed on" \
    test "$(file_hash "$WORK/backup/tb_final.weights")" = "$(printed_checksum "$WORK/log")"
check "bytes crossed the shaped link" grep -qE "[0-9.]+ MB sent" "$WORK/log"
"$testbed" down --prefix "$prefix" >"$WORK/down.log" 2>&1
check "testbed down" test -z "$(ip netns list | grep "^${prefix}h")"
finish
