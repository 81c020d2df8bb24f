package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// A connection.ca_file that does not parse is an error naming it, and the
// token goes nowhere: before sdk.ClientTLS, a file with the right CA
// followed by a truncated block was trusted as far as it parsed and the
// client logged in.
func TestGarbageCAFileSendsNoToken(t *testing.T) {
	var requests atomic.Int64
	srv := quietTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"data":{"id":"t"}}`))
	}))
	defer srv.Close()
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	dir := t.TempDir()
	tests := map[string]struct {
		content, want string // want empty: the control, the login reaches Vault
	}{
		"not PEM":                             {"not a certificate\n", "no PEM certificates found"},
		"truncated after a valid one":         {caPEM + "-----BEGIN CERTIFICATE-----\nMIIB\n", "a PEM block does not decode"},
		"a certificate block that is not DER": {"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "certificate 1"},
		"control: the server's certificate":   {caPEM, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			requests.Store(0)
			caFile := writeFile(t, filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".pem"), tc.content)
			conn, _ := json.Marshal(map[string]any{"address": srv.URL, "ca_file": caFile})
			rc := sdk.RequestContext{Policy: sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate()},
				Target: sdk.NewTarget("vault", conn, []byte(`{}`), map[string][]byte{"token": []byte("t")})}
			var d sdk.Diagnostics
			st, ok := load(rc, &d)
			if !ok {
				t.Fatal(d.Err())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			_, err := client(ctx, rc, st.conn)
			if tc.want == "" {
				if err != nil || requests.Load() == 0 {
					t.Fatalf("control: login %v after %d requests", err, requests.Load())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "connection.ca_file "+caFile) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("login error %v, want it to name connection.ca_file %s and say %q", err, caFile, tc.want)
			}
			if n := requests.Load(); n != 0 {
				t.Errorf("%d requests reached Vault, want none", n)
			}
			for _, c := range only(t, checksOf(scanListener(ctx, rc, st)), "tls.certificate.trusted") {
				if c.Status != checks.Error || !strings.Contains(c.Evidence, caFile) {
					t.Errorf("tls.certificate.trusted %s: %s (want an error naming %s)", c.Status, c.Evidence, caFile)
				}
			}
		})
	}
}
