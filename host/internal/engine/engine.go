package engine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/harden-dev/harden/host/internal/certstore"
	"github.com/harden-dev/harden/host/internal/plugins"
	"github.com/harden-dev/harden/host/internal/policy"
	"github.com/harden-dev/harden/host/internal/rotate"
	"github.com/harden-dev/harden/host/internal/schema"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
)

// Kind classifies failures for the CLI's exit codes.
type Kind int

const (
	// KindConfig: the policy or the command line is wrong (exit 1).
	KindConfig Kind = iota + 1
	// KindPlugin: a plugin or target failed (exit 3).
	KindPlugin
)

// Error carries its kind.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func configErr(err error) error { return &Error{KindConfig, err} }
func pluginErr(err error) error { return &Error{KindPlugin, err} }

// CertificateSourceError: the policy's certificate source could not hand
// out a target's trust material (e.g. vault-pki before its CA exists). In
// NoIssue mode (verify) Request returns it together with a request that
// lacks that material, so verify can still prove what it can — but the
// target must end in error with this reason: checks that needed the CA
// could not run, they are not "not applicable".
type CertificateSourceError struct {
	Target string
	// Source is the certificate source and the target that serves it.
	Source string
	Err    error
}

func (e *CertificateSourceError) Error() string {
	return fmt.Sprintf("target %s: certificate source %s could not provide the policy CA, so nothing that needs it was verified: %v", e.Target, e.Source, e.Err)
}

func (e *CertificateSourceError) Unwrap() error { return e.Err }

// UnknownPluginError: no usable binary of that name in the plugin dirs.
type UnknownPluginError struct {
	Name string
	Dirs []string
	Why  string
}

func (e *UnknownPluginError) Error() string {
	return fmt.Sprintf("unknown plugin %q: no executable %s%s in %v%s", e.Name, hostclient.BinaryPrefix, e.Name, e.Dirs, e.Why)
}

// Options configures plugin handling.
type Options struct {
	PluginDirs    []string
	LockPath      string
	AllowUnlocked bool
	LogOutput     io.Writer
	LogLevel      string
	// StartTimeout bounds launch + handshake per plugin.
	StartTimeout time.Duration
	// DebugPlugins (--debug-plugins) allows attaching to the debug-mode
	// plugins HARDEN_REATTACH_PLUGINS names. The variable alone is not
	// enough: it is easily left set in a shell or a CI job, and an attached
	// process receives target secrets and private keys without any pin.
	DebugPlugins bool
}

// Plugin is a launched, identified plugin.
type Plugin struct {
	Binary     plugins.Binary
	LockStatus plugins.Status
	// SHA256 (hex) that go-plugin checked right before exec.
	SHA256     string
	Client     *hostclient.Client
	Meta       sdk.MetadataResponse
	Schemas    sdk.SchemaResponse
	Connection *schema.Schema
	Spec       *schema.Schema
	// reattach is set for a plugin in debug mode (HARDEN_REATTACH_PLUGINS).
	reattach *hostclient.Reattach
}

// VerifyOnly: the plugin changes nothing on its targets — it offers none of
// render, plan and apply (the service plugin: an application's own TLS is
// set in its code). harden then issues and deploys no server certificate
// for its targets, plans nothing there, and rotates only its own client
// certificate for them (mTLS scope). This is the one definition every
// command uses: a plugin with any of the three (render only, or apply
// without plan) is not verify-only, and a call it lacks stays an error.
func (p *Plugin) VerifyOnly() bool {
	return !slices.ContainsFunc(p.Meta.Capabilities, func(c sdk.Capability) bool {
		return c == sdk.CapRender || c == sdk.CapPlan || c == sdk.CapApply
	})
}

// Engine holds the launched plugins.
type Engine struct {
	// NoIssue: never ask a certificate source for new certificates (verify).
	NoIssue bool
	// Getenv resolves *_env secrets of the issuer target (default os.LookupEnv).
	Getenv func(string) (string, bool)
	// Now is the clock certificates are judged by (default time.Now).
	Now     func() time.Time
	opts    Options
	Plugins map[string]*Plugin
	// Failed holds launch failures in OpenEach mode.
	Failed map[string]error
	// Found is every discovered binary, Problems the refused ones.
	Found    []plugins.Binary
	Problems []plugins.Problem
}

