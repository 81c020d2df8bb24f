# Shared by the scripts that install real servers into testenv's cache.
# shellcheck shell=bash

# harden_cache_dir prints testenv's cache: $HARDEN_CACHE_DIR, else
# /var/cache/harden for root (readable by the unprivileged postgres user),
# else ~/.cache/harden (testenv.CacheDir in Go is the same rule).
harden_cache_dir() {
  if [ -n "${HARDEN_CACHE_DIR:-}" ]; then echo "$HARDEN_CACHE_DIR"
  elif [ "$(id -u)" -eq 0 ]; then echo /var/cache/harden
  else echo "${XDG_CACHE_HOME:-$HOME/.cache}/harden"; fi
}

# build_go_tool NAME VERSION SRC PKG [--check]
# Builds Go package PKG from the tools module in SRC (go.mod, go.sum, *.go)
# into $cache/testenv/NAME-VERSION-<hash of SRC>/NAME, once, under a lock,
# with progress on stderr, and prints the binary's path. A function
# `prepare` defined by the caller runs in the work dir before the build
# (e.g. to patch a dependency). --check prints the path only if cached.
build_go_tool() {
  local name=$1 version=$2 src=$3 pkg=$4 check=${5:-}
  local key dir bin work start ticker
  key=$(cd "$src" && find . -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-12)
  dir="$(harden_cache_dir)/testenv/$name-$version-$key"
  bin="$dir/$name"
  if [ -x "$bin" ] && [ -f "$dir/.complete" ]; then echo "$bin"; return 0; fi
  [ "$check" = "--check" ] && return 1
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  flock 9
  if [ -x "$bin" ] && [ -f "$dir/.complete" ]; then echo "$bin"; return 0; fi
  work=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "chmod -R u+w '$work' 2>/dev/null; rm -rf '$work'" EXIT
  (cd "$src" && find . -maxdepth 1 -type f \( -name 'go.*' -o -name '*.go' \) -exec cp {} "$work/" \;)
  cd "$work"
  echo "$name-build: building $name $version into $dir (first time only; cached after that)" >&2
  if declare -F prepare >/dev/null; then prepare "$src"; fi
  echo "$name-build: downloading modules" >&2
  ( while sleep 30; do echo "$name-build:   ... $(du -sh "$(go env GOMODCACHE)" 2>/dev/null | cut -f1) in the module cache" >&2; done ) &
  ticker=$!
  go mod download
  kill "$ticker" 2>/dev/null || true
  echo "$name-build: compiling (minutes on 2 cores the first time)" >&2
  start=$(date +%s)
  ( while sleep 60; do echo "$name-build:   ... compiling, $(( $(date +%s) - start )) s" >&2; done ) &
  ticker=$!
  CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$bin.tmp" "$pkg"
  kill "$ticker" 2>/dev/null || true
  mv "$bin.tmp" "$bin"
  touch "$dir/.complete"
  echo "$name-build: done in $(( $(date +%s) - start )) s of compiling" >&2
  echo "$bin"
}
