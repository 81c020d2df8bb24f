#!/usr/bin/env bash
# Builds the Vault dev server testenv runs (HashiCorp Vault 1.14.8, MPL-2.0)
# from the Go module proxy into testenv's cache and prints the binary's path.
#
# Vault is in no registry this machine reaches as a binary, and `go install`
# refuses it (its go.mod has replace directives), so testenv/vault/build is a
# tools module that requires it. Three fixes make 1.14.8 build and run on Go
# 1.26 (see ../shared/TESTENV.md): api v1.10.0; a copy of sdk v0.9.2 with the
# symbols the 1.14 branch needs (testenv/vault/build/sdkpatch/*.go.in) and one
# start-up panic ("defines a CreateOperation but no ExistenceCheck") removed;
# `godebug x509negativeserial=1` in the tools module.
#
# The cache key is the version plus a hash of the tools module, so a change
# to it rebuilds. First build on 2 cores: ~5-11 min of module downloads and
# ~12 min of compiling (4 GB peak memory); then instant.
#   scripts/vault-build.sh          build if needed, print the binary path
#   scripts/vault-build.sh --check  print the path if cached, else exit 1
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=1.14.8
src="$root/testenv/vault/build"
if [ -n "${HARDEN_CACHE_DIR:-}" ]; then cache=$HARDEN_CACHE_DIR
elif [ "$(id -u)" -eq 0 ]; then cache=/var/cache/harden
else cache=${XDG_CACHE_HOME:-$HOME/.cache}/harden; fi
key=$(cd "$src" && find . -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-12)
dir="$cache/testenv/vault-$version-$key"
bin="$dir/vault"
if [ -x "$bin" ] && [ -f "$dir/.complete" ]; then echo "$bin"; exit 0; fi
if [ "${1:-}" = "--check" ]; then exit 1; fi
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
if [ -x "$bin" ] && [ -f "$dir/.complete" ]; then echo "$bin"; exit 0; fi
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cp "$src/go.mod" "$src/go.sum" "$src/tools.go" "$work/"
cd "$work"
say() { echo "vault-build: $*" >&2; }
say "building Vault $version into $dir (first time only: module downloads ~5-11 min, compile ~12 min)"
# The sdk copy: v0.9.2 from the module proxy, plus harden's additions.
sdk=$(GOFLAGS=-mod=mod go mod download -json github.com/hashicorp/vault/sdk@v0.9.2 | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$sdk" ] || { say "could not download github.com/hashicorp/vault/sdk@v0.9.2"; exit 1; }
cp -r "$sdk" sdk
chmod -R u+w sdk
for f in $(cd "$src/sdkpatch" && find . -name '*.go.in'); do
  cp "$src/sdkpatch/$f" "sdk/${f%.in}"
done
sed -i 's|panic(fmt.Sprintf("Pattern %v defines a CreateOperation but no ExistenceCheck", p.Pattern))|// harden testenv build: Vault 1.14 registers such paths; check disabled|' sdk/framework/backend.go
grep -q 'defines a CreateOperation but no ExistenceCheck' sdk/framework/backend.go && { say "the sdk patch no longer applies"; exit 1; }
say "downloading modules (progress: module cache size)"
( while sleep 30; do say "  ... $(du -sh "$(go env GOMODCACHE)" 2>/dev/null | cut -f1) in the module cache"; done ) &
ticker=$!
go mod download
kill $ticker 2>/dev/null || true
say "compiling (≈12 min cold on 2 cores)"
start=$(date +%s)
( while sleep 60; do say "  ... compiling, $(( $(date +%s) - start )) s"; done ) &
ticker=$!
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$bin.tmp" github.com/hashicorp/vault
kill $ticker 2>/dev/null || true
mv "$bin.tmp" "$bin"
"$bin" version >&2
touch "$dir/.complete"
say "done in $(( $(date +%s) - start )) s of compiling"
echo "$bin"
