#!/usr/bin/env bash
# Installs HAProxy from Debian's packages if it is missing, and prints its
# path (the only line on stdout). Used by `make test-cluster`, whose test
# (cmd/remotemcp/cluster_test.go) runs three replicas behind it.
#
# Bounded in time: apt-get update and install each get a timeout. The
# package's maintainer scripts must not start a system-wide haproxy service
# (the test starts its own, on loopback): where no policy-rc.d forbids it
# already, one is put in place for the install and removed afterwards.
set -euo pipefail
if path=$(command -v haproxy); then
  echo "$path"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "haproxy is not installed and this is not root: apt-get install haproxy" >&2
  exit 1
fi
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
echo "installing haproxy from Debian's packages" >&2
timeout 300 apt-get update -qq >&2
timeout 600 apt-get install -y -qq --no-install-recommends haproxy >&2
path=$(command -v haproxy)
"$path" -v 2>&1 | sed -n 1p >&2  # sed reads it all: no SIGPIPE under pipefail
echo "$path"
