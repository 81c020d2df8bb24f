package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/harden-dev/harden/shared/sdk"
)

// A Vault (or a load balancer in front of it) that redirects to http://
// must never receive the token or a secret_id over plaintext: the client
// does not follow redirects to another scheme.
func TestNoSecretsFollowARedirectToHTTP(t *testing.T) {
	var leaked atomic.Int64
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Vault-Token") != "" || r.ContentLength > 0 {
			leaked.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer tlsSrv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw}), 0o600)
	for name, secrets := range map[string]map[string][]byte{
		"token":   {"token": []byte("s.SECRET-TOKEN")},
		"approle": {"role_id": []byte("role"), "secret_id": []byte("SECRET-ID")},
	} {
		t.Run(name, func(t *testing.T) {
			conn, _ := json.Marshal(map[string]any{"address": tlsSrv.URL, "ca_file": caFile})
			q := sdk.RequestContext{Target: sdk.NewTarget("vault", conn, []byte(`{}`), secrets)}
			var c connection
			json.Unmarshal(conn, &c)
			cl, err := client(context.Background(), q, c)
			if err == nil {
				_, err = cl.Auth().Token().LookupSelfWithContext(context.Background())
			}
			if err == nil {
				t.Error("a redirect to http:// was followed to a successful answer")
			}
			if n := leaked.Load(); n > 0 {
				t.Fatalf("%d request(s) with a token or body reached the plaintext server", n)
			}
			if err != nil && strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error shows the secret: %v", err)
			}
		})
	}
}
