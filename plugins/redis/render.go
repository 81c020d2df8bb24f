package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// setting is one redis.conf directive harden manages.
type setting struct{ name, value string }

// tlsSettings are the tls-* directives for the policy, in the order of one
// CONFIG SET (redis 7 applies a multi-argument CONFIG SET all or nothing).
// tls-port and port are separate steps (see plan.go).
func (t *target) tlsSettings(q sdk.RequestContext) []setting {
	p := q.Policy.Profile
	var versions, suites13 []string
	for _, v := range p.Versions {
		versions = append(versions, tlsprofile.VersionName(v))
	}
	for _, id := range p.TLS13Suites {
		if s, ok := tlsprofile.SuiteByID(id); ok {
			suites13 = append(suites13, s.IANA) // OpenSSL's TLS 1.3 names are the IANA ones
		}
	}
	out := []setting{
		{"tls-cert-file", t.certFile()},
		{"tls-key-file", t.keyFile()},
		{"tls-ca-cert-file", t.caFile()},
		{"tls-auth-clients", yesNo(q.Policy.InMTLSScope(t.name))},
		{"tls-protocols", strings.Join(versions, " ")},
	}
	// A TLS 1.3-only profile has no TLS 1.2 suites; redis keeps OpenSSL's
	// default list then, which no accepted version uses.
	if c := p.OpenSSLCipherList(); c != "" {
		out = append(out, setting{"tls-ciphers", c})
	}
	out = append(out, setting{"tls-ciphersuites", strings.Join(suites13, ":")},
		setting{"tls-prefer-server-ciphers", yesNo(p.ServerPreferredOrder)})
	return out
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// portSettings: the TLS port, then (when asked) the plaintext port closed.
func (t *target) portSettings() []setting {
	out := []setting{{"tls-port", strconv.Itoa(t.tlsPort)}}
	if t.spec.closePlaintext() {
		out = append(out, setting{"port", "0"})
	}
	return out
}

// opensslGroups maps the profile's groups to OpenSSL 3 names. Redis has no
// setting for key-exchange groups; OpenSSL's configuration file does
// (redis loads it: OPENSSL_CONF). X25519MLKEM768 is left out: OpenSSL
// before 3.5 refuses a Groups line naming it, and a configuration OpenSSL
// refuses would stop redis's TLS altogether.
var opensslGroups = map[string]string{"x25519": "X25519", "secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521", "x448": "X448"}

// opensslConf is the OpenSSL configuration that limits the key-exchange
// groups; "" when the profile names none OpenSSL 3.0 knows.
func opensslConf(p tlsprofile.Profile) string {
	var groups []string
	for _, g := range p.Groups {
		if n, ok := opensslGroups[g]; ok {
			groups = append(groups, n)
		}
	}
	if len(groups) == 0 {
		return ""
	}
	return "# harden: key-exchange groups of the " + p.Name + " profile. Redis has no setting for them;\n" +
		"# start redis-server with OPENSSL_CONF=<this file> (takes effect at the next start).\n" +
		"openssl_conf = harden_conf\n[harden_conf]\nssl_conf = harden_ssl\n[harden_ssl]\nsystem_default = harden_tls\n" +
		"[harden_tls]\nGroups = " + strings.Join(groups, ":") + "\n"
}

// file is one file apply writes into cert_dir.
type file struct {
	path, artifact string
	data           []byte
	mode           uint32
	sensitive      bool
	description    string
}

// files are the certificate material and the OpenSSL groups file; the
// certificate files only when the request carries a certificate.
func (t *target) files(q sdk.RequestContext) []file {
	var out []file
	if c := q.Certificates; len(c.ChainPEM) > 0 {
		out = append(out,
			file{t.certFile(), "tls/redis.crt", c.ChainPEM, 0o644, false, "server certificate chain (leaf first)"},
			file{t.keyFile(), "tls/redis.key", c.KeyPEM, 0o600, true, "server private key"},
			file{t.caFile(), "tls/ca.crt", c.CABundlePEM, 0o644, false, "CA bundle: verifies client certificates (tls-auth-clients)"})
	}
	if conf := opensslConf(q.Policy.Profile); conf != "" {
		out = append(out, file{t.opensslFile(), "tls/openssl.cnf", []byte(conf), 0o644, false,
			"OpenSSL configuration with the profile's key-exchange groups: start redis-server with OPENSSL_CONF=" + t.opensslFile()})
	}
	return out
}

// Render writes redis-tls.conf (the directives, to include from
// redis.conf) and the files of cert_dir. Offline.
func (redisTLS) Render(_ context.Context, q sdk.RenderRequest, r *sdk.RenderResponse) {
	t, ok := load(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# harden: TLS for redis target %s (profile %s). Include from redis.conf or apply with harden.\n", t.name, q.Policy.Profile.Name)
	for _, s := range append(t.tlsSettings(q.RequestContext), t.portSettings()...) {
		fmt.Fprintf(&b, "%s %s\n", s.name, quoteConf(s.value))
	}
	r.Artifacts = append(r.Artifacts, sdk.Artifact{Path: "redis-tls.conf", Content: []byte(b.String()), Mode: 0o644,
		Description: "redis.conf directives: TLS port, certificate files, protocols and ciphers of the profile, plaintext port closed"})
	if len(q.Certificates.ChainPEM) == 0 {
		r.Diagnostics.AddWarning("no certificate for target "+t.name, "the policy gives no certificate: the certificate files are not rendered")
	}
	for _, f := range t.files(q.RequestContext) {
		r.Artifacts = append(r.Artifacts, sdk.Artifact{Path: f.artifact, Content: f.data, Mode: f.mode, Sensitive: f.sensitive, Description: f.description})
	}
}

// quoteConf quotes a redis.conf argument that holds spaces or quotes.
func quoteConf(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\"'\\") {
		return v
	}
	return strconv.Quote(v)
}
