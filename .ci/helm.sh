#!/usr/bin/env bash
# Checks the Helm chart (deploy/helm/remotemcp) without a cluster:
#   .ci/helm.sh            helm lint --strict and helm template with the default
#                          values and each CI values file, the rendered objects
#                          decoded strictly into the Kubernetes API types and
#                          checked against each other (.ci/helmcheck), the refusals
#                          tested, the rendered container run with the real
#                          binary (args, env, mounted files) until its probes
#                          answer, and deploy/kubernetes/remotemcp.yaml compared
#                          with a fresh rendering;
#   .ci/helm.sh manifests  rewrites deploy/kubernetes/remotemcp.yaml from the chart.
# Helm is built from the Go module proxy into .cache/helm (once, a few minutes).
# There is no API server here, so no server-side validation or admission.
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=v4.3.2
dir=$PWD/.cache/helm/$HELM_VERSION
HELM=$dir/helm
if [ ! -x "$HELM" ]; then
	echo "building helm $HELM_VERSION from the Go module proxy into $dir"
	GOBIN=$dir timeout 1200 go install "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
fi
export HELM
# Keep helm's own files in the cache, not in $HOME.
export HELM_CACHE_HOME=$PWD/.cache/helm/home/cache HELM_CONFIG_HOME=$PWD/.cache/helm/home/config HELM_DATA_HOME=$PWD/.cache/helm/home/data

chart=deploy/helm/remotemcp
manifests=deploy/kubernetes/remotemcp.yaml

render_manifests() {
	cat <<'HEADER'
# GENERATED from the Helm chart deploy/helm/remotemcp with
# deploy/kubernetes/values.yaml by `make helm-manifests`: do not edit (CI
# checks that it is up to date). Three replicas of --auth proxy sharing
# Redis; the Secret "remotemcp" (secret.example.yaml) holds the keys, the
# Redis URL and the upstream client. See deploy/README.md.
HEADER
	timeout 60 "$HELM" template remotemcp "$chart" -f deploy/kubernetes/values.yaml
}

if [ "${1:-}" = manifests ]; then
	render_manifests > "$manifests"
	echo "wrote $manifests"
	exit 0
fi

"$HELM" version --short
timeout 60 "$HELM" lint --strict "$chart"
for values in "$chart"/ci/*-values.yaml deploy/kubernetes/values.yaml; do
	timeout 60 "$HELM" lint --strict "$chart" -f "$values"
done
timeout 60 "$HELM" template remotemcp "$chart" > /dev/null
for values in "$chart"/ci/*-values.yaml; do
	timeout 60 "$HELM" template remotemcp "$chart" -f "$values" > /dev/null
done

if ! diff -u "$manifests" <(render_manifests); then
	echo "$manifests is out of date with the chart: run make helm-manifests" >&2
	exit 1
fi

# The binary the pod-start test runs the rendered container with.
REMOTEMCP_BIN=$PWD/.cache/helm/remotemcp
timeout 600 go build -o "$REMOTEMCP_BIN" ./cmd/remotemcp
export REMOTEMCP_BIN
(cd .ci/helmcheck && timeout 300 go test -count=1 ./...)