// minimalEnv is every plugin's whole environment: nothing secret is
// inherited; secrets travel only inside their own target's request.
func minimalEnv(logLevel string) []string {
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	// HARDEN_STATE_DIR: where plugins keep their apply journals (applykit).
	for _, k := range []string{"HOME", "TMPDIR", "TZ", "HARDEN_STATE_DIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	if logLevel != "" {
		env = append(env, "HARDEN_PLUGIN_LOG_LEVEL="+logLevel)
	}
	return env
}

// Open discovers plugins and launches the named ones (all discovered when
// names is nil). On error nothing is left running.
func Open(ctx context.Context, opts Options, names []string) (*Engine, error) {
	e, failed, err := open(ctx, opts, names, false)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(failed...); err != nil {
		e.Close()
		return nil, pluginErr(err)
	}
	return e, nil
}

// OpenEach launches what it can and reports per-plugin launch failures in
// Failed instead of failing as a whole (for `plugins list`).
func OpenEach(ctx context.Context, opts Options, names []string) (*Engine, error) {
	e, _, err := open(ctx, opts, names, true)
	return e, err
}

func open(ctx context.Context, opts Options, names []string, keepGoing bool) (*Engine, []error, error) {
	found, problems := plugins.Discover(plugins.Dirs(opts.PluginDirs))
	lock, err := plugins.ReadLock(opts.LockPath)
	if err != nil {
		return nil, nil, pluginErr(err)
	}
	byName := map[string]plugins.Binary{}
	for _, b := range found {
		byName[b.Name] = b
	}
	reattach, err := reattachments(opts, byName)
	if err != nil {
		return nil, nil, configErr(err)
	}
	// A plugin in debug mode stands in for the binary of its name, or is
	// one more plugin when there is none.
	for n, r := range reattach {
		b := plugins.Binary{Name: n, Path: fmt.Sprintf("reattached: %s %s (pid %d)", r.Addr.Network, r.Addr.String, r.Pid)}
		if i := slices.IndexFunc(found, func(f plugins.Binary) bool { return f.Name == n }); i >= 0 {
			found[i] = b
		} else {
			found = append(found, b)
		}
		byName[n] = b
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Name < found[j].Name })
	e := &Engine{opts: opts, Plugins: map[string]*Plugin{}, Failed: map[string]error{}, Found: found, Problems: problems}
	if names == nil {
		for _, b := range found {
			names = append(names, b.Name)
		}
	}
	var toLaunch []*Plugin
	for _, n := range names {
		b, ok := byName[n]
		if !ok {
			why := ""
			for _, p := range problems {
				if hostclient.NameFromPath(p.Path) == n {
					why = " (" + p.Error() + ")"
				}
			}
			return nil, nil, configErr(&UnknownPluginError{Name: n, Dirs: plugins.Dirs(opts.PluginDirs), Why: why})
		}
		p := &Plugin{Binary: b, LockStatus: plugins.Locked}
		entry, locked := lock.Plugins[n]
		switch r, reattached := reattach[n]; {
		case reattached:
			p.LockStatus, p.reattach = plugins.Reattached, &r
		case locked:
			// go-plugin hashes the binary right before exec and refuses
			// it unless it matches the lock: the only hash on this path.
			p.SHA256 = entry.SHA256
		case !opts.AllowUnlocked:
			err := fmt.Errorf("plugin %s (%s) is not in the lock file %s; run `harden plugins lock` to trust it, or pass --allow-unlocked", n, b.Path, opts.LockPath)
			if !keepGoing {
				return nil, nil, pluginErr(err)
			}
			e.Failed[n] = err
			continue
		default:
			p.LockStatus = plugins.Unlocked
			if p.SHA256, err = b.SHA256(); err != nil {
				return nil, nil, pluginErr(err)
			}
		}
		toLaunch = append(toLaunch, p)
	}
	errs := make([]error, len(toLaunch))
	var wg sync.WaitGroup
	for i, p := range toLaunch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := e.launch(ctx, p)
			if errors.Is(err, hostclient.ErrChecksumMismatch) {
				if opts.AllowUnlocked {
					// Unsafe mode: run what is there, but say so.
					p.LockStatus = plugins.Mismatch
					if p.SHA256, err = p.Binary.SHA256(); err == nil {
						err = e.launch(ctx, p)
					}
				} else {
					err = fmt.Errorf("plugin %s (%s) does not match its sha256 in the lock file %s (%s...); it changed since `harden plugins lock` — re-lock only if the change is expected", p.Binary.Name, p.Binary.Path, opts.LockPath, p.SHA256[:min(12, len(p.SHA256))])
				}
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	var failed []error
	for i, p := range toLaunch {
		if p.Client != nil && errs[i] == nil {
			e.Plugins[p.Binary.Name] = p
			continue
		}
		if p.Client != nil {
			p.Client.Close()
		}
		e.Failed[p.Binary.Name] = errs[i]
		failed = append(failed, errs[i])
	}
	return e, failed, nil
}

