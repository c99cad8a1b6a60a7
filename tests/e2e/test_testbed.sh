#!/bin/bash
# End-to-end test of scripts/testbed: two emulated hosts at 100mbit.
#
# Brings the testbed up under a prefix and subnet of its own, checks status,
# that `testbed run` puts rank i inside host i (its own eth0 address), that an
# 8 MB MPI transfer between the hosts runs at 50%..110% of the shaped rate,
# that --ranks-per-host 2 puts ranks 0,1 on host 1 and 2,3 on host 2, where
# Open MPI sees them share a node (MPI_COMM_TYPE_SHARED) and an all-reduce
# over shared memory and TCP gives the right sum, that `up` is idempotent,
# and that `down` removes everything it created.
# Exit 0: pass; 1: failure; 77: skipped (not root / no network namespaces).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
testbed=$(cd "$here/../.." && pwd)/scripts/testbed
prefix="hpt$$"; prefix=${prefix:0:12}      # ${prefix}br0 must fit in 15 chars
subnet="10.77.$((100 + $$ % 150))"         # not the default 10.77.0: a dev testbed may be up
rate=100mbit
rate_mbit=100
tmp=$(mktemp -d /tmp/test_testbed.XXXXXX)  # /tmp is visible inside the namespaces
failed=0
start=$SECONDS

ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; failed=1; }
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    "$testbed" down --prefix "$prefix" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap "exit 1" INT TERM HUP

if [ "$(id -u)" != 0 ]; then
    echo "ok - # SKIP testbed needs root"
    exit 77
fi
for t in mpirun mpicc; do
    command -v "$t" >/dev/null || { not_ok "$t not found (apt-get install openmpi-bin libopenmpi-dev)"; exit 1; }
done

# --- up -------------------------------------------------------------------
rc=0
"$testbed" up --hosts 2 --rate "$rate" --prefix "$prefix" --subnet "$subnet" >"$tmp/up.log" 2>&1 || rc=$?
if [ "$rc" = 77 ]; then
    echo "ok - # SKIP $(cat "$tmp/up.log")"
    exit 77
elif [ "$rc" = 0 ]; then
    ok "up: 2 hosts at $rate on $subnet.0/24 (prefix $prefix)"
else
    not_ok "up failed (rc $rc): $(cat "$tmp/up.log")"
    exit 1
fi

# --- status ---------------------------------------------------------------
"$testbed" status --prefix "$prefix" >"$tmp/status.log" 2>&1 || true
if grep -Eq "^${prefix}h1 +$subnet\.11 +up +100Mbit +100Mbit" "$tmp/status.log" &&
   grep -Eq "^${prefix}h2 +$subnet\.12 +up +100Mbit +100Mbit" "$tmp/status.log"; then
    ok "status: both hosts up, shaped 100Mbit each way"
else
    not_ok "status output unexpected:"; sed 's/^/#   /' "$tmp/status.log"
fi

# --- the tbf bucket holds a 64 KiB GSO packet -----------------------------
# (smaller, tbf cuts every GSO packet up in software: 42-51% of a core for
# iperf3 both ways at 124 Mbit/s against 6%, scripts/testbed's shape).
bursts=$( { tc -j qdisc show dev "${prefix}v1"; tc -j qdisc show dev "${prefix}v2"
            ip netns exec "${prefix}h1" tc -j qdisc show dev eth0; ip netns exec "${prefix}h2" tc -j qdisc show dev eth0; } 2>/dev/null |
          grep -o '"burst":[0-9]*' | cut -d: -f2 | tr '\n' ' ' || true)
if [ "$(wc -w <<<"$bursts")" = 4 ] && awk -v b="$bursts" 'BEGIN { n = split(b, a, " "); for (i = 1; i <= n; i++) if (a[i] < 70000) exit 1 }'; then
    ok "tbf burst on all 4 ends at least 64 KiB plus headers ($bursts bytes)"
else
    not_ok "tbf bursts '$bursts': want 4 values of at least 70000 bytes"
fi

# --- each rank runs inside its own host -----------------------------------
# shellcheck disable=SC2016  # expanded by the ranks' shell
probe='echo "rank $OMPI_COMM_WORLD_RANK $(hostname) $(ip -4 -o addr show eth0 | awk "{sub(/\/.*/, \"\", \$4); print \$4}")"'
if timeout 30 "$testbed" run --prefix "$prefix" -- /bin/sh -c "$probe" >"$tmp/where.log" 2>&1 &&
   grep -qx "rank 0 ${prefix}h1 $subnet.11" "$tmp/where.log" &&
   grep -qx "rank 1 ${prefix}h2 $subnet.12" "$tmp/where.log"; then
    ok "run: rank 0 in ${prefix}h1 ($subnet.11), rank 1 in ${prefix}h2 ($subnet.12)"
else
    not_ok "run: ranks not placed one per namespace:"; sed 's/^/#   /' "$tmp/where.log"
fi

