#!/usr/bin/env bash
# Runs the official MCP conformance suite against remotemcp:
#   @modelcontextprotocol/conformance@0.1.16, default (active) and pending suites
#   @modelcontextprotocol/conformance@0.2.0-alpha.12 --requirements 2025-11-25 and 2026-07-28
# The server runs with --fixtures conformance --auth none on a free loopback
# port. Fails if any scored scenario fails, or if a pending scenario that the
# server implements (server-sse-polling, json-schema-2020-12, the SEP-2243
# header scenarios) fails. Writes a summary to conformance-results/summary.txt.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
n22=$(.ci/npm-tools.sh)
mods="$root/.cache/npm/node_modules"
out="$root/conformance-results"
rm -rf "$out" && mkdir -p "$out"

go build -o bin/remotemcp ./cmd/remotemcp
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# Every scenario of every run is the one anonymous user, opening hundreds
# of sessions within their lifetime: past the per-user default (100).
bin/remotemcp --listen "127.0.0.1:$port" --auth none --fixtures conformance --log-level warn \
  --max-sessions-per-user 100000 >"$out/server.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
url="http://localhost:$port/mcp" # dns-rebinding-protection needs a localhost URL

fail=0
run() { # name, package dir, args...
  local name=$1 pkg=$2; shift 2
  echo "== conformance $name"
  if (cd "$out" && timeout 600 "$n22" "$mods/$pkg/dist/index.js" server --url "$url" -o "$out/$name" "$@") >"$out/$name.txt" 2>&1; then
    rc=0
  else
    rc=$?
  fi
  sed -n '/=== SUMMARY ===/,$p' "$out/$name.txt" | tee -a "$out/summary.txt"
  if [ "$rc" -ne 0 ]; then echo "FAILED: $name (exit $rc)"; fail=1; fi
}
need_pass() { # file, scenario...: a pending scenario we implement must pass
  local file=$1; shift
  for s in "$@"; do
    if ! grep -Eq "✓ $s( |:)" "$out/$file.txt"; then
      echo "FAILED: pending scenario $s did not pass in $file"; fail=1
    fi
  done
}

run v0.1.16 conformance-0.1.16
run v0.1.16-pending conformance-0.1.16 --suite pending
run alpha12-2025-11-25 conformance-alpha --requirements 2025-11-25
need_pass alpha12-2025-11-25 server-sse-polling json-schema-2020-12 server-session-lifecycle
run alpha12-2026-07-28 conformance-alpha --requirements 2026-07-28
need_pass alpha12-2026-07-28 json-schema-2020-12 http-header-validation http-custom-header-server-validation

# Count every check across all scenario results.
python3 - "$out" <<'PY' | tee -a "$out/summary.txt"
import json, pathlib, sys, collections
out = pathlib.Path(sys.argv[1])
for run in sorted(p for p in out.iterdir() if p.is_dir()):
    counts = collections.Counter(); scen = collections.Counter()
    for f in run.glob("*/checks.json"):
        checks = json.loads(f.read_text())
        statuses = collections.Counter(c.get("status") for c in checks)
        counts.update(statuses)
        scen["failed" if statuses.get("FAILURE") else "passed"] += 1
    print(f"{run.name}: scenarios {scen['passed']} passed, {scen['failed']} with failures; checks {dict(counts)}")
PY
exit $fail
