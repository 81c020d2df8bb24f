package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

const version = "0.1.0"

type vaultPKI struct{}

type connection struct {
	// Address is Vault's API (https://host:8200). An http:// address is
	// refused unless AllowInsecure says why: the token would travel in
	// cleartext.
	Address       string `json:"address" schema:"required,pattern=^https?://" jsonschema:"Vault API address (https://; http:// only with allow_insecure)"`
	AllowInsecure string `json:"allow_insecure" schema:"minLength=1" jsonschema:"why an http:// address is accepted although the Vault token then travels in cleartext; required for any http:// address"`
	// CAFile verifies Vault's listener (PEM).
	CAFile string `json:"ca_file" jsonschema:"PEM CA that verifies Vault's listener"`
	// Token: token_file / token_env (bootstrap); AppRole for routine runs:
	// role_id_file + secret_id_file (resolved by the host as secrets).
	AppRoleMount string `json:"approle_mount" jsonschema:"mount of the AppRole auth method (default approle)"`
	// Secret references: the host resolves them and sends only the values
	// of this target (Target.Secret); the references themselves are unused.
	TokenFile    string `json:"token_file" jsonschema:"file with a Vault token (bootstrap)"`
	TokenEnv     string `json:"token_env" jsonschema:"environment variable holding a Vault token"`
	RoleIDFile   string `json:"role_id_file" jsonschema:"AppRole role id (routine runs)"`
	RoleIDEnv    string `json:"role_id_env" jsonschema:"environment variable holding the AppRole role id"`
	SecretIDFile string `json:"secret_id_file" jsonschema:"AppRole secret id"`
	SecretIDEnv  string `json:"secret_id_env" jsonschema:"environment variable holding the AppRole secret id"`
	// The unseal key(s) for the restart spec.listener needs (listener.go).
	UnsealKeyFile string `json:"unseal_key_file" jsonschema:"file with Vault's unseal key(s), one per line (0600): apply unseals Vault after the restart a listener change needs"`
	UnsealKeyEnv  string `json:"unseal_key_env" jsonschema:"environment variable holding Vault's unseal key(s), one per line"`
}

type spec struct {
	PKI     pkiSpec      `json:"pki" jsonschema:"root and intermediate CA, roles and URLs"`
	Transit *transitSpec `json:"transit" jsonschema:"transit KEKs for envelope encryption"`
	Audit   *auditSpec   `json:"audit" jsonschema:"the file audit device"`
	// Listener: Vault's own API listener file (listener.go).
	Listener *listenerSpec `json:"listener" jsonschema:"Vault's API listener file: TLS versions, suites and client certificates from the profile, applied with a restart and an unseal"`
}

type pkiSpec struct {
	RootMount         string   `json:"root_mount" jsonschema:"PKI mount of the root CA (default pki)"`
	IntermediateMount string   `json:"intermediate_mount" jsonschema:"PKI mount of the intermediate CA (default pki_int)"`
	RootCommonName    string   `json:"root_common_name" jsonschema:"root CA common name (default: harden TARGET root CA)"`
	IntermediateCN    string   `json:"intermediate_common_name" jsonschema:"intermediate CA common name (default: harden TARGET intermediate CA)"`
	RootTTL           string   `json:"root_ttl" schema:"pattern=^[0-9]+h$" jsonschema:"root CA lifetime in hours (default 87600h, 10 years)"`
	IntermediateTTL   string   `json:"intermediate_ttl" schema:"pattern=^[0-9]+h$" jsonschema:"intermediate CA lifetime in hours (default 43800h, 5 years)"`
	URLBase           string   `json:"url_base" schema:"pattern=^https?://" jsonschema:"base of the issuing-certificate and CRL URLs (default: connection.address)"`
	ServerRole        string   `json:"server_role" jsonschema:"role that issues server certificates (default server)"`
	ClientRole        string   `json:"client_role" jsonschema:"role that issues client certificates (default client)"`
	ClientNames       []string `json:"client_names" jsonschema:"common names the client role may issue (e.g. harden-admin)"`
	AllowWildcards    bool     `json:"allow_wildcards" jsonschema:"let the server role issue wildcard names"`
	// ExternalIntermediate: the intermediate is signed by a CA outside Vault
	// (an enterprise root); no root mount is made.
	ExternalIntermediate *externalSpec `json:"external_intermediate" jsonschema:"intermediate signed by a CA outside Vault: apply writes the CSR, the next apply sets the signed chain"`
}

