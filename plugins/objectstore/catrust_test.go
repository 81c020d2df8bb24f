package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/testenv"
)

// A connection.ca_file that does not parse is a diagnostic naming it before
// any request: before sdk.ClientTLS, a file with a valid certificate followed
// by a truncated block was trusted as far as it parsed.
func TestGarbageCAFileIsNamed(t *testing.T) {
	dir := t.TempDir()
	ca, err := testenv.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		content []byte
		want    string // empty: the control, the client is made
	}{
		"not PEM":                     {[]byte("not a certificate\n"), "no PEM certificates found"},
		"truncated after a valid one": {append(append([]byte{}, caPEM...), "-----BEGIN CERTIFICATE-----\nMIIB\n"...), "a PEM block does not decode"},
		"control: the CA":             {caPEM, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "ca.pem")
			if err := os.WriteFile(file, tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
			conn, _ := json.Marshal(map[string]any{"endpoint": "https://127.0.0.1:1", "ca_file": file})
			q := sdk.RequestContext{Target: sdk.NewTarget("lake", conn, []byte(`{"bucket":"lake"}`),
				map[string][]byte{"access_key": []byte("ak"), "secret_key": []byte("sk")})}
			var d sdk.Diagnostics
			_, ok := open(q, &d)
			if tc.want == "" {
				if !ok {
					t.Fatalf("control: %v", d.Err())
				}
				return
			}
			if ok {
				t.Fatal("open accepted the CA file")
			}
			msg := d.Err().Error()
			if !strings.Contains(msg, "connection.ca_file "+file) || !strings.Contains(msg, tc.want) {
				t.Errorf("diagnostic %q, want it to name connection.ca_file %s and say %q", msg, file, tc.want)
			}
			if _, err := caPool(file); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("caPool (verify's roots) = %v, want %q", err, tc.want)
			}
		})
	}
}