// reattachments reads HARDEN_REATTACH_PLUGINS, refuses it unless
// --debug-plugins was given, and warns, for each plugin in it, that the lock
// does not protect it and that its targets' secrets and keys go to that
// process (installed names the binaries it stands in for).
func reattachments(opts Options, installed map[string]plugins.Binary) (map[string]hostclient.Reattach, error) {
	v := os.Getenv(hostclient.ReattachEnv)
	if v == "" {
		return nil, nil
	}
	if !opts.DebugPlugins {
		return nil, fmt.Errorf("%s is set, but attaching to debug-mode plugins needs --debug-plugins as well: the attached processes would receive target secrets and private keys without the lock file's pin; unset %s, or pass --debug-plugins for plugin development", hostclient.ReattachEnv, hostclient.ReattachEnv)
	}
	m, err := hostclient.ParseReattach(v)
	if err != nil {
		return nil, err
	}
	for n := range m {
		if !plugins.ValidName(n) {
			return nil, fmt.Errorf("%s: %q is not a plugin name (lower-case letters, digits, '-' and '_')", hostclient.ReattachEnv, n)
		}
	}
	log := opts.LogOutput
	if log == nil {
		log = os.Stderr
	}
	root := ""
	if os.Geteuid() == 0 {
		root = " (harden runs as root)"
	}
	for _, n := range slices.Sorted(maps.Keys(m)) {
		r := m[n]
		instead := ""
		if b, ok := installed[n]; ok {
			instead = ", instead of the installed " + b.Path
		}
		fmt.Fprintf(log, "warning: plugin %s: attaching to the process %d in debug mode at %s %s (%s, --debug-plugins%s): the lock file's sha256 pin and the one-time mutual TLS channel do not apply to it, and its targets' secrets and private keys will be sent to that process%s — for plugin development only\n",
			n, r.Pid, r.Addr.Network, r.Addr.String, hostclient.ReattachEnv, instead, root)
	}
	return m, nil
}

func (e *Engine) launch(ctx context.Context, p *Plugin) error {
	if p.reattach != nil {
		c, err := hostclient.Launch(ctx, hostclient.LaunchConfig{Reattach: p.reattach, Name: p.Binary.Name,
			LogOutput: e.opts.LogOutput, LogLevel: e.opts.LogLevel, StartTimeout: e.opts.StartTimeout})
		if err != nil {
			return err
		}
		return e.identify(ctx, p, c)
	}
	// The checksum handed to go-plugin is the one observed now (equal to
	// the lock's unless unlocked plugins are allowed); go-plugin re-hashes
	// right before exec, so a swap after discovery is refused too.
	sum, err := hex.DecodeString(p.SHA256)
	if err != nil || len(sum) != 32 {
		return fmt.Errorf("plugin %s: invalid sha256 %q in the lock file", p.Binary.Name, p.SHA256)
	}
	c, err := hostclient.Launch(ctx, hostclient.LaunchConfig{Path: p.Binary.Path, SHA256: sum, Env: minimalEnv(e.opts.LogLevel),
		LogOutput: e.opts.LogOutput, LogLevel: e.opts.LogLevel, StartTimeout: e.opts.StartTimeout})
	if err != nil {
		return err
	}
	return e.identify(ctx, p, c)
}

