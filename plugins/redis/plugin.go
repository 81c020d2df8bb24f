package main

import (
	"context"
	"net"
	"path/filepath"
	"strconv"

	"github.com/harden-dev/harden/shared/sdk"
)

const version = "0.1.0"

// redisTLS is the plugin. It keeps no state between requests: every
// request carries the policy, the target and its certificates.
type redisTLS struct{}

// connection is the target's connection block.
type connection struct {
	// Address is the TLS port, host:port. Its port is the tls-port apply
	// sets.
	Address string `json:"address" jsonschema:"host:port of the TLS port (its port is the tls-port apply sets)" schema:"required,minLength=3"`
	// ServerName is checked against the server's certificate (default: the
	// address's host).
	ServerName string `json:"server_name" jsonschema:"name checked against the server's certificate (default: the address's host)"`
	// PlaintextAddress is the plaintext port verify proves refused (default:
	// the address's host with the port redis reports).
	PlaintextAddress string `json:"plaintext_address" jsonschema:"host:port of the plaintext port that verify proves closed (default: the address's host and the port redis reports)"`
	// UnixSocket is the management path before TLS is on (and after).
	UnixSocket string `json:"unix_socket" jsonschema:"path of redis's Unix socket: the management path before TLS is on"`
	// Username is the ACL user to log in as (default: the default user).
	Username string `json:"username" jsonschema:"ACL user (default: the default user)"`
	// PasswordEnv and PasswordFile are secret references: the host resolves
	// them and the plugin reads the value with Target.Secret("password").
	PasswordEnv  string `json:"password_env" jsonschema:"environment variable holding the password"`
	PasswordFile string `json:"password_file" jsonschema:"file holding the password"`
	// AllowPlaintextAdmin says why harden may manage the server over
	// plaintext TCP while it has no TLS port and no Unix socket is given.
	// The password is never sent there.
	AllowPlaintextAdmin string `json:"allow_plaintext_admin" jsonschema:"why harden may manage redis over plaintext TCP while it has no TLS port and no unix_socket is given; the password is never sent there" schema:"minLength=1"`
}

// spec is the target's spec block.
type spec struct {
	// CertDir is where apply writes redis.crt, redis.key (0600), ca.crt
	// and openssl.cnf, as the directory's owner.
	CertDir string `json:"cert_dir" jsonschema:"absolute directory on the redis host for redis.crt, redis.key, ca.crt and openssl.cnf (written as the directory's owner)" schema:"required,minLength=1"`
	// ConfigFile is the redis.conf the server was started with: CONFIG
	// REWRITE persists the applied settings there.
	ConfigFile string `json:"config_file" jsonschema:"the redis.conf redis-server was started with; CONFIG REWRITE persists the settings there"`
	// ClosePlaintext: set port 0 once TLS logins work (default true).
	ClosePlaintext *bool `json:"close_plaintext" jsonschema:"set port 0 once TLS logins work (default true)"`
}

func (s spec) closePlaintext() bool { return s.ClosePlaintext == nil || *s.ClosePlaintext }

// The schemas are derived from the config types above (their json,
// jsonschema and schema tags): one source of truth.
var (
	connectionSchema = sdk.LazySchemaFor[connection]("Redis connection")
	specSchema       = sdk.LazySchemaFor[spec]("Redis TLS spec")
)

func (redisTLS) Metadata(_ context.Context, _ sdk.MetadataRequest, r *sdk.MetadataResponse) {
	r.Name, r.Version = "redis", version
	r.Description = "Redis: TLS port with the policy's certificates, protocols and ciphers, plaintext port closed; applied with CONFIG SET and verified live"
}

func (redisTLS) Schema(_ context.Context, _ sdk.SchemaRequest, r *sdk.SchemaResponse) {
	r.Connection, r.Spec = connectionSchema(), specSchema()
}

func (redisTLS) ValidateSpec(_ context.Context, q sdk.ValidateSpecRequest, r *sdk.ValidateSpecResponse) {
	load(q.RequestContext, &r.Diagnostics)
}

// target is one request's decoded, checked settings.
type target struct {
	name string
	conn connection
	spec spec
	// host and tlsPort come from conn.Address.
	host    string
	tlsPort int
	// password is the resolved secret ("" when none). Never logged.
	password string
}

