#!/usr/bin/env bash
# Plugin binary sizes at a reference commit and now, built the way `make
# build` ships them (-trimpath -ldflags "-s -w"). The reference is built in a
# temporary git worktree, removed afterwards.
#   scripts/bench-sizes.sh [REF]   (default 061193a: before the SDK became a
#                                   module of its own and hostclient split off)
set -euo pipefail
cd "$(dirname "$0")/.."
ref=${1:-061193a}
tmp=$(mktemp -d)
wt="$tmp/ref"
cleanup() { git worktree remove --force "$wt" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
git worktree add --detach --quiet "$wt" "$ref"
build() { # tree outdir
	mkdir -p "$2"
	for d in "$1"/plugins/*/; do
		n=$(basename "$d")
		grep -qs "^package main" "$d"*.go || continue
		if [ -f "$d/go.mod" ]; then # a module of its own (plugins/redis)
			(cd "$d" && go build -trimpath -ldflags "-s -w" -o "$2/harden-plugin-$n" .) || echo "build $n failed in $1" >&2
		else
			(cd "$1" && go build -trimpath -ldflags "-s -w" -o "$2/harden-plugin-$n" "./plugins/$n") || echo "build $n failed in $1" >&2
		fi
	done
	(cd "$1" && go build -trimpath -ldflags "-s -w" -o "$2/harden" ./host/cmd/harden 2>/dev/null || go build -trimpath -ldflags "-s -w" -o "$2/harden" ./cmd/harden 2>/dev/null) || true
}
build "$wt" "$tmp/before"
build "$PWD" "$tmp/after"
printf "%-26s %12s %12s %8s\n" binary "$ref" now change
for f in "$tmp"/after/* "$tmp"/before/*; do basename "$f"; done | sort -u | while read -r n; do
	b=$(stat -c %s "$tmp/before/$n" 2>/dev/null || echo 0)
	a=$(stat -c %s "$tmp/after/$n" 2>/dev/null || echo 0)
	if [ "$b" -gt 0 ] && [ "$a" -gt 0 ]; then ch=$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%+.1f%%", (a-b)*100/b}'); else ch=-; fi
	printf "%-26s %12s %12s %8s\n" "$n" "$b" "$a" "$ch"
done
