#!/usr/bin/env bash
# Cross-compiles single-file binaries with `deno compile` into dist/:
#   linux x64/arm64, macOS x64/arm64, windows x64.
#
# `deno compile` downloads a runtime base ("denort") for each target from Deno's download
# server. On a machine without that access, only the host target can be built, and only with
# DENORT_BIN pointing at a denort binary of the same Deno version:
#   DENORT_BIN=/path/to/denort scripts/compile.sh x86_64-unknown-linux-gnu
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu x86_64-apple-darwin
    aarch64-apple-darwin x86_64-pc-windows-msvc)
fi
mkdir -p dist
for target in "${targets[@]}"; do
  out="dist/docker-image-pusher-${target}"
  [[ "$target" == *windows* ]] && out="${out}.exe"
  echo "Compiling ${out}"
  deno compile --allow-all --no-check --target "$target" --output "$out" main.ts
done
