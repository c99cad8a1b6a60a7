#!/usr/bin/env bash
# Valgrind memcheck on a short training run with the plugin: 1 rank, and 2
# and 4 ranks under mpirun. No invalid access or use of uninitialised memory
# anywhere, and no definite leak but those Open MPI and Darknet make on
# purpose (tests/valgrind.supp, Open MPI's own suppressions).
source "$(dirname "$0")/lib.sh"

command -v valgrind >/dev/null || { echo "ok - # SKIP valgrind is not installed"; exit 77; }
[ "${SAN:-0}" = 1 ] && { echo "ok - # SKIP the sanitized build cannot run under valgrind"; exit 77; }
SUPP=(--suppressions="$ROOT/tests/valgrind.supp")
[ -f /usr/share/openmpi/openmpi-valgrind.supp ] && SUPP+=(--suppressions=/usr/share/openmpi/openmpi-valgrind.supp)
VG=(valgrind --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite
    --num-callers=30 "${SUPP[@]}")
# Components stay loaded, so leaks inside them are attributed (and suppressed) by name.
export OMPI_MCA_mca_base_component_disable_dlclose=1

detection_data "$WORK/data"
cfg_with "$ROOT/tests/cfg/tiny-det.cfg" "$WORK/vg.cfg" 4 "mode=hpsgd" "verify=1" "timeout=120"
data_file "$WORK/data/detect.data" "$WORK/backup1" "$WORK/one.data"
data_file "$WORK/data/detect.data" "$WORK/backup2" "$WORK/two.data"

"${VG[@]}" "$DARKNET" detector train "$WORK/one.data" "$WORK/vg.cfg" >"$WORK/one.log" 2>&1
check "1 rank under valgrind: no memory error, no unexpected leak" test $? = 0
check "1 rank: the run finished" test -s "$WORK/backup1/vg_final.weights"
grep -E "ERROR SUMMARY" "$WORK/one.log" | sed 's/^/# /'

RUN_LIMIT=300 run_np 2 "$WORK/two.log" "${VG[@]}" "$DARKNET" detector train "$WORK/two.data" "$WORK/vg.cfg"
check "2 ranks under valgrind: no memory error, no unexpected leak" test $? = 0
check "2 ranks: the run finished" test -s "$WORK/backup2/vg_final.weights"
grep -E "ERROR SUMMARY" "$WORK/two.log" | sed 's/^/# /'

# 4 ranks: the sync warm-up (the first 4 global iterations, one step of
# each rank) and then the eager rule, in one run.
cfg_with "$ROOT/tests/cfg/tiny-det.cfg" "$WORK/vg4.cfg" 8 "mode=hpsgd" "sync_warmup=4" "verify=1" "timeout=120"
data_file "$WORK/data/detect.data" "$WORK/backup4" "$WORK/four.data"
RUN_LIMIT=300 run_np 4 "$WORK/four.log" "${VG[@]}" "$DARKNET" detector train "$WORK/four.data" "$WORK/vg4.cfg"
check "4 ranks, sync warm-up then eager, under valgrind: no memory error, no unexpected leak" test $? = 0
check "4 ranks: the run finished" test -s "$WORK/backup4/vg4_final.weights"
check "4 ranks: the warm-up was on" grep -q "sync_warmup=4," "$WORK/four.log"
grep -E "ERROR SUMMARY" "$WORK/four.log" | sed 's/^/# /'
finish
