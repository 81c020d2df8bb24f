package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/testenv"
)

// A CA bundle that does not parse is named in the error and the management
// connection dials nothing: before sdk.ClientTLS, a bundle with a valid
// certificate followed by a truncated block was trusted as far as it
// parsed and the password went to the server.
func TestManagementConnectionRefusesAGarbageCABundle(t *testing.T) {
	dir := t.TempDir()
	ca, err := testenv.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := ca.Issue("server", false, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Clean(ca.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	const secret = "admin-secret-8e21aa"
	tests := map[string]struct {
		bundle  []byte
		wantErr string // empty: the control, the login reaches the server over verified TLS
	}{
		"not PEM":                             {[]byte("this is not a certificate\n"), "the policy's CA bundle: no PEM certificates found"},
		"truncated after a valid one":         {append(append([]byte{}, caPEM...), "-----BEGIN CERTIFICATE-----\nMIIB\n"...), "the policy's CA bundle: a PEM block does not decode"},
		"a certificate block that is not DER": {[]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "the policy's CA bundle: certificate 1"},
		"control: the CA":                     {caPEM, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fake := newFakePG(t, &tls.Config{Certificates: []tls.Certificate{pair}}, authCleartext, secret)
			conn, _ := json.Marshal(map[string]any{"host": "127.0.0.1", "port": fake.port(), "user": "harden_admin"})
			rc := sdk.RequestContext{
				Target:       sdk.NewTarget("pg", conn, []byte(`{}`), map[string][]byte{"password": []byte(secret)}),
				Certificates: sdk.Certificates{CABundlePEM: tc.bundle},
			}
			var c connection
			if err := rc.Target.DecodeConnection(&c); err != nil {
				t.Fatal(err)
			}
			db, err := connect(context.Background(), c, rc)
			if db != nil {
				db.Close(context.Background())
			}
			got := fake.record()
			if tc.wantErr == "" {
				if !got.sawSecret {
					t.Fatalf("control: the password did not reach the server over verified TLS (err %v)", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "sent no credentials") {
				t.Fatalf("error %v, want it to say %q and that no credentials were sent", err, tc.wantErr)
			}
			if got.conns != 0 || got.sawSecret {
				t.Errorf("%d connections reached the server (password seen: %v), want none", got.conns, got.sawSecret)
			}
		})
	}
}
