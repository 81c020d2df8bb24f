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
# Generated code lands at its go_package path: internal to the SDK module.
module=github.com/harden-dev/harden
protos=$(find . -name '*.proto' | sed 's|^\./||' | sort)
if [ "${1:-}" = "--check" ]; then
  tmpout=$(mktemp -d)
  "$bin/protogen" -I . -module "$module" -out "$tmpout" -plugins "$bin" $protos
  status=0
  for f in $(cd "$tmpout" && find . -name '*.go' | sed 's|^\./||'); do
    if ! cmp -s "$tmpout/$f" "$root/$f"; then
      echo "proto: generated code is stale: $f (run make proto)" >&2
      status=1
    fi
  done
  exit $status
fi
"$bin/protogen" -I . -module "$module" -out "$root" -plugins "$bin" $protos
echo "proto: generated $(cd "$root" && git ls-files -co --exclude-standard '*.pb.go' | wc -l) files (internal to the SDK: shared/sdk/internal/targetv1)"
