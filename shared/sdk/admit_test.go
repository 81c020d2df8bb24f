package sdk

import (
	"strings"
	"testing"
)

func TestAdmission(t *testing.T) {
	a, err := newAdmission("spec schema", []byte(`{"type":"object","additionalProperties":false,"properties":{"bucket":{"type":"string"},"n":{"type":"integer","minimum":1}}}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct{ doc, want string }{
		"ok":          {`{"bucket":"b","n":2}`, ""},
		"unknown key": {`{"bucket":"b","zz":1}`, `spec.zz: unknown key "zz"`},
		"wrong type":  {`{"bucket":3}`, `spec: does not match the plugin's spec schema`},
		"minimum":     {`{"n":0}`, `spec: does not match`},
		"not json":    {`{`, "spec: not valid JSON"},
	}
	for name, tc := range tests {
		ds := a.check([]byte(tc.doc), "spec")
		switch {
		case tc.want == "" && len(ds) != 0:
			t.Errorf("%s: %v", name, ds)
		case tc.want != "" && (len(ds) == 0 || !strings.Contains(ds[0].Error(), tc.want) || ds[0].Source != SourceConfig):
			t.Errorf("%s: got %v, want %q", name, ds, tc.want)
		}
	}
	if _, err := newAdmission("x", []byte(`{"type":`)); err == nil {
		t.Errorf("broken schema accepted")
	}
}
