#!/usr/bin/env bash
# Tests the TypeScript SDK (web/sdk) against a real server:
#   npm ci from the lock file; the stale check (the committed OpenAPI/AsyncAPI documents equal the
#   server's: TestSDKDocuments); tsc --noEmit on the sources; then a freshly built nerutalk on a
#   random free port with a temporary data folder, and the Node tests (node --test) against it.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

need_node_major=20
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt "$need_node_major" ]; then
	echo "test-web-sdk: Node >= $need_node_major needed, have $(node --version)" >&2
	exit 1
fi

echo "== web/sdk: npm ci" >&2
(cd web/sdk && npm ci --no-audit --no-fund --loglevel=error)

echo "== web/sdk: generated documents up to date (TestSDKDocuments)" >&2
go test -count=1 -run '^TestSDKDocuments$' ./internal/server

echo "== web/sdk: generated types match the documents" >&2
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
(
	cd web/sdk
	npx --no-install openapi-typescript openapi.json -o "$tmp/schema.d.ts" >/dev/null 2>&1
	node gen/asyncapi-to-openapi.mjs asyncapi.json "$tmp/ws-openapi.json"
	npx --no-install openapi-typescript "$tmp/ws-openapi.json" -o "$tmp/ws-schema.d.ts" >/dev/null 2>&1
	for f in schema.d.ts ws-schema.d.ts; do
		if ! cmp -s "$tmp/$f" "src/$f"; then
			echo "test-web-sdk: web/sdk/src/$f is stale: run scripts/gen-sdk.sh and commit web/sdk" >&2
			exit 1
		fi
	done
)

echo "== web/sdk: tsc --noEmit" >&2
(cd web/sdk && npx --no-install tsc -p tsconfig.json --noEmit)

echo "== web/sdk: build the server" >&2
CGO_ENABLED=0 go build -o "$tmp/nerutalk" ./cmd/nerutalk

port="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
base="http://127.0.0.1:$port"
mkdir -p "$tmp/data"
NERUTALK_ADDR="127.0.0.1:$port" NERUTALK_DATA_DIR="$tmp/data" NERUTALK_RATE_LIMITS=off \
	NERUTALK_ARGON2_MEMORY_KIB=8 NERUTALK_ARGON2_TIME=1 NERUTALK_LOG_LEVEL=warn \
	NERUTALK_CALLS_PROVIDER=p2p NERUTALK_STUN_URLS=stun:stun.example.org:3478 \
	"$tmp/nerutalk" >"$tmp/server.log" 2>&1 &
server_pid=$!
healthy() {
	node -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$base/healthz"
}
for _ in $(seq 1 150); do
	if healthy; then break; fi
	if ! kill -0 "$server_pid" 2>/dev/null; then
		echo "test-web-sdk: the server did not start:" >&2
		cat "$tmp/server.log" >&2
		exit 1
	fi
	sleep 0.1
done
if ! healthy; then
	echo "test-web-sdk: the server is not healthy at $base:" >&2
	cat "$tmp/server.log" >&2
	exit 1
fi

echo "== web/sdk: node tests against $base" >&2
cd web/sdk
rm -rf dist-test
npx --no-install tsc -p tsconfig.test.json
ws_flag=""
if [ "$node_major" -lt 22 ]; then ws_flag="--experimental-websocket"; fi
status=0
NERUTALK_URL="$base" node $ws_flag --test --test-concurrency=1 --test-timeout=60000 dist-test/test/*.test.js || status=$?
if [ "$status" -ne 0 ]; then
	echo "test-web-sdk: tests failed; server log:" >&2
	tail -50 "$tmp/server.log" >&2
fi
exit "$status"
