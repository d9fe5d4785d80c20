#!/usr/bin/env bash
# Kept for old habits: the release task builds the single-file `deno compile` executables
# (where `deno compile` can download its runtime base) beside the kits, into dist/release/.
#   scripts/compile.sh [TARGET]...   is   deno task release [--target TARGET]...
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
for target in "$@"; do args+=(--target "$target"); done
exec deno run -A scripts/release.ts ${args[@]+"${args[@]}"}
