#!/usr/bin/env bash
# Builds ferry's local test toolchain from the pinned Go modules in tools/.
# Each tool module is built into a cache directory keyed by the hash of its
# go.mod, go.sum and build recipe, so a fresh clone on the same machine reuses
# a finished build and a changed pin rebuilds only its own module. bin/ holds
# links into the cache. Only the Go module proxy is used.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/tools"
cache="${FERRY_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry/tools}"
kv=v1.36.3
strip='-s -w'

build_kube() {
	CGO_ENABLED=0 go build -trimpath -o "$1/" -ldflags "$strip \
		-X k8s.io/component-base/version.gitVersion=$kv \
		-X k8s.io/component-base/version.gitMajor=1 \
		-X k8s.io/component-base/version.gitMinor=36 \
		-X k8s.io/component-base/version.gitTreeState=clean \
		-X k8s.io/client-go/pkg/version.gitVersion=$kv" \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
}

build_etcd() {
	CGO_ENABLED=0 go build -trimpath -o "$1/etcd" -ldflags "$strip" .
}

build_kwok() {
	CGO_ENABLED=0 go build -trimpath -o "$1/" -ldflags "$strip \
		-X sigs.k8s.io/kwok/pkg/consts.Version=v0.8.0 \
		-X sigs.k8s.io/kwok/pkg/consts.KubeVersion=$kv" \
		sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl
	# kwok's own node and pod stages, loaded by the sandbox beside
	# ferry's failure stages (sandbox/stages).
	local src
	src="$(go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage"
	mkdir -p "$1/kwok-stages"
	cp "$src/node/fast/node-initialize.yaml" "$src/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
		"$src/pod/fast/pod-ready.yaml" "$src/pod/fast/pod-complete.yaml" "$src/pod/fast/pod-delete.yaml" \
		"$src/pod/chaos/pod-container-running-failed.yaml" "$1/kwok-stages/"
}

build_kustomize() {
	CGO_ENABLED=0 go build -trimpath -o "$1/kustomize" -ldflags "$strip" sigs.k8s.io/kustomize/kustomize/v5
}

build_gitea() {
	CGO_ENABLED=1 go build -trimpath -tags 'sqlite sqlite_unlock_notify' -o "$1/gitea" \
		-ldflags "$strip -X main.Version=1.26.0" code.gitea.io/gitea
	# Without bindata Gitea reads its templates and locales from the module source.
	go list -m -f '{{.Dir}}' code.gitea.io/gitea > "$1/gitea.static"
}

mkdir -p "$cache" "$root/bin"
for m in kube etcd kwok kustomize gitea; do
	key="$(cat "$tools/$m/go.mod" "$tools/$m/go.sum" <(declare -f "build_$m") | sha256sum | cut -c1-16)"
	dest="$cache/$m-$key"
	if [[ ! -f "$dest/.complete" ]]; then
		echo "tools: building $m ($(date +%T))"
		work="$(mktemp -d "$cache/.build-$m.XXXXXX")"
		(cd "$tools/$m" && "build_$m" "$work") || { rm -rf "$work"; exit 1; }
		touch "$work/.complete"
		rm -rf "$dest"
		mv "$work" "$dest"
	fi
	for f in "$dest"/*; do
		ln -sfn "$f" "$root/bin/$(basename "$f")"
	done
done
echo "tools: ready in $root/bin ($(date +%T))"
