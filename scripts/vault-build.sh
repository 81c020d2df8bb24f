#!/usr/bin/env bash
# Builds the Vault server testenv runs (HashiCorp Vault 1.14.8, MPL-2.0)
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
# shellcheck source=lib.sh
. "$root/scripts/lib.sh"

# prepare: the sdk copy — v0.9.2 from the module proxy plus harden's additions.
prepare() {
  local src=$1 sdk f
  sdk=$(GOFLAGS=-mod=mod go mod download -json github.com/hashicorp/vault/sdk@v0.9.2 | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$sdk" ] || { echo "vault-build: could not download github.com/hashicorp/vault/sdk@v0.9.2" >&2; exit 1; }
  cp -r "$sdk" sdk
  chmod -R u+w sdk
  for f in $(cd "$src/sdkpatch" && find . -name '*.go.in'); do
    cp "$src/sdkpatch/$f" "sdk/${f%.in}"
  done
  sed -i 's|panic(fmt.Sprintf("Pattern %v defines a CreateOperation but no ExistenceCheck", p.Pattern))|// harden testenv build: Vault 1.14 registers such paths; check disabled|' sdk/framework/backend.go
  if grep -q 'defines a CreateOperation but no ExistenceCheck' sdk/framework/backend.go; then
    echo "vault-build: the sdk patch no longer applies" >&2; exit 1
  fi
}
build_go_tool vault 1.14.8 "$root/testenv/vault/build" github.com/hashicorp/vault "${1:-}"
