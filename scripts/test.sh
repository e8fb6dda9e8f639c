#!/usr/bin/env bash
# The README's test command: install, build, type-check, then every test against real etcd processes.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/prepare.sh
npx tsc -b test
npx vitest run "$@"
