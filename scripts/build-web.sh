#!/usr/bin/env bash
# Builds the web client (web/app) into internal/webui/dist, which the Go binary embeds.
# The output is committed: the Go build never needs Node. CI runs this and fails when
# `git status --porcelain -- internal/webui/dist` is not empty (assets differ from sources).
set -euo pipefail
cd "$(dirname "$0")/../web/app"
npm ci --no-audit --no-fund --loglevel=error
npx tsc --noEmit          # type-check the app and the SDK sources it imports (vite only strips types)
npx vite build --logLevel warn
cd ../../internal/webui/dist
js=$(cat assets/*.js | gzip -9 | wc -c)
echo "built internal/webui/dist: $(find . -type f | wc -l) files, JS $js bytes gzipped"
if [ "$js" -gt 40960 ]; then
  echo "build-web: the gzipped JavaScript is over 40 KB ($js bytes)" >&2
  exit 1
fi
