package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/harden-dev/harden/shared/sdk"
)

const version = "0.1.0"

// proxyTLS is the plugin. It keeps no state between requests.
type proxyTLS struct{}

// connection says where the proxy runs and how harden manages it.
type connection struct {
	// Kind is the proxy software.
	Kind string `json:"kind" jsonschema:"the proxy software" schema:"required,enum=nginx|haproxy"`
	// Front is the TLS address clients connect to (the listen address
	// harden renders).
	Front string `json:"front" jsonschema:"host:port of the TLS front clients connect to (rendered as the listen address)" schema:"required,minLength=3"`
	// ServerName is what the front's certificate must name (default: the
	// front's host).
	ServerName string `json:"server_name" jsonschema:"name checked against the front's certificate (default: the front's host)"`
	// ConfigFile is the proxy's main configuration (nginx.conf, or
	// haproxy.cfg): what `nginx -t -c` / `haproxy -c -f` test with the
	// rendered file in place.
	ConfigFile string `json:"config_file" jsonschema:"absolute path of the proxy's main configuration (nginx.conf / haproxy.cfg)" schema:"required,minLength=1"`
	// Binary is the proxy executable (default: nginx / haproxy on PATH).
	Binary string `json:"binary" jsonschema:"the proxy executable (default: nginx or haproxy on PATH)"`
	// PIDFile is the running proxy's pid file (nginx's pid directive;
	// HAProxy's -p).
	PIDFile string `json:"pid_file" jsonschema:"absolute path of the running proxy's pid file"`
	// MasterSocket is HAProxy's master CLI socket (-S): its reload command
	// is how harden reloads HAProxy without dropping connections.
	MasterSocket string `json:"master_socket" jsonschema:"HAProxy only: absolute path of the master CLI socket (haproxy -S), used to reload"`
	// ReloadCommand overrides how the proxy is reloaded (argv).
	ReloadCommand []string `json:"reload_command" jsonschema:"argv that reloads the proxy (default: nginx -s reload with the pid file; HAProxy: reload on the master socket)" schema:"minItems=1"`
}

// backend is the hop behind the proxy.
type backend struct {
	// Address is the backend's TLS address the proxy forwards to.
	Address string `json:"address" jsonschema:"host:port of the backend's TLS port the proxy must forward to" schema:"required,minLength=3"`
	// ServerName is the name the proxy checks the backend's certificate
	// for (and sends as SNI); default: the address's host.
	ServerName string `json:"server_name" jsonschema:"name the proxy verifies the backend's certificate for and sends as SNI (default: the address's host)"`
	// CAFile is the CA the proxy trusts for the backend (default: the
	// policy's CA bundle).
	CAFile string `json:"ca_file" jsonschema:"CA file (PEM) the proxy trusts for the backend (default: the policy's CA bundle)"`
	// Protocol is what the backend speaks over TLS: the probe's dialect
	// for its scan and plaintext proof.
	Protocol string `json:"protocol" jsonschema:"what the backend speaks over TLS (default http)" schema:"enum=http|tls"`
}

// canary is harden's own route that proves the proxy verifies upstreams.
type canary struct {
	// Listen is the canary's loopback front.
	Listen string `json:"listen" jsonschema:"loopback host:port of harden's canary front (rendered; used only by verify)" schema:"required,minLength=3"`
	// Decoy is the loopback address of the decoy backend verify starts
	// for the duration of the proof.
	Decoy string `json:"decoy" jsonschema:"loopback host:port where verify briefly runs a decoy TLS backend with a certificate from another CA" schema:"required,minLength=3"`
}

// spec is what harden renders and owns.
type spec struct {
	// IncludeFile is the file harden owns: nginx includes it inside
	// http {}; HAProxy loads it as an extra -f file. It holds the front,
	// the backend and the canary.
	IncludeFile string `json:"include_file" jsonschema:"absolute path of the file harden owns (nginx: included inside http {}; HAProxy: an extra -f file)" schema:"required,minLength=1"`
	// CertDir is where apply writes the front's certificate, key (0600),
	// the client CA and the backend CA.
	CertDir string  `json:"cert_dir" jsonschema:"absolute directory for the front's certificate, key (0600) and CA files" schema:"required,minLength=1"`
	Backend backend `json:"backend" jsonschema:"the backend behind the proxy" schema:"required"`
	Canary  canary  `json:"canary" jsonschema:"harden's canary route that proves the proxy verifies its upstream" schema:"required"`
	// HSTS: send Strict-Transport-Security on the front (default true).
	HSTS *bool `json:"hsts" jsonschema:"send Strict-Transport-Security from the front (default true)"`
}

