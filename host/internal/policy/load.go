package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/harden-dev/harden/host/internal/schema"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// APIVersion is the only policy version this host reads.
const APIVersion = "harden/v1"

// Policy is a loaded, validated policy file.
type Policy struct {
	File string
	// SHA256: hex SHA-256 of the bytes Load read (reports name the policy
	// version they were verified against); "" from Parse.
	SHA256       string
	APIVersion   string
	Profile      tlsprofile.Profile
	Certificates Certificates
	MTLSScope    []string
	Targets      []Target
	Clients      []Client

	pos positions
}

// Client is one client identity of the clients: block.
type Client struct {
	Index   int
	Name    string
	Targets []string
	// VaultKV (mount/data/path) or Dir (absolute, resolved against the
	// policy file), exactly one.
	VaultKV string
	Dir     string
	// InstallDir: where the client keeps its files (the paths in its
	// rendered configurations).
	InstallDir string
}

// ClientFiles are the bundle's file names.
var ClientFiles = struct{ Cert, Key, CA, Keystore, Truststore, Password string }{
	"tls.crt", "tls.key", "ca.crt", "keystore.p12", "truststore.p12", "keystore.password"}

// Certificates is the certificate source and rotation cadence.
type Certificates struct {
	Source      string
	CAFile      string
	CRLFile     string
	VaultTarget string
	// VaultStoreDir keeps vault-pki certificates and keys between runs.
	VaultStoreDir string
	// VaultClientName is the CN of harden's client certificates.
	VaultClientName string
	Rotation        sdk.Rotation
}

// SecretRef is a secret named by reference in a target's connection block.
type SecretRef struct {
	// Name is the key without suffix: password_env -> "password".
	Name string
	// Env or File, exactly one set.
	Env, File string
	Path      []string
}

// Target is one target block.
type Target struct {
	Index            int
	Name             string
	Plugin           string
	Connection       json.RawMessage
	Spec             json.RawMessage
	CertFile         string
	KeyFile          string
	ClientCertFile   string
	ClientKeyFile    string
	CertificateNames []string
	Endpoints        []sdk.Endpoint
	Secrets          []SecretRef
}

// Default rotation: the seed's 90 days with alerts at 30/14/7 days.
var defaultRotation = sdk.Rotation{MaxLifetime: 90 * 24 * time.Hour, RenewBefore: 30 * 24 * time.Hour,
	AlertAt: []time.Duration{30 * 24 * time.Hour, 14 * 24 * time.Hour, 7 * 24 * time.Hour}}

// MaxPolicySize caps the policy file: it is read and checked before YAML
// parsing, whose memory grows with the document (a page-long policy is a few
// KiB; a fleet of a thousand targets is well under 1 MiB).
const MaxPolicySize = 4 << 20

// Load reads and validates path against the policy schema and harden's own
// rules. Plugin-specific schemas are checked later with ValidateTarget.
func Load(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("policy file %s: not found", path)
		}
		return nil, fmt.Errorf("policy file %s: %w", path, err)
	}
	defer f.Close()
	// Not required to be a regular file (a pipe or /dev/stdin is fine), but
	// never read past the cap (/dev/zero).
	data, err := io.ReadAll(io.LimitReader(f, MaxPolicySize+1))
	if err != nil {
		return nil, fmt.Errorf("policy file %s: %w", path, err)
	}
	p, err := Parse(path, data)
	if err == nil {
		p.SHA256 = fmt.Sprintf("%x", sha256.Sum256(data))
	}
	return p, err
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse validates policy bytes; name is used in error messages.
func Parse(name string, data []byte) (*Policy, error) {
	if len(data) > MaxPolicySize {
		return nil, &Error{File: name, Msg: fmt.Sprintf("policy file is larger than %d MiB; a policy is a page of YAML", MaxPolicySize>>20)}
	}
	if n := yamlNodeBound(data); n > maxNodes {
		return nil, &Error{File: name, Msg: fmt.Sprintf("policy file has more than %d YAML values (about %d); split the fleet into several policies", maxNodes, n)}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if err.Error() == "EOF" {
			return nil, &Error{File: name, Msg: "policy file is empty"}
		}
		msg := err.Error()
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			return nil, &Error{File: name, Pos: Position{Line: line}, Msg: "YAML syntax error: " + m[2]}
		}
		return nil, &Error{File: name, Msg: "YAML syntax error: " + strings.TrimPrefix(msg, "yaml: ")}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &Error{File: name, Pos: Position{extra.Line, extra.Column}, Msg: "more than one YAML document; a policy file holds exactly one"}
	}
	pos := positions{}
	raw, err := toValue(&doc, nil, pos)
	if err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			pe.File = name
		}
		return nil, err
	}
	p := &Policy{File: name, pos: pos}
	// Secrets first, alone: no later message may quote a value that holds one.
	if errs := p.scanSecrets(nil, raw); len(errs) > 0 {
		sortErrors(errs)
		return nil, errs
	}
	if errs := p.validateAgainst(compiledBase, raw, nil); len(errs) > 0 {
		return nil, errs
	}
	if errs := p.build(raw.(map[string]any)); len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}

