#!/usr/bin/env bash
# in-rank-dir.sh BASE CMD...: runs CMD in BASE/rankN (N = this MPI rank), so a
# test can tell which rank wrote which file.
dir="$1/rank${OMPI_COMM_WORLD_RANK:?not started by mpirun}"
shift
mkdir -p "$dir" && cd "$dir" && exec "$@"
