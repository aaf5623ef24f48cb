# poddns — build, test and developer targets. `make` (or `make help`) lists them.
# `make test` is THE test command: README and CI (.ci/run) run exactly it.

GO        ?= go
FUZZTIME  ?= 20s
FUZZTOTAL ?=

# Absolute, so tests find the binaries from any package directory.
ENVTEST_ASSETS := $(CURDIR)/bin/envtest

SHELL       := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
# deps must finish before envtest-assets looks for etcd; keep every goal in order.
.NOTPARALLEL:
.SUFFIXES:
MAKEFLAGS += --no-builtin-rules

# Go test files outside bin/, .git/ and testdata/ (for the golden finder).
FIND_TEST_GO = grep -rlE --include='*_test.go' --exclude-dir=.git --exclude-dir=bin --exclude-dir=testdata

.PHONY: help
help: ## List the targets
	@echo 'usage: make <target>   (variables: GO=$(GO) FUZZTIME=$(FUZZTIME))'
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_.-]+:.*## / {printf "  %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the programs into bin/
	$(GO) build -o bin/ ./cmd/...

.PHONY: manifests
manifests: ## Render deploy/base and every deploy/overlays/* into bin/manifests/<name>.yaml (kustomize's Go API)
	$(GO) run ./hack/manifests -deploy deploy -o bin/manifests

IMAGES ?=

.PHONY: images
images: coredns ## Write OCI image archives of webhook, dnsd, pause, coredns and the test clients (client-glibc, client-musl) into bin/images/ without a container engine (IMAGES=dnsd for one)
	GO=$(GO) $(GO) run ./hack/images -o bin/images $(IMAGES)

DNSD_LISTEN ?= 127.0.0.1:5353

.PHONY: run
run: build ## Build, render the example pods offline, then serve testdata/cluster.yaml with bin/dnsd (foreground; Ctrl-C stops)
	bin/webhook render -p testdata/policies -f testdata/pods/examples.yaml -f testdata/pods/namespaces.yaml
	@echo "dnsd: serving testdata/cluster.yaml on $(DNSD_LISTEN); try: dig @$(firstword $(subst :, ,$(DNSD_LISTEN))) -p $(lastword $(subst :, ,$(DNSD_LISTEN))) web.default.svc.cluster.local"
	bin/dnsd --source testdata/cluster.yaml --listen $(DNSD_LISTEN)

.PHONY: deps
deps: ## Install the Debian packages the tests need (apt-get; instant when present)
	hack/install-deps.sh

.PHONY: envtest-assets
envtest-assets: ## Build/link kube-apiserver and etcd into bin/envtest (cached in ~/.cache/poddns)
	GO=$(GO) hack/envtest-assets.sh

.PHONY: node-assets
node-assets: ## Build/link kubelet, kube-controller-manager, kube-scheduler and kube-proxy into bin/node (one go build, cached in ~/.cache/poddns)
	GO=$(GO) hack/node-assets.sh

.PHONY: e2e-cluster
e2e-cluster: deps envtest-assets node-assets images ## The one-node cluster tests (internal/rig, test/cluster: deploy/ end to end; build tag e2ecluster; root); KEEP_RIG=1 keeps the cluster up
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) $(GO) test -tags e2ecluster -count=1 -timeout 30m -v ./internal/rig/... ./test/cluster/...

.PHONY: coredns
coredns: ## Build/link CoreDNS (the differential test's and bench-dns's peer) into bin/coredns (cached in ~/.cache/poddns)
	GO=$(GO) hack/coredns.sh

.PHONY: test
test: deps envtest-assets coredns ## THE test command (README, CI): every test against real parts, then e2e-cluster
	$(GO) build ./...
	@# The example policy suite and the one shipped in deploy/, as a policy
	@# repository's CI runs them.
	$(GO) run ./cmd/webhook test testdata/policies/suite
	$(GO) run ./cmd/webhook test deploy/policies/suite
	@# Node pools: a NodeProfileSet where one pool truncates a policy.
	$(GO) run ./cmd/webhook test testdata/pools
	$(MAKE) --no-print-directory kubelet-diff
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) $(GO) test -count=1 -timeout 30m ./...
	@# Last: the one-node cluster (its own target and build tag, so that
	@# `go test ./...` stays as it is).
	$(MAKE) --no-print-directory e2e-cluster

