package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

const operatorListener = `# the operator's comment on the block
listener "tcp" {
  # where Vault listens
  address         = "127.0.0.1:8200"
  cluster_address = "127.0.0.1:8201"
  tls_cert_file   = "/etc/vault.d/tls/vault.pem"
  tls_key_file    = "/etc/vault.d/tls/vault-key.pem"
  tls_min_version = "tls10"
  tls_prefer_server_cipher_suites = "true"
  x_forwarded_for_authorized_addrs = ["10.0.0.0/8", "192.168.0.0/16"]
  http_read_timeout = "30s"
  telemetry {
    unauthenticated_metrics_access = true
  }
}
`

// The profile's settings replace the managed keys; everything else the
// operator wrote (address, certificate, timeouts, nested blocks, the
// comment on a setting) stays, and rendering again changes nothing.
func TestListenerRenderKeepsTheOperatorsSettings(t *testing.T) {
	lf, err := parseListener("listener.hcl", []byte(operatorListener))
	if err != nil {
		t.Fatal(err)
	}
	want, managed, warnings, err := listenerWant(tlsprofile.Intermediate(), false, "")
	if err != nil || len(warnings) != 0 {
		t.Fatalf("intermediate: %v %v", err, warnings)
	}
	if lf.matches(want, managed) {
		t.Fatal("a tls10 listener matches the intermediate profile")
	}
	out, err := lf.render(listenerHeader("vault", "intermediate"), want, managed)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(out)), " ") // alignment aside
	for _, s := range []string{`address = "127.0.0.1:8200"`, `"/etc/vault.d/tls/vault.pem"`, `"/etc/vault.d/tls/vault-key.pem"`,
		`["10.0.0.0/8", "192.168.0.0/16"]`, `http_read_timeout`, `unauthenticated_metrics_access = true`, "# where Vault listens",
		`tls_min_version = "tls12"`, `tls_max_version = "tls13"`,
		`tls_cipher_suites = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"`} {
		if !strings.Contains(text, s) {
			t.Errorf("rendered file lacks %s:\n%s", s, text)
		}
	}
	for _, s := range []string{"tls10", "tls_prefer_server_cipher_suites", "CBC", "tls_require_and_verify_client_cert"} {
		if strings.Contains(text, s) {
			t.Errorf("rendered file still has %s:\n%s", s, text)
		}
	}
	back, err := parseListener("listener.hcl", out)
	if err != nil || !back.matches(want, managed) {
		t.Fatalf("rendered file does not parse back to the profile: %v\n%s", err, out)
	}
	again, err := back.render(listenerHeader("vault", "intermediate"), want, managed)
	if err != nil || !bytes.Equal(again, out) {
		t.Fatalf("rendering the rendered file changes it:\n%s\n---\n%s", out, again)
	}

	// mTLS scope: client certificates required against the client CA;
	// the operator's tls_disable_client_certs (exclusive with it) goes.
	withDisable := strings.Replace(operatorListener, "http_read_timeout", "tls_disable_client_certs = true\n  http_read_timeout", 1)
	lf, err = parseListener("listener.hcl", []byte(withDisable))
	if err != nil {
		t.Fatal(err)
	}
	want, managed, _, _ = listenerWant(tlsprofile.Intermediate(), true, "/etc/vault.d/clients-ca.pem")
	out, _ = lf.render("", want, managed)
	if text := strings.Join(strings.Fields(string(out)), " "); !strings.Contains(text, "tls_require_and_verify_client_cert = true") || !strings.Contains(text, `tls_client_ca_file = "/etc/vault.d/clients-ca.pem"`) || strings.Contains(text, "tls_disable_client_certs") {
		t.Fatalf("mTLS rendering:\n%s", out)
	}

	// Modern: TLS 1.3 only, no suite list (Go has no TLS 1.3 suite setting).
	want, _, warnings, err = listenerWant(tlsprofile.Modern(), false, "")
	if err != nil || len(warnings) != 0 || summarySettings(want) != "tls_min_version=tls13 tls_max_version=tls13" {
		t.Fatalf("modern: %v %v %s", err, warnings, summarySettings(want))
	}
}

// What Vault cannot do of a profile is said, not silently dropped.
func TestListenerWantLimits(t *testing.T) {
	p := tlsprofile.Intermediate()
	p.TLS12Suites = append(p.TLS12Suites, 0x009E) // DHE-RSA-AES128-GCM-SHA256: not in Go
	p.TLS13Suites = []uint16{tls.TLS_AES_128_GCM_SHA256}
	_, _, warnings, err := listenerWant(p, false, "")
	if err != nil || len(warnings) != 3 || !strings.Contains(strings.Join(warnings, "\n"), "0x009E") {
		t.Fatalf("limits: %v %q", err, warnings)
	}
	p.TLS12Suites = []uint16{0x009E}
	if _, _, _, err := listenerWant(p, false, ""); err == nil {
		t.Fatal("a TLS 1.2 profile with no suite Go implements was accepted")
	}
}

