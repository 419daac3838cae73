# ferry — see README.md. Needs only Go and git; everything else is built here.
GO      ?= go
TIMEOUT ?= 45m

.PHONY: all build test unit e2e vet tools demo bench clean-run chromium fuzz soak

all: build

## build: a static binary, as the image (manifests/Dockerfile) builds it.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w" -o bin/ferry ./cmd/ferry

## tools: build the local test toolchain (kube v1.36, etcd, kwok, gitea, kustomize)
## into the user cache and link it into bin/. Cached: a second run takes seconds.
tools:
	./tools/build.sh

vet:
	$(GO) vet ./...

unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v -e /e2e -e /sandbox)

## fuzz: run each fuzz target for FUZZTIME (their seed corpora run in unit).
## A crash is saved under the package's testdata/fuzz and becomes a
## regression test: commit it with the fix.
FUZZTIME ?= 30s
FUZZ_TARGETS = \
	./config:FuzzParse \
	./render:FuzzParseManifests ./render:FuzzRender ./render:FuzzCheckAliases ./render:FuzzDecryptFile \
	./server:FuzzParseGitHub ./server:FuzzParseGitea ./server:FuzzParseGitLab \
	./server:FuzzVerifySignature ./forge:FuzzParseRepo
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

## chromium: Debian's chromium, for the badge and status page checks.
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; }

## e2e: the sandbox's own tests, then the end-to-end tests. -p 1 runs one
## package at a time: each starts a control plane and a forge, and two at
## once on a small machine starve each other's start-up.
e2e: tools chromium
	$(GO) test -count=1 -p 1 -timeout $(TIMEOUT) -v ./sandbox/... ./e2e/...

## test: vet, unit tests, then the end-to-end tests against the real toolchain.
test: tools vet unit e2e

## soak: the chaos soak (e2e TestChaosSoak) with FERRY_SOAK_COMMITS commits
## (default 200; `make test` runs it with 30). It prints the faults it
## injected and the invariants that held; FERRY_SOAK_SEED=<seed> replays a
## run's plan, and FERRY_SOAK_TABLE=<file> also writes the table there.
FERRY_SOAK_COMMITS ?= 200
soak: tools
	FERRY_SOAK_COMMITS=$(FERRY_SOAK_COMMITS) $(GO) test -count=1 -p 1 -timeout $(TIMEOUT) -run '^TestChaosSoak$$' -v ./e2e/

## demo: the local sandbox (a kwok cluster, Gitea, ferry, badges).
demo: tools
	$(GO) run ./cmd/ferry dev $(DEMO_FLAGS)

## bench: ferry against kubectl, ssa and kustomize on the local cluster.
bench: tools
	$(GO) test -p 1 -run '^$$' -bench . -benchtime 1x -timeout $(TIMEOUT) ./e2e/bench/...

## clean-run: stop and remove test clusters and forges left by killed runs.
clean-run:
	$(GO) run ./sandbox/reap

## image: build ferry's container image (manifests/Dockerfile) as $(IMAGE)
## with docker or podman. Where neither answers it says so and succeeds. The
## context is the source tree without bin/, tools/ and .git, sent as a tar
## stream, so the toolchain in bin/ never goes to the engine.
IMAGE ?= ferry:latest
.PHONY: image
image:
	@engine=""; \
	for e in docker podman; do \
		if command -v $$e >/dev/null 2>&1 && $$e info >/dev/null 2>&1; then engine=$$e; break; fi; \
	done; \
	if [ -z "$$engine" ]; then \
		echo "make image: no container engine (docker or podman) answers on this machine; nothing built"; \
		exit 0; \
	fi; \
	echo "$$engine build -f manifests/Dockerfile -t $(IMAGE)"; \
	tar -c --exclude=./.git --exclude=./bin --exclude=./tools . | \
		"$$engine" build -f manifests/Dockerfile -t "$(IMAGE)" -
