# locsvc — see README.md. Tools are pinned and installed into ./bin so that
# `make generate` reproduces the committed code byte for byte, offline.

GO          ?= go
BIN         := $(CURDIR)/bin
BUF_VERSION := v1.75.0
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
VERSION     ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X main.version=$(VERSION)
GENERATED   := api/locsvcv1 locsvc/internal/recordpb
FUZZTIME    ?= 10s

export PATH := $(BIN):$(PATH)

.PHONY: all build run test lint generate check-generated tools fuzz bench bench-sip bench-sip-vs bench-overload bench-conns bench-attached bench-scale chaos clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/locsvc ./cmd/locsvc

# A single node on the embedded store; Ctrl-C (SIGINT) or SIGTERM stops it.
run: build
	$(BIN)/locsvc serve --node-id $${LOCSVC_NODE_ID:-node1}

test: lint check-generated
	$(GO) test -race -count=1 ./...

lint: tools
	@out=$$(gofmt -l $$(git ls-files '*.go'; git ls-files --others --exclude-standard '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(BIN)/buf lint

tools: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc

$(BIN)/buf:
	GOBIN=$(BIN) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(BIN)/protoc-gen-go:
	GOBIN=$(BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(BIN)/protoc-gen-go-grpc:
	GOBIN=$(BIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

# Only the generated files go: a package's hand-written doc.go stays.
generate: tools
	for d in $(GENERATED); do [ ! -d $$d ] || find $$d -name '*.pb.go' -delete; done
	$(BIN)/buf generate

# Fails when the generated code in the tree differs from what `make generate`
# would write (generates into a scratch folder and compares; hand-written
# doc.go files are not generated and not compared).
check-generated: tools
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && $(BIN)/buf generate -o $$tmp && \
	for d in $(GENERATED); do \
	  diff -r -x doc.go $$tmp/$$d $$d || { echo "generated code in $$d is stale: run 'make generate' and commit"; exit 1; }; \
	done; echo "generated code is up to date"

# Short runs of every fuzz target (CI runs these too).
# A target that fails with only "context deadline exceeded" and no input
# written is Go's fuzzing coordinator racing its own -fuzztime deadline
# (golang/go#75804, fixed in Go 1.27), not a finding: it runs once more.
# Any other failure, or that one twice, fails the run.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$t"; \
	    out=$$($(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg 2>&1); rc=$$?; echo "$$out"; \
	    if [ $$rc -ne 0 ]; then \
	      if echo "$$out" | grep -q 'context deadline exceeded' && ! echo "$$out" | grep -q 'Failing input written'; then \
	        echo "fuzz $$pkg $$t: the fuzzing engine missed its own deadline (golang/go#75804), not a finding: once more"; \
	        $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	      else exit 1; fi; \
	    fi; \
	  done; \
	done

# Go benchmarks (about 1 min), then the sipp benchmark (7 min budget) so the
# whole run stays under 10 minutes; raw output goes to results/ (not committed).
bench:
	mkdir -p results
	$(GO) test -run '^$$' -bench . -benchmem ./ring/ ./locsvc/... ./internal/mcpipe/ | tee results/go-bench.txt
	$(GO) test -run '^$$' -bench GRPC -benchtime 3000x ./integration/ | tee results/grpc-bench.txt
	$(MAKE) --no-print-directory bench-sip SIPBENCH_FLAGS="-budget 7m $(SIPBENCH_FLAGS)"

# sipp against one locsvc node (3 memcached shards, R=2) and the Kamailio
# reference (integration/bench/kamailio-ref.cfg): highest sustainable
# REGISTER and INVITE->302 rates, under 10 minutes. Needs sipp, memcached and
# kamailio. Table in results/sipbench.md, raw data in results/sipbench-*/.
# SIPBENCH_FLAGS passes more flags (e.g. -step 5s -targets locsvc).
# BASELINE=path/to/old/locsvc also runs that binary the same way, its
# searches interleaved with bin/locsvc's, and the table gives the ratios
# locsvc/baseline (docs/BENCHMARKS.md, SIP path).
bench-sip: build
	mkdir -p results
	$(GO) run ./integration/bench/cmd/sipbench -locsvc $(BIN)/locsvc $(if $(BASELINE),-baseline '$(BASELINE)') -out results $(SIPBENCH_FLAGS)

# bench-sip with BASELINE built from git revision REV (e.g. the last
# release tag): built in a temporary worktree that is removed before the
# run, so the run sees only the two binaries.
bench-sip-vs:
	@test -n '$(REV)' || { echo 'usage: make bench-sip-vs REV=<git revision> [SIPBENCH_FLAGS=...]'; exit 2; }
	tmp=$$(mktemp -d /tmp/locsvc-base.XXXXXX) && \
	trap '[ ! -d "$$tmp/src" ] || git worktree remove --force "$$tmp/src"; rm -rf "$$tmp"' EXIT && \
	git worktree add --detach "$$tmp/src" '$(REV)' && \
	(cd "$$tmp/src" && $(GO) build -ldflags "-X main.version=$$(git describe --always)" -o "$$tmp/locsvc" ./cmd/locsvc) && \
	git worktree remove --force "$$tmp/src" && \
	$(MAKE) --no-print-directory bench-sip BASELINE="$$tmp/locsvc"

# Overload (docs/BENCHMARKS.md, issue 15): one locsvc node (3 memcached
# shards, R=2, overload control at its defaults) and the Kamailio
# reference, each alone on CPU 1 with sipp on CPU 0: capacity C, then
# 1.5x, 2x and 3x C for 20 s with phones that honour Retry-After, then
# 100,000 phones registering at once. Under 10 minutes; needs sipp,
# memcached, kamailio and taskset, and a quiet machine with 2 CPUs or more.
# Table in results/overload.md, figure in results/overload.svg (copy it to
# docs/img/overload.svg to refresh the docs), raw data in
# results/overbench-*/. OVERBENCH_FLAGS passes more flags (e.g. -targets
# locsvc, -locsvc-flags --overload-target=0, -capacity locsvc=6000).
bench-overload: build
	mkdir -p results
	$(GO) run ./integration/bench/cmd/overbench -locsvc $(BIN)/locsvc -out results $(OVERBENCH_FLAGS)

# Connections at scale (docs/BENCHMARKS.md): one locsvc node (embedded
# store, redirect mode) holding 10,000 WebSocket and 10,000 TCP clients,
# each an RFC 5626 outbound flow with keepalives: memory per connection,
# the keepalives' CPU at idle, the REGISTER refresh rate sustained
# meanwhile. About 5 minutes; needs no other tool, but about 22,000 file
# descriptors for itself and the node (it raises RLIMIT_NOFILE for both,
# which takes root where the hard limit is lower). Not part of `make bench`.
# The node takes at most 8192 connections per transport (docs/limits.md),
# so until that bound can be raised the default run stops at its start;
# CONNBENCH_FLAGS='-ws 8000 -tcp 8000' fits under it.
# Table in results/connbench.md, raw data in results/connbench-*/.
# CONNBENCH_FLAGS passes more flags (e.g. -ws 1000 -tcp 1000 -idle 20s).
bench-conns: build
	mkdir -p results
	$(GO) run ./integration/bench/cmd/connbench -locsvc $(BIN)/locsvc -out results $(CONNBENCH_FLAGS)

# The attached deployment as an operator compares it (docs/BENCHMARKS.md,
# "Attached deployment"): A, a Kamailio edge running
# integration/kamailio/sip-style.cfg in front of 2 locsvc nodes (each on
# its own memcached, R=2, redirect mode), against B, 2 Kamailio nodes
# replicating usrloc with dmq_usrloc (integration/bench/kamailio-dmq.cfg),
# the same sipp load to each: sustainable REGISTER and INVITE rates and
# their ratio A/B, the shared memory each Kamailio holds per transaction,
# the edge's -m for a REGISTER rate and a check of it at -m 64. Under 10
# minutes; needs sipp, memcached, kamailio and kamcmd. Table in
# results/attachbench.md, raw data in results/attachbench-*/.
# ATTACHBENCH_FLAGS passes more flags (e.g. -requests register -budget 4m).
bench-attached: build
	mkdir -p results
	$(GO) run ./integration/bench/cmd/attachbench -locsvc $(BIN)/locsvc -out results $(ATTACHBENCH_FLAGS)

# Scale (docs/BENCHMARKS.md, "Scale"): 16 nodes, each with its own
# memcached on a host of its own (network namespaces on one bridge, so it
# needs root and ip), R=2: gossip convergence, failure detection, a third
# of the hosts split off and healed, ownership balance, records repair
# copies to a joining node, idle CPU and memory per node, and bytes per
# binding (docs/capacity.md). About 3 minutes; not part of `make bench`.
# SCALEBENCH_FLAGS passes more flags (e.g. -n 32). Table in
# results/scalebench.md, raw data in results/scalebench-*/.
bench-scale: build
	mkdir -p results
	$(GO) run ./integration/bench/cmd/scalebench -locsvc $(BIN)/locsvc -out results $(SCALEBENCH_FLAGS)

# The long chaos test: 3 nodes and 3 memcached shards (R=2) under sipp
# REGISTER and INVITE load for a few minutes while a memcached and then a
# node are killed (-9) and restarted; no lost registration, no failed
# lookup, R restored within 30 s. (`make test` runs a short version.) Needs
# sipp and memcached. Table in results/chaos.md.
chaos:
	mkdir -p results
	$(GO) test -count=1 -run '^TestChaos$$' -v -timeout 30m ./integration/ -args -chaos.long -chaos.out $(CURDIR)/results/chaos.md

clean:
	rm -rf $(BIN) results
