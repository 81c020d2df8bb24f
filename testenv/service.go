package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Service is one real server managed by testenv.
type Service interface {
	// Name is the service name used by `testenv up --services`.
	Name() string
	// Start brings the server up on loopback and blocks until it answers.
	Start(ctx context.Context, env *Env) error
	// Stop shuts it down and removes its files.
	Stop() error
	// Info is the service's entry in env.json.
	Info() any
	// Target is the service's target block in the generated policy.
	Target() map[string]any
}

// Known service names, in start order.
var Known = []string{"postgres", "kafka", "vault", "s3", "ingest", "nginx", "haproxy"}

// New returns the named service, or an error naming what is available.
func New(name string) (Service, error) {
	switch name {
	case "postgres":
		return &Postgres{}, nil
	case "kafka":
		return &Kafka{}, nil
	case "vault":
		return &Vault{}, nil
	case "s3":
		return &SeaweedFS{}, nil
	case "ingest":
		return &Ingest{}, nil
	case "nginx":
		return &Nginx{}, nil
	case "haproxy":
		return &HAProxy{}, nil
	}
	return nil, fmt.Errorf("unknown service %q; known: %s", name, strings.Join(Known, ", "))
}

// Env is a set of running services sharing a state dir and a throwaway CA.
type Env struct {
	Dir      string
	CA       *CA
	Log      io.Writer
	mu       sync.Mutex
	services []Service
	// staged: see Options.Staged.
	staged bool
}

// Options for Up.
type Options struct {
	Services []string
	// StateDir receives env.json, policy.yaml, the CA and credentials.
	StateDir string
	// Log receives progress and server start-up messages.
	Log io.Writer
	// Staged: more services (Vault among them) join later with Add. The
	// CA is then an enterprise root (path length 1) that signs the first
	// services' certificates now and Vault's intermediate later, so the
	// trust every client holds stays the same when Vault takes over
	// issuing (the vault target gets pki.external_intermediate).
	Staged bool
}

// Up starts the services and writes env.json and policy.yaml. On error every
// started service is stopped again.
func Up(ctx context.Context, opts Options) (*Env, error) {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	dir, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	newCA := NewCA
	if opts.Staged {
		newCA = NewEnterpriseRoot
	}
	ca, err := newCA(dir)
	if err != nil {
		return nil, err
	}
	env := &Env{Dir: dir, CA: ca, Log: opts.Log, staged: opts.Staged}
	if err := env.start(ctx, opts.Services); err != nil {
		env.Down()
		return nil, err
	}
	if err := env.writeFiles("policy.yaml"); err != nil {
		env.Down()
		return nil, err
	}
	return env, nil
}

// start starts the named services in Known's order.
func (e *Env) start(ctx context.Context, names []string) error {
	names = slices.Clone(names)
	sort.SliceStable(names, func(i, j int) bool { return slices.Index(Known, names[i]) < slices.Index(Known, names[j]) })
	for _, n := range names {
		svc, err := New(n)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.Log, "testenv: starting %s ...\n", n)
		if err := svc.Start(ctx, e); err != nil {
			svc.Stop()
			return fmt.Errorf("start %s: %w", n, err)
		}
		e.mu.Lock()
		e.services = append(e.services, svc)
		e.mu.Unlock()
		fmt.Fprintf(e.Log, "testenv: %s is up\n", n)
	}
	return nil
}

// builds are the services whose server testenv builds (scripts/*-build.sh)
// rather than installs: Add waits for them.
var builds = map[string]struct {
	what string
	find func() (string, error)
}{"vault": {"Vault", VaultBinary}, "s3": {"SeaweedFS", SeaweedFSBinary}}

// Add starts more services in a running env once their builds exist
// (waiting with progress on the log every 30 s: the demo runs the builds
// in the background meanwhile), then writes env.json and the policy of
// every service as policyName. Services already running keep running; on
// error the new ones are stopped again and the env is as before.
func (e *Env) Add(ctx context.Context, names []string, policyName string) error {
	e.mu.Lock()
	for _, s := range e.services {
		if slices.Contains(names, s.Name()) {
			e.mu.Unlock()
			return fmt.Errorf("%s is already running in this env", s.Name())
		}
	}
	e.mu.Unlock()
	began := time.Now()
	for _, n := range names {
		b, ok := builds[n]
		if !ok {
			continue
		}
		var last time.Time
		for {
			if _, err := b.find(); err == nil {
				break
			} else if time.Since(last) >= 30*time.Second {
				fmt.Fprintf(e.Log, "testenv: waiting for the %s build (%s so far): %v\n", b.what, time.Since(began).Round(time.Second), err)
				last = time.Now()
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(2 * time.Second):
			}
		}
	}
	e.mu.Lock()
	before := len(e.services)
	e.mu.Unlock()
	err := e.start(ctx, names)
	if err == nil {
		err = e.writeFiles(policyName)
	}
	if err != nil {
		e.mu.Lock()
		added := e.services[before:]
		e.services = e.services[:before]
		e.mu.Unlock()
		for i := len(added) - 1; i >= 0; i-- {
			added[i].Stop()
		}
	}
	return err
}

// service is the running service of that name in this env (nil when it
// is not running): how a service finds one started before it (nginx the
// ingest API it fronts).
func (e *Env) service(name string) Service {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.services {
		if s.Name() == name {
			return s
		}
	}
	return nil
}

// Down stops every service in reverse order.
func (e *Env) Down() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	for i := len(e.services) - 1; i >= 0; i-- {
		if err := e.services[i].Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", e.services[i].Name(), err))
		}
	}
	e.services = nil
	return errors.Join(errs...)
}

