#!/usr/bin/env bash
# Regenerates the TypeScript SDK's types from the server's own documents:
#   1. web/sdk/openapi.json and web/sdk/asyncapi.json from a server built from this tree
#      (go test ./internal/server -run TestSDKDocuments -update-sdk);
#   2. web/sdk/src/schema.d.ts (REST) and web/sdk/src/ws-schema.d.ts (WebSocket) with the
#      openapi-typescript of web/sdk's lock file.
# Commit web/sdk afterwards: TestSDKDocuments fails while the committed documents are stale.
set -euo pipefail
cd "$(dirname "$0")/.."

go test -count=1 -run '^TestSDKDocuments$' ./internal/server -update-sdk

cd web/sdk
if [ ! -x node_modules/.bin/openapi-typescript ]; then
	npm ci --no-audit --no-fund
fi
npx --no-install openapi-typescript openapi.json -o src/schema.d.ts
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
node gen/asyncapi-to-openapi.mjs asyncapi.json "$tmp/ws-openapi.json"
npx --no-install openapi-typescript "$tmp/ws-openapi.json" -o src/ws-schema.d.ts
echo "gen-sdk: web/sdk regenerated; commit it" >&2
