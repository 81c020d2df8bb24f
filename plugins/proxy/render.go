package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// The files apply writes into cert_dir. One set per target: cert_dir is
// the target's.
func (t *target) certFile() string      { return filepath.Join(t.spec.CertDir, "front.crt") }
func (t *target) keyFile() string       { return filepath.Join(t.spec.CertDir, "front.key") }
func (t *target) clientCAFile() string  { return filepath.Join(t.spec.CertDir, "client-ca.crt") }
func (t *target) backendCAFile() string { return filepath.Join(t.spec.CertDir, "backend-ca.crt") }

// file is one file harden owns: the certificate material in cert_dir and
// the rendered include.
type file struct {
	path, artifact string
	data           []byte
	mode           uint32
	sensitive      bool
	description    string
	// certificate: certificate material (a renewal may push it alone).
	certificate bool
}

// opensslTLS is the profile in OpenSSL's words: what nginx and HAProxy
// (both OpenSSL-based) take for the front and for the upstream.
type opensslTLS struct {
	// Protocols are OpenSSL version names, ascending ("TLSv1.2").
	Protocols []string
	// Ciphers is the TLS 1.2 cipher list ("" for a TLS 1.3-only profile).
	Ciphers string
	// Ciphersuites are the TLS 1.3 suites (OpenSSL uses the IANA names),
	// joined with ':'.
	Ciphersuites string
	// Groups are the key-exchange groups OpenSSL 3.0 knows, in the
	// profile's order, joined with ':'; Skipped those it does not.
	Groups  string
	Skipped []string
	// PreferServer: the profile wants the server's suite order.
	PreferServer bool
}

// opensslGroups maps IANA group names to the names OpenSSL 3.0 accepts in
// a groups/curves list (SSL_CTX_set1_groups_list). X25519MLKEM768 is not
// among them: OpenSSL has it from 3.5 only, and a list naming a group the
// library lacks is refused as a whole — nginx -t / haproxy -c would fail
// (Debian 12 ships OpenSSL 3.0). It is skipped, and the render says so.
var opensslGroups = map[string]string{"x25519": "X25519", "x448": "X448", "secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521",
	"ffdhe2048": "ffdhe2048", "ffdhe3072": "ffdhe3072", "ffdhe4096": "ffdhe4096", "ffdhe6144": "ffdhe6144", "ffdhe8192": "ffdhe8192"}

func opensslNames(p tlsprofile.Profile) opensslTLS {
	var o opensslTLS
	for _, v := range p.Versions {
		o.Protocols = append(o.Protocols, tlsprofile.VersionName(v))
	}
	o.Ciphers = p.OpenSSLCipherList()
	var s13 []string
	for _, id := range p.TLS13Suites {
		if s, ok := tlsprofile.SuiteByID(id); ok {
			s13 = append(s13, s.IANA)
		}
	}
	o.Ciphersuites = strings.Join(s13, ":")
	var groups []string
	for _, g := range p.Groups {
		if n, ok := opensslGroups[strings.ToLower(g)]; ok {
			groups = append(groups, n)
		} else {
			o.Skipped = append(o.Skipped, g)
		}
	}
	o.Groups = strings.Join(groups, ":")
	o.PreferServer = p.ServerPreferredOrder
	return o
}

// errNoCertificate: without the policy's certificate there is no front.
var errNoCertificate = errors.New("the policy gives this target no certificate and key: there is nothing to serve the TLS front with")

// input is the material render refers to, for this request.
func (t *target) input(q sdk.RequestContext) renderInput {
	return renderInput{Policy: q.Policy, MTLS: q.Policy.InMTLSScope(t.name), CertFile: t.certFile(), KeyFile: t.keyFile(),
		ClientCAFile: t.clientCAFile(), BackendCAFile: t.backendCAFile()}
}