// EnvFile is the documented shape of env.json.
type EnvFile struct {
	// CAFile is the throwaway CA's certificate (PEM).
	CAFile   string         `json:"ca_file"`
	Policy   string         `json:"policy"`
	Services map[string]any `json:"services"`
}

// IntermediateCSR and IntermediateChain are where a staged env's Vault
// writes its intermediate's CSR and where `testenv sign-intermediate`
// puts the chain the enterprise root signed (in the state dir).
const (
	IntermediateCSR   = "vault-intermediate.csr"
	IntermediateChain = "vault-intermediate.pem"
)

func (e *Env) writeFiles(policyName string) error {
	ef := EnvFile{CAFile: e.CA.CertFile, Policy: filepath.Join(e.Dir, policyName), Services: map[string]any{}}
	var targets []map[string]any
	vault := ""
	for _, s := range e.services {
		ef.Services[s.Name()] = s.Info()
		targets = append(targets, s.Target())
		if v, ok := s.(*Vault); ok {
			vault = v.Target()["name"].(string)
			if e.staged {
				// Vault's intermediate is signed by the enterprise root
				// that signed the first services' certificates.
				t := targets[len(targets)-1]
				spec, _ := t["spec"].(map[string]any)
				if spec == nil {
					spec = map[string]any{}
					t["spec"] = spec
				}
				pki, _ := spec["pki"].(map[string]any)
				if pki == nil {
					pki = map[string]any{}
					spec["pki"] = pki
				}
				pki["external_intermediate"] = map[string]any{"csr_file": filepath.Join(e.Dir, IntermediateCSR), "certificate_file": filepath.Join(e.Dir, IntermediateChain)}
			}
		}
	}
	if vault != "" {
		// Vault is the certificate source of every other target: their
		// certificates are issued (from CSRs harden makes) instead of files.
		for _, t := range targets {
			if t["name"] != vault {
				delete(t, "certificate")
				t["certificate_names"] = []string{"localhost"}
			}
		}
	}
	data, err := json.MarshalIndent(ef, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(e.Dir, "env.json"), append(data, '\n'), 0o600); err != nil {
		return err
	}
	return os.WriteFile(ef.Policy, []byte(policyYAML(e.CA.CertFile, vault, filepath.Join(e.Dir, "certs"), targets)), 0o600)
}

// policyYAML renders the generated policy. JSON is valid YAML, but a
// hand-readable file is what the demo shows, so it is written as YAML.
func policyYAML(caFile, vault, certDir string, targets []map[string]any) string {
	var b strings.Builder
	b.WriteString("# Generated by testenv: one target per started service. The servers start\n")
	b.WriteString("# unhardened; run `harden verify -f` on this file to see what is wrong.\n")
	if vault != "" {
		b.WriteString("# Vault issues every other target's certificates: apply the vault target first.\n")
		b.WriteString("apiVersion: harden/v1\nprofile: intermediate\ncertificates:\n  source: vault-pki\n")
		fmt.Fprintf(&b, "  vault: {target: %s, store_dir: %s}\n", yamlString(vault), yamlString(certDir))
	} else {
		b.WriteString("apiVersion: harden/v1\nprofile: intermediate\ncertificates:\n  source: files\n")
		fmt.Fprintf(&b, "  files: {ca_file: %s}\n", yamlString(caFile))
	}
	b.WriteString("  rotation: {max_lifetime: 90d, renew_before: 30d, alert_at: [30d, 14d, 7d]}\n")
	var mtls []string
	for _, t := range targets {
		if t["mtls"] == true {
			mtls = append(mtls, fmt.Sprint(t["name"]))
		}
	}
	if len(mtls) > 0 {
		fmt.Fprintf(&b, "mtls: {scope: [%s]}\n", strings.Join(mtls, ", "))
	}
	b.WriteString("targets:\n")
	for _, t := range targets {
		fmt.Fprintf(&b, "  - name: %s\n    plugin: %s\n", t["name"], t["plugin"])
		if names, ok := t["certificate_names"].([]string); ok {
			j, _ := json.Marshal(names)
			fmt.Fprintf(&b, "    certificate_names: %s\n", j)
		}
		for _, block := range []string{"connection", "certificate", "spec"} {
			if m, ok := t[block].(map[string]any); ok && len(m) > 0 {
				fmt.Fprintf(&b, "    %s: %s\n", block, flowMap(m))
			}
		}
	}
	return b.String()
}

func flowMap(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		var v string
		switch x := m[k].(type) {
		case string:
			v = yamlString(x)
		default:
			j, _ := json.Marshal(x)
			v = string(j)
		}
		parts = append(parts, k+": "+v)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func yamlString(s string) string {
	j, _ := json.Marshal(s)
	return string(j)
}

// FreePort returns a currently free TCP port on 127.0.0.1. Callers retry
// when a server then fails to bind (another process may take it first).
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// unavailable fails under CI=true and skips otherwise: a test that needs a
// real server never silently passes without it in CI.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("testenv (CI=true, so this fails instead of skipping): "+format, args...)
	}
	t.Skipf("testenv: "+format, args...)
}

// startForTest starts svc for one test with its own state dir and
// throwaway CA, and stops it at cleanup. Under CI=true a server that cannot
// start fails the test (see unavailable).
func startForTest[S Service](t testing.TB, svc S) S {
	t.Helper()
	dir := t.TempDir()
	ca, err := NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background(), &Env{Dir: dir, CA: ca}); err != nil {
		unavailable(t, "%s: %v", svc.Name(), err)
	}
	t.Cleanup(func() {
		if err := svc.Stop(); err != nil {
			t.Errorf("stop %s: %v", svc.Name(), err)
		}
	})
	return svc
}
