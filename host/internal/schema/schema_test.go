package schema

import (
	"strings"
	"testing"

	"github.com/harden-dev/harden/shared/sdk"
)

func TestSchemaValidateDiagnostics(t *testing.T) {
	s, err := Compile("spec", []byte(`{"type":"object","additionalProperties":false,"required":["bucket"],
	  "properties":{"bucket":{"type":"string"},"rules":{"type":"array","items":{"type":"object","additionalProperties":false,
	  "properties":{"method":{"enum":["cert","scram-sha-256"]}}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		doc  string
		want []string
	}{
		"ok":          {`{"bucket":"b"}`, nil},
		"unknown key": {`{"bucket":"b","colour":1}`, []string{`spec.colour: unknown key "colour"`}},
		"missing":     {`{}`, []string{`spec: missing required key "bucket"`}},
		"wrong type":  {`{"bucket":3}`, []string{"spec.bucket: wrong type: got number, want string"}},
		"nested enum": {`{"bucket":"b","rules":[{"method":"trust"}]}`, []string{"spec.rules[0].method: value must be one of"}},
		"not json":    {`{`, []string{"spec: not valid JSON"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ds := s.Validate([]byte(tc.doc), Path{"spec"})
			if len(ds) != len(tc.want) {
				t.Fatalf("got %v", ds)
			}
			for i, w := range tc.want {
				if !strings.Contains(ds[i].Error(), w) || ds[i].Source != sdk.SourceConfig {
					t.Errorf("diagnostic %q (source %v), want %q", ds[i].Error(), ds[i].Source, w)
				}
			}
		})
	}
	if _, err := Compile("bad", []byte(`{"type":"nonsense"}`)); err == nil {
		t.Errorf("invalid schema compiled")
	}
}
