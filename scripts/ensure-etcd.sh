#!/usr/bin/env bash
# Make sure etcd and etcdctl (3.4+) are on PATH; install them on Debian/Ubuntu when running as root.
set -euo pipefail

if command -v etcd >/dev/null 2>&1 && command -v etcdctl >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ -f /etc/debian_version ]; then
  echo "ensure-etcd: installing etcd-server and etcd-client with apt-get" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server etcd-client >/dev/null
  # The package may start etcd as a service on the default ports; tests run their own nodes.
  systemctl stop etcd 2>/dev/null || true
  service etcd stop 2>/dev/null || true
  if ! etcd --version >/dev/null 2>&1; then
    echo "ensure-etcd: etcd was installed but 'etcd --version' fails" >&2
    exit 1
  fi
  exit 0
fi

cat >&2 <<'EOF'
ensure-etcd: etcd 3.4+ (the `etcd` server and `etcdctl`) is required but not on PATH.
  Debian/Ubuntu:  sudo apt-get install -y etcd-server etcd-client
  Other systems:  download an etcd release (https://github.com/etcd-io/etcd/releases)
                  and put the `etcd` and `etcdctl` binaries on PATH.
EOF
exit 1