func (s spec) hsts() bool { return s.HSTS == nil || *s.HSTS }

var (
	connectionSchema = sdk.LazySchemaFor[connection]("Proxy connection")
	specSchema       = sdk.LazySchemaFor[spec]("Proxy TLS spec")
)

func (proxyTLS) Metadata(_ context.Context, _ sdk.MetadataRequest, r *sdk.MetadataResponse) {
	r.Name, r.Version = "proxy", version
	r.Description = "nginx and HAProxy: TLS front from the policy, verified TLS to the backend; every hop verified live (front, backend plaintext refused, backend TLS, a decoy backend the proxy must refuse)"
}

func (proxyTLS) Schema(_ context.Context, _ sdk.SchemaRequest, r *sdk.SchemaResponse) {
	r.Connection, r.Spec = connectionSchema(), specSchema()
}

func (proxyTLS) ValidateSpec(_ context.Context, q sdk.ValidateSpecRequest, r *sdk.ValidateSpecResponse) {
	load(q.RequestContext, &r.Diagnostics)
}

// target is one request's decoded, checked settings.
type target struct {
	name   string
	conn   connection
	spec   spec
	flavor flavor
}

// load decodes and checks what the schema cannot express.
func load(q sdk.RequestContext, d *sdk.Diagnostics) (*target, bool) {
	c, s, ok := sdk.Decode[connection, spec](q.Target, d)
	if !ok {
		return nil, false
	}
	t := &target{name: q.Target.Name, conn: c, spec: s, flavor: flavorOf(c.Kind)}
	if t.flavor == nil {
		d.AddAttributeError(sdk.Path{"connection", "kind"}, "unknown proxy kind (nginx or haproxy)", c.Kind)
	}
	for _, a := range []struct {
		path sdk.Path
		v    string
	}{
		{sdk.Path{"connection", "front"}, c.Front},
		{sdk.Path{"spec", "backend", "address"}, s.Backend.Address},
		{sdk.Path{"spec", "canary", "listen"}, s.Canary.Listen},
		{sdk.Path{"spec", "canary", "decoy"}, s.Canary.Decoy},
	} {
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			d.AddAttributeError(a.path, "not host:port", err.Error())
		}
	}
	for _, a := range []struct {
		path sdk.Path
		v    string
	}{
		{sdk.Path{"connection", "config_file"}, c.ConfigFile},
		{sdk.Path{"connection", "pid_file"}, c.PIDFile},
		{sdk.Path{"connection", "master_socket"}, c.MasterSocket},
		{sdk.Path{"spec", "include_file"}, s.IncludeFile},
		{sdk.Path{"spec", "cert_dir"}, s.CertDir},
		{sdk.Path{"spec", "backend", "ca_file"}, s.Backend.CAFile},
	} {
		if a.v != "" && !filepath.IsAbs(a.v) {
			d.AddAttributeError(a.path, "must be an absolute path", a.v)
		}
	}
	// Everything rendered into the proxy's configuration: a character
	// nginx or HAProxy reads as syntax (';', '{', '#', quotes, blanks) or
	// as a variable ('$') would change what the file says.
	for _, a := range []struct {
		path sdk.Path
		v    string
	}{
		{sdk.Path{"connection", "front"}, c.Front},
		{sdk.Path{"connection", "server_name"}, c.ServerName},
		{sdk.Path{"connection", "config_file"}, c.ConfigFile},
		{sdk.Path{"spec", "include_file"}, s.IncludeFile},
		{sdk.Path{"spec", "cert_dir"}, s.CertDir},
		{sdk.Path{"spec", "backend", "address"}, s.Backend.Address},
		{sdk.Path{"spec", "backend", "server_name"}, s.Backend.ServerName},
		{sdk.Path{"spec", "canary", "listen"}, s.Canary.Listen},
		{sdk.Path{"spec", "canary", "decoy"}, s.Canary.Decoy},
	} {
		if i := strings.IndexFunc(a.v, unsafeInConfig); i >= 0 {
			d.AddAttributeError(a.path, fmt.Sprintf("%q cannot be written into the proxy's configuration as it is (letters, digits and / . _ - : [ ] @ + ~ , = only)", a.v[i:i+1]), a.v)
		}
	}
	if c.Kind == "nginx" && c.MasterSocket != "" {
		d.AddAttributeError(sdk.Path{"connection", "master_socket"}, "HAProxy only: nginx is reloaded through pid_file or reload_command", c.MasterSocket)
	}
	if d.HasError() {
		return nil, false
	}
	t.checkAddresses(d)
	return t, !d.HasError()
}