// Files harden cannot own are refused with the file's name and why.
func TestListenerParseRefusals(t *testing.T) {
	ok := "listener \"tcp\" {\n address = \"127.0.0.1:8200\"\n tls_cert_file = \"/c\"\n tls_key_file = \"/k\"\n}\n"
	for name, tc := range map[string]struct{ src, want string }{
		"other stanza":         {ok + "storage \"file\" { path = \"/x\" }\n", "beside the listener"},
		"two listeners":        {ok + ok, "more than one listener"},
		"unix listener":        {strings.Replace(ok, "tcp", "unix", 1), `listener "tcp"`},
		"tls disabled":         {strings.Replace(ok, "tls_key_file", "tls_disable = true\n tls_key_file", 1), "tls_disable"},
		"no certificate":       {strings.Replace(ok, " tls_cert_file = \"/c\"\n", "", 1), "no tls_cert_file"},
		"not HCL":              {"listener \"tcp\" {", "not valid HCL"},
		"duplicate key":        {strings.Replace(ok, "tls_key_file", "tls_cert_file = \"/d\"\n tls_key_file", 1), "not valid HCL"},
		"empty":                {"", "no listener"},
		"managed key is block": {strings.Replace(ok, "tls_key_file", "tls_min_version { x = 1 }\n tls_key_file", 1), "not a single value"},
	} {
		_, err := parseListener("/etc/vault.d/listener.hcl", []byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "/etc/vault.d/listener.hcl") {
			t.Errorf("%s: %v (want %q)", name, err, tc.want)
		}
	}
	if _, err := parseListener("l.hcl", []byte(ok)); err != nil {
		t.Fatal(err)
	}
}

// The unseal key file holds keys, never anything else; errors do not quote.
func TestUnsealKeys(t *testing.T) {
	req := func(v string) sdk.RequestContext {
		return sdk.RequestContext{Target: sdk.NewTarget("vault", []byte(`{}`), []byte(`{}`), map[string][]byte{"unseal_key": []byte(v)})}
	}
	keys, err := unsealKeys(req("ZmFrZWZha2VmYWtlZmFrZWZha2VmYWtlZmFrZWZha2U=\n\n" + strings.Repeat("ab", 33) + "\n"))
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys: %v %d", err, len(keys))
	}
	if _, err := unsealKeys(req("hvs.not-an-unseal-key-at-all")); err == nil || strings.Contains(err.Error(), "hvs.") {
		t.Fatalf("a token in the unseal key file: %v", err)
	}
	if keys, err := unsealKeys(sdk.RequestContext{Target: sdk.NewTarget("vault", []byte(`{}`), []byte(`{}`), nil)}); err != nil || keys != nil {
		t.Fatalf("no key: %v %v", keys, err)
	}
}

// FuzzListenerFile: the parser never panics; whatever it accepts renders
// to a file that parses back with the profile's settings and the
// operator's address and certificate, and rendering that again is
// byte-identical (a second apply changes nothing).
func FuzzListenerFile(f *testing.F) {
	f.Add([]byte(operatorListener))
	f.Add([]byte("listener \"tcp\" {\n address = \"127.0.0.1:8200\"\n tls_cert_file = \"/c\"\n tls_key_file = \"/k\"\n tls_cipher_suites = \"TLS_RSA_WITH_AES_128_CBC_SHA\"\n}\n"))
	f.Add([]byte("listener tcp {\n address = \"[::1]:8200\" # v6\n tls_cert_file = <<EOF\n/c\nEOF\n tls_key_file = \"/k\"\n custom_response_headers \"default\" { \"Strict-Transport-Security\" = [\"max-age=31536000\"] }\n}\n"))
	f.Add([]byte("listener \"tcp\" { address = \"a${b}\" tls_cert_file = \"%{x}\" tls_key_file = \"\\\"\" }"))
	want, managed, _, _ := listenerWant(tlsprofile.Intermediate(), true, "/etc/vault.d/ca.pem")
	f.Fuzz(func(t *testing.T, src []byte) {
		lf, err := parseListener("l.hcl", src)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "l.hcl: ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		out, err := lf.render(listenerHeader("vault", "intermediate"), want, managed)
		if err != nil {
			return // the printer refuses what it cannot print: nothing is written
		}
		back, err := parseListener("l.hcl", out)
		if err != nil {
			t.Fatalf("rendered file does not parse: %v\n%s", err, out)
		}
		if !back.matches(want, managed) {
			t.Fatalf("rendered file does not hold the profile's settings:\n%s", out)
		}
		for _, k := range []string{"address", "tls_cert_file", "tls_key_file"} {
			if back.values[k] != lf.values[k] {
				t.Fatalf("%s changed from %q to %q", k, lf.values[k], back.values[k])
			}
		}
		again, err := back.render(listenerHeader("vault", "intermediate"), want, managed)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent:\n%s\n---\n%s", out, again)
		}
	})
}