type externalSpec struct {
	CSRFile         string `json:"csr_file" schema:"required" jsonschema:"where apply writes the intermediate's CSR"`
	CertificateFile string `json:"certificate_file" schema:"required" jsonschema:"the signed intermediate chain (PEM) for the next apply"`
}

func (st *settings) external() bool { return st.spec.PKI.ExternalIntermediate != nil }

// pkiMounts are the PKI mounts harden manages (no root mount when the
// intermediate is signed outside Vault).
func (st *settings) pkiMounts() []string {
	if st.external() {
		return []string{st.intMount}
	}
	return []string{st.rootMount, st.intMount}
}

type transitSpec struct {
	Mount string   `json:"mount" jsonschema:"transit mount (default transit)"`
	Keys  []string `json:"keys" schema:"items.pattern=^[A-Za-z0-9_-]+$" jsonschema:"transit keys (KEKs) to create, e.g. lake-kek"`
}

type auditSpec struct {
	// File is the file audit device's log path on the Vault host.
	File string `json:"file" schema:"required" jsonschema:"file audit device log path on the Vault host"`
	Path string `json:"path" jsonschema:"audit device path (default harden-file)"`
}

// The schemas are derived from the types the requests decode into.
var (
	connectionSchema = sdk.LazySchemaFor[connection]("Vault connection")
	specSchema       = sdk.LazySchemaFor[spec]("Vault PKI spec")
)

func (vaultPKI) Metadata(_ context.Context, _ sdk.MetadataRequest, r *sdk.MetadataResponse) {
	r.Name, r.Version = "vaultpki", version
	r.Description = "HashiCorp Vault: PKI (root + intermediate CA, roles, URLs, tidy), transit KEKs and a file audit device, applied and verified live"
}

func (vaultPKI) Schema(_ context.Context, _ sdk.SchemaRequest, r *sdk.SchemaResponse) {
	r.Connection, r.Spec = connectionSchema(), specSchema()
}

// settings are the spec with defaults filled in from the policy.
type settings struct {
	conn                 connection
	spec                 spec
	rootMount, intMount  string
	rootCN, intCN        string
	rootTTL, intTTL      time.Duration
	maxTTL               time.Duration
	urlBase              string
	serverRole           string
	clientRole           string
	serverNames          []string
	clientNames          []string
	keyType              string
	keyBits              int
	transitMount         string
	auditPath, auditFile string
	profile              tlsprofile.Profile
	renewBefore          time.Duration
	// The policy's clients, and those delivered to Vault KV (clients.go).
	clientRefs []sdk.ClientRef
	kv         []kvClient
	// listener is the plan's listener step, when there is one.
	listener *listenerPlan
}

func parseHours(s string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d
	}
	return def
}

func orStr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// ValidateSpec refuses an http:// Vault address without
// connection.allow_insecure before any request is made (the host calls it
// when it validates the policy, and the SDK before every method).
func (vaultPKI) ValidateSpec(_ context.Context, q sdk.ValidateSpecRequest, r *sdk.ValidateSpecResponse) {
	c, _, ok := sdk.Decode[connection, spec](q.Target, &r.Diagnostics)
	if !ok {
		return
	}
	checkAddress(q.Target.Name, c, &r.Diagnostics)
}

// errInsecureAddress: an http:// Vault address without allow_insecure.
var errInsecureAddress = errors.New("the Vault token would travel in cleartext")

