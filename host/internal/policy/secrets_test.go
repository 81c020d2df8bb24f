package policy

import (
	"fmt"
	"strings"
	"testing"
)

// The secrets of these tests: none may appear in any error message.
const (
	pemKey     = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIKEYMATERIALxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n-----END EC PRIVATE KEY-----\n"
	password   = "hunter2Secret"
	jwt        = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJoYXJkZW4tYWRtaW4ifQ.c2lnbmF0dXJlc2lnbmF0dXJl"
	vaultToken = "hvs.CAESIJqRandomVaultTokenXYZ0123456789"
)

var secretValues = []string{"KEYMATERIAL", password, "c2lnbmF0dXJl", "CAESIJqRandom", "AKIAIOSFODNN7EXAMPLE", "MIIBIjANBgkq"}

func policyWith(block string) string {
	return "apiVersion: harden/v1\nprofile: modern\n" + block
}

// Every block of the policy is scanned, and the error names file:line:col and
// the field, never the value.
func TestInlineSecretsEverywhere(t *testing.T) {
	tests := map[string]struct {
		yaml string
		want string // the whole first line of the error up to the message
	}{
		"PEM block in certificate.key_file": {policyWith("targets:\n  - name: a\n    plugin: b\n    certificate:\n      cert_file: a.pem\n      key_file: |\n        " + strings.ReplaceAll(pemKey, "\n", "\n        ") + "\n"),
			"p.yaml:8:17: targets[0].certificate.key_file: inline secret: the value holds a PEM block"},
		"PEM in cert_file (flow)": {policyWith("targets: [{name: a, plugin: b, certificate: {cert_file: \"-----BEGIN CERTIFICATE-----\\nMIIB\", key_file: k.pem}}]\n"),
			"p.yaml:3:57: targets[0].certificate.cert_file: inline secret: the value holds a PEM block"},
		"password where password_file belongs": {policyWith("targets:\n  - name: a\n    plugin: b\n    connection: {host: 127.0.0.1, port: 5432, password_file: " + password + "}\n"),
			"p.yaml:6:62: targets[0].connection.password_file: does not look like a file path: the value is a bare word"},
		"password with symbols where token_file belongs": {policyWith("targets:\n  - name: a\n    plugin: b\n    connection: {token_file: \"S3cr3t!pass\"}\n"),
			"p.yaml:6:30: targets[0].connection.token_file: does not look like a file path: the value holds characters"},
		"space in key_file": {policyWith("targets:\n  - name: a\n    plugin: b\n    certificate: {cert_file: a.pem, key_file: \"correct horse battery\"}\n"),
			"p.yaml:6:47: targets[0].certificate.key_file: does not look like a file path"},
		"URL with credentials in host": {policyWith("targets:\n  - name: a\n    plugin: b\n    connection: {host: \"postgres://admin:" + password + "@db.internal:5432/app\", port: 5432}\n"),
			"p.yaml:6:24: targets[0].connection.host: inline secret: the value holds credentials in a URL"},
		"user:password@ in host without a scheme": {policyWith("targets:\n  - name: a\n    plugin: b\n    connection: {host: \"admin:" + password + "@db.internal\", port: 5432}\n"),
			"p.yaml:6:24: targets[0].connection.host: user information (user@ or user:password@) in a host value"},
		"user:password@ in a bootstrap list": {policyWith("targets:\n  - name: a\n    plugin: b\n    connection: {bootstrap: [\"127.0.0.1:9092\", \"u:" + password + "@127.0.0.1:9093\"]}\n"),
			"p.yaml:6:48: targets[0].connection.bootstrap[1]: user information"},
		"libpq DSN with password=": {policyWith("targets:\n  - name: a\n    plugin: b\n    spec: {dsn_hint: \"host=db user=x password=" + password + "\"}\n"),
			"p.yaml:6:22: targets[0].spec.dsn_hint: inline secret: the value holds a password in a connection string"},
		"password in a URL query": {policyWith("targets:\n  - name: a\n    plugin: b\n    connection: {endpoint: \"https://s3.internal:8443/?token=" + password + "\"}\n"),
			"p.yaml:6:28: targets[0].connection.endpoint: inline secret: the value holds a password in a connection string or URL query"},
		"URL credentials in restart_command argv": {policyWith("targets:\n  - name: a\n    plugin: b\n    connection: {restart_command: [curl, \"https://ops:" + password + "@127.0.0.1:9000/restart\"]}\n"),
			"p.yaml:6:42: targets[0].connection.restart_command[1]: inline secret: the value holds credentials in a URL"},
		"JWT in spec": {policyWith("targets:\n  - name: a\n    plugin: b\n    spec: {note: \"" + jwt + "\"}\n"),
			"p.yaml:6:18: targets[0].spec.note: inline secret: the value holds a JSON Web Token"},
		"Vault token in a nested spec list": {policyWith("targets:\n  - name: a\n    plugin: b\n    spec: {items: [{x: " + vaultToken + "}]}\n"),
			"p.yaml:6:24: targets[0].spec.items[0].x: inline secret: the value holds a Vault token"},
		"AWS key ID in connection": {policyWith("targets:\n  - name: a\n    plugin: b\n    connection: {region: AKIAIOSFODNN7EXAMPLE}\n"),
			"p.yaml:6:26: targets[0].connection.region: inline secret: the value holds an AWS access key ID"},
		"base64 DER in certificate_names": {policyWith("targets:\n  - name: a\n    plugin: b\n    certificate_names: [MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0]\n"),
			"p.yaml:6:25: targets[0].certificate_names[0]: inline secret: the value holds base64 DER key material"},
		"PEM in certificates.files.ca_file": {policyWith("certificates: {source: files, files: {ca_file: \"-----BEGIN CERTIFICATE-----\"}}\ntargets: [{name: a, plugin: b}]\n"),
			"p.yaml:3:48: certificates.files.ca_file: inline secret: the value holds a PEM block"},
		"password in profile.allow_insecure": {"apiVersion: harden/v1\nprofile: {base: modern, allow_insecure: \"postgres://a:" + password + "@h\"}\ntargets: [{name: a, plugin: b}]\n",
			"p.yaml:2:41: profile.allow_insecure: inline secret: the value holds credentials in a URL"},
		"token in the vault certificate source": {policyWith("certificates: {source: vault-pki, vault: {target: v, token: " + vaultToken + "}}\ntargets: [{name: v, plugin: vaultpki}]\n"),
			"p.yaml:3:54: certificates.vault.token: inline secret: never write secrets in the policy; use token_env"},
		"PEM as a mapping key": {policyWith("targets:\n  - name: a\n    plugin: b\n    spec: {\"" + strings.ReplaceAll(pemKey, "\n", "\\n") + "\": 1}\n"),
			"p.yaml:6:12: targets[0].spec: a mapping key holds a PEM block"},
		"duplicate secret-looking key": {policyWith("targets:\n  - name: a\n    plugin: b\n    spec: {\"" + vaultToken + "\": 1, \"" + vaultToken + "\": 2}\n"),
			"p.yaml:6:"},
		"secret beside a schema error": {"apiVersion: harden/v2\nprofile: modern\ntargets:\n  - name: a\n    plugin: b\n    certificate: {cert_file: a.pem, key_file: \"" + strings.ReplaceAll(pemKey, "\n", "\\n") + "\"}\n",
			"p.yaml:6:47: targets[0].certificate.key_file: inline secret: the value holds a PEM block"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, tc.want) {
				t.Errorf("error\n  %q\nwant prefix\n  %q", msg, tc.want)
			}
			for _, s := range secretValues {
				if strings.Contains(msg, s) {
					t.Errorf("error echoes the secret %q: %q", s, msg)
				}
			}
			if strings.Contains(msg, "harden/v2") {
				t.Errorf("other errors reported beside the secret (they may quote values): %q", msg)
			}
		})
	}
}

