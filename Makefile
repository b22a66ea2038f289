# Developer entry points. GNU make.
#
#   make run      the whole service on this machine: Postgres, Temporal dev server, worker, API
#   make test     vet and every test, end-to-end and fault-injection ones included (needs no `make run`; runs beside it)
#   make test-faults       only the fault-injection suite (internal/testkit/faults), verbose
#   make record-histories  record the workflow histories that workflows/replay_test.go replays
#   make cluster  the production topology: a Temporal server on Postgres, two workers, two APIs behind one address
#   make test-cluster      the end-to-end and fault suites on that topology, and its own fault tests
#   make bench    the service measured against raw Temporal: docs/benchmarks.md, test-artifacts/bench.txt
#   make build    compile everything, binaries into .bin/
#   make generate          regenerate the Go client (client/) and the portal's TypeScript types from the OpenAPI document
#   make lint-openapi      Redocly's lint of server/api/openapi.yaml (part of make test, with check-generated)
#   make clean    remove .bin, .data and test-artifacts

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

GO ?= go
BIN := $(CURDIR)/.bin
# Keep equal to devstack.TemporalCLIVersion: later tags carry replace directives and do not build
# with go install.
TEMPORAL_CLI_VERSION := v1.5.1
TEMPORAL_CLI := $(BIN)/temporal
# make cluster's Temporal: the server, its SQL schema tool and the UI server at the versions the
# pinned CLI embeds (`temporal --version`); keep equal to devstack.TemporalServerVersion and
# devstack.TemporalUIVersion.
TEMPORAL_SERVER_VERSION := v1.29.1
TEMPORAL_UI_VERSION := v2.42.1
WORKFLOWCHECK_VERSION := v0.6.0
WORKFLOWCHECK := $(BIN)/workflowcheck

.PHONY: cluster cluster-binaries test-cluster test-cluster-e2e run test test-faults record-histories bench build temporal-cli workflowcheck chromium prometheus fuzz postgres deps clean openapi-tools lint-openapi generate check-generated

deps: postgres temporal-cli

postgres:
	bash deploy/dev/ensure-postgres.sh

# About 4 minutes on a cold Go build cache, so only when missing.
temporal-cli:
	test -x $(TEMPORAL_CLI) || GOBIN=$(BIN) $(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION)

