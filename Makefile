# walgate: make build | test | demo | bench | lint | fuzz | soak | mutate
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/walgate/walgate/gateway.Version=$(VERSION) -X github.com/walgate/walgate/client.Version=$(VERSION)
BUILD    := $(GO) build -trimpath -ldflags "$(LDFLAGS)"

.PHONY: all build deps test demo bench lint fuzz soak mutate clean

all: build

# walgate-client is static (no cgo): PostgreSQL execs it for every WAL
# file, and without the dynamic loader and the C library it starts in
# about two thirds of the time. It finds OS accounts through /etc/passwd
# and then getent.
build:
	$(BUILD) -o bin/walgate ./cmd/walgate
	CGO_ENABLED=0 $(BUILD) -o bin/walgate-client ./cmd/walgate-client

# Installs what the tests need (PostgreSQL 15, ...), idempotently and cached.
deps:
	bash .ci/install-deps.sh

# The whole suite: unit, conformance, fuzz seeds, and end-to-end tests on a
# real PostgreSQL 15. The end-to-end tests build the binaries themselves.
# ./configs checks the shipped systemd units (systemd-analyze verify and
# security) and alert rules (promtool check rules, promtool test rules).
test: deps build lint
	$(GO) test -count=1 -timeout 25m ./...

# A gateway on the fs backend and a real PostgreSQL 15 archiving through it.
demo: deps build
	$(GO) run ./cmd/walgate-demo

# Figures for docs/benchmarks.md, with baselines measured in the same run.
bench: deps build
	STEPS=pgbackrest bash .ci/install-deps.sh
	$(GO) run ./cmd/walgate-bench -out docs/benchmarks.md

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	@# walgate-client runs on every database host: it must build where
	@# PostgreSQL runs without Linux's syncfs and sync_file_range.
	GOOS=freebsd GOARCH=amd64 $(GO) build -o /dev/null ./cmd/walgate-client
	GOOS=darwin GOARCH=arm64 $(GO) build -o /dev/null ./cmd/walgate-client

# Every fuzz target in the repository (func FuzzXxx in a _test.go file),
# FUZZTIME each; the seed corpora under testdata/fuzz also run in 'make test'.
FUZZTIME ?= 30s
fuzz:
	@set -e; git grep -l '^func Fuzz' -- '*_test.go' | while read -r f; do \
		pkg=./$$(dirname $$f); \
		for fn in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "== $$pkg $$fn"; \
			$(GO) test $$pkg -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME); \
		done; \
	done

# Long runs kept out of 'make test'.
soak: deps build
	WALGATE_SOAK=1 $(GO) test -count=1 -timeout 120m -run 'Soak' ./...

# Mutation testing of the packages where a bug loses data (docs/testing.md).
# PKG=./index (one package) or PKGS=..., BASE=<commit> (only lines changed since),
# WORKERS, COEFF (timeout factor), TIMEOUT per package. Not part of make test.
mutate:
	bash .ci/mutate.sh

clean:
	rm -rf bin mutate-out
