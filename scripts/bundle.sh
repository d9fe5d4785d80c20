#!/usr/bin/env bash
# Builds dist/docker-image-pusher.js: one JavaScript file with every dependency inlined.
# Run it with `deno run -A dist/docker-image-pusher.js …` (needs no network, no node_modules).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-dist/docker-image-pusher.js}"
mkdir -p "$(dirname "$out")"
deno bundle --platform deno --quiet -o "$out" main.ts
echo "$out"