# go-install-as NAME PACKAGE@VERSION installs one binary as .bin/NAME, only when missing (the
# server and the UI server are both called "server").
define go-install-as
	test -x $(BIN)/$(1) || { d=$$(mktemp -d); GOBIN=$$d $(GO) install $(2) && mkdir -p $(BIN) && mv $$d/* $(BIN)/$(1); rm -rf $$d; }
endef

# About 3 minutes on a cold build cache, the three together.
cluster-binaries:
	$(call go-install-as,temporal-server,go.temporal.io/server/cmd/server@$(TEMPORAL_SERVER_VERSION))
	$(call go-install-as,temporal-sql-tool,go.temporal.io/server/cmd/tools/sql@$(TEMPORAL_SERVER_VERSION))
	$(call go-install-as,temporal-ui-server,github.com/temporalio/ui-server/v2/cmd/server@$(TEMPORAL_UI_VERSION))

# Temporal's determinism checker for workflow code (map iteration, wall-clock time, goroutines...).
workflowcheck:
	test -x $(WORKFLOWCHECK) || GOBIN=$(BIN) $(GO) install go.temporal.io/sdk/contrib/tools/workflowcheck@$(WORKFLOWCHECK_VERSION)

# Debian's Chromium, for the page tests (headless, driven with chromedp).
chromium:
	command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

# Debian's Prometheus and promtool, for checking the shipped rules and scrape config.
prometheus:
	command -v promtool >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y prometheus)

# Each fuzz target runs for a number of executions on top of its committed corpus
# (testdata/fuzz): counts rather than a duration, because go1.26's fuzz coordinator can fail a
# duration-bounded run at its deadline with a bare "context deadline exceeded" and no failing
# input (golang/go#75804, fixed in Go 1.27). Each count is a few seconds on this machine;
# FUZZTIME=30s (or 500000x) overrides them all, for a longer local run.
FUZZTIME ?=
FUZZ_TARGETS := ./internal/invitetoken:FuzzVerify:60000x ./internal/codec:FuzzDecode:8000x ./internal/password:FuzzCheck:25000x ./server/api:FuzzCreateInvitationBody:25x ./server/api:FuzzNameBody:700x ./server/api:FuzzSubscriptionBody:2500x ./server/api:FuzzAcceptBody:2500x ./server/api:FuzzDeclineBody:900x ./server/api:FuzzInviteeRequests:25x ./server/bearer:FuzzBearerToken:100000x ./server/api:FuzzCodecBody:350x
# deploy/dev/fuzz.sh runs them; a target that fails without writing a failing input (the
# coordinator race above, or a fuzz worker whose TestMain could not start its stack) runs once more.
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) bash deploy/dev/fuzz.sh $(FUZZ_TARGETS)

# The OpenAPI document's tools. Redocly CLI (the lint) and openapi-typescript (the portal's types)
# are pinned in tools/openapi/package-lock.json and installed by npm ci, again only when the lock
# changes; oapi-codegen (the Go client) is a tool of go.mod, run by go tool.
OPENAPI := server/api/openapi.yaml
OPENAPI_BIN := tools/openapi/node_modules/.bin
openapi-tools: tools/openapi/node_modules/.package-lock.json
tools/openapi/node_modules/.package-lock.json: tools/openapi/package-lock.json tools/openapi/package.json
	cd tools/openapi && npm ci --no-audit --no-fund --loglevel=error

# The recommended ruleset (tools/openapi/redocly.yaml): errors fail, warnings are printed.
lint-openapi: openapi-tools
	$(OPENAPI_BIN)/redocly lint --config tools/openapi/redocly.yaml --format=stylish $(OPENAPI) 2>&1 | grep -v '[║╔╚]'

# gen-openapi DIR writes DIR/onboarding.gen.go and DIR/typescript/onboarding.d.ts.
define gen-openapi
	mkdir -p $(1)/typescript
	$(GO) tool oapi-codegen -config client/oapi-codegen.yaml -o $(1)/onboarding.gen.go $(OPENAPI)
	$(OPENAPI_BIN)/openapi-typescript $(OPENAPI) --redocly tools/openapi/redocly.yaml -o $(1)/typescript/onboarding.d.ts
endef

generate: openapi-tools
	$(call gen-openapi,client)

# Regenerates into a temporary directory and fails when the committed files differ from it.
GENERATED_CHECK := $(shell mktemp -u -d /tmp/onboarding-generated.XXXXXX)
check-generated: openapi-tools
	$(call gen-openapi,$(GENERATED_CHECK))
	diff -u client/onboarding.gen.go $(GENERATED_CHECK)/onboarding.gen.go || { rm -rf $(GENERATED_CHECK); echo 'client/onboarding.gen.go is stale: run make generate' >&2; exit 1; }
	diff -u client/typescript/onboarding.d.ts $(GENERATED_CHECK)/typescript/onboarding.d.ts || { rm -rf $(GENERATED_CHECK); echo 'client/typescript/onboarding.d.ts is stale: run make generate' >&2; exit 1; }
	rm -rf $(GENERATED_CHECK)

# Built, then run, rather than `go run`: go run exits 1 on Ctrl-C even when the program stops cleanly.
run: deps
	$(GO) build -o $(BIN)/onboarding-dev ./internal/devstack/cmd/onboarding-dev
	$(BIN)/onboarding-dev

# The production topology on this machine (internal/devstack/cmd/onboarding-dev/cluster.go): a
# Temporal server of four processes on Postgres, two workers, two APIs behind a load balancer on
# HTTP_ADDR, the Temporal UI; a replica that exits is started again. State in .data/cluster/.
cluster: postgres cluster-binaries
	$(GO) build -o $(BIN)/onboarding-dev ./internal/devstack/cmd/onboarding-dev
	$(BIN)/onboarding-dev -cluster

# The end-to-end (webhooks included) and fault suites on a Temporal cluster on Postgres, with two
# worker and two API replicas behind a load balancer, then the cluster's own tests
# (internal/testkit/cluster: make cluster's processes, replicas and Temporal services killed).
# test-cluster-e2e is its first part alone, without the fault suite. CI (.ci/run) runs it all.
CLUSTER_SUITES := ./internal/testkit/e2e ./internal/testkit/cluster
test-cluster: test-cluster-e2e
	TEST_TEMPORAL=cluster TEMPORAL_CLI=$(TEMPORAL_CLI) $(GO) test -race -count=1 -timeout 30m $(FAULTS)

test-cluster-e2e: deps cluster-binaries chromium prometheus
	TEST_TEMPORAL=cluster TEMPORAL_CLI=$(TEMPORAL_CLI) $(GO) test -race -count=1 -timeout 40m $(CLUSTER_SUITES)

# Tests start their own Temporal dev servers on free ports and use their own databases, so they
# never meet a running `make run`. The fault suite runs after the others, on its own: its faults
# are timed (a connection killed every 20 ms, a process stopped mid-activity), and on two cores
# another package's stack beside it would stretch every step it times.
FAULTS := ./internal/testkit/faults
test: deps workflowcheck chromium prometheus lint-openapi check-generated
	$(GO) vet ./...
	$(WORKFLOWCHECK) ./workflows/...
	TEMPORAL_CLI=$(TEMPORAL_CLI) $(GO) test -race -count=1 -timeout 40m $$($(GO) list ./... | grep -v -e '/internal/testkit/faults$$' -e '/internal/testkit/cluster$$')
	TEMPORAL_CLI=$(TEMPORAL_CLI) $(GO) test -race -count=1 -timeout 30m $(FAULTS)
	$(MAKE) --no-print-directory fuzz

# The fault-injection suite (crashes, restarts, killed connections, Resend faults, races) is part
# of `make test`; this runs it alone, verbose. Logs of its processes: test-artifacts/faults/.
test-faults: deps
	TEMPORAL_CLI=$(TEMPORAL_CLI) $(GO) test -race -count=1 -timeout 20m -v $(FAULTS)

# Re-record the lifecycle histories replayed by workflows/replay_test.go, from real runs. Only for
# a deliberately incompatible workflow change; see docs/operations.md. The paths are walked at a
# minute between steps (about 7 minutes), all at once: -parallel, since the default (the number
# of cores) would walk them two at a time.
record-histories: deps
	TEMPORAL_CLI=$(TEMPORAL_CLI) $(GO) test -count=1 -timeout 20m -parallel 32 ./internal/testkit/faults -run '^TestRecordHistories$$' -record

# The service against raw Temporal on one dev server, in one run (internal/testkit/bench): its own
# stack on free ports and its own database, so it never meets a `make run`. Under 15 minutes on
# 2 cores; BENCH_QUICK=1 (or BENCH_FLAGS=-quick) is about a minute and leaves the doc alone.
# BENCH_FLAGS passes flags, e.g. BENCH_FLAGS='-profile test-artifacts/profiles'. The Go
# micro-benchmarks (internal/testkit/e2e) are not part of it: go test -run '^$' -bench . ./internal/testkit/e2e
BENCH_FLAGS ?=
bench: deps
	$(GO) build -o $(BIN)/onboarding-bench ./internal/testkit/cmd/onboarding-bench
	TEMPORAL_CLI=$(TEMPORAL_CLI) BENCH_FLAGS='$(BENCH_FLAGS)' $(BIN)/onboarding-bench $(BENCH_FLAGS)

build:
	$(GO) build ./...
	$(GO) build -o $(BIN)/ ./server/cmd/onboarding-api ./worker/cmd/onboarding-worker

clean:
	rm -rf .bin .data test-artifacts
