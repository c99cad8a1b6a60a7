#!/usr/bin/env bash
# run.sh NP PROGRAM [ARGS...]: runs an MPI test program on NP local ranks.
set -u
np=$1
shift
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
exec mpirun -np "$np" --oversubscribe --bind-to none --mca btl tcp,self \
    -x ASAN_OPTIONS -x LSAN_OPTIONS -x UBSAN_OPTIONS "$@"