// backendCA is what the proxy trusts for the backend: spec.backend.ca_file
// (read now: the copy in cert_dir is harden's), else the policy's bundle.
func (t *target) backendCA(q sdk.RequestContext) ([]byte, string, error) {
	data, what := q.Certificates.CABundlePEM, "the policy's CA bundle"
	if f := t.spec.Backend.CAFile; f != "" {
		var err error
		if data, err = sdk.ReadFile(f); err != nil {
			return nil, "", fmt.Errorf("spec.backend.ca_file %s: %w", f, err)
		}
		what = "spec.backend.ca_file " + f
	}
	if len(data) == 0 {
		return nil, "", errors.New("no CA for the backend: set spec.backend.ca_file or give the policy a CA bundle (the proxy must verify the backend)")
	}
	if _, err := sdk.ParseCertificatesPEM(data); err != nil {
		return nil, "", fmt.Errorf("%s: %w", what, err)
	}
	return data, what, nil
}

// files are everything harden owns for the target, the certificate
// material first and the rendered include last (a reload that happens
// between two writes finds the files the include names).
func (t *target) files(q sdk.RequestContext) ([]file, error) {
	c := q.Certificates
	if len(c.ChainPEM) == 0 || len(c.KeyPEM) == 0 {
		return nil, errNoCertificate
	}
	in := t.input(q)
	if in.MTLS && len(c.CABundlePEM) == 0 {
		return nil, fmt.Errorf("target %s is in the policy's mTLS scope but the policy gives no CA bundle to verify client certificates with", t.name)
	}
	backendCA, from, err := t.backendCA(q)
	if err != nil {
		return nil, err
	}
	out := []file{
		{t.certFile(), "certs/front.crt", c.ChainPEM, 0o644, false, "the front's certificate chain (leaf first)", true},
		{t.keyFile(), "certs/front.key", c.KeyPEM, 0o600, true, "the front's private key", true},
	}
	if in.MTLS {
		out = append(out, file{t.clientCAFile(), "certs/client-ca.crt", c.CABundlePEM, 0o644, false, "CA bundle that verifies client certificates (the policy's mTLS scope)", true})
	}
	out = append(out, file{t.backendCAFile(), "certs/backend-ca.crt", backendCA, 0o644, false, "CA the proxy trusts for the backend (" + from + ")", true})
	if ff, ok := t.flavor.(flavorFiles); ok {
		out = append(out, ff.certFiles(t, c)...)
	}
	body, err := t.flavor.render(t, in)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", t.spec.IncludeFile, err)
	}
	out = append(out, file{t.spec.IncludeFile, filepath.Base(t.spec.IncludeFile), body, 0o644, false,
		"the " + t.flavor.kind() + " configuration harden owns: the TLS front, the verified TLS upstream and the canary route", false})
	return out, nil
}

// Render writes the include and the certificate files. Offline (it reads
// spec.backend.ca_file, a local file).
func (proxyTLS) Render(_ context.Context, q sdk.RenderRequest, r *sdk.RenderResponse) {
	t, ok := load(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	files, err := t.files(q.RequestContext)
	if err != nil {
		r.Diagnostics.AddTargetError("proxy.render", "cannot render target "+t.name, err)
		return
	}
	for _, f := range files {
		r.Artifacts = append(r.Artifacts, sdk.Artifact{Path: f.artifact, Content: f.data, Mode: f.mode, Sensitive: f.sensitive, Description: f.description})
	}
	skippedGroupsWarning(q.Policy.Profile, &r.Diagnostics)
}

// skippedGroupsWarning says which of the profile's groups the rendered
// configuration leaves out.
func skippedGroupsWarning(p tlsprofile.Profile, d *sdk.Diagnostics) {
	if s := opensslNames(p).Skipped; len(s) > 0 {
		d.AddWarning("key-exchange groups left out: "+strings.Join(s, ", "),
			"OpenSSL 3.0 (Debian 12's, which nginx and HAProxy use) does not have them (X25519MLKEM768 needs OpenSSL 3.5); naming them would make the proxy refuse its configuration")
	}
}
