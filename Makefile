# remotemcp — see README.md. Every target installs what it needs itself.
SHELL := /bin/bash
GO ?= go
STATICCHECK_VERSION ?= v0.8.2

.PHONY: all build release image-check run test test-short test-cluster conformance lint fuzz-short check golden-update clean

all: build

## The version stamped into the binary (remotemcp --version, serverInfo) and
## the release archives' names: the nearest tag, or the commit, and -dirty
## when the work tree has changes; "devel" outside a git checkout.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
BIN ?= bin/remotemcp
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)

## build: bin/remotemcp, statically linked (no cgo, so it runs on a scratch or
## distroless image and on any Linux of its architecture), with the version
## stamped. GOOS/GOARCH cross-compile; BIN names the output.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/remotemcp

## release: dist/remotemcp_<version>_<os>_<arch>.tar.gz (the binary and
## README.md) for each of PLATFORMS, and dist/SHA256SUMS. Needs GNU tar and
## sha256sum (Linux). DIST names the output folder.
PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
DIST ?= dist
release:
	rm -rf $(DIST) && mkdir -p $(DIST)
	set -e; mtime=$$(git log -1 --format=%cI 2>/dev/null || date -u +%FT%TZ); \
	for p in $(PLATFORMS); do \
	  name=remotemcp_$(VERSION)_$${p%/*}_$${p#*/}; \
	  mkdir -p $(DIST)/$$name; \
	  GOOS=$${p%/*} GOARCH=$${p#*/} $(MAKE) --no-print-directory build BIN=$(DIST)/$$name/remotemcp VERSION=$(VERSION) COMMIT=$(COMMIT); \
	  cp README.md $(DIST)/$$name/; \
	  tar -C $(DIST) --sort=name --owner=0 --group=0 --numeric-owner --mtime="$$mtime" -czf $(DIST)/$$name.tar.gz $$name; \
	  rm -rf $(DIST)/$$name; \
	done
	cd $(DIST) && sha256sum *.tar.gz > SHA256SUMS && cat SHA256SUMS

## image-check: builds the container image's runtime stage from make build's
## binary with Debian's podman (installed if missing, as root), runs it
## read-only as uid 65532 and probes /healthz and a tool call (.ci/image.sh).
image-check:
	./.ci/image.sh

.PHONY: helm-check helm-manifests

## helm-check: helm lint and helm template of the chart (deploy/helm) with the
## default and CI values, the rendered objects validated offline, and
## deploy/kubernetes/remotemcp.yaml checked against the chart (.ci/helm.sh;
## builds helm from the Go module proxy into .cache/ the first time).
helm-check:
	./.ci/deps.sh
	./.ci/helm.sh

## helm-manifests: regenerate deploy/kubernetes/remotemcp.yaml from the chart.
helm-manifests:
	./.ci/helm.sh manifests

## run: start the server on 127.0.0.1:8080 with embedded defaults (no Redis): our own
## authorization server in front of the built-in development identity provider.
run:
	$(GO) run ./cmd/remotemcp --auth proxy

## test: every unit, end-to-end and architecture test, with the race detector.
## .ci/deps.sh first installs what the tests use (Debian's chromium and
## redis-server, the Node tools of .ci/npm, the zitadel OP's Go modules), each
## only if missing: go test itself installs nothing.
test:
	./.ci/deps.sh
	$(GO) test -race -count=1 -timeout 30m ./...

## test-cluster: three replicas on one Redis behind HAProxy (round robin, no stickiness),
## real clients in both eras while a replica is killed and another drained, then Redis faults.
test-cluster:
	./.ci/deps.sh
	./.ci/haproxy.sh >/dev/null
	$(GO) test -tags cluster -race -count=1 -timeout 20m -run TestCluster -v ./cmd/remotemcp/

test-short:
	$(GO) test -count=1 ./...

## conformance: the official MCP conformance suite (0.1.16 and 0.2.0-alpha.12).
conformance:
	./.ci/conformance.sh

## lint: go vet, gofmt, and staticcheck.
lint:
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "not gofmt-formatted: $$unformatted"; exit 1; fi
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	$(GO) vet -tags cluster ./cmd/remotemcp/
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) -tags cluster ./cmd/remotemcp/
	$(GO) vet -tags bench ./cmd/remotemcp/
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) -tags bench ./cmd/remotemcp/

## fuzz-short: run each fuzz target for a few seconds.
fuzz-short:
	./.ci/fuzz.sh 5s

check: lint test fuzz-short

golden-update:
	$(GO) test ./mcpserver/ ./wellknown/ ./cmd/remotemcp/ -run Golden -update

clean:
	rm -rf bin dist conformance-results

## ---- benchmarks (bench/README.md) ----
## bench: throughput, latency, memory and Redis round trips of remotemcp side by
## side with the go-sdk's stateless handler and a bare net/http handler, in one
## run (about 22 minutes, 10 of them two 5-minute soaks and 4 two 2-minute
## sustained legacy runs); writes
## bench/results/<date>/report.md and report.json and prints the table.
## BENCHFLAGS passes flags to bench/cmd/mcpbench, e.g. BENCHFLAGS=-soak=1m for a
## quicker run; `go run ./bench/cmd/mcpbench -h` lists them.
.PHONY: bench bench-smoke
bench:
	@command -v redis-server >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }
	$(GO) run ./bench/cmd/mcpbench $(BENCHFLAGS)

## bench-smoke: every phase of make bench, each a second or a few (about two and a half minutes),
## with the report written to a temporary directory: CI runs it so that make bench keeps
## working; its figures mean nothing.
bench-smoke:
	@command -v redis-server >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }
	out=$$(mktemp -d) && $(GO) run ./bench/cmd/mcpbench -rounds 1 -round 1s -warmup 1s -soak 10s -sustain 10s -mem 100 -profile 1s -flows 5 -redis-calls 100 -out $$out && test -s $$out/report.md && test -s $$out/report.json && rm -rf $$out
