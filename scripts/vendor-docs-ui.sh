#!/usr/bin/env bash
# vendor-docs-ui.sh: install the pinned renderer of the /docs API reference (Swagger UI, from
# web/docs-ui/package-lock.json, with `npm ci`) in a temporary folder and copy its built files
# into internal/httpapi/docsui, which the binary embeds. The Go build never needs Node; run this
# after changing the version in web/docs-ui (see CONTRIBUTING.md). CI runs it and fails when the
# committed files differ from what the lock file gives.
#
# Needs npm and the npm registry. Install scripts are not run (--ignore-scripts): swagger-ui-dist
# depends on @scarf/scarf, whose only job is an install-time analytics call.
set -euo pipefail
cd "$(dirname "$0")/.."

src=web/docs-ui
dst=internal/httpapi/docsui

command -v npm >/dev/null || { echo "vendor-docs-ui: npm is needed (apt-get install -y npm)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$src/package.json" "$src/package-lock.json" "$tmp/"
(cd "$tmp" && SCARF_ANALYTICS=false npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)

pkg="$tmp/node_modules/swagger-ui-dist"
version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$pkg/package.json" | head -n 1)
mkdir -p "$dst"
# The source maps are not shipped, so the comments that point at them go.
sed '/^\/[/*]# sourceMappingURL=/d' "$pkg/swagger-ui-bundle.js" >"$dst/swagger-ui-bundle.js"
sed '/^\/[/*]# sourceMappingURL=/d' "$pkg/swagger-ui.css" >"$dst/swagger-ui.css"
cat "$pkg/LICENSE" "$pkg/NOTICE" >"$dst/swagger-ui.LICENSE"
printf 'swagger-ui-dist %s\n' "$version" >"$dst/VERSION"

echo "vendored swagger-ui-dist $version into $dst:"
ls -l "$dst/swagger-ui-bundle.js" "$dst/swagger-ui.css" | awk '{print "  " $9 ": " $5 " bytes"}'
