#!/usr/bin/env bash
# Checks that the package would publish (`deno publish --dry-run`): exports, types, files.
set -euo pipefail
cd "$(dirname "$0")/.."
deno publish --dry-run --allow-dirty --quiet