var compiledBase = func() *schema.Schema {
	doc, err := json.Marshal(baseSchema())
	if err != nil {
		panic(err)
	}
	s, err := schema.Compile("policy schema", doc)
	if err != nil {
		panic(err)
	}
	return s
}()

// position finds the best position for a path: the value where it exists,
// else the closest enclosing value.
func (p *Policy) position(path []string) Position {
	for i := len(path); i >= 0; i-- {
		if ps, ok := p.pos[joinPath(path[:i])]; ok {
			return ps
		}
	}
	return Position{}
}

// keyPosition is where the last key of path is written (for unknown keys and
// secrets), falling back to the value position.
func (p *Policy) keyPosition(path []string) Position {
	if len(path) > 0 {
		if ps, ok := p.pos[joinPath(path[:len(path)-1])+"#"+path[len(path)-1]]; ok {
			return ps
		}
	}
	return p.position(path)
}

func (p *Policy) errorAt(path []string, format string, args ...any) *Error {
	return &Error{File: p.File, Pos: p.position(path), Path: path, Msg: fmt.Sprintf(format, args...)}
}

func (p *Policy) keyErrorAt(path []string, format string, args ...any) *Error {
	return &Error{File: p.File, Pos: p.keyPosition(path), Path: path, Msg: fmt.Sprintf(format, args...)}
}

// diagError places a schema or plugin diagnostic: unknown keys at the key,
// everything else at the value.
func (p *Policy) diagError(path []string, d sdk.Diagnostic) *Error {
	msg := d.Summary
	if d.Detail != "" {
		msg += ": " + d.Detail
	}
	if d.Code == "config.unknown_key" {
		return p.keyErrorAt(path, "%s", msg)
	}
	return p.errorAt(path, "%s", msg)
}

func (p *Policy) validateAgainst(s *schema.Schema, value any, prefix []string) Errors {
	var errs Errors
	for _, d := range s.ValidateValue(value, prefix) {
		errs = append(errs, p.diagError(d.Attribute, d))
	}
	return errs
}

// DiagnosticError places a plugin diagnostic about target i at its position.
func (p *Policy) DiagnosticError(i int, d sdk.Diagnostic) *Error {
	return p.diagError(append([]string{"targets", strconv.Itoa(i)}, d.Attribute...), d)
}