// harden render's listener.hcl is what apply writes (placeholders for the
// operator's address and certificate): it parses back with the profile's
// settings, client certificates required in the mTLS scope.
func TestRenderedListenerArtifact(t *testing.T) {
	for _, mtls := range []bool{false, true} {
		q := sdk.RequestContext{Target: sdk.NewTarget("vault", nil, nil, nil)}
		if mtls {
			q.Policy.MTLSScope = []string{"vault"}
		}
		st := &settings{profile: tlsprofile.Intermediate()}
		out := listenerHCL(q, st)
		lf, err := parseListener("listener.hcl", []byte(out))
		want, managed, _, _ := listenerWant(st.profile, mtls, "/etc/vault/tls/client-ca.pem")
		if err != nil || !lf.matches(want, managed) || !strings.Contains(out, "RESTART Vault") {
			t.Fatalf("mtls=%v: %v\n%s", mtls, err, out)
		}
	}
}

// vaultpki.listener.config rests on the live listener, never on the file
// alone: a right file that Vault does not serve yet fails (restart due), a
// right file whose listener could not be observed is a warning, and only a
// right file served live passes. A wrong file fails whatever is served.
func TestListenerConfigNeedsTheLiveListener(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "listener.hcl")
	lf, err := parseListener(file, []byte(operatorListener))
	if err != nil {
		t.Fatal(err)
	}
	want, managed, _, _ := listenerWant(tlsprofile.Intermediate(), false, "")
	hardened, err := lf.render(listenerHeader("vault", "intermediate"), want, managed)
	if err != nil {
		t.Fatal(err)
	}
	conn, _ := json.Marshal(map[string]any{"address": "https://127.0.0.1:8200"})
	spec, _ := json.Marshal(map[string]any{"listener": map[string]any{"config_file": file, "restart_command": []string{"/bin/true"}}})
	q := sdk.RequestContext{Policy: sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate(), Targets: []sdk.TargetRef{{Name: "vault", Plugin: "vaultpki"}}},
		Target: sdk.NewTarget("vault", conn, spec, nil)}
	var d sdk.Diagnostics
	st, ok := load(q, &d)
	if !ok {
		t.Fatal(d.Err())
	}
	subj := "Vault listener 127.0.0.1:8200"
	served := []checks.Check{checks.Passed("tls.enabled", subj, "TLS handshake completed"), checks.Passed("tls.protocol.versions", subj, "TLSv1.2 accepted"),
		checks.Passed("tls.cipher_suites", subj, "accepted TLSv1.2 TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")}
	with := func(id string, c checks.Check) []checks.Check {
		out := slices.Clone(served)
		for i := range out {
			if out[i].ID == id {
				out[i] = c
			}
		}
		return out
	}
	for name, tc := range map[string]struct {
		file    string
		decided []checks.Check
		status  checks.Status
		says    string
	}{
		"right file, served":       {string(hardened), served, checks.Pass, "Vault serves them"},
		"right file, restart due":  {string(hardened), with("tls.cipher_suites", checks.Failed("tls.cipher_suites", subj, "accepted outside the intermediate profile: TLSv1.2 TLS_RSA_WITH_AES_128_CBC_SHA")), checks.Fail, "restart due"},
		"right file, unobservable": {string(hardened), []checks.Check{checks.Errored("tls.enabled", subj, errors.New("endpoint unreachable: timeout"))}, checks.Warn, "could not be observed"},
		"right file, inconclusive": {string(hardened), with("tls.protocol.versions", checks.Reduce("tls.protocol.versions", subj, checks.Unknown("TLSv1.1", "reset"))), checks.Warn, "could not be observed"},
		"wrong file, served":       {operatorListener, served, checks.Fail, "tls10"},
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(file, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			cs := listenerConfigCheck(q, st, listenerScan{decided: tc.decided})
			if len(cs) != 1 || cs[0].ID != "vaultpki.listener.config" || cs[0].Status != tc.status || !strings.Contains(cs[0].Evidence, tc.says) {
				t.Fatalf("want %s saying %q, got %+v", tc.status, tc.says, cs)
			}
		})
	}
}

// The suites a restart can change are judged as the profile has them; only
// the TLS 1.3 suites Go always offers are added, and only when the profile
// allows TLS 1.3.
func TestListenerDecidable(t *testing.T) {
	p := tlsprofile.Intermediate()
	p.TLS13Suites = []uint16{tls.TLS_AES_128_GCM_SHA256}
	d := listenerDecidable(p)
	if !slices.Equal(p.TLS13Suites, []uint16{tls.TLS_AES_128_GCM_SHA256}) {
		t.Fatal("listenerDecidable changed the policy's profile")
	}
	for _, id := range goTLS13Suites {
		if !d.AllowsSuite(id) {
			t.Errorf("%s not allowed in the decidable profile", tls.CipherSuiteName(id))
		}
	}
	if !slices.Equal(d.TLS12Suites, p.TLS12Suites) || d.AllowsSuite(tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA) {
		t.Fatal("TLS 1.2 suites changed")
	}
	twelve := tlsprofile.Intermediate()
	twelve.Versions, twelve.TLS13Suites = []uint16{tls.VersionTLS12}, nil
	if got := listenerDecidable(twelve); len(got.TLS13Suites) != 0 {
		t.Fatal("TLS 1.3 suites added to a profile without TLS 1.3")
	}
}
