# ferry — see README.md. Needs only Go and git; everything else is built here.
GO      ?= go
TIMEOUT ?= 45m

.PHONY: all build test unit e2e vet tools demo bench clean-run

all: build

build:
	$(GO) build -o bin/ferry ./cmd/ferry

## tools: build the local test toolchain (kube v1.36, etcd, kwok, gitea, kustomize)
## into the user cache and link it into bin/. Cached: a second run takes seconds.
tools:
	./tools/build.sh

vet:
	$(GO) vet ./...

unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /e2e)

e2e: tools
	$(GO) test -count=1 -timeout $(TIMEOUT) -v ./e2e/...

## test: vet, unit tests, then the end-to-end tests against the real toolchain.
test: tools vet unit e2e

## demo: the local sandbox (a kwok cluster, Gitea, ferry, badges).
demo: tools
	$(GO) run ./cmd/ferry dev

## bench: ferry against kubectl, ssa and kustomize on the local cluster.
bench: tools
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout $(TIMEOUT) ./e2e/bench/...

## clean-run: stop and remove test clusters and forges left by killed runs.
clean-run:
	$(GO) run ./e2e/harness/reap