// Paths that are plausible file names are not mistaken for secrets.
func TestLegitimatePathsAndHostsAccepted(t *testing.T) {
	doc := policyWith(`certificates: {source: files, files: {ca_file: certs/ca.pem, crl_file: ../pki/ca.crl}}
targets:
  - name: a
    plugin: b
    connection: {host: db-1.internal, port: 5432, user: "harden@corp", password_file: pg-password,
                 token_file: /run/secrets/vault_token, data_dir: /var/lib/postgresql/15/main,
                 socket_dir: /var/run/postgresql, config_file: ./server.properties,
                 endpoint: "https://s3.internal:8443/bucket?x-id=PutObject", bootstrap: ["[::1]:9093"],
                 restart_command: [systemctl, restart, kafka.service], principal: "User:alice@EXAMPLE.COM"}
    certificate: {cert_file: certs/server.crt, key_file: certs/server.key, client_cert_file: harden.pem, client_key_file: ./harden_key}
    spec: {cert_dir: harden, audit: {file: /var/log/vault/audit.log}, note: "keys live in ~/keys, see RUNBOOK-12"}
`)
	if _, err := Parse("/etc/harden/p.yaml", []byte(doc)); err != nil {
		t.Fatal(err)
	}
}

func TestPathRule(t *testing.T) {
	for s, want := range map[string]string{
		"ca.pem": "", "vault-token": "", "s3_secret": "", "./hunter2": "", "/run/secrets/x": "", "certs/server.key": "",
		"hunter2": "bare word", "Tr0ub4dor": "bare word", "S3cr3t!": "characters", "a b.pem": "characters",
		"p@ss_word": "characters", "tab\t.pem": "control", strings.Repeat("a/", 2049): "longer",
		// Written as paths, real directory names keep their characters
		// (systemd instances, a test's temporary directory, spaces).
		"/srv/pg@15/main/server.key": "", "/mnt/backup (old)/ca.pem": "", "./my keys/k.pem": "", "../a#b/c.pem": "",
		"/etc/x\n/ca.pem": "control",
	} {
		got := pathProblem(s, true)
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("pathProblem(%.20q) = %q, want %q", s, got, want)
		}
	}
	if got := pathProblem("harden", false); got != "" {
		t.Errorf("a directory named by a bare word is fine: %q", got)
	}
}

