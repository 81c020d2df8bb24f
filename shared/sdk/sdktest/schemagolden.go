package sdktest

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/harden-dev/harden/shared/sdk"
)

// SchemaGolden compares the schemas p serves with the golden file (by
// convention testdata/schema.golden.json: {"connection": ..., "spec": ...},
// indented), or rewrites the file when update is set (the plugin's test
// passes its -update flag). The file is what reviewers read when a config
// type changes, and what the host's tests validate policies against.
func SchemaGolden(t testing.TB, p sdk.Plugin, golden string, update bool) {
	t.Helper()
	var r sdk.SchemaResponse
	p.Schema(context.Background(), sdk.SchemaRequest{}, &r)
	if r.Diagnostics.HasError() {
		t.Fatalf("schema: %v", r.Diagnostics.Err())
	}
	got, err := json.MarshalIndent(map[string]json.RawMessage{"connection": r.Connection, "spec": r.Spec}, "", "  ")
	if err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	got = append(got, '\n')
	if update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestSchemaGolden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the served schema differs from %s (run go test -run TestSchemaGolden -update and review the diff):\n%s", golden, got)
	}
}