// load is the request prelude: decode, then the checks the schema cannot
// express. Problems go on d as config errors on their attribute.
func load(q sdk.RequestContext, d *sdk.Diagnostics) (*target, bool) {
	c, s, ok := sdk.Decode[connection, spec](q.Target, d)
	if !ok {
		return nil, false
	}
	t := &target{name: q.Target.Name, conn: c, spec: s}
	t.password, _ = q.Target.Secret("password")
	host, port, err := net.SplitHostPort(c.Address)
	n, perr := strconv.Atoi(port)
	switch {
	case err != nil:
		d.AddAttributeError(sdk.Path{"connection", "address"}, "not host:port", err.Error())
	case perr != nil || n < 1 || n > 65535:
		d.AddAttributeError(sdk.Path{"connection", "address"}, "the port must be 1-65535", port)
	default:
		t.host, t.tlsPort = host, n
	}
	if c.PlaintextAddress != "" {
		if _, _, err := net.SplitHostPort(c.PlaintextAddress); err != nil {
			d.AddAttributeError(sdk.Path{"connection", "plaintext_address"}, "not host:port", err.Error())
		}
	}
	if c.PasswordEnv != "" && c.PasswordFile != "" {
		d.AddAttributeError(sdk.Path{"connection", "password_file"}, "set password_env or password_file, not both", "")
	}
	if !filepath.IsAbs(s.CertDir) {
		d.AddAttributeError(sdk.Path{"spec", "cert_dir"}, "must be an absolute path", s.CertDir)
	}
	if s.ConfigFile != "" && !filepath.IsAbs(s.ConfigFile) {
		d.AddAttributeError(sdk.Path{"spec", "config_file"}, "must be an absolute path", s.ConfigFile)
	}
	if c.UnixSocket != "" && !filepath.IsAbs(c.UnixSocket) {
		d.AddAttributeError(sdk.Path{"connection", "unix_socket"}, "must be an absolute path", c.UnixSocket)
	}
	return t, !d.HasError()
}

// serverName is what the certificate must name.
func (t *target) serverName() string {
	if t.conn.ServerName != "" {
		return t.conn.ServerName
	}
	return t.host
}

// The files apply writes, all in cert_dir.
func (t *target) certFile() string    { return filepath.Join(t.spec.CertDir, "redis.crt") }
func (t *target) keyFile() string     { return filepath.Join(t.spec.CertDir, "redis.key") }
func (t *target) caFile() string      { return filepath.Join(t.spec.CertDir, "ca.crt") }
func (t *target) opensslFile() string { return filepath.Join(t.spec.CertDir, "openssl.cnf") }

// Check IDs this plugin owns. The TLS facts (versions, suites, groups,
// certificate, client authentication) are the probe's tls.* checks.
const (
	checkPlaintextClosed = "redis.plaintext.closed"
	checkAuthRequired    = "redis.auth.required"
	checkConfigTLS       = "redis.config.tls"
)

func init() {
	sdk.RegisterChecks(
		sdk.CheckDefinition{ID: checkPlaintextClosed, Title: "Redis's plaintext port accepts no connections", Severity: sdk.SeverityHigh,
			Remediation: "CONFIG SET port 0 (harden apply does this once TLS logins work) and CONFIG REWRITE",
			References:  []string{"https://redis.io/docs/latest/operate/oss_and_stack/management/security/encryption/"}},
		// Medium, not high: a password is access control, not encryption in
		// transit (this plugin's subject); a Redis reachable only by trusted
		// clients over mTLS may go without one. It is still reported,
		// because without it anyone who reaches the TLS port is admin.
		sdk.CheckDefinition{ID: checkAuthRequired, Title: "Redis requires authentication (the default user has a password)", Severity: sdk.SeverityMedium,
			Remediation: "set requirepass (or an ACL with nopass removed from the default user) and give harden the password by password_env or password_file",
			References:  []string{"https://redis.io/docs/latest/operate/oss_and_stack/management/security/acl/"}},
		sdk.CheckDefinition{ID: checkConfigTLS, Title: "Redis reports the TLS settings harden renders (CONFIG GET tls-*)", Severity: sdk.SeverityMedium,
			Remediation: "harden apply, or set the rendered redis-tls.conf lines",
			References:  []string{"https://raw.githubusercontent.com/redis/redis/7.0/redis.conf"}},
	)
}
