#!/usr/bin/env bash
# Regenerates Go code from proto/ with tool versions pinned in scripts/protogen/go.mod.
# --check: fail when the committed generated code differs from a fresh generation.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(mktemp -d)
trap 'rm -rf "$bin" "${tmpout:-}"' EXIT
cd "$root/scripts/protogen"
go build -o "$bin/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go
go build -o "$bin/protoc-gen-go-grpc" google.golang.org/grpc/cmd/protoc-gen-go-grpc
go build -o "$bin/protogen" .
cd "$root/proto"
protos=$(find . -name '*.proto' | sed 's|^\./||' | sort)
if [ "${1:-}" = "--check" ]; then
  tmpout=$(mktemp -d)
  "$bin/protogen" -I . -out "$tmpout" -plugins "$bin" $protos
  status=0
  for f in $(cd "$tmpout" && find . -name '*.go' | sed 's|^\./||'); do
    if ! cmp -s "$tmpout/$f" "$root/proto/$f"; then
      echo "proto: generated code is stale: proto/$f (run make proto)" >&2
      status=1
    fi
  done
  exit $status
fi
"$bin/protogen" -I . -out . -plugins "$bin" $protos
echo "proto: generated $(find . -name '*.pb.go' | wc -l) files"