// identify checks a started plugin's metadata and compiles its schemas.
func (e *Engine) identify(ctx context.Context, p *Plugin, c *hostclient.Client) error {
	p.Client = c
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	meta, err := c.Metadata(cctx)
	if err != nil {
		return err
	}
	if meta.Diagnostics.HasError() {
		return fmt.Errorf("plugin %s: metadata: %w", p.Binary.Name, meta.Diagnostics.Err())
	}
	if meta.Name != p.Binary.Name {
		return fmt.Errorf("plugin binary %s calls itself %q; the binary must be named %s%s", p.Binary.Path, meta.Name, hostclient.BinaryPrefix, meta.Name)
	}
	p.Meta = meta
	s, err := c.Schema(cctx)
	if err != nil {
		return err
	}
	if s.Diagnostics.HasError() {
		return fmt.Errorf("plugin %s: schema: %w", p.Binary.Name, s.Diagnostics.Err())
	}
	p.Schemas = s
	if p.Connection, err = schema.Compile(p.Binary.Name+" connection schema", s.Connection); err != nil {
		return fmt.Errorf("plugin %s: %w", p.Binary.Name, err)
	}
	if p.Spec, err = schema.Compile(p.Binary.Name+" spec schema", s.Spec); err != nil {
		return fmt.Errorf("plugin %s: %w", p.Binary.Name, err)
	}
	return nil
}

// Close stops in-flight work and kills every plugin process.
func (e *Engine) Close() {
	var wg sync.WaitGroup
	for _, p := range e.Plugins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if !p.Client.Exited() {
				_ = p.Client.Stop(ctx)
			}
			p.Client.Close()
		}()
	}
	wg.Wait()
}

// StopAll asks every plugin to cancel in-flight work (Ctrl-C).
func (e *Engine) StopAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, p := range e.Plugins {
		_ = p.Client.Stop(ctx)
	}
}

// Names of the plugins a policy uses, sorted.
func PluginNames(p *policy.Policy) []string {
	var names []string
	for _, t := range p.Targets {
		if !slices.Contains(names, t.Plugin) {
			names = append(names, t.Plugin)
		}
	}
	sort.Strings(names)
	return names
}

// OpenForPolicy launches the plugins the policy uses and validates every
// target against its plugin's schemas and ValidateSpec.
func OpenForPolicy(ctx context.Context, opts Options, pol *policy.Policy) (*Engine, error) {
	e, err := Open(ctx, opts, PluginNames(pol))
	if err != nil {
		var unknown *UnknownPluginError
		if errors.As(err, &unknown) {
			// Point at the first target naming the unknown plugin.
			for _, t := range pol.Targets {
				if t.Plugin == unknown.Name {
					return nil, configErr(pol.DiagnosticError(t.Index, sdk.Diagnostic{Attribute: sdk.Path{"plugin"}, Summary: unknown.Error()}))
				}
			}
		}
		return nil, err
	}
	var errs policy.Errors
	for _, t := range pol.Targets {
		p := e.Plugins[t.Plugin]
		if err := pol.ValidateTarget(t.Index, p.Connection, p.Spec); err != nil {
			errs = append(errs, err.(policy.Errors)...)
			continue
		}
		vctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		r, err := p.Client.ValidateSpec(vctx, sdk.RequestContext{Policy: pol.Context(), Target: sdk.NewTarget(t.Name, t.Connection, t.Spec, nil)})
		cancel()
		if err != nil {
			e.Close()
			return nil, pluginErr(err)
		}
		for _, d := range r.Diagnostics {
			if d.Severity == sdk.Error {
				errs = append(errs, pol.DiagnosticError(t.Index, d))
			}
		}
	}
	if len(errs) > 0 {
		e.Close()
		return nil, configErr(errs)
	}
	return e, nil
}

// Request builds the request context for target t: the policy context, only
// t's secrets, and t's certificate material.
//
// One error comes with a usable request: in NoIssue mode (verify) a
// *CertificateSourceError is returned together with the request without the
// material the source could not provide. The caller runs what it can and
// must still report the target as failed with that error.
func (e *Engine) Request(ctx context.Context, pol *policy.Policy, t policy.Target, getenv func(string) (string, bool)) (sdk.RequestContext, error) {
	// Every file the policy says must exist for t, each problem at its
	// policy line, before anything is read or sent.
	rc, err := e.BaseRequest(pol, t, getenv)
	if err != nil {
		return rc, err
	}
	certs, err := e.certificates(ctx, pol, t)
	var source *CertificateSourceError
	if err != nil && !errors.As(err, &source) {
		return sdk.RequestContext{}, err
	}
	rc.Certificates = certs
	return rc, err
}