func FuzzSecretKind(f *testing.F) {
	for _, s := range []string{pemKey, password, jwt, vaultToken, "postgres://a:b@h/db", "host=x password=y", "ca.pem", "https://h:1/p@x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Property: whatever a value is, once it holds a PEM header or a
		// URL password, it is never accepted into a policy, and the error
		// never contains it.
		kind := secretKind(s)
		if strings.Contains(s, "-----BEGIN") && kind == "" {
			t.Fatalf("PEM not detected in %q", s)
		}
		doc := "apiVersion: harden/v1\nprofile: modern\ntargets: [{name: a, plugin: b, connection: {password_file: " + yamlQuote(s) + "}}]\n"
		_, err := Parse("f.yaml", []byte(doc))
		if kind != "" && err == nil {
			t.Fatalf("secret %q (%s) accepted", s, kind)
		}
		if err != nil && len(s) >= 8 && strings.Contains(err.Error(), s) && (kind != "" || pathProblem(s, true) != "") {
			t.Fatalf("error echoes the value %q: %v", s, err)
		}
	})
}

func yamlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || (r >= 0x7f && r < 0xa0) || r == 0xfeff || r == 0x2028 || r == 0x2029:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// The AppRole files of a vaultpki connection are secrets the host resolves
// (before: role_id_file and secret_id_file were not recognised, so the
// plugin never got them and said "no Vault credentials"); inline, they are
// refused like any secret.
func TestAppRoleFilesAreSecrets(t *testing.T) {
	p, err := Parse("/etc/harden/p.yaml", []byte(policyWith("targets:\n  - name: v\n    plugin: vaultpki\n    connection: {address: \"https://127.0.0.1:8200\", role_id_file: role-id, secret_id_file: /run/secrets/secret-id}\n")))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range p.Targets[0].Secrets {
		got[s.Name] = s.File
	}
	if got["role_id"] != "/etc/harden/role-id" || got["secret_id"] != "/run/secrets/secret-id" || len(got) != 2 {
		t.Errorf("secrets %v", got)
	}
	_, err = Parse("p.yaml", []byte(policyWith("targets: [{name: v, plugin: vaultpki, connection: {secret_id: 1f2e3d4c-aaaa}}]\n")))
	if err == nil || !strings.Contains(err.Error(), "targets[0].connection.secret_id: inline secret") || strings.Contains(err.Error(), "1f2e3d4c") {
		t.Errorf("inline secret_id: %v", err)
	}
}

// A password pasted where an environment variable's name belongs is never
// repeated by the "not set" error (it was: "environment variable
// Tr0ub4dor3XYZ is not set"); a conventional NAME still is.
func TestUnsetEnvNameNotEchoedWhenItMayBeASecret(t *testing.T) {
	doc := policyWith("targets:\n  - name: a\n    plugin: b\n    connection: {host: 127.0.0.1, port: 5432, password_env: Tr0ub4dor3XYZ}\n")
	p, err := Parse("/etc/harden/p.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	tg, _ := p.Target("a")
	_, err = p.ResolveSecrets(tg, func(string) (string, bool) { return "", false })
	if err == nil || strings.Contains(err.Error(), "Tr0ub4dor3XYZ") || !strings.Contains(err.Error(), "p.yaml:6:") {
		t.Fatalf("unset mixed-case env name: %v", err)
	}
	for name, ok := range map[string]bool{"PGPASSWORD": true, "VAULT_TOKEN_2": true, "_X": true, "pg_pass": false, "2FA": false, "": false, "Tr0ub4dor3XYZ": false} {
		if conventionalEnvName(name) != ok {
			t.Errorf("conventionalEnvName(%q) != %v", name, ok)
		}
	}
}

// A URL password with an unescaped '/' or '#', as people paste them, is
// found too (it was not: review); host:port/path@x is not a password.
func TestURLPasswordWithSlash(t *testing.T) {
	for s, want := range map[string]bool{
		"https://ops:pa/ss@h/": true, "https://ops:p#w@h": true, "postgres://u:p/w@db:5432/app": true,
		"https://h:1/p@x": false, "https://s3.internal:8443/bucket@v2": false, "https://h/p@x": false, "user@host": false,
	} {
		if got := urlHasPassword(s); got != want {
			t.Errorf("urlHasPassword(%q) = %v, want %v", s, got, want)
		}
	}
}

// Short base64 DER keys (P-256 SEC1, Ed25519 PKCS#8) are key material too
// (they passed: review).
func TestShortDERKeysFound(t *testing.T) {
	for _, k := range []string{
		"MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oWbx5aQpA3WroAoGCCqGSM49AwEHoUQDQgAE",
		"MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC",
	} {
		if secretKind("spec value "+k) != "base64 DER key material" {
			t.Errorf("not found: %.20s…", k)
		}
	}
}
