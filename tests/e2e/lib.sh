# lib.sh - shared helpers of the end-to-end tests (sourced, bash).
#
# Environment (set by tests/run-tests): DARKNET, DARKNET_STOCK, MKDATA,
# TEST_DIR (test tools such as wcmp), TEST_TMP (scratch).
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DARKNET=$(cd "$ROOT" && readlink -f "${DARKNET:-build/darknet}")
DARKNET_STOCK=$(cd "$ROOT" && readlink -f "${DARKNET_STOCK:-build/darknet-stock}")
MKDATA=$(cd "$ROOT" && readlink -f "${MKDATA:-build/mkdata}")
WCMP=$(cd "$ROOT" && readlink -f "${TEST_DIR:-build/tests/cpu}/wcmp")
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Two cores here: ranks beyond them must share, and must not be bound to one.
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_hwloc_base_binding_policy=none
export OMPI_MCA_btl=tcp,self
# Local jobs talk over loopback only: an emulated testbed's bridge that comes
# and goes (another test, or another checkout's tests) must not be chosen.
export OMPI_MCA_btl_tcp_if_include=${OMPI_MCA_btl_tcp_if_include:-lo} OMPI_MCA_oob_tcp_if_include=${OMPI_MCA_oob_tcp_if_include:-lo}
export DARKNET_LOADER_THREADS=${DARKNET_LOADER_THREADS:-1}

TEST_NAME=$(basename "$0" .sh)
WORK="${TEST_TMP:-/tmp}/$TEST_NAME"
rm -rf "$WORK" && mkdir -p "$WORK"
FAILED=0

ok() { echo "ok - $*"; }
not_ok() {
    echo "not ok - $*"
    FAILED=1
}
# check DESCRIPTION CMD...: ok if CMD succeeds.
check() {
    local what=$1
    shift
    if "$@"; then ok "$what"; else not_ok "$what"; fi
}
# HPSGD_WEIGHTS_MD5=FILE: append the md5 of every weights file the test left,
# so a refactoring can show that it trains the same bytes as before.
record_weights_md5() {
    [ -n "${HPSGD_WEIGHTS_MD5:-}" ] || return 0
    (cd "$WORK" && find . \( -name '*.weights' -o -name '*.backup' \) -type f | sort | xargs -r md5sum) |
        sed "s|^|$TEST_NAME |" >>"$HPSGD_WEIGHTS_MD5"
}
finish() {
    record_weights_md5
    [ $FAILED -eq 0 ] && echo "# $TEST_NAME: all checks passed"
    exit $FAILED
}
die() {
    echo "not ok - $*"
    exit 1
}

# detection_data DIR: a small generated detection set (cached per test run).
detection_data() {
    local dir=$1
    [ -f "$dir/detect.data" ] || "$MKDATA" detect "$dir" --train 40 --valid 8 --size 64 --seed 11 >/dev/null ||
        die "mkdata detect failed"
}

# classification_data DIR
classification_data() {
    local dir=$1
    [ -f "$dir/fashion.data" ] || "$MKDATA" classify "$dir" --train 400 --test 100 >/dev/null ||
        die "mkdata classify failed"
}

# data_file SRC.data BACKUP OUT.data: a copy of a data file with its own backup dir.
data_file() {
    mkdir -p "$2"
    sed "s|^backup=.*|backup=$2|" "$1" >"$3"
}

# cfg_with BASE OUT MAX_BATCHES [hpsgd lines...]: a copy of BASE with
# max_batches set and, if lines are given, an [hpsgd] section.
cfg_with() {
    local base=$1 out=$2 max=$3
    shift 3
    sed "s/^max_batches=.*/max_batches=$max/" "$base" >"$out"
    if [ $# -gt 0 ]; then
        printf '\n[hpsgd]\n' >>"$out"
        printf '%s\n' "$@" >>"$out"
    fi
}

# run_np NP LOG CMD...: mpirun on local ranks with a time bound; returns its status.
run_np() {
    local np=$1 log=$2
    shift 2
    timeout --kill-after=5 "${RUN_LIMIT:-180}" mpirun -np "$np" "$@" >"$log" 2>&1 </dev/null
}

# initial_weights CFG DATA OUT [detector|classifier]: start weights for CFG, so
# that runs compared with each other start alike. The detector writes its
# untrained weights; the classifier (max_batches=0 means forever) after 1 step.
initial_weights() {
    local cfg=$1 data=$2 out=$3 dir="$WORK/init.$$" steps=0
    [ "${4:-detector}" = classifier ] && steps=1
    mkdir -p "$dir"
    sed "s/^max_batches=.*/max_batches=$steps/" "$cfg" >"$dir/init.cfg"
    data_file "$data" "$dir" "$dir/init.data"
    # AlexeyAB's -dont_show: with OpenCV it would open its loss chart's window.
    local flags=()
    [ "${FORK:-}" = alexeyab ] && flags=(-dont_show)
    (cd "$dir" && "$DARKNET" "${4:-detector}" train "$dir/init.data" "$dir/init.cfg" ${flags[@]+"${flags[@]}"} >"$dir/log" 2>&1) ||
        die "could not make initial weights"
    local f
    f=$(ls "$dir"/init*.weights 2>/dev/null | head -1)
    [ -n "$f" ] || die "no initial weights written"
    mv "$f" "$out"
}

# printed_checksum LOG: the plugin's final checksum line.
printed_checksum() { sed -n 's/.*final model identical on all [0-9]* ranks\{0,1\} (checksum \([0-9a-f]*\)).*/\1/p' "$1" | tail -1; }

# file_hash WEIGHTS: the plugin's checksum of a weights file's tensors.
file_hash() { "$WCMP" --hash "$1"; }

# testbed_up TAG NET HOSTS RATE: emulated hosts for this test (scripts/testbed,
# prefix TAG plus the pid, subnet 10.NET.x), taken down on exit; sets prefix,
# subnet and testbed. Skips (exit 77) without root or network namespaces.
testbed_up() {
    [ "$(id -u)" = 0 ] || { echo "ok - # SKIP the testbed needs root"; exit 77; }
    prefix="$1$$"
    prefix=${prefix:0:12}   # ${prefix}br0 must fit in 15 characters
    subnet="10.$2.$((100 + $$ % 150))"
    testbed="$ROOT/scripts/testbed"
    trap '"$testbed" down --prefix "$prefix" >/dev/null 2>&1 || true' EXIT
    local rc=0
    "$testbed" up --hosts "$3" --rate "$4" --prefix "$prefix" --subnet "$subnet" >"$WORK/up.log" 2>&1 || rc=$?
    [ $rc = 77 ] && { echo "ok - # SKIP $(cat "$WORK/up.log")"; exit 77; }
    [ $rc = 0 ] || die "testbed up failed: $(cat "$WORK/up.log")"
}
