#!/usr/bin/env bash
# Installs what the demo and the tests need on a fresh machine, then builds. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-etcd.sh

# npm ci only when the installed tree is missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "Installing npm packages (npm ci)..."
  npm ci --no-audit --no-fund --loglevel=error
fi

npx tsc -b libs/etcd-discovery apps/greeter apps/gateway
