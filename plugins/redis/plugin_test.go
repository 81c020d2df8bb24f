package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/sdktest"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

func conformanceTarget(certDir string) func(addr string) sdk.Target {
	return func(addr string) sdk.Target {
		conn, _ := json.Marshal(map[string]any{"address": addr})
		spec, _ := json.Marshal(map[string]any{"cert_dir": certDir})
		return sdk.NewTarget("cache", conn, spec, nil)
	}
}

// The SDK's conformance kit, in process and on the built binary (as the
// host runs it: go-plugin, AutoMTLS, the sha256 pin).
func TestConformance(t *testing.T) {
	p := newPKI(t, "CA")
	certs := sdk.Certificates{ChainPEM: p.serverPEM, KeyPEM: p.serverKey, CABundlePEM: p.caPEM}
	t.Run("in_process", func(t *testing.T) {
		sdktest.Run(t, sdktest.Harness{Plugin: redisTLS{}, Name: "redis", Target: conformanceTarget(t.TempDir()), Certificates: certs})
	})
	t.Run("binary", func(t *testing.T) {
		bin := filepath.Join(t.TempDir(), "harden-plugin-redis")
		if out, err := exec.Command(goTool(), "build", "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		sdktest.Run(t, sdktest.Harness{Binary: bin, Target: conformanceTarget(t.TempDir()), Certificates: certs})
	})
}

// The module is a third party's: it may use harden's SDK module and
// nothing else of harden (not testenv, host or the other plugins).
func TestDependsOnlyOnTheSDK(t *testing.T) {
	out, err := exec.Command(goTool(), "list", "-deps", "-test", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	n := 0
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		pkg := sc.Text()
		if strings.HasPrefix(pkg, "github.com/harden-dev/harden/") {
			n++
			if !strings.HasPrefix(pkg, "github.com/harden-dev/harden/shared/") {
				t.Errorf("the redis plugin depends on %s: only github.com/harden-dev/harden/shared/... is allowed", pkg)
			}
		}
	}
	if n == 0 {
		t.Fatalf("go list -deps shows no SDK package at all; the check saw nothing:\n%s", out)
	}
}

// Render: the directives from the profile and the mTLS scope, the key
// 0600 and sensitive, the OpenSSL groups without names OpenSSL 3.0 refuses.
func TestRender(t *testing.T) {
	p := newPKI(t, "CA")
	for name, tc := range map[string]struct {
		profile tlsprofile.Profile
		mtls    bool
		want    []string
		not     []string
	}{
		"intermediate": {profile: tlsprofile.Intermediate(),
			want: []string{"tls-port 6380\n", "port 0\n", "tls-auth-clients no\n", `tls-protocols "TLSv1.2 TLSv1.3"`,
				"tls-ciphers ECDHE-ECDSA-AES128-GCM-SHA256:", "tls-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256\n",
				"tls-cert-file /srv/redis/tls/redis.crt\n", "tls-key-file /srv/redis/tls/redis.key\n", "tls-ca-cert-file /srv/redis/tls/ca.crt\n",
				"tls-prefer-server-ciphers no\n"}},
		"modern, mtls": {profile: tlsprofile.Modern(), mtls: true,
			want: []string{"tls-auth-clients yes\n", "tls-protocols TLSv1.3\n"}, not: []string{"tls-ciphers "}},
	} {
		t.Run(name, func(t *testing.T) {
			conn, _ := json.Marshal(map[string]any{"address": "127.0.0.1:6380"})
			spec, _ := json.Marshal(map[string]any{"cert_dir": "/srv/redis/tls"})
			q := sdk.RenderRequest{RequestContext: sdk.RequestContext{
				Policy:       sdk.Policy{Profile: tc.profile},
				Target:       sdk.NewTarget("cache", conn, spec, nil),
				Certificates: sdk.Certificates{ChainPEM: p.serverPEM, KeyPEM: p.serverKey, CABundlePEM: p.caPEM}}}
			if tc.mtls {
				q.Policy.MTLSScope = []string{"cache"}
			}
			var r sdk.RenderResponse
			redisTLS{}.Render(t.Context(), q, &r)
			if r.Diagnostics.HasError() {
				t.Fatal(r.Diagnostics.Err())
			}
			arts := map[string]sdk.Artifact{}
			for _, a := range r.Artifacts {
				arts[a.Path] = a
			}
			conf := string(arts["redis-tls.conf"].Content)
			for _, w := range tc.want {
				if !strings.Contains(conf, w) {
					t.Errorf("redis-tls.conf lacks %q:\n%s", w, conf)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(conf, w) {
					t.Errorf("redis-tls.conf has %q:\n%s", w, conf)
				}
			}
			if k := arts["tls/redis.key"]; !k.Sensitive || k.Mode != 0o600 || string(k.Content) != string(p.serverKey) {
				t.Errorf("tls/redis.key: sensitive %v, mode %o", k.Sensitive, k.Mode)
			}
			ossl := string(arts["tls/openssl.cnf"].Content)
			if !strings.Contains(ossl, "Groups = X25519:P-256:P-384\n") || strings.Contains(ossl, "MLKEM") {
				t.Errorf("openssl.cnf:\n%s", ossl)
			}
		})
	}
}

// Bad connection and spec values are config errors on their attribute.
func TestValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		conn, spec map[string]any
		attr       string
	}{
		"no port":           {map[string]any{"address": "localhost"}, map[string]any{"cert_dir": "/x"}, "connection.address"},
		"port 0":            {map[string]any{"address": "localhost:0"}, map[string]any{"cert_dir": "/x"}, "connection.address"},
		"relative cert_dir": {map[string]any{"address": "localhost:6380"}, map[string]any{"cert_dir": "tls"}, "spec.cert_dir"},
		"two passwords":     {map[string]any{"address": "localhost:6380", "password_env": "A", "password_file": "/b"}, map[string]any{"cert_dir": "/x"}, "connection.password_file"},
	} {
		t.Run(name, func(t *testing.T) {
			c, _ := json.Marshal(tc.conn)
			s, _ := json.Marshal(tc.spec)
			var r sdk.ValidateSpecResponse
			redisTLS{}.ValidateSpec(t.Context(), sdk.ValidateSpecRequest{RequestContext: sdk.RequestContext{Target: sdk.NewTarget("cache", c, s, nil)}}, &r)
			if len(r.Diagnostics) == 0 || r.Diagnostics[0].Attribute.String() != tc.attr {
				t.Errorf("diagnostics %+v, want an error on %s", r.Diagnostics, tc.attr)
			}
		})
	}
}

// goTool is the go command: $GO as make passes it, else go on PATH.
func goTool() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}
