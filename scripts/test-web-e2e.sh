#!/usr/bin/env bash
# The web client's journey in a real browser (issue 18): npm ci in web/e2e from its lock file
# (playwright-core and axe-core; no browser download: Debian's chromium is used), a freshly built
# nerutalk on a random free port with a temporary data folder, the peer-to-peer call provider
# and no rate limits, then web/e2e/journey.test.js (node --test) with two browser contexts.
# Screenshots stay in web/e2e/artifacts/ (and the server's log as server.log there on failure).
# Needs /usr/bin/chromium (apt-get install chromium) or CHROMIUM_PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
	echo "test-web-e2e: no Chromium at $chromium: apt-get install -y chromium (or set CHROMIUM_PATH)" >&2
	exit 1
fi

echo "== web/e2e: npm ci" >&2
(cd web/e2e && npm ci --no-audit --no-fund --loglevel=error)

tmp="$(mktemp -d)"
server_pid=""
cleanup() {
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "== web/e2e: build the server" >&2
CGO_ENABLED=0 go build -o "$tmp/nerutalk" ./cmd/nerutalk

port="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
base="http://127.0.0.1:$port"
mkdir -p "$tmp/data"
NERUTALK_ADDR="127.0.0.1:$port" NERUTALK_DATA_DIR="$tmp/data" NERUTALK_RATE_LIMITS=off \
	NERUTALK_CALLS_PROVIDER=p2p NERUTALK_LOG_LEVEL=warn \
	"$tmp/nerutalk" >"$tmp/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 200); do
	if curl -fsS "$base/readyz" >/dev/null 2>&1; then break; fi
	if ! kill -0 "$server_pid" 2>/dev/null; then
		echo "test-web-e2e: the server did not start:" >&2
		cat "$tmp/server.log" >&2
		exit 1
	fi
	sleep 0.1
done
curl -fsS "$base/readyz" >/dev/null

echo "== web/e2e: the journey in $("$chromium" --version 2>/dev/null | head -n 1) against $base" >&2
rm -rf web/e2e/artifacts
mkdir -p web/e2e/artifacts
status=0
(cd web/e2e && NERUTALK_E2E_URL="$base" NERUTALK_E2E_FRESH=1 CHROMIUM_PATH="$chromium" node --test --test-concurrency=1 journey.test.js) || status=$?
cp "$tmp/server.log" web/e2e/artifacts/server.log
if [ "$status" -ne 0 ]; then
	echo "test-web-e2e: the journey failed; screenshots in web/e2e/artifacts/; the server's log ends with:" >&2
	tail -30 "$tmp/server.log" >&2
fi
echo "test-web-e2e: $(( $(date +%s) - started )) s" >&2
exit "$status"
