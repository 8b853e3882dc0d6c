#!/usr/bin/env bash
# Proves the container image without a registry: builds the Dockerfile's
# runtime stage (its last FROM, verbatim but for `--from=build`) with
# Debian's podman, from make build's static binary and this machine's CA
# certificates instead of the golang build stage, which would need a pull.
# Then runs it as the image says (uid 65532, its entrypoint) with a
# read-only root, no capabilities and no new privileges, and checks from
# outside: the process runs as uid 65532, /healthz answers, a tool call
# over MCP creates a note, serverInfo carries the stamped version, and the
# image holds only the binary and the CA bundle.
#
# Needs root (rootful podman; apt-get installs podman and runc if missing)
# and the Go toolchain; curl and jq. Every step is bounded in time.
# `make image-check` runs it; so does .ci/run.
#
# Two concessions to sandboxes like CI's, neither of which changes the
# image: runc rather than Debian 12's crun, which refuses hybrid cgroup
# hierarchies (cgroup v1 with an empty v2 mount); and explicit ulimits no
# higher than this shell's, as podman would otherwise raise them, which
# needs CAP_SYS_RESOURCE.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

missing=()
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "image.sh: missing ${missing[*]} and this is not root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "image.sh: installing ${missing[*]} from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  timeout 300 apt-get update -qq
  timeout 600 apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ -r /etc/ssl/certs/ca-certificates.crt ] || { echo "image.sh: no /etc/ssl/certs/ca-certificates.crt (apt-get install ca-certificates)" >&2; exit 1; }

podman=(timeout 120 podman --runtime runc)
tag=localhost/remotemcp:ci-$$
ctx=$(mktemp -d)
name=remotemcp-ci-$$
cleanup() {
  timeout 30 podman rm -f -t 2 "$name" >/dev/null 2>&1 || true
  timeout 30 podman rmi -f "$tag" >/dev/null 2>&1 || true
  rm -rf "$ctx"
}
trap cleanup EXIT

# The build context mirrors the paths the runtime stage copies from.
version=$(git describe --tags --always --dirty 2>/dev/null || echo devel)
mkdir -p "$ctx/src/bin" "$ctx/etc/ssl/certs"
timeout 600 make -s build BIN="$ctx/src/bin/remotemcp" VERSION="$version" >/dev/null
cp /etc/ssl/certs/ca-certificates.crt "$ctx/etc/ssl/certs/"
awk '/^FROM /{stage=""} {stage=stage $0 "\n"} END{printf "%s", stage}' Dockerfile |
  sed 's/--from=build //' > "$ctx/Containerfile"
grep -q '^FROM scratch' "$ctx/Containerfile" || { echo "image.sh: the Dockerfile's last stage is not FROM scratch" >&2; exit 1; }
"${podman[@]}" build -q --pull=never -t "$tag" -f "$ctx/Containerfile" "$ctx" >/dev/null

user=$("${podman[@]}" image inspect --format '{{.Config.User}}' "$tag")
[ "$user" = 65532:65532 ] || { echo "image.sh: the image runs as $user, want 65532:65532" >&2; exit 1; }
mnt=$("${podman[@]}" image mount "$tag")
files=$(cd "$mnt" && find . -type f -o -type l | sort | tr '\n' ' ')
"${podman[@]}" image unmount "$tag" >/dev/null
want='./etc/ssl/certs/ca-certificates.crt ./remotemcp '
[ "$files" = "$want" ] || { echo "image.sh: the image holds: $files; want: $want" >&2; exit 1; }

# Host network, loopback listener on a free port: --auth none is for
# loopback only, and this way nothing is published beyond the machine.
nofile=$(ulimit -Hn)
"${podman[@]}" run -d --name "$name" --read-only --cap-drop=all --security-opt=no-new-privileges \
  --network host --ulimit "nofile=$nofile:$nofile" --ulimit nproc=4096:4096 \
  "$tag" --listen 127.0.0.1:0 --auth none --log-format json >/dev/null

addr=
for _ in $(seq 100); do
  addr=$(timeout 10 podman logs "$name" 2>/dev/null | jq -r 'select(.msg == "remotemcp listening") | .addr' 2>/dev/null | head -1)
  [ -n "$addr" ] && break
  [ "$(timeout 10 podman inspect --format '{{.State.Running}}' "$name")" = true ] || break
  sleep 0.1
done
if [ -z "$addr" ]; then
  echo "image.sh: the container did not start listening; its log:" >&2
  timeout 10 podman logs "$name" >&2 || true
  exit 1
fi

pid=$(timeout 10 podman inspect --format '{{.State.Pid}}' "$name")
uid=$(awk '/^Uid:/{print $2}' "/proc/$pid/status")
[ "$uid" = 65532 ] || { echo "image.sh: the server runs as uid $uid, want 65532" >&2; exit 1; }

health=$(curl -fsS --max-time 5 "http://$addr/healthz")
[ "$health" = ok ] || { echo "image.sh: /healthz answered $health" >&2; exit 1; }

call='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"notes_create","arguments":{"title":"from the image","body":"written by .ci/image.sh"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}'
answer=$(curl -fsS --max-time 10 "http://$addr/mcp" -H 'Content-Type: application/json' \
  -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2026-07-28' \
  -H 'Mcp-Method: tools/call' -H 'Mcp-Name: notes_create' -d "$call")
title=$(jq -r '.result.structuredContent.title' <<<"$answer")
served=$(jq -r '.result._meta["io.modelcontextprotocol/serverInfo"].version' <<<"$answer")
if [ "$title" != "from the image" ] || [ "$served" != "$version" ]; then
  echo "image.sh: tools/call notes_create answered: $answer (want the note and serverInfo version $version)" >&2
  exit 1
fi

timeout 30 podman stop -t 10 "$name" >/dev/null
echo "image.sh: image ok ($version, uid 65532, read-only root): /healthz, tools/call notes_create"
