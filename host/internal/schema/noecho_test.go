package schema

import (
	"strings"
	"testing"
)

// A value in the wrong place may be a secret (a password where a URL
// belongs): diagnostics say what was expected and never quote the value.
func TestDiagnosticsNeverQuoteTheValue(t *testing.T) {
	s, err := Compile("connection", []byte(`{"type":"object","properties":{
	  "endpoint":{"type":"string","pattern":"^https://"},
	  "restart_timeout":{"type":"string","pattern":"^[0-9]+(ms|s|m|h)$"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	ds := s.Validate([]byte(`{"endpoint":"hunter2-Secret","restart_timeout":"s3cr3t-Value"}`), Path{"connection"})
	want := []string{`connection.endpoint: does not match pattern "^https://"`, `connection.restart_timeout: does not match pattern "^[0-9]+(ms|s|m|h)$"`}
	if len(ds) != len(want) {
		t.Fatalf("got %v", ds)
	}
	for i, d := range ds {
		if d.Error() != want[i] {
			t.Errorf("diagnostic %q, want %q", d.Error(), want[i])
		}
		if strings.Contains(d.Error(), "hunter2") || strings.Contains(d.Error(), "s3cr3t") {
			t.Errorf("the value is quoted: %q", d.Error())
		}
	}
}