// ValidateTarget checks target i against its plugin's compiled schemas.
func (p *Policy) ValidateTarget(i int, connection, spec *schema.Schema) error {
	t := p.Targets[i]
	var errs Errors
	for _, d := range connection.Validate(t.Connection, sdk.Path{"connection"}) {
		errs = append(errs, p.DiagnosticError(i, d))
	}
	for _, d := range spec.Validate(t.Spec, sdk.Path{"spec"}) {
		errs = append(errs, p.DiagnosticError(i, d))
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func (p *Policy) build(doc map[string]any) Errors {
	var errs Errors
	p.APIVersion = doc["apiVersion"].(string)
	prof, perrs := p.buildProfile(doc["profile"])
	errs = append(errs, perrs...)
	p.Profile = prof

	p.Certificates = Certificates{Rotation: defaultRotation}
	if c, ok := doc["certificates"].(map[string]any); ok {
		errs = append(errs, p.buildCertificates(c)...)
	}
	if m, ok := doc["mtls"].(map[string]any); ok {
		for _, s := range asList(m["scope"]) {
			p.MTLSScope = append(p.MTLSScope, s.(string))
		}
	}
	names := map[string]int{}
	for i, rawT := range doc["targets"].([]any) {
		t, terrs := p.buildTarget(i, rawT.(map[string]any))
		errs = append(errs, terrs...)
		if prev, dup := names[t.Name]; dup {
			errs = append(errs, p.errorAt([]string{"targets", strconv.Itoa(i), "name"}, "target name %q is already used by targets[%d]", t.Name, prev))
		}
		names[t.Name] = i
		p.Targets = append(p.Targets, t)
	}
	for i, s := range p.MTLSScope {
		if _, ok := names[s]; !ok {
			errs = append(errs, p.errorAt([]string{"mtls", "scope", strconv.Itoa(i)}, "unknown target %q", s))
		}
	}
	errs = append(errs, p.buildClients(asList(doc["clients"]), names)...)
	if p.Certificates.Source == "vault-pki" {
		idx, ok := names[p.Certificates.VaultTarget]
		switch {
		case !ok:
			errs = append(errs, p.errorAt([]string{"certificates", "vault", "target"}, "unknown target %q", p.Certificates.VaultTarget))
		case p.Targets[idx].Plugin != "vaultpki":
			errs = append(errs, p.errorAt([]string{"certificates", "vault", "target"}, "target %q uses plugin %s, not vaultpki", p.Certificates.VaultTarget, p.Targets[idx].Plugin))
		}
	}
	sortErrors(errs)
	return errs
}

// buildClients reads the clients: block. A client's name is its
// certificate's CN, so it may not be a target's name (the targets' own
// certificates use those) nor harden's own client name.
func (p *Policy) buildClients(raw []any, targets map[string]int) Errors {
	var errs Errors
	seen := map[string]int{}
	for i, rc := range raw {
		m := rc.(map[string]any)
		at := func(k ...string) []string { return append([]string{"clients", strconv.Itoa(i)}, k...) }
		c := Client{Index: i}
		c.Name, _ = m["name"].(string)
		for _, t := range asList(m["targets"]) {
			c.Targets = append(c.Targets, t.(string))
		}
		d, _ := m["deliver"].(map[string]any)
		c.VaultKV, _ = d["vault_kv"].(string)
		if dir, ok := d["dir"].(string); ok {
			c.Dir = p.resolvePath(dir)
		}
		c.InstallDir, _ = m["install_dir"].(string)
		if c.InstallDir == "" {
			c.InstallDir = c.Dir
			if c.InstallDir == "" {
				c.InstallDir = "/etc/harden/clients/" + c.Name
			}
		}
		if prev, dup := seen[c.Name]; dup {
			errs = append(errs, p.errorAt(at("name"), "client name %q is already used by clients[%d]", c.Name, prev))
		}
		seen[c.Name] = i
		if _, clash := targets[c.Name]; clash {
			errs = append(errs, p.errorAt(at("name"), "client name %q is also a target's name: a client's name is its certificate's common name, which must not be a target's", c.Name))
		}
		if p.Certificates.Source == "vault-pki" && c.Name == p.Certificates.VaultClientName {
			errs = append(errs, p.errorAt(at("name"), "client name %q is harden's own client certificate name (certificates.vault.client_name)", c.Name))
		}
		if p.Certificates.Source != "vault-pki" {
			errs = append(errs, p.errorAt(at("name"), "client identities are issued by the certificate source: they need certificates.source vault-pki"))
		}
		if c.Dir != "" {
			for _, other := range p.Clients {
				if other.Dir == "" {
					continue
				}
				rel, err := filepath.Rel(other.Dir, c.Dir)
				rel2, err2 := filepath.Rel(c.Dir, other.Dir)
				inside := func(r string, e error) bool { return e == nil && (r == "." || !strings.HasPrefix(r, "..")) }
				if inside(rel, err) || inside(rel2, err2) {
					errs = append(errs, p.errorAt(at("deliver", "dir"), "client %s is delivered to %s, which is (or lies in or around) client %s's %s: each client needs a directory of its own", c.Name, c.Dir, other.Name, other.Dir))
				}
			}
		}
		for j, t := range c.Targets {
			if _, ok := targets[t]; !ok {
				errs = append(errs, p.errorAt(at("targets", strconv.Itoa(j)), "unknown target %q", t))
			} else if t == p.Certificates.VaultTarget {
				errs = append(errs, p.errorAt(at("targets", strconv.Itoa(j)), "target %q is the certificate source, not a service a client connects to", t))
			}
		}
		p.Clients = append(p.Clients, c)
	}
	return errs
}

// Client returns the client of that name.
func (p *Policy) Client(name string) (Client, bool) {
	for _, c := range p.Clients {
		if c.Name == name {
			return c, true
		}
	}
	return Client{}, false
}

func sortErrors(errs Errors) {
	slices.SortStableFunc(errs, func(a, b *Error) int {
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line - b.Pos.Line
		}
		return a.Pos.Column - b.Pos.Column
	})
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func strList(v any) []string {
	var out []string
	for _, x := range asList(v) {
		out = append(out, x.(string))
	}
	return out
}

// ParseDuration reads 90d, 12h, 30m, 45s exactly: one unsigned integer and
// one unit (d = 24h). A value whose nanoseconds do not fit in a
// time.Duration (about 106751 days) is an error, never a wrapped-around
// negative duration.
func ParseDuration(s string) (time.Duration, error) {
	if len(s) < 2 {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	digits := s[:len(s)-1]
	if strings.TrimLeft(digits, "0123456789") != "" {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	unit := map[byte]time.Duration{'d': 24 * time.Hour, 'h': time.Hour, 'm': time.Minute, 's': time.Second}[s[len(s)-1]]
	if unit == 0 {
		return 0, fmt.Errorf("invalid duration %q (use d, h, m or s)", s)
	}
	if err != nil || n > int64(math.MaxInt64/unit) {
		return 0, fmt.Errorf("duration %q is too long (at most %dd)", s, int64(math.MaxInt64/(24*time.Hour)))
	}
	return time.Duration(n) * unit, nil
}

func (p *Policy) buildProfile(v any) (tlsprofile.Profile, Errors) {
	if name, ok := v.(string); ok {
		prof, _ := tlsprofile.Named(name)
		return prof, nil
	}
	m := v.(map[string]any)
	base, _ := tlsprofile.Named(m["base"].(string))
	o := tlsprofile.Overrides{}
	path := []string{"profile", "overrides"}
	if ov, ok := m["overrides"].(map[string]any); ok {
		o.MinVersion, _ = ov["min_version"].(string)
		o.MaxVersion, _ = ov["max_version"].(string)
		if _, ok := ov["tls12_ciphers"]; ok {
			o.TLS12Ciphers = append([]string{}, strList(ov["tls12_ciphers"])...)
		}
		if _, ok := ov["tls13_ciphers"]; ok {
			o.TLS13Ciphers = append([]string{}, strList(ov["tls13_ciphers"])...)
		}
		if _, ok := ov["groups"]; ok {
			o.Groups = append([]string{}, strList(ov["groups"])...)
		}
		if _, ok := ov["certificate_types"]; ok {
			o.CertificateTypes = append([]string{}, strList(ov["certificate_types"])...)
		}
		if s, ok := ov["max_certificate_lifespan"].(string); ok {
			d, err := ParseDuration(s)
			at := append(path, "max_certificate_lifespan")
			switch {
			case err != nil:
				return base, Errors{p.errorAt(at, "%v", err)}
			case d <= 0:
				return base, Errors{p.errorAt(at, "must be longer than 0")}
			case d%(24*time.Hour) != 0:
				// The profile, and with it the plugin protocol, carries the
				// lifespan in whole days: rounding either way would judge
				// certificates against a limit the policy does not state.
				return base, Errors{p.errorAt(at, "%s is not a whole number of days; the TLS profile's certificate lifespan is counted in days (write e.g. 1d or 30d)", s)}
			case d/(24*time.Hour) > math.MaxInt32:
				return base, Errors{p.errorAt(at, "%s is too long", s)}
			}
			o.MaxCertificateLifespanDays = int(d / (24 * time.Hour))
		}
		if b, ok := ov["strict_groups"].(bool); ok {
			o.StrictGroups = &b
		}
		if b, ok := ov["server_preferred_order"].(bool); ok {
			o.ServerPreferredOrder = &b
		}
	}
	prof, weak, err := tlsprofile.Customize(base, o)
	if err != nil {
		var oe *tlsprofile.OverrideError
		if errors.As(err, &oe) {
			return base, Errors{p.errorAt(append(path, oe.Field), "%v", oe.Err)}
		}
		return base, Errors{p.errorAt(path, "%v", err)}
	}
	reason, _ := m["allow_insecure"].(string)
	if len(weak) > 0 && strings.TrimSpace(reason) == "" {
		var errs Errors
		for _, w := range weak {
			errs = append(errs, p.errorAt(append(path, w.Field), "insecure setting: %s; set profile.allow_insecure to the reason if this is really intended", w.Reason))
		}
		return base, errs
	}
	if len(weak) > 0 {
		prof.InsecureReason = reason
	}
	return prof, nil
}

func (p *Policy) buildCertificates(c map[string]any) Errors {
	var errs Errors
	cert := &p.Certificates
	cert.Source = c["source"].(string)
	if f, ok := c["files"].(map[string]any); ok {
		cert.CAFile = p.resolvePath(f["ca_file"].(string))
		if crl, ok := f["crl_file"].(string); ok {
			cert.CRLFile = p.resolvePath(crl)
		}
	}
	if v, ok := c["vault"].(map[string]any); ok {
		cert.VaultTarget, _ = v["target"].(string)
		cert.VaultStoreDir, _ = v["store_dir"].(string)
		cert.VaultClientName, _ = v["client_name"].(string)
		if cert.VaultStoreDir == "" {
			cert.VaultStoreDir = filepath.Join(".harden", "certs")
		}
		cert.VaultStoreDir = p.resolvePath(cert.VaultStoreDir)
		if cert.VaultClientName == "" {
			cert.VaultClientName = "harden-admin"
		}
	}
	switch {
	case cert.Source == "files" && cert.CAFile == "":
		errs = append(errs, p.errorAt([]string{"certificates", "source"}, "source files needs certificates.files.ca_file"))
	case cert.Source == "vault-pki" && cert.VaultTarget == "":
		errs = append(errs, p.errorAt([]string{"certificates", "source"}, "source vault-pki needs certificates.vault.target"))
	}
	if r, ok := c["rotation"].(map[string]any); ok {
		dur := func(key string, into *time.Duration) {
			if s, ok := r[key].(string); ok {
				d, err := ParseDuration(s)
				if err != nil {
					errs = append(errs, p.errorAt([]string{"certificates", "rotation", key}, "%v", err))
					return
				}
				*into = d
			}
		}
		dur("max_lifetime", &cert.Rotation.MaxLifetime)
		dur("renew_before", &cert.Rotation.RenewBefore)
		if _, ok := r["alert_at"]; ok {
			cert.Rotation.AlertAt = nil
			for i, s := range strList(r["alert_at"]) {
				d, err := ParseDuration(s)
				if err != nil {
					errs = append(errs, p.errorAt([]string{"certificates", "rotation", "alert_at", strconv.Itoa(i)}, "%v", err))
					continue
				}
				cert.Rotation.AlertAt = append(cert.Rotation.AlertAt, d)
			}
		}
	}
	rot := cert.Rotation
	if rot.RenewBefore >= rot.MaxLifetime {
		errs = append(errs, p.errorAt([]string{"certificates", "rotation", "renew_before"}, "renew_before (%s) must be shorter than max_lifetime (%s)", days(rot.RenewBefore), days(rot.MaxLifetime)))
	}
	if max := time.Duration(p.Profile.MaxCertificateLifespanDays) * 24 * time.Hour; max > 0 && rot.MaxLifetime > max {
		errs = append(errs, p.errorAt([]string{"certificates", "rotation", "max_lifetime"}, "insecure setting: %s exceeds the %s profile's maximum certificate lifespan of %d days", days(rot.MaxLifetime), p.Profile.Name, p.Profile.MaxCertificateLifespanDays))
	}
	return errs
}

func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

func (p *Policy) resolvePath(f string) string {
	if f == "" || filepath.IsAbs(f) {
		return f
	}
	return filepath.Join(filepath.Dir(p.File), f)
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (p *Policy) buildTarget(i int, m map[string]any) (Target, Errors) {
	base := []string{"targets", strconv.Itoa(i)}
	t := Target{Index: i, Name: m["name"].(string), Plugin: m["plugin"].(string)}
	var errs Errors
	conn, _ := m["connection"].(map[string]any)
	if conn == nil {
		conn = map[string]any{}
	}
	spec, _ := m["spec"].(map[string]any)
	if spec == nil {
		spec = map[string]any{}
	}
	errs = append(errs, p.findSecretRefs(append(base, "connection"), conn, &t)...)
	errs = append(errs, p.findSecretRefs(append(base, "spec"), spec, nil)...)
	t.Connection, _ = json.Marshal(conn)
	t.Spec, _ = json.Marshal(spec)
	if c, ok := m["certificate"].(map[string]any); ok {
		t.CertFile = p.resolvePath(c["cert_file"].(string))
		t.KeyFile = p.resolvePath(c["key_file"].(string))
		if f, ok := c["client_cert_file"].(string); ok {
			t.ClientCertFile = p.resolvePath(f)
		}
		if f, ok := c["client_key_file"].(string); ok {
			t.ClientKeyFile = p.resolvePath(f)
		}
		if (t.ClientCertFile == "") != (t.ClientKeyFile == "") {
			errs = append(errs, p.errorAt(append(base, "certificate"), "client_cert_file and client_key_file go together"))
		}
	}
	t.Endpoints = endpointsOf(t.Plugin, conn)
	seen := map[string]bool{}
	for _, e := range t.Endpoints {
		if h, _, err := net.SplitHostPort(e.Address); err == nil && !seen[h] {
			seen[h] = true
			t.CertificateNames = append(t.CertificateNames, h)
		}
	}
	for _, n := range strList(m["certificate_names"]) {
		if !seen[n] {
			seen[n] = true
			t.CertificateNames = append(t.CertificateNames, n)
		}
	}
	return t, errs
}

// findSecretRefs walks a block for secret references: *_env must name an
// environment variable, *_file a file; those of a connection block (t set)
// are what ResolveSecrets reads. Inline secrets were refused by
// scanSecrets before this runs.
func (p *Policy) findSecretRefs(path []string, m map[string]any, t *Target) Errors {
	var errs Errors
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := m[k]
		kp := append(append([]string(nil), path...), k)
		switch {
		case strings.HasSuffix(k, "_env") && (isString(v) || secretKey.MatchString(strings.TrimSuffix(k, "_env"))):
			s, ok := v.(string)
			if !ok || !envName.MatchString(s) {
				errs = append(errs, p.errorAt(kp, "must name an environment variable"))
				continue
			}
			if t != nil {
				t.Secrets = append(t.Secrets, SecretRef{Name: strings.TrimSuffix(k, "_env"), Env: s, Path: kp})
			}
			continue
		case strings.HasSuffix(k, "_file") && secretKey.MatchString(strings.TrimSuffix(k, "_file")):
			s, ok := v.(string)
			if !ok || s == "" {
				errs = append(errs, p.errorAt(kp, "must name a file"))
				continue
			}
			if t != nil {
				t.Secrets = append(t.Secrets, SecretRef{Name: strings.TrimSuffix(k, "_file"), File: p.resolvePath(s), Path: kp})
			}
			continue
		}
		switch x := v.(type) {
		case map[string]any:
			errs = append(errs, p.findSecretRefs(kp, x, t)...)
		case []any:
			for j, e := range x {
				if em, ok := e.(map[string]any); ok {
					errs = append(errs, p.findSecretRefs(append(append([]string(nil), kp...), strconv.Itoa(j)), em, nil)...)
				}
			}
		}
	}
	return errs
}

func isString(v any) bool {
	_, ok := v.(string)
	return ok
}

// endpointsOf finds the network addresses in a connection block by the
// conventions every plugin schema follows: host+port, address, endpoint (URL)
// and bootstrap (list of host:port).
func endpointsOf(plugin string, conn map[string]any) []sdk.Endpoint {
	var eps []sdk.Endpoint
	add := func(name, addr string) {
		if addr != "" {
			eps = append(eps, sdk.Endpoint{Name: name, Address: addr})
		}
	}
	if h, ok := conn["host"].(string); ok {
		port := ""
		if n, ok := conn["port"].(json.Number); ok {
			port = n.String()
		}
		if port != "" {
			add(plugin, net.JoinHostPort(h, port))
		}
	}
	// "front": a proxy target's TLS front (plugins/proxy), where clients
	// connect and where the rotate gate checks the certificate's names.
	for _, key := range []string{"address", "endpoint", "front"} {
		if s, ok := conn[key].(string); ok {
			if u, err := url.Parse(s); err == nil && u.Host != "" {
				hp := u.Host
				if u.Port() == "" {
					hp = net.JoinHostPort(u.Hostname(), map[string]string{"https": "443", "http": "80"}[u.Scheme])
				}
				add(plugin+"-"+u.Scheme, hp)
			} else {
				add(plugin, s)
			}
		}
	}
	for _, b := range strList(conn["bootstrap"]) {
		add(plugin, b)
	}
	return eps
}

// conventionalEnvName: upper-case letters, digits and '_', not starting with
// a digit (PGPASSWORD, VAULT_TOKEN) — a name safe to repeat in an error.
func conventionalEnvName(s string) bool {
	for i, r := range s {
		if !(r >= 'A' && r <= 'Z' || r == '_' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

// ResolveSecrets reads target t's secrets from the environment and files. The
// error names the reference, never the value.
func (p *Policy) ResolveSecrets(t Target, getenv func(string) (string, bool)) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, ref := range t.Secrets {
		switch {
		case ref.Env != "":
			v, ok := getenv(ref.Env)
			if !ok || v == "" {
				if !conventionalEnvName(ref.Env) {
					// A mixed-case word here may be a password pasted
					// where the variable's name belongs: never repeat it.
					return nil, p.keyErrorAt(ref.Path, "the environment variable named here is not set (not repeated: it is not an upper-case NAME, is it a pasted secret?)")
				}
				return nil, p.keyErrorAt(ref.Path, "environment variable %s is not set", ref.Env)
			}
			out[ref.Name] = []byte(v)
		case ref.File != "":
			b, err := ReadBounded(ref.File, Secret)
			if err != nil {
				return nil, p.errorAt(ref.Path, "%v", err)
			}
			out[ref.Name] = bytes.TrimRight(b, "\r\n")
		}
	}
	return out, nil
}

// Context returns the read-only policy context sent with every request.
func (p *Policy) Context() sdk.Policy {
	ctx := sdk.Policy{APIVersion: p.APIVersion, Profile: p.Profile, Rotation: p.Certificates.Rotation,
		MTLSScope: p.MTLSScope, CertificateSource: p.Certificates.Source}
	for _, c := range p.Clients {
		ctx.Clients = append(ctx.Clients, sdk.ClientRef{Name: c.Name, Targets: c.Targets, VaultKV: c.VaultKV, Dir: c.Dir})
	}
	for _, t := range p.Targets {
		ctx.Targets = append(ctx.Targets, sdk.TargetRef{Name: t.Name, Plugin: t.Plugin, Endpoints: t.Endpoints,
			CertificateNames: t.CertificateNames, MTLS: slices.Contains(p.MTLSScope, t.Name)})
	}
	return ctx
}

// Target returns the named target.
func (p *Policy) Target(name string) (Target, bool) {
	for _, t := range p.Targets {
		if t.Name == name {
			return t, true
		}
	}
	return Target{}, false
}

// TargetPosition is where target i starts in the policy file (its list
// item), for reports that point at the target (SARIF locations).
func (p *Policy) TargetPosition(i int) Position {
	return p.position([]string{"targets", strconv.Itoa(i)})
}
