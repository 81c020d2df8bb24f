package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
)

const version = "0.1.0"

// service is the plugin. It keeps no state between requests.
type service struct{}

// connection says where the service listens and what it speaks.
type connection struct {
	// Address is the service's TLS port.
	Address string `json:"address" jsonschema:"host:port of the service's TLS port" schema:"required,minLength=3"`
	// Protocol picks the probe's dialect: what the client speaks over TLS
	// (and how a plaintext session is attempted).
	Protocol string `json:"protocol" jsonschema:"what the service speaks: https, grpc (HTTP/2 with ALPN h2), tls (no application protocol), postgres (TLS after an SSLRequest), kafka" schema:"required,enum=https|grpc|tls|postgres|kafka"`
	// ServerName is what the certificate must name (and the SNI sent).
	ServerName string `json:"server_name" jsonschema:"name the service's certificate must carry, sent as SNI (default: the address's host)"`
	// CAFile replaces the policy's CA bundle as what the service's chain
	// must verify against (a service whose certificate harden does not
	// issue).
	CAFile string `json:"ca_file" jsonschema:"absolute path of the CA bundle (PEM) the service's certificate must chain to (default: the policy's CA bundle)"`
	// PlaintextAddresses are the service's declared plaintext ports: each
	// must refuse a plaintext session (or have nothing listening).
	PlaintextAddresses []string `json:"plaintext_addresses" jsonschema:"host:port of each plaintext port the service has or had; each must refuse a plaintext session (or have nothing listening)" schema:"items.minLength=3"`
	// Path is the HTTPS request whose answer's security headers are judged.
	Path string `json:"path" jsonschema:"https only: the path of the GET whose answer's security headers are judged (default /)" schema:"minLength=1,pattern=^/[!-~]*$"`
}

// spec is empty: harden changes nothing on the service.
type spec struct{}

var (
	connectionSchema = sdk.LazySchemaFor[connection]("Service connection")
	specSchema       = sdk.LazySchemaFor[spec]("Service spec (empty: verify only)")
)

func (service) Metadata(_ context.Context, _ sdk.MetadataRequest, r *sdk.MetadataResponse) {
	r.Name, r.Version = "service", version
	r.Description = "any TLS endpoint (HTTPS, gRPC, plain TLS, PostgreSQL or Kafka protocol): verify only — versions, suites, groups, certificate, mTLS, declared plaintext ports refused, HTTPS security headers"
}

func (service) Schema(_ context.Context, _ sdk.SchemaRequest, r *sdk.SchemaResponse) {
	r.Connection, r.Spec = connectionSchema(), specSchema()
}

func (service) ValidateSpec(_ context.Context, q sdk.ValidateSpecRequest, r *sdk.ValidateSpecResponse) {
	load(q.RequestContext, &r.Diagnostics)
}

// target is one request's decoded, checked settings.
type target struct {
	name    string
	conn    connection
	dialect probe.Dialect
}

var dialects = map[string]probe.Dialect{"https": probe.HTTP, "grpc": probe.GRPC, "tls": probe.TLS, "postgres": probe.Postgres, "kafka": probe.Kafka}

// load decodes and checks what the schema cannot express.
func load(q sdk.RequestContext, d *sdk.Diagnostics) (*target, bool) {
	c, _, ok := sdk.Decode[connection, spec](q.Target, d)
	if !ok {
		return nil, false
	}
	t := &target{name: q.Target.Name, conn: c, dialect: dialects[c.Protocol]}
	if t.dialect == nil {
		d.AddAttributeError(sdk.Path{"connection", "protocol"}, "unknown protocol (want https, grpc, tls, postgres or kafka)", c.Protocol)
	}
	if _, _, err := net.SplitHostPort(c.Address); err != nil {
		d.AddAttributeError(sdk.Path{"connection", "address"}, "not host:port", err.Error())
	}
	seen := map[string]bool{}
	for i, a := range c.PlaintextAddresses {
		at := sdk.Path{"connection", "plaintext_addresses", fmt.Sprint(i)}
		switch _, _, err := net.SplitHostPort(a); {
		case err != nil:
			d.AddAttributeError(at, "not host:port", err.Error())
		case a == c.Address:
			d.AddAttributeError(at, "the TLS address itself: list the service's plaintext ports only (the TLS port's own plaintext refusal is tls.plaintext.refused)", a)
		case seen[a]:
			d.AddAttributeError(at, "listed twice", a)
		}
		seen[a] = true
	}
	if c.Path != "" && c.Protocol != "https" {
		d.AddAttributeError(sdk.Path{"connection", "path"}, "only for protocol https (the security headers are HTTP's)", c.Path)
	}
	if c.CAFile != "" && !filepath.IsAbs(c.CAFile) {
		d.AddAttributeError(sdk.Path{"connection", "ca_file"}, "must be an absolute path", c.CAFile)
	}
	return t, !d.HasError()
}

// serverName is what the certificate must name.
func (t *target) serverName() string {
	if t.conn.ServerName != "" {
		return t.conn.ServerName
	}
	h, _, _ := net.SplitHostPort(t.conn.Address)
	return h
}

// probeTarget is the probe's view of the service: the policy's CA bundle
// or connection.ca_file to verify it, harden's client certificate (when
// the host gives one), and the expectations of the policy.
func (t *target) probeTarget(q sdk.RequestContext, d *sdk.Diagnostics) (probe.Target, probe.Expectations, bool) {
	pt, exp, err := probe.ForRequest(q, t.dialect)
	if err != nil {
		d.AddError("target "+t.name+": the certificates from the policy", err.Error())
		return pt, exp, false
	}
	if t.conn.CAFile != "" {
		cfg, err := sdk.ClientTLS(q.Certificates, sdk.ClientTLSOptions{CAFile: t.conn.CAFile, NoClientCertificate: true})
		if err != nil {
			d.AddAttributeError(sdk.Path{"connection", "ca_file"}, "unusable CA file", err.Error())
			return pt, exp, false
		}
		pt.RootCAs = cfg.RootCAs
	}
	pt.Address, pt.ServerName = t.conn.Address, t.serverName()
	return pt, exp, true
}

// listenerName names the service's TLS listener in reports and the
// inventory: its protocol.
func (t *target) listenerName() string { return strings.ToLower(t.conn.Protocol) }

// Check IDs this plugin owns. The TLS facts are the probe's tls.* checks,
// the HTTPS security headers its http.* checks.
const checkPlaintextRefused = "service.plaintext.refused"

func init() {
	sdk.RegisterChecks(
		sdk.CheckDefinition{ID: checkPlaintextRefused, Title: "The service's declared plaintext port refuses plaintext sessions", Severity: sdk.SeverityHigh,
			Remediation: "Close the plaintext listener (or make it TLS only, or firewall it): clients must reach the service over its TLS port only.",
			References:  []string{"OWASP Transport Layer Security Cheat Sheet (https://cheatsheetseries.owasp.org/cheatsheets/Transport_Layer_Security_Cheat_Sheet.html)"}},
	)
}