# --- shaped bandwidth between the hosts -----------------------------------
cat >"$tmp/bw.c" <<'EOF'
/* Rank 0 sends BYTES to rank 1 after a warm-up; prints the achieved rate. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    int rank, bytes = argc > 1 ? atoi(argv[1]) : 8 << 20;
    char ack = 0, *buf = malloc(bytes);
    double t;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    memset(buf, rank, bytes);
    for (int round = 0; round < 2; round++) {   /* round 0 opens the connection */
        int n = round ? bytes : 1024;
        MPI_Barrier(MPI_COMM_WORLD);
        t = MPI_Wtime();
        if (rank == 0) {
            MPI_Send(buf, n, MPI_CHAR, 1, 0, MPI_COMM_WORLD);
            MPI_Recv(&ack, 1, MPI_CHAR, 1, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        } else if (rank == 1) {
            MPI_Recv(buf, n, MPI_CHAR, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            MPI_Send(&ack, 1, MPI_CHAR, 0, 1, MPI_COMM_WORLD);
        }
        t = MPI_Wtime() - t;
    }
    if (rank == 0)
        printf("mbit_per_s %.1f bytes %d seconds %.3f\n", bytes * 8.0 / t / 1e6, bytes, t);
    free(buf);
    MPI_Finalize();
    return 0;
}
EOF
if ! mpicc -O2 -std=c99 -o "$tmp/bw" "$tmp/bw.c" 2>"$tmp/cc.log"; then
    not_ok "mpicc bw.c failed:"; sed 's/^/#   /' "$tmp/cc.log"
elif ! timeout 30 "$testbed" run --prefix "$prefix" -- "$tmp/bw" $((8 << 20)) >"$tmp/bw.log" 2>&1; then
    not_ok "bandwidth run failed:"; sed 's/^/#   /' "$tmp/bw.log"
else
    mbit=$(awk '$1 == "mbit_per_s" { print $2 }' "$tmp/bw.log")
    if [ -n "$mbit" ] && awk -v m="$mbit" -v r="$rate_mbit" 'BEGIN { exit !(m >= 0.5 * r && m <= 1.1 * r) }'; then
        ok "bandwidth: 8 MB between hosts at $mbit Mbit/s (shaped $rate, want 50%..110%)"
    else
        not_ok "bandwidth ${mbit:-?} Mbit/s outside 50%..110% of $rate:"; sed 's/^/#   /' "$tmp/bw.log"
    fi
fi

# --- several ranks per host: shared memory inside, TCP across -------------
cat >"$tmp/local.c" <<'EOF'
/* Prints rank, hostname, its rank and size on its node, and a sum over all. */
#include <mpi.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int rank, lrank, lsize;
    double v, sum = 0;
    char host[64] = "";
    MPI_Comm local;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local);
    MPI_Comm_rank(local, &lrank);
    MPI_Comm_size(local, &lsize);
    v = rank + 1;
    MPI_Allreduce(&v, &sum, 1, MPI_DOUBLE, MPI_SUM, local);    /* shared memory */
    MPI_Allreduce(MPI_IN_PLACE, &sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    gethostname(host, sizeof host - 1);
    printf("rank %d %s local %d/%d sum %.0f\n", rank, host, lrank, lsize, sum);
    MPI_Comm_free(&local);
    MPI_Finalize();
    return 0;
}
EOF
if ! mpicc -O2 -std=c99 -o "$tmp/local" "$tmp/local.c" 2>"$tmp/cc2.log"; then
    not_ok "mpicc local.c failed:"; sed 's/^/#   /' "$tmp/cc2.log"
elif timeout 60 "$testbed" run --prefix "$prefix" --ranks-per-host 2 -- "$tmp/local" >"$tmp/local.log" 2>&1 &&
     grep -qx "rank 0 ${prefix}h1 local 0/2 sum 20" "$tmp/local.log" &&
     grep -qx "rank 1 ${prefix}h1 local 1/2 sum 20" "$tmp/local.log" &&
     grep -qx "rank 2 ${prefix}h2 local 0/2 sum 20" "$tmp/local.log" &&
     grep -qx "rank 3 ${prefix}h2 local 1/2 sum 20" "$tmp/local.log"; then
    ok "run --ranks-per-host 2: ranks 0,1 share ${prefix}h1 and 2,3 share ${prefix}h2; sums over shared memory and TCP"
else
    not_ok "run --ranks-per-host 2:"; sed 's/^/#   /' "$tmp/local.log"
fi

# --- up again is idempotent -----------------------------------------------
if "$testbed" up --hosts 2 --rate "$rate" --prefix "$prefix" --subnet "$subnet" >"$tmp/up2.log" 2>&1 &&
   [ "$(ip netns list | awk '{print $1}' | grep -cE "^${prefix}h[0-9]+$")" = 2 ]; then
    ok "up again with the same settings succeeds"
else
    not_ok "second up failed:"; sed 's/^/#   /' "$tmp/up2.log"
fi

# --- down removes everything ----------------------------------------------
if "$testbed" down --prefix "$prefix" >"$tmp/down.log" 2>&1; then
    left=$( { ip netns list | awk '{print $1}'; ip -o link show | awk -F': ' '{sub(/@.*/, "", $2); print $2}'; } |
            grep -E "^${prefix}(h[0-9]+|v[0-9]+|br0)$" || true)
    [ -e "/run/hpsgd-testbed-$prefix.env" ] && left="$left /run/hpsgd-testbed-$prefix.env"
    if [ -z "$left" ]; then
        ok "down removed all namespaces, links and state"
    else
        not_ok "down left behind: ${left//$'\n'/ }"
    fi
else
    not_ok "down failed:"; sed 's/^/#   /' "$tmp/down.log"
fi
if out=$("$testbed" down --prefix "$prefix" 2>&1) && [ -z "$out" ]; then
    ok "down with nothing up succeeds silently"
else
    not_ok "down with nothing up: '$out'"
fi

echo "# test_testbed: $((SECONDS - start)) s"
exit "$failed"