// unsafeInConfig: r is outside the characters harden writes into a proxy
// configuration unquoted.
func unsafeInConfig(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return false
	}
	return !strings.ContainsRune("/._-:[]@+~,=", r)
}

// reloadPath refuses a proxy harden could not reload: apply would write
// files the running proxy never loads (checked before anything changes).
func (t *target) reloadPath() error {
	if len(t.conn.ReloadCommand) > 0 {
		return nil
	}
	switch t.conn.Kind {
	case "nginx":
		if t.conn.PIDFile != "" {
			return nil
		}
	case "haproxy":
		if t.conn.MasterSocket != "" {
			return nil
		}
	}
	return errNoReloadPath(t)
}

func errNoReloadPath(t *target) error {
	how := "connection.pid_file (the master's pid: harden sends it SIGHUP, as nginx -s reload does)"
	if t.conn.Kind == "haproxy" {
		how = "connection.master_socket (HAProxy's master CLI, haproxy -W -S …: harden sends it reload)"
	}
	return fmt.Errorf("%s proxy of target %s has no reload path: set %s or connection.reload_command; without one harden would write files the running proxy never loads", t.conn.Kind, t.name, how)
}

// frontName is what the front's certificate must name.
func (t *target) frontName() string {
	if t.conn.ServerName != "" {
		return t.conn.ServerName
	}
	h, _, _ := net.SplitHostPort(t.conn.Front)
	return h
}

// backendName is what the proxy verifies the backend's certificate for.
func (t *target) backendName() string {
	if t.spec.Backend.ServerName != "" {
		return t.spec.Backend.ServerName
	}
	h, _, _ := net.SplitHostPort(t.spec.Backend.Address)
	return h
}

// Check IDs this plugin owns. The front's and the backend's TLS facts are
// the probe's tls.* checks (subjects "<address> (front)" and "<address>
// (backend)"), the front's HTTP security headers the probe's http.*.
const (
	checkBackendTLS        = "proxy.backend.tls"
	checkBackendPlaintext  = "proxy.backend.plaintext_refused"
	checkBackendVerified   = "proxy.backend.verified"
	checkConfigValid       = "proxy.config.valid"
	checkConfigRendered    = "proxy.config.rendered"
	checkFrontSerialServed = "proxy.front.certificate_served"
)

func init() {
	sdk.RegisterChecks(
		sdk.CheckDefinition{ID: checkBackendTLS, Title: "The proxy forwards to the backend over TLS (the backend hop is not plaintext)", Severity: sdk.SeverityCritical,
			Remediation: "harden apply: forward to the backend's TLS port (nginx proxy_pass https://…, HAProxy server … ssl)",
			References:  []string{"https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_ssl_verify", "https://docs.haproxy.org/2.6/configuration.html#5.2-ssl"}},
		sdk.CheckDefinition{ID: checkBackendPlaintext, Title: "The backend port refuses plaintext (a plaintext request gets no application answer)", Severity: sdk.SeverityHigh,
			Remediation: "serve only TLS on the backend port the proxy uses; close or firewall its plaintext listener",
			References:  []string{"https://cisecurity.org/benchmark/nginx"}},
		sdk.CheckDefinition{ID: checkBackendVerified, Title: "The proxy verifies the backend's certificate (a decoy backend from another CA is refused)", Severity: sdk.SeverityCritical,
			Remediation: "harden apply (nginx: proxy_ssl_verify on, proxy_ssl_trusted_certificate, proxy_ssl_name, proxy_ssl_server_name on; HAProxy: server … ssl verify required ca-file … sni)",
			References:  []string{"https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_ssl_verify", "https://docs.haproxy.org/2.6/configuration.html#5.2-verify"}},
		sdk.CheckDefinition{ID: checkConfigValid, Title: "The proxy's configuration passes its own test (nginx -t / haproxy -c)", Severity: sdk.SeverityHigh,
			Remediation: "fix the errors the proxy reports before harden touches it"},
		sdk.CheckDefinition{ID: checkConfigRendered, Title: "The file harden owns holds what harden renders", Severity: sdk.SeverityMedium,
			Remediation: "harden apply"},
		sdk.CheckDefinition{ID: checkFrontSerialServed, Title: "The front serves the certificate harden installed", Severity: sdk.SeverityHigh,
			Remediation: "harden apply (reloads the proxy); check that the include file is loaded by the running proxy"},
	)
}