.PHONY: e2e
e2e: deps envtest-assets ## Only the end-to-end tests with real clients (needs root)
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) $(GO) test -count=1 -run 'E2E' ./...

.PHONY: kubelet-diff
kubelet-diff: ## Compare pkg/resolvconf with kubelet v1.37.2's own code (separate module)
	cd hack/kubeletdiff && $(GO) test -count=1 ./...

.PHONY: bench
bench: bench-dns bench-webhook bench-report ## The full benchmark report: bench-dns, bench-webhook, then bench-report (bench/README.md)

.PHONY: bench-go
bench-go: ## Go microbenchmarks of ./pkg/... (go test -bench)
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/...

.PHONY: bench-dns
bench-dns: deps envtest-assets coredns ## dnsd vs CoreDNS vs unbound at a cluster scale (PODDNS_BENCH_SCALE=tiny|small|default|large; root); JSON in bench/results/
	@command -v unbound >/dev/null || { [ "$$(id -u)" = 0 ] && { DEBIAN_FRONTEND=noninteractive apt-get install -y unbound || \
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y unbound; }; }; } || echo 'bench-dns: unbound missing (apt-get install unbound as root)' >&2
	@mkdir -p bench/results
	PODDNS_BENCH_OUT=$(CURDIR)/bench/results/dns-$$(date -u +%Y%m%dT%H%M%SZ).json KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) \
		$(GO) test -count=1 -timeout $(or $(PODDNS_BENCH_TIMEOUT),150m) -v -run '^TestBenchDNS$$' ./test/bench

.PHONY: bench-fill
bench-fill: envtest-assets ## Only the fill of bench-dns's control plane (PODDNS_BENCH_SCALE, one scale): its rate, CPU and API latency in the log, no results file
	PODDNS_BENCH_FILL=$(or $(PODDNS_BENCH_SCALE),default) KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) \
		$(GO) test -count=1 -timeout $(or $(PODDNS_BENCH_TIMEOUT),150m) -v -run '^TestBenchFill$$' ./test/bench

.PHONY: bench-webhook
bench-webhook: ## HTTPS AdmissionReviews over loopback at 100/500/1000 req/s with 1/50/200 policies, 3 rounds; server and client pinned apart; JSON in bench/results/ (WEBHOOK_LOAD=5s per cell and round)
	@mkdir -p bench/results
	PODDNS_BENCH_WEBHOOK=$(or $(WEBHOOK_LOAD),5s) PODDNS_BENCH_WEBHOOK_OUT=$(CURDIR)/bench/results/webhook-$$(date -u +%Y%m%dT%H%M%SZ).json \
		$(GO) test -count=1 -timeout 20m -v -run '^TestAdmissionLoad$$' ./pkg/policy/admission

.PHONY: bench-report
bench-report: ## BENCHMARKS.md and SVG plots (bench/results/plots) from the newest dns-*.json and webhook-*.json
	$(GO) run ./bench/report

.PHONY: fuzz
fuzz: ## Run every Fuzz* target of every package (pkg/, cmd/, internal/, test/, hack/ modules) for FUZZTIME each, or FUZZTOTAL (e.g. 60m) spread over them
	GO=$(GO) FUZZTIME=$(FUZZTIME) FUZZTOTAL=$(FUZZTOTAL) hack/fuzz.sh

.PHONY: lint
lint: ## gofmt must list nothing; go vet
	@files=$$(find . -name '*.go' -not -path './.git/*' -not -path './bin/*' -not -path '*/testdata/*'); \
	unformatted=$$(gofmt -l $$files); \
	if [ -n "$$unformatted" ]; then echo "gofmt -l lists (run gofmt -w):"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2ecluster ./internal/rig/... ./test/cluster/...

.PHONY: update-golden
update-golden: ## Rewrite golden files (the one -update flag, internal/golden); review the diff
	@pkgs=$$($(FIND_TEST_GO) 'poddns/internal/golden"' . | xargs -r -n1 dirname | sort -u); \
	if [ -z "$$pkgs" ]; then echo 'update-golden: no package uses internal/golden'; exit 0; fi; \
	echo "update-golden: $$pkgs"; \
	$(GO) test -count=1 $$pkgs -run . -args -update

.PHONY: clean
clean: ## Remove bin/ (the kube-apiserver cache in ~/.cache/poddns stays)
	rm -rf bin/
