#!/usr/bin/env bash
# The README's demo command: a throwaway etcd, three greeters and a gateway, balanced calls and failover.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/prepare.sh
node scripts/demo.mjs