// addressError says what is wrong with a target's Vault address (nil when
// it may be used): it must be https://, or http:// with allow_insecure.
func addressError(target string, c connection) error {
	u, err := url.Parse(c.Address)
	if err != nil || u.Host == "" {
		return fmt.Errorf("target %s: connection.address %q is not a URL with a host", target, c.Address)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if strings.TrimSpace(c.AllowInsecure) != "" {
			return nil
		}
		return fmt.Errorf("target %s: Vault address %s is http://: %w; use https:// (with connection.ca_file) or set connection.allow_insecure to the reason this is accepted", target, c.Address, errInsecureAddress)
	}
	return fmt.Errorf("target %s: connection.address %q: scheme %q is neither https nor http", target, c.Address, u.Scheme)
}

// checkAddress puts addressError on d, and a warning for an http:// address
// allowed by allow_insecure; false means no request may be made.
func checkAddress(target string, c connection, d *sdk.Diagnostics) bool {
	if err := addressError(target, c); err != nil {
		d.AddAttributeError(sdk.Path{"connection", "address"}, "Vault address refused", err.Error())
		return false
	}
	if strings.HasPrefix(c.Address, "http://") {
		d.AddWarning("target "+target+": the Vault token travels in cleartext to "+c.Address, "allowed by connection.allow_insecure: "+c.AllowInsecure)
	}
	return true
}

func load(q sdk.RequestContext, d *sdk.Diagnostics) (*settings, bool) {
	c, s, ok := sdk.Decode[connection, spec](q.Target, d)
	if !ok || !checkAddress(q.Target.Name, c, d) {
		return nil, false
	}
	st := &settings{conn: c, spec: s}
	p := st.spec.PKI
	st.rootMount, st.intMount = orStr(p.RootMount, "pki"), orStr(p.IntermediateMount, "pki_int")
	st.rootCN, st.intCN = orStr(p.RootCommonName, "harden "+q.Target.Name+" root CA"), orStr(p.IntermediateCN, "harden "+q.Target.Name+" intermediate CA")
	st.rootTTL, st.intTTL = parseHours(p.RootTTL, 10*365*24*time.Hour), parseHours(p.IntermediateTTL, 5*365*24*time.Hour)
	st.maxTTL = q.Policy.Rotation.MaxLifetime
	if st.maxTTL <= 0 {
		st.maxTTL = 90 * 24 * time.Hour
	}
	st.renewBefore = q.Policy.Rotation.RenewBefore
	st.urlBase = strings.TrimRight(orStr(p.URLBase, st.conn.Address), "/")
	st.serverRole, st.clientRole = orStr(p.ServerRole, "server"), orStr(p.ClientRole, "client")
	st.clientNames = p.ClientNames
	if len(st.clientNames) == 0 {
		st.clientNames = []string{"harden-admin"}
	}
	// Server names: every other target's certificate names and endpoint hosts.
	seen := map[string]bool{}
	for _, t := range q.Policy.Targets {
		if t.Name == q.Target.Name {
			continue
		}
		// The target's name is the CN harden's certificate source asks for.
		names := append([]string{t.Name}, t.CertificateNames...)
		for _, e := range t.Endpoints {
			host := e.Address
			if h, _, ok := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(e.Address, "https://"), "http://"), ":"); ok {
				host = h
			}
			names = append(names, host)
		}
		for _, n := range names {
			if n != "" && !seen[n] && !isIP(n) {
				seen[n] = true
				st.serverNames = append(st.serverNames, n)
			}
		}
	}
	if len(st.serverNames) == 0 {
		st.serverNames = []string{"localhost"}
	}
	st.profile = q.Policy.Profile
	st.keyType, st.keyBits = "ec", 256 // ECDSA P-256: in every Mozilla profile
	st.transitMount = "transit"
	if st.spec.Transit != nil {
		st.transitMount = orStr(st.spec.Transit.Mount, "transit")
	}
	if st.spec.Audit != nil {
		st.auditPath, st.auditFile = orStr(st.spec.Audit.Path, "harden-file"), st.spec.Audit.File
	}
	if !st.loadClients(q.Policy, d) {
		return nil, false
	}
	return st, true
}

