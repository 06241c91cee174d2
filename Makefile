# NeruTalk make targets.

# Load benchmarks: builds both binaries, starts fresh servers on loopback and writes
# bench/results/<date>.json. Options go in BENCH_ARGS, e.g. make bench BENCH_ARGS="-pg -full".
.PHONY: bench
bench:
	bench/run.sh $(BENCH_ARGS)

# The README's test command, followed by one line naming the suites it skipped: a plain
# `go test ./...` prints only "ok" for a package that passes, skipped tests included.
.PHONY: test
test:
	go test ./...
	@skipped=""; \
	[ -n "$$NERUTALK_TEST_POSTGRES_URL" ] || skipped="$$skipped PostgreSQL (set NERUTALK_TEST_POSTGRES_URL),"; \
	[ -n "$$NERUTALK_TEST_REDIS_URL" ] || skipped="$$skipped Redis (set NERUTALK_TEST_REDIS_URL),"; \
	[ -n "$$NERUTALK_TEST_S3_URL" ] || skipped="$$skipped S3 (set NERUTALK_TEST_S3_URL, see scripts/s3-test-server.sh),"; \
	if [ -n "$$skipped" ]; then echo "skipped:$${skipped%,}; README.md explains how to run them"; fi
