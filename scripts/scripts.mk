# scripts/scripts.mk - included by the top-level Makefile: demo, benchmarks,
# fuzzing. Each target builds what it needs first.

.PHONY: demo data

demo: deps all $(MKDATA)
	@scripts/demo

# The generated data sets the demo, benchmarks and study use (under build/data).
data: deps $(MKDATA)
	@test -f build/data/fashion-det/detect.data || $(MKDATA) detect build/data/fashion-det --train 2000 --valid 200 --size 128 --seed 1
	@test -f build/data/fashion-cls/fashion.data || $(MKDATA) classify build/data/fashion-cls

.PHONY: bench bench-scale study chunk-sweep scale

# Benchmarks on emulated hosts (root; see scripts/bench): writes BENCHMARKS.md.
# make bench FORK=alexeyab: the same table for YOLOv4-tiny on AlexeyAB's build.
bench: deps all $(MKDATA)
	@BENCH_FORK=$(FORK) scripts/bench

# Images/s against emulated hosts (1, 2, 4, 8), as fractions of the same-run
# limit: see scripts/bench-scale (about 20 minutes).
bench-scale: deps all $(MKDATA)
	@scripts/bench-scale

# All-reduce rate against [hpsgd] chunk_mb (a few minutes): see scripts/chunk-sweep.
chunk-sweep: deps all $(MKDATA)
	@scripts/chunk-sweep

# Inter-host bytes per round, flat ring against hierarchical, 2 x 2 and 2 x 4
# ranks (bytes, not timing): see scripts/scale.
scale: deps all $(MKDATA)
	@scripts/scale

# The accuracy study (longer, not in CI): see scripts/study.
# make study [WHAT=cells|ablation|lr|det|compress] [QUICK=0]
study: deps all $(MKDATA)
	@QUICK=$(or $(QUICK),1) scripts/study $(or $(WHAT),cells)
