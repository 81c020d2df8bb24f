package main

import (
	"flag"
	"testing"

	"github.com/harden-dev/harden/shared/sdk/sdktest"
)

var update = flag.Bool("update", false, "rewrite testdata/schema.golden.json")

// The schemas are derived from the config types; the golden file shows a
// reviewer what a type change does to what policies may say (and is what
// host/internal/schema's verdict tests validate documents against).
func TestSchemaGolden(t *testing.T) {
	sdktest.SchemaGolden(t, redisTLS{}, "testdata/schema.golden.json", *update)
}