func isIP(s string) bool { return net.ParseIP(s) != nil }

// client logs in as the connection says: a token (token_file/token_env) or
// AppRole (role_id + secret_id).
func client(ctx context.Context, q sdk.RequestContext, c connection) (*vault.Client, error) {
	// Checked again here, whoever calls: no request (and no token) ever goes
	// to a refused address.
	if err := addressError(q.Target.Name, c); err != nil {
		return nil, err
	}
	cfg := vault.DefaultConfig()
	cfg.Address = c.Address
	cfg.Timeout = 15 * time.Second
	cfg.MaxRetries = 0
	tcfg, err := clientTLSFor(q, c)
	if err != nil {
		return nil, err
	}
	cfg.HttpClient = newHTTPClient(tcfg)
	cl, err := vault.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	cl.ClearToken()
	if tok, ok := q.Target.Secret("token"); ok {
		cl.SetToken(strings.TrimSpace(tok))
	} else if rid, ok := q.Target.Secret("role_id"); ok {
		sid, _ := q.Target.Secret("secret_id")
		mount := orStr(c.AppRoleMount, "approle")
		s, err := cl.Logical().WriteWithContext(ctx, "auth/"+mount+"/login", map[string]any{"role_id": strings.TrimSpace(rid), "secret_id": strings.TrimSpace(sid)})
		if err != nil {
			return nil, fmt.Errorf("AppRole login at %s: %w", c.Address, err)
		}
		if s == nil || s.Auth == nil {
			return nil, fmt.Errorf("AppRole login at %s: no token returned", c.Address)
		}
		cl.SetToken(s.Auth.ClientToken)
	} else {
		return nil, fmt.Errorf("no Vault credentials: set connection.token_file/token_env or role_id_file + secret_id_file")
	}
	if _, err := cl.Auth().Token().LookupSelfWithContext(ctx); err != nil {
		return nil, fmt.Errorf("vault at %s refused the credentials: %w", c.Address, err)
	}
	return cl, nil
}

// newHTTPClient is the HTTP client of harden's Vault API clients.
func newHTTPClient(tcfg *tls.Config) *http.Client {
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: tcfg},
		// Never follow a redirect: Go would follow a 307 to http:// with the
		// X-Vault-Token header and a login body (secret_id) in cleartext.
		// The Vault API client handles the redirects it accepts itself
		// (same scheme only), as vault.DefaultConfig's client is set up to.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// clientTLS is the TLS of harden's Vault API client (sdk.ClientTLS):
// connection.ca_file, or the system's roots when it is not set (what the
// API client would use), and no client certificate. A ca_file that cannot
// be read or holds anything but whole certificates is an error naming it.
func (c connection) clientTLS() (*tls.Config, error) {
	cfg, err := sdk.ClientTLS(sdk.Certificates{}, sdk.ClientTLSOptions{CAFile: c.CAFile, SystemRoots: true, NoClientCertificate: true})
	switch {
	case err != nil && c.CAFile != "":
		return nil, fmt.Errorf("connection.ca_file %s: %w", c.CAFile, err)
	case err != nil:
		return nil, fmt.Errorf("no connection.ca_file: %w", err)
	}
	return cfg, nil
}

// roots are the CAs that verify Vault's listener (see clientTLS).
func (c connection) roots() (*x509.CertPool, error) {
	cfg, err := c.clientTLS()
	if err != nil {
		return nil, err
	}
	return cfg.RootCAs, nil
}

// connect reads the settings and logs in; failures go on d.
func connect(ctx context.Context, q sdk.RequestContext, d *sdk.Diagnostics) (*settings, *vault.Client, bool) {
	st, ok := load(q, d)
	if !ok {
		return nil, nil, false
	}
	cl, err := client(ctx, q, st.conn)
	if err != nil {
		d.AddTargetError("vaultpki.login", "cannot log in to Vault", err)
		return nil, nil, false
	}
	return st, cl, true
}
