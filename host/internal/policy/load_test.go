package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/harden-dev/harden/host/internal/schema"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

const good = `apiVersion: harden/v1
profile: intermediate
certificates:
  source: files
  files: {ca_file: ca.pem, crl_file: ca.crl}
  rotation: {max_lifetime: 90d, renew_before: 30d, alert_at: [30d, 14d, 7d]}
mtls: {scope: [warehouse-pg]}
targets:
  - name: warehouse-pg
    plugin: postgres
    connection: {host: 127.0.0.1, port: 5432, user: postgres, password_env: PGPASSWORD}
    certificate: {cert_file: pg.pem, key_file: pg-key.pem}
    spec: {hba: [{type: hostssl, database: all}]}
`

func TestParseGood(t *testing.T) {
	p, err := Parse("/etc/harden/policy.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if p.Profile.Name != "intermediate" || p.Profile.MinVersion() != tlsprofile.VersionTLS12 {
		t.Errorf("profile %+v", p.Profile)
	}
	tg := p.Targets[0]
	if tg.Endpoints[0].Address != "127.0.0.1:5432" || tg.CertificateNames[0] != "127.0.0.1" {
		t.Errorf("endpoints %+v names %v", tg.Endpoints, tg.CertificateNames)
	}
	if tg.CertFile != "/etc/harden/pg.pem" || p.Certificates.CAFile != "/etc/harden/ca.pem" || p.Certificates.CRLFile != "/etc/harden/ca.crl" {
		t.Errorf("paths not resolved against the policy dir: %q %q", tg.CertFile, p.Certificates.CAFile)
	}
	if len(tg.Secrets) != 1 || tg.Secrets[0].Name != "password" || tg.Secrets[0].Env != "PGPASSWORD" {
		t.Errorf("secrets %+v", tg.Secrets)
	}
	ctx := p.Context()
	if !ctx.Targets[0].MTLS || !ctx.InMTLSScope("warehouse-pg") {
		t.Errorf("mtls scope lost: %+v", ctx)
	}
	sec, err := p.ResolveSecrets(tg, func(k string) (string, bool) { return map[string]string{"PGPASSWORD": "s3cr3t"}[k], k == "PGPASSWORD" })
	if err != nil || string(sec["password"]) != "s3cr3t" {
		t.Errorf("resolve: %v %q", err, sec)
	}
	_, err = p.ResolveSecrets(tg, func(string) (string, bool) { return "", false })
	if err == nil || !strings.Contains(err.Error(), "policy.yaml:11:63:") || !strings.Contains(err.Error(), "PGPASSWORD is not set") {
		t.Errorf("missing env error: %v", err)
	}
}

func TestParseBadInput(t *testing.T) {
	tests := map[string]struct {
		yaml string
		want []string // substrings of the error, the first is the position
	}{
		"syntax error": {"apiVersion: harden/v1\nprofile: [modern\n", []string{"p.yaml:", "YAML syntax error"}},
		"empty":        {"", []string{"policy file is empty"}},
		"wrong api": {"apiVersion: harden/v2\nprofile: modern\ntargets: [{name: a, plugin: b}]\n",
			[]string{"p.yaml:1:13: apiVersion:", "harden/v1"}},
		"unknown top key": {"apiVersion: harden/v1\nprofile: modern\nprofiles: x\ntargets: [{name: a, plugin: b}]\n",
			[]string{"p.yaml:3:1: profiles: unknown key \"profiles\""}},
		"unknown nested key": {"apiVersion: harden/v1\nprofile: modern\ntargets:\n  - name: a\n    plugn: b\n",
			[]string{"p.yaml:5:5: targets[0].plugn: unknown key", "missing required key \"plugin\""}},
		"wrong type": {"apiVersion: harden/v1\nprofile: modern\ntargets: [{name: a, plugin: b, connection: [1]}]\n",
			[]string{"p.yaml:3:", "targets[0].connection: wrong type: got array, want object"}},
		"unknown profile": {"apiVersion: harden/v1\nprofile: old\ntargets: [{name: a, plugin: b}]\n",
			[]string{"p.yaml:2:10: profile:", "modern"}},
		"tls10 without override": {"apiVersion: harden/v1\nprofile:\n  base: intermediate\n  overrides: {min_version: TLSv1}\ntargets: [{name: a, plugin: b}]\n",
			[]string{"p.yaml:4:", "insecure setting: TLSv1 is not allowed", "allow_insecure"}},
		"weak cipher": {"apiVersion: harden/v1\nprofile:\n  base: intermediate\n  overrides:\n    tls12_ciphers: [DES-CBC3-SHA]\ntargets: [{name: a, plugin: b}]\n",
			[]string{"p.yaml:5:20:", "TLS_RSA_WITH_3DES_EDE_CBC_SHA is not in the intermediate profile"}},
		"tls13 suite in tls12 list": {"apiVersion: harden/v1\nprofile:\n  base: intermediate\n  overrides:\n    tls12_ciphers: [TLS_AES_128_GCM_SHA256]\ntargets: [{name: a, plugin: b}]\n",
			[]string{"p.yaml:5:20:", "is a TLS 1.3 suite; list it under tls13_ciphers"}},
		"inline secret": {"apiVersion: harden/v1\nprofile: modern\ntargets:\n  - name: a\n    plugin: b\n    connection: {password: hunter2}\n",
			[]string{"p.yaml:6:18: targets[0].connection.password: inline secret", "password_env"}},
		"inline key": {"apiVersion: harden/v1\nprofile: modern\ntargets:\n  - name: a\n    plugin: b\n    spec: {pem: \"-----BEGIN PRIVATE KEY-----\\nAAAA\"}\n",
			[]string{"p.yaml:6:17: targets[0].spec.pem: inline secret", "a PEM block"}},
		"duplicate key": {"apiVersion: harden/v1\nprofile: modern\nprofile: intermediate\ntargets: [{name: a, plugin: b}]\n",
			[]string{"p.yaml:3:1:", "duplicate key \"profile\""}},
		"duplicate target": {"apiVersion: harden/v1\nprofile: modern\ntargets: [{name: a, plugin: b}, {name: a, plugin: c}]\n",
			[]string{"p.yaml:3:", "already used by targets[0]"}},
		"unknown mtls target": {"apiVersion: harden/v1\nprofile: modern\nmtls: {scope: [nope]}\ntargets: [{name: a, plugin: b}]\n",
			[]string{"p.yaml:3:16: mtls.scope[0]: unknown target \"nope\""}},
		"lifetime above profile": {"apiVersion: harden/v1\nprofile: modern\ncertificates: {source: files, files: {ca_file: ca.pem}, rotation: {max_lifetime: 400d}}\ntargets: [{name: a, plugin: b}]\n",
			[]string{"p.yaml:3:", "insecure setting: 400d exceeds the modern profile's maximum certificate lifespan of 90 days"}},
		"bad env name": {"apiVersion: harden/v1\nprofile: modern\ntargets: [{name: a, plugin: b, connection: {password_env: \"a b\"}}]\n",
			[]string{"p.yaml:3:", "must name an environment variable"}},
		"two documents": {"apiVersion: harden/v1\n---\nx: 1\n", []string{"p.yaml:", "more than one YAML document"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("accepted")
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if strings.Contains(msg, "hunter2") || strings.Contains(msg, "AAAA") {
				t.Errorf("error echoes a secret: %q", msg)
			}
		})
	}
}

