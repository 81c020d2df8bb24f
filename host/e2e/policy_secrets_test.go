package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/host/internal/cli"
)

// A secret written into the policy — a PEM key pasted where key_file
// belongs, a password where password_file belongs, a URL with credentials —
// stops every command with one error at its policy line, and its bytes appear
// nowhere in stdout or stderr (before: validate passed, and render, plan,
// verify and apply printed the key in full through "open <key>: no such
// file").
func TestPolicySecretsNeverPrinted(t *testing.T) {
	const keyBody = "MHcCAQEEIPolicySecretKeyMaterial0123456789abcdefAoGCCqGSM49"
	const password = "Hunter2Password"
	pemKey := "-----BEGIN EC PRIVATE KEY-----\n" + keyBody + "\n-----END EC PRIVATE KEY-----"
	cases := map[string]struct {
		certificate, address string
		want                 string // position and field
		secrets              []string
	}{
		"PEM key as certificate.key_file": {
			certificate: "    certificate:\n      cert_file: server.pem\n      key_file: |\n        " + strings.ReplaceAll(pemKey, "\n", "\n        ") + "\n",
			want:        "policy.yaml:11:17: targets[0].certificate.key_file: inline secret: the value holds a PEM block",
			secrets:     []string{keyBody, "PolicySecretKeyMaterial"},
		},
		"password as certificate.client_key_file": {
			certificate: "    certificate: {cert_file: server.pem, key_file: server-key.pem, client_cert_file: c.pem, client_key_file: " + password + "}\n",
			want:        "policy.yaml:9:110: targets[0].certificate.client_key_file: does not look like a file path",
			secrets:     []string{password},
		},
		"URL with credentials as the address": {
			address: "tcp://admin:" + password + "@%s",
			want:    "policy.yaml:6:27: targets[0].connection.address: inline secret: the value holds credentials in a URL",
			secrets: []string{password},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, "normal")
			f.lockPlugins()
			// Real certificate files beside the policy, so that before the fix
			// harden got as far as reading the "key file".
			writeTestCertificate(t, filepath.Join(f.dir, "server.pem"))
			writeTestCertificate(t, filepath.Join(f.dir, "c.pem"))
			os.WriteFile(filepath.Join(f.dir, "server-key.pem"), []byte("x"), 0o600)
			addr := f.addr
			if tc.address != "" {
				addr = fmt.Sprintf(tc.address, f.addr)
			}
			doc := fmt.Sprintf(`apiVersion: harden/v1
profile: intermediate
targets:
  - name: echo-a
    plugin: echo
    connection: {address: "%s", state_file: "%s", token_env: ECHO_TOKEN}
    spec:
      mode: normal
%s`, addr, f.state, tc.certificate)
			if err := os.WriteFile(f.policy, []byte(doc), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{
				{"policy", "validate"}, {"render"}, {"render", "--out", filepath.Join(f.dir, "out")}, {"plan"},
				{"verify"}, {"verify", "--format", "json"}, {"apply", "--yes"}, {"apply", "--yes", "--format", "json"},
			} {
				r := f.run(append(append([]string(nil), args...), "-f", f.policy)...)
				if r.code != cli.ExitConfig {
					t.Errorf("%v: exit %d, want %d\nstdout: %s\nstderr: %s", args, r.code, cli.ExitConfig, r.stdout, r.stderr)
				}
				if !strings.Contains(r.stderr, tc.want) {
					t.Errorf("%v: stderr does not name %q:\n%s", args, tc.want, r.stderr)
				}
				for _, s := range tc.secrets {
					if strings.Contains(r.stdout+r.stderr, s) {
						t.Errorf("%v: the secret %q was printed:\nstdout: %s\nstderr: %s", args, s, r.stdout, r.stderr)
					}
				}
			}
			if _, err := os.Stat(filepath.Join(f.dir, "out")); err == nil {
				t.Errorf("render --out wrote files for a policy with an inline secret")
			}
		})
	}
}

func writeTestCertificate(t *testing.T, path string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "echo-a"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}
