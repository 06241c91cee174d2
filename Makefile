# NeruTalk make targets.

# Load benchmarks: builds both binaries, starts fresh servers on loopback and writes
# bench/results/<date>.json. Options go in BENCH_ARGS, e.g. make bench BENCH_ARGS="-pg -full".
.PHONY: bench
bench:
	bench/run.sh $(BENCH_ARGS)