func TestInsecureAllowedWithReason(t *testing.T) {
	p, err := Parse("p.yaml", []byte("apiVersion: harden/v1\nprofile:\n  base: intermediate\n  overrides: {min_version: TLSv1.1}\n  allow_insecure: legacy JDBC driver until 2027-03\ntargets: [{name: a, plugin: b}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Profile.AllowsVersion(tlsprofile.VersionTLS11) || p.Profile.InsecureReason == "" {
		t.Errorf("profile %+v", p.Profile)
	}
}

func TestStricterOverrideNeedsNoReason(t *testing.T) {
	p, err := Parse("p.yaml", []byte("apiVersion: harden/v1\nprofile:\n  base: intermediate\n  overrides: {min_version: TLSv1.3, max_certificate_lifespan: 30d}\ntargets: [{name: a, plugin: b}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Profile.AllowsVersion(tlsprofile.VersionTLS12) || p.Profile.MaxCertificateLifespanDays != 30 {
		t.Errorf("profile %+v", p.Profile)
	}
}

func TestValidateTargetAgainstPluginSchema(t *testing.T) {
	p, err := Parse("p.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	conn, _ := schema.Compile("c", []byte(`{"type":"object","additionalProperties":false,"properties":{"host":{"type":"string"},"port":{"type":"integer"},"user":{"type":"string"},"password_env":{"type":"string"}}}`))
	spec, _ := schema.Compile("s", []byte(`{"type":"object","additionalProperties":false,"properties":{"hba":{"type":"array","items":{"type":"object","additionalProperties":false,"properties":{"type":{"type":"string"}}}}}}`))
	err = p.ValidateTarget(0, conn, spec)
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("want one error, got %v", err)
	}
	if got := errs[0].Error(); got != `p.yaml:13:34: targets[0].spec.hba[0].database: unknown key "database"` {
		t.Errorf("got %q", got)
	}
}

func TestJSONSchemaEmbedsPlugins(t *testing.T) {
	doc, err := JSONSchema(map[string]PluginSchemas{"postgres": {Spec: []byte(`{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"hba":{"type":"array"}}}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := schema.Compile("policy", doc); err != nil {
		t.Fatalf("composed schema invalid: %v", err)
	}
	if !strings.Contains(string(doc), `"const": "postgres"`) {
		t.Errorf("plugin branch missing")
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml: not found") {
		t.Errorf("got %v", err)
	}
	f := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(f, []byte(good), 0o644)
	if _, err := Load(f); err != nil {
		t.Errorf("load: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("apiVersion: harden/v1\nprofile: {base: modern, overrides: {min_version: TLSv1}}\ntargets: []\n"))
	f.Add([]byte("a: &x [1, *x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err == nil && (p == nil || len(p.Targets) == 0 || p.Profile.Name == "") {
			t.Fatalf("accepted an incomplete policy: %+v", p)
		}
	})
}
