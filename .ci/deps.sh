#!/usr/bin/env bash
# Installs what the tests use but never install themselves, each part only if
# it is missing or stale, so a rerun costs about a second. `make test` (and
# `make test-cluster`) run it before go test; .ci/run too. Run it yourself
# before a bare `go test ./...` on a fresh machine.
#
#   - Debian's chromium (cmd/remotemcp/consent_browser_test.go drives it) and
#     redis-server (internal/redistest starts it), with apt-get, as root;
#   - the pinned Node tools of .ci/npm into .cache/npm (.ci/npm-tools.sh);
#   - the zitadel example OP (testdata/upstream/zitadel), its Go modules
#     downloaded and the binary built into .cache/zitadelop/zitadelop, where
#     cmd/remotemcp/upstream_test.go finds it up to date (its own go build
#     there runs offline and only relinks after a change to the OP's source).
#
# Bounded in time: apt-get update and install each get a timeout. The
# packages' maintainer scripts must not start a system-wide redis-server
# (the tests start their own, on loopback): where no policy-rc.d forbids it
# already, one is put in place for the install and removed afterwards.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v redis-server >/dev/null || missing+=(redis-server)
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages and this is not root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  echo "installing ${missing[*]} from Debian's packages" >&2
  timeout 300 apt-get update -qq
  timeout 900 apt-get install -y -qq "${missing[@]}"
fi

"$root/.ci/npm-tools.sh" >/dev/null

mkdir -p "$root/.cache/zitadelop"
# Its own go.mod and go.sum, never a go.work of the caller's; -mod=readonly
# so a stale go.sum fails instead of being rewritten; no VCS stamping, which
# would look at our repository. The test builds with the same flags.
(cd "$root/testdata/upstream/zitadel" &&
  GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false" go build -o "$root/.cache/zitadelop/zitadelop" .)