// certificates loads t's certificate material from the policy's source and,
// unless NoIssue (verify judges what is live, expired or not), refuses
// material that is not valid now: a plugin would put it live and fail.
func (e *Engine) certificates(ctx context.Context, pol *policy.Policy, t policy.Target) (sdk.Certificates, error) {
	c, err := e.loadCertificates(ctx, pol, t)
	if err != nil || e.NoIssue {
		return c, err
	}
	if err := certstore.CheckValidity(pol, t, c, e.now()); err != nil {
		return c, configErr(err)
	}
	return c, nil
}

func (e *Engine) loadCertificates(ctx context.Context, pol *policy.Policy, t policy.Target) (sdk.Certificates, error) {
	var c sdk.Certificates
	// Every file is read bounded (regular, at most policy.MaxFileSize, keys
	// private) and its problems are placed at the policy line naming it.
	if pol.Certificates.CAFile != "" {
		at := []string{"certificates", "files", "ca_file"}
		ca, err := pol.ReadFileAt(at, pol.Certificates.CAFile, policy.Public)
		if err != nil {
			return c, configErr(err)
		}
		if err := certstore.CheckCerts(ca); err != nil {
			return c, configErr(pol.ErrorAt(at, "%s: %v", pol.Certificates.CAFile, err))
		}
		c.CABundlePEM = ca
	}
	if pol.Certificates.CRLFile != "" {
		at := []string{"certificates", "files", "crl_file"}
		crl, err := pol.ReadFileAt(at, pol.Certificates.CRLFile, policy.Public)
		if err != nil {
			return c, configErr(err)
		}
		block, _ := pem.Decode(crl)
		if block == nil || block.Type != "X509 CRL" {
			return c, configErr(pol.ErrorAt(at, "%s: no PEM X509 CRL", pol.Certificates.CRLFile))
		}
		if _, err := x509.ParseRevocationList(block.Bytes); err != nil {
			return c, configErr(pol.ErrorAt(at, "%s: %v", pol.Certificates.CRLFile, err))
		}
		c.CRLPEM = crl
	}
	if t.CertFile != "" {
		read := func(field, file string, kind policy.FileKind) ([]byte, error) {
			return pol.ReadFileAt(certstore.CertificateField(t, field), file, kind)
		}
		chain, err := read("cert_file", t.CertFile, policy.Public)
		if err != nil {
			return c, configErr(err)
		}
		key, err := read("key_file", t.KeyFile, policy.Secret)
		if err != nil {
			return c, configErr(err)
		}
		if _, err := tls.X509KeyPair(chain, key); err != nil {
			// The tls error never contains key material.
			return c, configErr(pol.ErrorAt(certstore.CertificateField(t, "cert_file"), "certificate %s and key %s do not form a valid pair: %v", t.CertFile, t.KeyFile, err))
		}
		c.ChainPEM, c.KeyPEM = chain, key
		if t.ClientCertFile != "" {
			cchain, err := read("client_cert_file", t.ClientCertFile, policy.Public)
			if err != nil {
				return c, configErr(err)
			}
			ckey, err := read("client_key_file", t.ClientKeyFile, policy.Secret)
			if err != nil {
				return c, configErr(err)
			}
			if _, err := tls.X509KeyPair(cchain, ckey); err != nil {
				return c, configErr(pol.ErrorAt(certstore.CertificateField(t, "client_cert_file"), "client certificate %s and key %s do not form a valid pair: %v", t.ClientCertFile, t.ClientKeyFile, err))
			}
			c.ClientChainPEM, c.ClientKeyPEM = cchain, ckey
		}
		return c, nil
	}
	if pol.Certificates.Source == "vault-pki" && t.Name != pol.Certificates.VaultTarget {
		return e.issue(ctx, pol, t, c)
	}
	return c, nil
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// issue gets t's certificates from the issuer target (certificates.source
// vault-pki). Keys are made here, where they are used, and only CSRs go to
// the issuer; certificates and keys (0600) are kept in the store dir and
// reused while they chain to the issuer's current CA, cover t's names and
// are valid beyond renew_before — so a second apply changes nothing. The
// CA bundle and CRLs come fresh from the issuer on every request. With
// NoIssue (verify) nothing is issued: stored material is used as it is, and
// a missing certificate leaves it out; a CA the source cannot provide is a
// *CertificateSourceError (Request still returns the rest).
func (e *Engine) issue(ctx context.Context, pol *policy.Policy, t policy.Target, c sdk.Certificates) (sdk.Certificates, error) {
	iss, err := e.IssuerFor(ctx, pol, t)
	if err != nil {
		var source *CertificateSourceError
		if e.NoIssue && !errors.As(err, &source) {
			// Never silently without a CA: every trust check would turn
			// into a "no CA given" skip. verify still runs what it can
			// without the CA, and the target ends in this error.
			var ie *issuerError
			if errors.As(err, &ie) {
				err = &CertificateSourceError{Target: t.Name, Source: "vault-pki (target " + ie.issuer + ")", Err: ie.err}
			}
		}
		return c, err
	}
	c.CABundlePEM, c.CRLPEM = iss.CA.CABundlePEM, iss.CA.CRLPEM
	if !e.NoIssue {
		// Not while a harden rotate changes this target's pairs.
		unlock, err := iss.Store.Lock()
		if err != nil {
			return c, pluginErr(err)
		}
		defer unlock()
	}
	// A verify-only plugin (service) deploys no server certificate: none is
	// issued for it. harden's client certificate still is (mTLS scope).
	if p, ok := e.Plugins[t.Plugin]; !ok || !p.VerifyOnly() {
		if c.ChainPEM, c.KeyPEM, err = iss.Store.Get(iss.ServerWant(), iss.Signer(iss.ServerUsage, t.Name, t.CertificateNames)); err != nil {
			return c, err
		}
	}
	if iss.Client {
		if c.ClientChainPEM, c.ClientKeyPEM, err = iss.Store.Get(iss.ClientWant(), iss.Signer("client", iss.ClientName, nil)); err != nil {
			return c, err
		}
	}
	return c, nil
}

// Issuer is a target's certificate source (certificates.source vault-pki):
// the issuer's current CA, its certificate store, and what it signs for
// the target. `harden rotate` uses it to renew outside apply.
type Issuer struct {
	// IssuerTarget names the policy target that issues (the vaultpki one).
	IssuerTarget string
	// CA holds the issuer's CA bundle and CRL, fresh from the issuer.
	CA sdk.Certificates
	// Store is the target's certificate store.
	Store certstore.Store
	// ServerUsage is "server", or "peer" for a target in the mTLS scope
	// (a node that is also a client of its peers: Kafka brokers).
	ServerUsage string
	// Client: harden holds a client certificate for the target (mTLS).
	Client     bool
	ClientName string
	target     policy.Target
	sign       func(usage, cn string, names []string, csr []byte, issuer string) (sdk.Certificates, error)
}

// ServerWant is what the target's server certificate must be.
func (i *Issuer) ServerWant() certstore.Want {
	return certstore.Want{Kind: "server", CommonName: i.target.Name, Names: i.target.CertificateNames, CAPEM: i.CA.CABundlePEM}
}

// ClientWant is what harden's client certificate for the target must be.
func (i *Issuer) ClientWant() certstore.Want {
	return certstore.Want{Kind: "client", CommonName: i.ClientName, CAPEM: i.CA.CABundlePEM}
}

// Signer has the issuer sign a CSR for usage, cn and names.
func (i *Issuer) Signer(usage, cn string, names []string) certstore.IssueFunc {
	return i.SignerFrom("", usage, cn, names)
}

// SignerFrom signs with a given CA of a staged rotation: "next" or
// "current" ("" the one that signs now).
func (i *Issuer) SignerFrom(issuer, usage, cn string, names []string) certstore.IssueFunc {
	return func(csr []byte) ([]byte, error) {
		got, err := i.sign(usage, cn, names, csr, issuer)
		return got.ChainPEM, err
	}
}

// Want returns the Want and the signer of kind ("server" or "client").
func (i *Issuer) Want(kind string) (certstore.Want, certstore.IssueFunc) {
	if kind == "client" {
		return i.ClientWant(), i.Signer("client", i.ClientName, nil)
	}
	return i.ServerWant(), i.Signer(i.ServerUsage, i.target.Name, i.target.CertificateNames)
}

// issuerError: the issuer could not provide its CA (wrapped into a
// CertificateSourceError in NoIssue mode).
type issuerError struct {
	issuer string
	err    error
}

func (e *issuerError) Error() string { return e.err.Error() }
func (e *issuerError) Unwrap() error { return e.err }

// IssuerFor returns t's certificate source under certificates.source
// vault-pki, with the issuer's CA fetched now. Keys are made where they are
// used (here) and only CSRs go to the issuer; certificates and keys (0600)
// are kept in the store dir and reused while they chain to the issuer's
// current CA, cover t's names and are valid beyond renew_before — so a
// second apply changes nothing. In NoIssue mode the store never issues.
func (e *Engine) IssuerFor(ctx context.Context, pol *policy.Policy, t policy.Target) (*Issuer, error) {
	if pol.Certificates.Source != "vault-pki" || t.Name == pol.Certificates.VaultTarget || t.CertFile != "" {
		return nil, configErr(fmt.Errorf("target %s: its certificates do not come from certificates.source vault-pki", t.Name))
	}
	issuerTarget, call, ca, err := e.source(ctx, pol, t.Name)
	if err != nil {
		return nil, err
	}
	iss := &Issuer{IssuerTarget: issuerTarget.Name, CA: sdk.Certificates{CABundlePEM: ca.CABundlePEM, CRLPEM: ca.CRLPEM},
		Store: certstore.Store{Dir: filepath.Join(pol.Certificates.VaultStoreDir, t.Name), Target: t.Name,
			RenewBefore: pol.Certificates.Rotation.RenewBefore, NoIssue: e.NoIssue, Now: e.now},
		ServerUsage: "server", ClientName: pol.Certificates.VaultClientName, target: t, sign: call}
	if slices.Contains(pol.MTLSScope, t.Name) {
		iss.ServerUsage = "peer"
		iss.Client = true
	}
	return iss, nil
}

// source finds the policy's issuer, fetches its CA and returns a signer
// for forName (a target, or a client identity).
func (e *Engine) source(ctx context.Context, pol *policy.Policy, forName string) (policy.Target, func(usage, cn string, names []string, csr []byte, issuer string) (sdk.Certificates, error), sdk.Certificates, error) {
	issuerTarget, _ := pol.Target(pol.Certificates.VaultTarget)
	p, ok := e.Plugins[issuerTarget.Plugin]
	if !ok || !slices.Contains(p.Meta.Capabilities, sdk.CapIssuer) {
		return issuerTarget, nil, sdk.Certificates{}, pluginErr(fmt.Errorf("%s: certificate source vault-pki: plugin %s of target %s does not offer certificate issuing", forName, issuerTarget.Plugin, issuerTarget.Name))
	}
	rc, err := e.Request(ctx, pol, issuerTarget, e.getenv())
	if err != nil {
		return issuerTarget, nil, sdk.Certificates{}, err
	}
	call := func(usage, cn string, names []string, csr []byte, issuer string) (sdk.Certificates, error) {
		r, err := p.Client.IssueCertificate(ctx, sdk.IssueCertificateRequest{RequestContext: rc, ForTarget: forName, Usage: usage,
			CommonName: cn, Names: names, TTL: pol.Certificates.Rotation.MaxLifetime, CSRPEM: csr, Issuer: issuer})
		if err != nil {
			return sdk.Certificates{}, pluginErr(err)
		}
		if r.Diagnostics.HasError() {
			return sdk.Certificates{}, pluginErr(fmt.Errorf("%s: certificate from %s: %w", forName, issuerTarget.Name, r.Diagnostics.Err()))
		}
		return r.Certificate, nil
	}
	ca, err := call("ca", "", nil, nil, "")
	if err == nil && len(ca.CABundlePEM) == 0 {
		err = pluginErr(fmt.Errorf("%s: certificate source %s returned no CA bundle", forName, issuerTarget.Name))
	}
	if err == nil {
		err = certstore.CheckCerts(ca.CABundlePEM)
	}
	if err != nil {
		return issuerTarget, nil, sdk.Certificates{}, &issuerError{issuer: issuerTarget.Name, err: err}
	}
	// While a staged CA rotation runs, every target holds the phase's
	// bundle (both roots, then the next one alone), whichever command runs.
	st, err := rotate.LoadCAState(pol.Certificates.VaultStoreDir)
	if err != nil {
		return issuerTarget, nil, sdk.Certificates{}, configErr(err)
	}
	if st != nil {
		// A stale or planted state (Vault restored from a snapshot, a file
		// someone dropped) must not redefine what targets trust: its root
		// must be the one the source reports.
		if !slices.ContainsFunc(st.Anchors(), func(a []byte) bool { return samePEMCerts(ca.CABundlePEM, a) }) {
			return issuerTarget, nil, sdk.Certificates{}, configErr(fmt.Errorf("CA rotation state %s does not match the certificate source %s: its root is not the CA %s reports now; if no CA rotation runs, move the file away (harden rotate --ca --abort needs it while one does)",
				rotate.CAStatePath(pol.Certificates.VaultStoreDir), issuerTarget.Name, issuerTarget.Name))
		}
		if b := st.Bundle(); b != nil {
			ca.CABundlePEM = b
		}
	}
	return issuerTarget, call, ca, nil
}

// samePEMCerts: a and b hold the same certificates (DER), in any order.
func samePEMCerts(a, b []byte) bool {
	ca, err1 := sdk.ParseCertificatesPEM(a)
	cb, err2 := sdk.ParseCertificatesPEM(b)
	if err1 != nil || err2 != nil || len(ca) != len(cb) {
		return false
	}
	seen := map[string]bool{}
	for _, c := range ca {
		seen[string(c.Raw)] = true
	}
	for _, c := range cb {
		if !seen[string(c.Raw)] {
			return false
		}
	}
	return true
}

// ClientIssuer is the certificate source of client identity c: its store
// is <store_dir>/clients/<name> (kind "client"), its CN c.Name.
func (e *Engine) ClientIssuer(ctx context.Context, pol *policy.Policy, c policy.Client) (*Issuer, error) {
	if pol.Certificates.Source != "vault-pki" {
		return nil, configErr(fmt.Errorf("client %s: client identities need certificates.source vault-pki", c.Name))
	}
	issuerTarget, call, ca, err := e.source(ctx, pol, c.Name)
	if err != nil {
		return nil, err
	}
	return &Issuer{IssuerTarget: issuerTarget.Name, CA: sdk.Certificates{CABundlePEM: ca.CABundlePEM, CRLPEM: ca.CRLPEM},
		Store: certstore.Store{Dir: filepath.Join(pol.Certificates.VaultStoreDir, "clients", c.Name), Target: "client " + c.Name,
			RenewBefore: pol.Certificates.Rotation.RenewBefore, NoIssue: e.NoIssue, Now: e.now},
		Client: true, ClientName: c.Name, target: policy.Target{Name: c.Name}, sign: call}, nil
}

// BaseRequest is t's request without certificate material: the policy
// context and only t's secrets, after every file the policy names for t
// was checked. rotate adds the material it is switching between.
func (e *Engine) BaseRequest(pol *policy.Policy, t policy.Target, getenv func(string) (string, bool)) (sdk.RequestContext, error) {
	if err := pol.CheckFiles([]policy.Target{t}); err != nil {
		return sdk.RequestContext{}, configErr(err)
	}
	secrets, err := pol.ResolveSecrets(t, getenv)
	if err != nil {
		return sdk.RequestContext{}, configErr(err)
	}
	return sdk.RequestContext{Policy: pol.Context(), Target: sdk.NewTarget(t.Name, t.Connection, t.Spec, secrets)}, nil
}

func (e *Engine) getenv() func(string) (string, bool) {
	if e.Getenv != nil {
		return e.Getenv
	}
	return os.LookupEnv
}
