# chainsink — see README.md. Every target works on a fresh clone with Go, gcc and a local PostgreSQL.

GO            ?= go
BIN           ?= bin
DATABASE_URL  ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
DEMO_DATABASE ?= chainsink_demo
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS       := -X github.com/chainsink/chainsink/internal/cli.Version=$(VERSION)
# Pinned here, not in go.mod: `go run pkg@version` builds staticcheck from its own go.mod (the exact release,
# checksum-verified) and keeps its dependencies out of chainsink's go.mod and go.sum.
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build test test-short test-crash demo localkafka bench bench-scale bench-rpc bench-verify bench-follow fuzz vet lint clean

all: build

build: ## build bin/chainsink and bin/chainsink-localkafka
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/chainsink ./cmd/chainsink
	$(GO) build -o $(BIN)/chainsink-localkafka ./cmd/chainsink-localkafka

vet:
	$(GO) vet ./...

lint: vet ## go vet + staticcheck (default checks, pinned version; fetched from the Go module proxy on first use)
	$(GO) run $(STATICCHECK) ./...

test: vet ## vet + every test (race detector), incl. the short crash test and the docs/queries.md check
	@# -count=1: internal/e2e drives a binary it builds in TestMain, which go test's cache cannot see change.
	CHAINSINK_TEST_DATABASE_URL='$(DATABASE_URL)' $(GO) test -race -count=1 -timeout 20m ./...
	@# Restarting the shared PostgreSQL server would break the parallel tests above, so it runs alone.
	CHAINSINK_TEST_DATABASE_URL='$(DATABASE_URL)' CHAINSINK_TEST_PG_RESTART=1 $(GO) test -race -count=1 -run '^TestPostgresRestart$$' ./internal/e2e

test-short: ## quick loop while coding: no race detector, no crash tests
	CHAINSINK_TEST_DATABASE_URL='$(DATABASE_URL)' $(GO) test -short ./...

test-crash: ## the full crash test: >= 20k messages, >= 10 SIGKILLs of the real binary
	CHAINSINK_TEST_DATABASE_URL='$(DATABASE_URL)' CHAINSINK_CRASH_FULL=1 $(GO) test -timeout 30m -count=1 -v -run 'TestCrash' ./internal/e2e

demo: build ## index real mainnet data through a local broker into the local Postgres, then print a summary
	$(GO) run ./cmd/chainsink-demo --binary $(BIN)/chainsink --database $(DEMO_DATABASE)

localkafka: build ## a standalone Kafka-protocol broker on 127.0.0.1:9092 for kcat or your own producer
	$(BIN)/chainsink-localkafka --port 9092

bench: build ## chainsink vs COPY and INSERT ON CONFLICT on real blocks; table + bench/results/<time>.json (docs/performance.md)
	$(GO) run ./cmd/chainsink-bench --binary $(BIN)/chainsink $(BENCH_FLAGS)

bench-scale: build ## cost growth: chainsink bundles with 0, 10 M and 50 M rows already stored (goal: ≥ 0.9× of the empty case)
	$(GO) run ./cmd/chainsink-bench --binary $(BIN)/chainsink --scenarios ceiling,bundle,growth --backlog 0 --growth 0,10000000,50000000 $(BENCH_FLAGS)

bench-rpc: build ## backfill + run of 100 k events on a simulated chain, full vs filtered mode, node vs replay (docs/performance.md)
	$(GO) run ./cmd/chainsink-bench --binary $(BIN)/chainsink --scenarios rpc --blocks 10 --backlog 0 --growth '' $(BENCH_FLAGS)

bench-follow: build ## block-to-row latency of follow + run on a simulated chain mining a block a second (goal: p99 ≤ 1 s)
	$(GO) run ./cmd/chainsink-bench --binary $(BIN)/chainsink --scenarios follow --blocks 10 --backlog 0 --growth '' $(BENCH_FLAGS)

bench-verify: build ## time `chainsink verify` over 10 M stored rows (goal: under a minute); BENCH_FLAGS=--verify-rows=N
	$(GO) run ./cmd/chainsink-bench --binary $(BIN)/chainsink --scenarios verify --blocks 10 --backlog 0 --growth '' $(BENCH_FLAGS)

fuzz: ## run every fuzz target for 60s each
	$(GO) test ./abi -run '^$$' -fuzz FuzzDecodeLog -fuzztime 60s
	$(GO) test ./abi -run '^$$' -fuzz FuzzDecodeCall -fuzztime 60s
	$(GO) test ./abi -run '^$$' -fuzz FuzzTokenTransfers -fuzztime 60s
	$(GO) test ./abi -run '^$$' -fuzz FuzzWordsMatchGoEthereum -fuzztime 60s
	$(GO) test ./abi -run '^$$' -fuzz FuzzWordJSONMatchesValues -fuzztime 60s
	$(GO) test ./internal/format -run '^$$' -fuzz FuzzDecodeBundle -fuzztime 60s
	$(GO) test ./internal/format -run '^$$' -fuzz FuzzDecodeETL -fuzztime 60s
	$(GO) test ./internal/format -run '^$$' -fuzz FuzzPlainTextMatchesByteLoop -fuzztime 60s
	$(GO) test ./internal/backfill -run '^$$' -fuzz FuzzLogReader -fuzztime 60s
	$(GO) test ./internal/backfill -run '^$$' -fuzz FuzzHTTPCallerMatchesGoEthereum -fuzztime 60s

clean:
	rm -rf $(BIN)
