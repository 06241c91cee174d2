#!/usr/bin/env bash
# Runs every Go fuzz target of the module for a while each, one target at a time (go test -fuzz
# takes one target per run), package by package. Targets are discovered by grep, so a new
# FuzzXxx runs without editing this script. Fails (exit 1) when any target finds a crasher or
# fails to build; the failing input is written by go test under the package's
# testdata/fuzz/FuzzXxx/ (commit it with the fix: it then runs as a seed in every go test).
#
#   scripts/fuzz.sh [seconds] [regexp]
#
#   seconds  fuzzing time per target (default 30)
#   regexp   only the targets whose "package/FuzzName" matches (grep -E), e.g. 'media|FuzzVerify'
#
# Environment: FUZZ_PARALLEL (the fuzzing workers per target, go test -parallel; default: the
# number of CPUs). The first run per package builds it with coverage instrumentation, which takes
# far longer than a short fuzzing time: see docs/FUZZING.md.
set -uo pipefail

secs="${1:-30}"
filter="${2:-.}"
cd "$(dirname "$0")/.."

parallel=()
if [[ -n "${FUZZ_PARALLEL:-}" ]]; then
	parallel=(-parallel "$FUZZ_PARALLEL")
fi

# "dir name" for every func FuzzXxx(f *testing.F) in a _test.go file, sorted by package.
mapfile -t targets < <(grep -rE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . |
	sed -E 's#^\./(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*#\1 \2#' | sort -u)

failed=()
flaky=()
ran=0
start=$SECONDS
for t in "${targets[@]}"; do
	dir="${t% *}"
	name="${t#* }"
	if ! grep -qE -- "$filter" <<<"$dir/$name"; then
		continue
	fi
	ran=$((ran + 1))
	log="$(mktemp)"
	t0=$SECONDS
	corpus="$dir/testdata/fuzz/$name"
	before="$(ls "$corpus" 2>/dev/null | sort)"
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "${secs}s" "${parallel[@]}" "./$dir" >"$log" 2>&1
	rc=$?
	after="$(ls "$corpus" 2>/dev/null | sort)"
	execs="$(grep -oE 'execs: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)"
	# Go 1.26's fuzzing coordinator can fail a target with a bare "context deadline exceeded"
	# when -fuzztime runs out (golang/go#75804, fixed in Go 1.27): no input failed and none
	# was written. That is reported as a flake, not a failure.
	if [[ $rc -ne 0 && "$before" == "$after" ]] && grep -qxE '\s*context deadline exceeded' "$log" &&
		! grep -qE 'failure while testing seed|Failing input written|panic:' "$log"; then
		printf '%-40s %-28s flake %6ss  execs %s (golang/go#75804: no failing input)\n' "$dir" "$name" "$((SECONDS - t0))" "${execs:-?}"
		flaky+=("$dir/$name")
	elif [[ $rc -eq 0 ]]; then
		printf '%-40s %-28s ok    %6ss  execs %s\n' "$dir" "$name" "$((SECONDS - t0))" "${execs:-?}"
	else
		printf '%-40s %-28s FAIL  %6ss  execs %s\n' "$dir" "$name" "$((SECONDS - t0))" "${execs:-?}"
		sed 's/^/    /' "$log" | tail -40
		failed+=("$dir/$name")
	fi
	rm -f "$log"
done

echo "fuzz.sh: $ran targets, ${secs}s each, $((SECONDS - start))s in all"
if [[ $ran -eq 0 ]]; then
	echo "fuzz.sh: no target matches '$filter'" >&2
	exit 1
fi
if [[ ${#flaky[@]} -gt 0 ]]; then
	echo "fuzz.sh: flaked (Go's coordinator, no failing input; rerun to fuzz them): ${flaky[*]}" >&2
fi
if [[ ${#failed[@]} -gt 0 ]]; then
	echo "fuzz.sh: FAILED: ${failed[*]}" >&2
	exit 1
fi
