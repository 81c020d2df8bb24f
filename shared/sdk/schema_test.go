package sdk

import (
	"strings"
	"testing"
)

func TestSchemaValidateDiagnostics(t *testing.T) {
	s, err := CompileSchema("spec", []byte(`{"type":"object","additionalProperties":false,"required":["bucket"],
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
				if !strings.Contains(ds[i].Error(), w) || ds[i].Source != SourceConfig {
					t.Errorf("diagnostic %q (source %v), want %q", ds[i].Error(), ds[i].Source, w)
				}
			}
		})
	}
	if _, err := CompileSchema("bad", []byte(`{"type":"nonsense"}`)); err == nil {
		t.Errorf("invalid schema compiled")
	}
}

func TestDecodeSpecStrict(t *testing.T) {
	tg := NewTarget("t", nil, []byte(`{"a":1,"b":2}`), map[string][]byte{"password": []byte("pw")})
	var v struct{ A int }
	if err := tg.DecodeSpec(&v); err == nil {
		t.Errorf("unknown field accepted")
	}
	if pw, ok := tg.Secret("password"); !ok || pw != "pw" || strings.Join(tg.SecretNames(), ",") != "password" {
		t.Errorf("secret")
	}
}

func TestCapabilitiesFromInterfaces(t *testing.T) {
	caps := CapabilitiesOf(onlyVerify{})
	if len(caps) != 1 || caps[0] != CapVerify {
		t.Errorf("caps %v", caps)
	}
}

type onlyVerify struct{}

func (onlyVerify) Metadata(_ ctxT, _ MetadataRequest, _ *MetadataResponse) {}
func (onlyVerify) Schema(_ ctxT, _ SchemaRequest, _ *SchemaResponse)       {}
func (onlyVerify) Verify(_ ctxT, _ VerifyRequest, _ *VerifyResponse)       {}
