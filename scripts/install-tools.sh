#!/usr/bin/env bash
# Builds the reference IPFS tools pickup's tests run against, from source, with Go and the module proxy:
#   kubo (the `ipfs` daemon and CLI) at the version tools/kubo/go.mod pins: the worker's IPFS node in ECS
#   (docker/kubo pins the same version), an origin peer, and the most used Pinning Service API client.
#
# The binary goes into a cache reused across runs and checkouts (PICKUP_TOOLS_DIR, default
# ~/.cache/pickup/tools); Go's own module and build caches make a rebuild after a change cheap. A second run
# with the same tools/kubo/go.sum rebuilds nothing. test/helpers/kubo.ts finds the binary there (or at
# KUBO_BINARY).
#
# Usage: scripts/install-tools.sh [--require]
#   Without Go, prints how to get it and exits 0 (the kubo suites then skip), unless --require (CI) is given.
set -euo pipefail
cd "$(dirname "$0")/.."

require=false
[[ "${1:-}" == "--require" ]] && require=true

tools_dir="${PICKUP_TOOLS_DIR:-$HOME/.cache/pickup/tools}"
kubo_version="$(awk '{ for (i = 1; i < NF; i++) if ($i == "github.com/ipfs/kubo") print $(i + 1) }' tools/kubo/go.mod)"
target="$tools_dir/kubo-$kubo_version"
stamp="$(sha256sum tools/kubo/go.sum | cut -c1-16)"

if [[ -x "$target/ipfs" && "$(cat "$target/stamp" 2>/dev/null)" == "$stamp" ]]; then
  echo "kubo $kubo_version: $target/ipfs (cached)"
  exit 0
fi

if ! command -v go >/dev/null; then
  echo "kubo $kubo_version: not built: Go is not installed (Go >= 1.26 builds it; or set KUBO_BINARY to a kubo $kubo_version binary)"
  $require && exit 1
  exit 0
fi

echo "kubo $kubo_version: building with $(go version | cut -d' ' -f3) (a few minutes the first time)..."
mkdir -p "$target"
started=$SECONDS
# -mod=readonly: build exactly what go.sum pins; -trimpath: the same binary from any checkout.
(cd tools/kubo && GOFLAGS=-mod=readonly go build -trimpath -o "$target/ipfs.tmp" github.com/ipfs/kubo/cmd/ipfs)
mv "$target/ipfs.tmp" "$target/ipfs"
echo "$stamp" >"$target/stamp"
echo "kubo $kubo_version: built $target/ipfs in $((SECONDS - started)) s ($("$target/ipfs" version))"
