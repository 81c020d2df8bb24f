#!/usr/bin/env bash
# Builds the SeaweedFS server (`weed`, Apache-2.0) testenv runs as the
# S3-compatible object store, from the Go module proxy into testenv's cache,
# and prints the binary's path. testenv/seaweedfs/build is a tools module
# (SeaweedFS's go.mod has a replace, so `go install` is refused; the
# go-bip39 replace it needs is repeated there). First build on 2 cores:
# ~2 min of downloads and ~10-13 min of compiling; then instant.
#   scripts/seaweedfs-build.sh          build if needed, print the binary path
#   scripts/seaweedfs-build.sh --check  print the path if cached, else exit 1
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib.sh
. "$root/scripts/lib.sh"
build_go_tool weed 0.0.0-20261109003541-7506e5f91cd6 "$root/testenv/seaweedfs/build" github.com/seaweedfs/seaweedfs/weed "${1:-}"
