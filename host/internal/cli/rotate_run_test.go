package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/harden-dev/harden/host/internal/certstore"
	"github.com/harden-dev/harden/host/internal/engine"
	"github.com/harden-dev/harden/host/internal/policy"
	"github.com/harden-dev/harden/host/internal/rotate"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
)

// These tests drive rotation.run, one return path at a time, against two
// in-process plugins that cross the real gRPC protocol: rrIssuer, a
// certificate source with a CA of its own (standing in for vaultpki), and
// rrTarget, a target whose one listener serves whatever its last Apply
// pushed, with the faults a real target shows (an apply that fails, one
// that does not take, listeners that cannot be read, a plan that keeps
// listing a change, a login refused for a given client certificate).

// rrCA is a throwaway CA for the tests (its own, or a foreign one).
type rrCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newRRCA(t *testing.T, cn string) *rrCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &rrCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// sign signs csrPEM for usage with the lifetime ttl.
func (ca *rrCA) sign(csrPEM []byte, usage string, ttl time.Duration) ([]byte, error) {
	b, _ := pem.Decode(csrPEM)
	if b == nil {
		return nil, errors.New("no CSR")
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	eku := map[string][]x509.ExtKeyUsage{"server": {x509.ExtKeyUsageServerAuth}, "client": {x509.ExtKeyUsageClientAuth},
		"peer": {x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}[usage]
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: csr.Subject, DNSNames: csr.DNSNames, IPAddresses: csr.IPAddresses,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(ttl), ExtKeyUsage: eku, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// pair issues a key and certificate for cn and names straight from ca.
func (ca *rrCA) pair(t *testing.T, cn, usage string, ttl time.Duration, names ...string) certstore.Pair {
	t.Helper()
	key, csr, err := certstore.NewKeyAndCSR(cn, names)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := ca.sign(csr, usage, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return certstore.Pair{Chain: chain, Key: key}
}

// rrIssuer is the certificate source: it hands out its CA bundle and signs
// CSRs (counted; signErr makes signing fail).
type rrIssuer struct {
	ca      *rrCA
	mu      sync.Mutex
	signed  int
	signErr error
}

func (*rrIssuer) Metadata(_ context.Context, _ sdk.MetadataRequest, r *sdk.MetadataResponse) {
	r.Name, r.Version = "vaultpki", "0.0.0-test"
}
func (*rrIssuer) Schema(context.Context, sdk.SchemaRequest, *sdk.SchemaResponse) {}
func (i *rrIssuer) IssueCertificate(_ context.Context, q sdk.IssueCertificateRequest, r *sdk.IssueCertificateResponse) {
	if q.Usage == "ca" {
		r.Certificate.CABundlePEM = i.ca.pem
		return
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.signErr != nil {
		r.Diagnostics.AddError("sign", i.signErr.Error())
		return
	}
	chain, err := i.ca.sign(q.CSRPEM, q.Usage, q.TTL)
	if err != nil {
		r.Diagnostics.AddError("sign", err.Error())
		return
	}
	i.signed++
	r.Certificate.ChainPEM = chain
}

func (i *rrIssuer) count() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.signed
}

// rrTarget is the target: one listener that serves the chain of its last
// successful push. The hooks are the faults, set before a run.
type rrTarget struct {
	mu sync.Mutex
	// served is the chain every handshake presents.
	served []byte
	// plans, applies and inventories count the calls.
	plans, applies, inventories int
	// applyFault decides, for the n-th Apply (from 1), whether the push
	// takes (changes what is served) and what error it reports.
	applyFault func(n int) (takes bool, err error)
	// planErr: the plan fails (a login refused) for this request.
	planErr func(q sdk.RequestContext) error
	// extra lists changes besides certificate material, after this many
	// applies (the plan that keeps listing a change).
	extra      []sdk.Change
	extraAfter int
	// onPlan and onInventory run in the n-th call (from 1) before the
	// answer; onInventory may change the listener reported.
	onPlan      func(n int)
	onInventory func(ctx context.Context, n int, inv *sdk.InventoryResponse)
	// applyCtxErr: the context error each Apply saw when it started.
	applyCtxErr []error
}

func (*rrTarget) Metadata(_ context.Context, _ sdk.MetadataRequest, r *sdk.MetadataResponse) {
	r.Name, r.Version = "rrfake", "0.0.0-test"
}
func (*rrTarget) Schema(context.Context, sdk.SchemaRequest, *sdk.SchemaResponse) {}

func (f *rrTarget) changes(q sdk.RequestContext) []sdk.Change {
	var out []sdk.Change
	if !bytes.Equal(q.Certificates.ChainPEM, f.served) {
		out = append(out, sdk.Change{Resource: "server certificate", Action: sdk.Update, CertificateMaterial: true})
	}
	if f.applies >= f.extraAfter {
		out = append(out, f.extra...)
	}
	return out
}

func (f *rrTarget) Plan(_ context.Context, q sdk.PlanRequest, r *sdk.PlanResponse) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plans++
	if f.onPlan != nil {
		f.onPlan(f.plans)
	}
	if f.planErr != nil {
		if err := f.planErr(q.RequestContext); err != nil {
			r.Diagnostics.AddTargetError("rrfake.login", "harden cannot log in", err)
			return
		}
	}
	r.Changes = f.changes(q.RequestContext)
	sum := sha256.Sum256(f.served)
	r.PlanToken = sum[:]
}

func (f *rrTarget) Apply(ctx context.Context, q sdk.ApplyRequest, r *sdk.ApplyResponse) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applies++
	f.applyCtxErr = append(f.applyCtxErr, ctx.Err())
	takes, err := true, error(nil)
	if f.applyFault != nil {
		takes, err = f.applyFault(f.applies)
	}
	ch := f.changes(q.RequestContext)
	if takes {
		f.served = q.Certificates.ChainPEM
	}
	if err != nil {
		r.Diagnostics.AddTargetError("rrfake.apply", "push of the certificate", err)
		return
	}
	r.Applied = ch
}

func (f *rrTarget) Inventory(ctx context.Context, q sdk.InventoryRequest, r *sdk.InventoryResponse) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inventories++
	l := sdk.ServedListener{Name: "tls", Address: "127.0.0.1:8443"}
	for range q.Handshakes {
		l.Handshakes = append(l.Handshakes, sdk.ServedHandshake{ChainPEM: f.served, Version: "TLSv1.3", Outcome: sdk.OutcomeAccepted, Evidence: "ok"})
	}
	r.Listeners = []sdk.ServedListener{l}
	if f.onInventory != nil {
		f.onInventory(ctx, f.inventories, r)
	}
}

func (f *rrTarget) serving() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.served
}

func (f *rrTarget) calls() (plans, applies, inventories int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.plans, f.applies, f.inventories
}

// rrEnv is a policy with the issuer and the target "app", their plugins
// and the session rotate runs in.
type rrEnv struct {
	t      *testing.T
	iss    *rrIssuer
	fake   *rrTarget
	s      *session
	tgt    policy.Target
	store  certstore.Store
	stdin  *strings.Reader
	stdout *bytes.Buffer
}

func newRREnv(t *testing.T, mtls bool) *rrEnv {
	t.Helper()
	dir := t.TempDir()
	scope := ""
	if mtls {
		scope = "mtls: {scope: [app]}\n"
	}
	pol, err := policy.Parse(filepath.Join(dir, "policy.yaml"), []byte(fmt.Sprintf(`apiVersion: harden/v1
profile: intermediate
certificates:
  source: vault-pki
  vault: {target: ca, store_dir: %q}
  rotation: {max_lifetime: 90d, renew_before: 30d, alert_at: [30d, 14d, 7d]}
%stargets:
  - name: ca
    plugin: vaultpki
    connection: {}
  - name: app
    plugin: rrfake
    connection: {}
    certificate_names: [127.0.0.1]
`, filepath.Join(dir, "certs"), scope)))
	if err != nil {
		t.Fatal(err)
	}
	e := &rrEnv{t: t, iss: &rrIssuer{ca: newRRCA(t, "rr test CA")}, fake: &rrTarget{},
		stdin: strings.NewReader(""), stdout: &bytes.Buffer{}}
	eng := &engine.Engine{Plugins: map[string]*engine.Plugin{}}
	for name, p := range map[string]sdk.Plugin{"vaultpki": e.iss, "rrfake": e.fake} {
		eng.Plugins[name] = &engine.Plugin{Client: hostclient.InProcess(p), Meta: sdk.MetadataResponse{Name: name, Capabilities: sdk.CapabilitiesOf(p)}}
	}
	t.Cleanup(eng.Close)
	e.tgt, _ = pol.Target("app")
	io := IO{Stdin: e.stdin, Stdout: e.stdout, Stderr: &bytes.Buffer{}, IsTerminal: func() bool { return false }, Getenv: func(string) (string, bool) { return "", false }}
	e.s = &session{pol: pol, eng: eng, targets: pol.Targets, io: io, timeout: 30 * time.Second}
	e.store = certstore.Store{Dir: filepath.Join(pol.Certificates.VaultStoreDir, "app"), Target: "app", RenewBefore: pol.Certificates.Rotation.RenewBefore}
	return e
}

// opts: --yes, 2 gate handshakes, a gate that gives up at its first
// failure (every fault here is permanent) unless a test says otherwise.
func rrOpts() rotateOptions {
	return rotateOptions{yes: true, handshakes: 2, gateTimeout: time.Nanosecond}
}

func (e *rrEnv) rotation(ctx context.Context, o rotateOptions) *rotation {
	e.t.Helper()
	r, failed := newRotation(ctx, e.s, e.tgt, o, e.s.io)
	if failed != nil {
		e.t.Fatalf("newRotation: %+v", *failed)
	}
	return r
}

func (e *rrEnv) run(o rotateOptions) rotateTargetReport {
	e.t.Helper()
	return e.runCtx(context.Background(), o)
}

func (e *rrEnv) runCtx(ctx context.Context, o rotateOptions) rotateTargetReport {
	e.t.Helper()
	r := e.rotation(context.Background(), o)
	rep := r.run(ctx)
	e.t.Logf("%s: %s", rep.Status, rep.Message)
	return rep
}

// seed is what harden apply leaves: a server pair (and a client pair
// under mTLS, valid for clientTTL) issued by the source's CA, stored; the
// server pair served.
func (e *rrEnv) seed() (server certstore.Pair) {
	e.t.Helper()
	return e.seedClient(90 * 24 * time.Hour)
}

func (e *rrEnv) seedClient(clientTTL time.Duration) (server certstore.Pair) {
	e.t.Helper()
	r := e.rotation(context.Background(), rrOpts())
	server = e.iss.ca.pair(e.t, "app", r.iss.ServerUsage, 90*24*time.Hour, "127.0.0.1")
	if err := e.store.Stage("server", server, certstore.Pair{}); err != nil {
		e.t.Fatal(err)
	}
	if r.iss.Client {
		if err := e.store.Stage("client", e.iss.ca.pair(e.t, "harden-admin", "client", clientTTL), certstore.Pair{}); err != nil {
			e.t.Fatal(err)
		}
	}
	e.fake.served = server.Chain
	return server
}

// files is every file in the store directory, by name.
func (e *rrEnv) files() map[string][]byte {
	e.t.Helper()
	out := map[string][]byte{}
	entries, err := os.ReadDir(e.store.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return out
	}
	if err != nil {
		e.t.Fatal(err)
	}
	for _, en := range entries {
		if en.Type().IsRegular() {
			data, err := os.ReadFile(filepath.Join(e.store.Dir, en.Name()))
			if err != nil {
				e.t.Fatal(err)
			}
			out[en.Name()] = data
		}
	}
	return out
}

func (e *rrEnv) current(kind string) certstore.Pair {
	e.t.Helper()
	p, err := e.store.Current(kind)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *rrEnv) previous(kind string) certstore.Pair {
	e.t.Helper()
	p, err := e.store.Previous(kind)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// sameFiles fails unless the store holds exactly before.
func (e *rrEnv) sameFiles(before map[string][]byte) {
	e.t.Helper()
	after := e.files()
	for n, b := range before {
		if !bytes.Equal(after[n], b) {
			e.t.Errorf("store file %s changed", n)
		}
	}
	for n := range after {
		if _, ok := before[n]; !ok {
			e.t.Errorf("store file %s appeared", n)
		}
	}
}

// untouched: nothing was pushed, nothing issued, the store is as before.
func (e *rrEnv) untouched(before map[string][]byte, served []byte) {
	e.t.Helper()
	e.sameFiles(before)
	if _, applies, _ := e.fake.calls(); applies != 0 {
		e.t.Errorf("%d apply call(s), want none", applies)
	}
	if !bytes.Equal(e.fake.serving(), served) {
		e.t.Error("the target serves something else than before")
	}
	if n := e.iss.count(); n != 0 {
		e.t.Errorf("%d certificate(s) issued, want none", n)
	}
}

func wantStatus(t *testing.T, rep rotateTargetReport, status string, contains ...string) {
	t.Helper()
	if rep.Status != status {
		t.Errorf("status %q, want %q (message %q)", rep.Status, status, rep.Message)
	}
	for _, c := range contains {
		if !strings.Contains(rep.Message, c) {
			t.Errorf("message %q lacks %q", rep.Message, c)
		}
	}
}

// A target with nothing issued yet is refused: rotate renews, apply issues.
func TestRotateRunNothingStored(t *testing.T) {
	e := newRREnv(t, false)
	rep := e.run(rrOpts())
	wantStatus(t, rep, "refused", "no certificate issued for this target yet: run harden apply first")
	e.untouched(map[string][]byte{}, nil)
	if p, _, i := e.fake.calls(); p+i != 0 {
		t.Errorf("the target was asked (%d plans, %d inventories) with nothing stored", p, i)
	}
}

// A second run holding the store's lock (a cron job beside an operator):
// refused before anything is read or asked.
func TestRotateRunLocked(t *testing.T) {
	e := newRREnv(t, false)
	old := e.seed()
	before := e.files()
	unlock, err := e.store.Lock()
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	rep := e.run(forced())
	wantStatus(t, rep, "refused", "another harden run is renewing its certificates", ".lock")
	e.untouched(before, old.Chain)
	if p, _, i := e.fake.calls(); p+i != 0 {
		t.Errorf("the target was asked (%d plans, %d inventories) while the store is locked", p, i)
	}
}

// A store file that cannot be read (a directory where the previous
// certificate belongs) is an error naming the target, before anything is
// asked.
func TestRotateRunUnreadableStore(t *testing.T) {
	e := newRREnv(t, false)
	old := e.seed()
	prevCert, _ := e.store.PrevPaths("server")
	if err := os.Mkdir(prevCert, 0o700); err != nil {
		t.Fatal(err)
	}
	before := e.files()
	rep := e.run(forced())
	wantStatus(t, rep, "error", "target app")
	e.untouched(before, old.Chain)
}

func forced() rotateOptions { o := rrOpts(); o.force = true; return o }

// harden's client certificate no longer usable (another CA): it is renewed
// first, so harden can log in at all. When the target refuses the login
// with the renewed one, the previous one is put back and nothing else is
// touched; when it accepts, the run goes on (here: nothing else due).
func TestRotateRunUnusableClientRenewedFirst(t *testing.T) {
	setup := func(t *testing.T) (*rrEnv, certstore.Pair, certstore.Pair) {
		e := newRREnv(t, true)
		server := e.seed()
		foreign := newRRCA(t, "some other CA").pair(t, "harden-admin", "client", 90*24*time.Hour)
		if err := e.store.Stage("client", foreign, certstore.Pair{}); err != nil {
			t.Fatal(err)
		}
		return e, server, foreign
	}
	t.Run("login refused", func(t *testing.T) {
		e, server, foreign := setup(t)
		e.fake.planErr = func(q sdk.RequestContext) error {
			if !bytes.Equal(q.Certificates.ClientChainPEM, foreign.Chain) {
				return errors.New("certificate rejected by pg_hba")
			}
			return nil
		}
		serverBefore := e.current("server")
		rep := e.run(rrOpts())
		wantStatus(t, rep, "error", "harden cannot log in with its renewed client certificate", "certificate rejected by pg_hba", "the previous client certificate was put back")
		if got := e.current("client"); !bytes.Equal(got.Chain, foreign.Chain) || !bytes.Equal(got.Key, foreign.Key) {
			t.Error("the previous client certificate is not current again")
		}
		if got := e.current("server"); !bytes.Equal(got.Chain, serverBefore.Chain) || !bytes.Equal(got.Key, serverBefore.Key) {
			t.Error("the server pair changed")
		}
		if _, applies, inv := e.fake.calls(); applies+inv != 0 {
			t.Errorf("%d applies, %d inventories after a failed client renewal", applies, inv)
		}
		if !bytes.Equal(e.fake.serving(), server.Chain) {
			t.Error("the served certificate changed")
		}
		if e.iss.count() != 1 {
			t.Errorf("%d certificates issued, want the one client certificate", e.iss.count())
		}
	})
	t.Run("login accepted", func(t *testing.T) {
		e, server, foreign := setup(t)
		e.fake.planErr = func(q sdk.RequestContext) error {
			if bytes.Equal(q.Certificates.ClientChainPEM, foreign.Chain) {
				return errors.New("unknown CA")
			}
			return nil
		}
		rep := e.run(rrOpts())
		wantStatus(t, rep, "renewed")
		if len(rep.Renewed) != 1 || rep.Renewed[0].Kind != "client" || rep.Renewed[0].Reason != "does not chain to the issuer's current CA" {
			t.Errorf("renewed %+v, want the client certificate alone", rep.Renewed)
		}
		if got := e.current("client"); bytes.Equal(got.Chain, foreign.Chain) || rotate.Due(got, e.rotation(context.Background(), rrOpts()).want("client"), 0, time.Now()) != "" {
			t.Error("the stored client certificate is not a usable renewed one")
		}
		if _, applies, _ := e.fake.calls(); applies != 0 || !bytes.Equal(e.fake.serving(), server.Chain) {
			t.Error("the server certificate was pushed although it is not due")
		}
	})
	// Renewed first, then what is live cannot be told: the error says the
	// client certificate is the one thing that changed.
	t.Run("then what is live unknown", func(t *testing.T) {
		e, server, foreign := setup(t)
		e.fake.planErr = func(q sdk.RequestContext) error {
			if bytes.Equal(q.Certificates.ClientChainPEM, foreign.Chain) {
				return errors.New("unknown CA")
			}
			return nil
		}
		e.fake.onInventory = func(_ context.Context, _ int, inv *sdk.InventoryResponse) {
			inv.Listeners[0].Handshakes, inv.Listeners[0].Error = nil, "connection refused"
		}
		rep := e.run(rrOpts())
		wantStatus(t, rep, "error", "connection refused; only harden's own client certificate was renewed")
		if strings.Contains(rep.Message, "nothing was changed") || len(rep.Renewed) != 1 || rep.Renewed[0].Kind != "client" {
			t.Errorf("report %+v", rep)
		}
		if _, applies, _ := e.fake.calls(); applies != 0 || !bytes.Equal(e.fake.serving(), server.Chain) || !bytes.Equal(e.current("server").Chain, server.Chain) {
			t.Error("the server certificate was touched")
		}
	})
}

// What is live cannot be told, or is not what harden holds: an error with
// the evidence, and nothing changed — no plan, no issue, no push, the
// store byte-identical. Listeners that all serve a certificate harden does
// not deploy are skipped.
func TestRotateRunWhatIsLiveUnknown(t *testing.T) {
	foreignCA := newRRCA(t, "some other CA")
	foreign := foreignCA.pair(t, "app", "server", 90*24*time.Hour, "127.0.0.1")
	for _, tc := range []struct {
		name   string
		status string
		modify func(inv *sdk.InventoryResponse)
		want   []string
	}{
		{"listener error", "error", func(inv *sdk.InventoryResponse) {
			inv.Listeners[0].Handshakes, inv.Listeners[0].Error = nil, "dial tcp 127.0.0.1:8443: connection refused"
		}, []string{"listener tls at 127.0.0.1:8443: dial tcp 127.0.0.1:8443: connection refused", "nothing was changed"}},
		{"no handshake", "error", func(inv *sdk.InventoryResponse) { inv.Listeners[0].Handshakes = nil },
			[]string{"no handshake observed", "nothing was changed"}},
		{"no chain (inconclusive)", "error", func(inv *sdk.InventoryResponse) {
			inv.Listeners[0].Handshakes[0] = sdk.ServedHandshake{Outcome: sdk.OutcomeInconclusive, Evidence: "connection reset by peer"}
		}, []string{"cannot tell what it serves (inconclusive: connection reset by peer)", "nothing was changed"}},
		{"foreign certificate", "error", func(inv *sdk.InventoryResponse) { inv.Listeners[0].Handshakes[0].ChainPEM = foreign.Chain },
			[]string{"serves serial " + serialOf(foreign) + ", which is not the certificate harden holds", "run harden plan and harden apply first", "nothing was changed"}},
		{"no listener", "error", func(inv *sdk.InventoryResponse) { inv.Listeners = nil },
			[]string{"the plugin reported no TLS listener"}},
		{"inventory diagnostics", "error", func(inv *sdk.InventoryResponse) {
			inv.Diagnostics.AddTargetError("rrfake.inventory", "permission denied reading the listener config", nil)
		}, []string{"inventory: ", "permission denied reading the listener config"}},
		{"unmanaged", "skipped", func(inv *sdk.InventoryResponse) {
			inv.Listeners[0].ReloadsOn = sdk.ReloadsNever
			inv.Listeners[0].Handshakes[0].ChainPEM = foreign.Chain
		}, []string{"reloads_on never"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newRREnv(t, false)
			old := e.seed()
			before := e.files()
			e.fake.onInventory = func(_ context.Context, _ int, inv *sdk.InventoryResponse) { tc.modify(inv) }
			rep := e.run(forced())
			wantStatus(t, rep, tc.status, tc.want...)
			e.untouched(before, old.Chain)
			if p, _, _ := e.fake.calls(); p != 0 {
				t.Errorf("%d plan call(s) after what is live was unknown", p)
			}
		})
	}
	// Two listeners serving the current and the previous pair: a rotation
	// elsewhere, refused.
	t.Run("listeners disagree", func(t *testing.T) {
		e := newRREnv(t, false)
		old := e.seed()
		next := e.iss.ca.pair(t, "app", "server", 90*24*time.Hour, "127.0.0.1")
		if err := e.store.Stage("server", next, old); err != nil {
			t.Fatal(err)
		}
		before := e.files()
		e.fake.onInventory = func(_ context.Context, _ int, inv *sdk.InventoryResponse) {
			second := inv.Listeners[0]
			second.Name, second.Handshakes = "tls2", []sdk.ServedHandshake{{ChainPEM: next.Chain, Outcome: sdk.OutcomeAccepted}}
			inv.Listeners = append(inv.Listeners, second)
		}
		rep := e.run(forced())
		wantStatus(t, rep, "error", "the listeners serve different certificates", "nothing was changed")
		e.untouched(before, old.Chain)
	})
}

// An inventory call that fails (here: the run's context is already done)
// ends the run before anything changes.
func TestRotateRunInventoryFails(t *testing.T) {
	e := newRREnv(t, false)
	old := e.seed()
	before := e.files()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep := e.runCtx(ctx, forced())
	wantStatus(t, rep, "error", "inventory: ", "cancelled")
	e.untouched(before, old.Chain)
}

// The plan with the live material fails (harden cannot log in): an error,
// nothing changed.
func TestRotateRunPlanFails(t *testing.T) {
	e := newRREnv(t, false)
	old := e.seed()
	before := e.files()
	e.fake.planErr = func(sdk.RequestContext) error { return errors.New("password authentication failed") }
	rep := e.run(forced())
	wantStatus(t, rep, "error", "plan with the certificate that is live: ", "password authentication failed")
	e.untouched(before, old.Chain)
}

// Another pending change (a setting): refused, the changes listed, nothing
// changed — rotate is safe in cron.
func TestRotateRunOtherPendingChange(t *testing.T) {
	e := newRREnv(t, false)
	old := e.seed()
	before := e.files()
	e.fake.extra = []sdk.Change{{Resource: "ssl_min_protocol_version", Action: sdk.Update, Before: "TLSv1", After: "TLSv1.2"}}
	rep := e.run(forced())
	wantStatus(t, rep, "refused", "1 pending change(s) besides certificate material", "nothing was changed")
	if len(rep.Changes) != 1 || rep.Changes[0].Resource != "ssl_min_protocol_version" {
		t.Errorf("changes %+v, want the pending setting", rep.Changes)
	}
	e.untouched(before, old.Chain)
}

// Nothing due: not_due with the renewal date, nothing issued or pushed.
// A clock past renew_before makes the same certificate due (a dry run says
// why).
func TestRotateRunNotDueAndDue(t *testing.T) {
	e := newRREnv(t, false)
	old := e.seed()
	before := e.files()
	rep := e.run(rrOpts())
	l := rotate.Leaf(old)
	wantStatus(t, rep, "not_due", "serial "+serialOf(old), "renew at "+l.NotAfter.Add(-30*24*time.Hour).UTC().Format(time.RFC3339))
	e.untouched(before, old.Chain)
	e.s.eng.Now = func() time.Time { return time.Now().Add(65 * 24 * time.Hour) }
	dry := rrOpts()
	dry.dryRun = true
	rep = e.run(dry)
	wantStatus(t, rep, "would_renew")
	if len(rep.Renewed) != 1 || !strings.HasPrefix(rep.Renewed[0].Reason, "within renew_before (720h0m0s)") {
		t.Errorf("renewed %+v, want the server certificate within renew_before", rep.Renewed)
	}
	e.untouched(before, old.Chain)
}

// A dry run says what would be renewed (and why) and changes nothing,
// issues nothing — also for harden's client certificate.
func TestRotateRunDryRun(t *testing.T) {
	e := newRREnv(t, true)
	old := e.seed()
	before := e.files()
	o := forced()
	o.dryRun = true
	rep := e.run(o)
	wantStatus(t, rep, "would_renew")
	if len(rep.Renewed) != 2 || rep.Renewed[0].Kind != "client" || rep.Renewed[1].Kind != "server" || rep.Renewed[1].Reason != "--force-renew" ||
		rep.Renewed[1].OldSerial != serialOf(old) || rep.Renewed[1].NewSerial != "" {
		t.Errorf("renewed %+v", rep.Renewed)
	}
	e.untouched(before, old.Chain)
}

// Without --yes only "yes" on stdin goes on.
func TestRotateRunConfirmation(t *testing.T) {
	e := newRREnv(t, false)
	old := e.seed()
	before := e.files()
	o := forced()
	o.yes = false
	e.stdin.Reset("y\n")
	rep := e.run(o)
	wantStatus(t, rep, "refused", "cancelled; nothing was changed")
	e.untouched(before, old.Chain)
	e.stdin.Reset("yes\n")
	rep = e.run(o)
	wantStatus(t, rep, "renewed")
	if !strings.Contains(e.stdout.String(), "Renew the server certificate of app (--force-renew)") {
		t.Errorf("no question asked: %q", e.stdout.String())
	}
}

// The renewal that works: issued, staged (the served pair kept as
// previous), pushed, gated, marker cleared; a second run is not due.
func TestRotateRunRenewed(t *testing.T) {
	e := newRREnv(t, true)
	old := e.seed()
	rep := e.run(forced())
	wantStatus(t, rep, "renewed")
	cur := e.current("server")
	if !bytes.Equal(e.fake.serving(), cur.Chain) || bytes.Equal(cur.Chain, old.Chain) {
		t.Fatal("the target does not serve the renewed current certificate")
	}
	if prev := e.previous("server"); !bytes.Equal(prev.Chain, old.Chain) || !bytes.Equal(prev.Key, old.Key) {
		t.Error("the replaced pair is not kept as previous")
	}
	if e.store.Pending("server") {
		t.Error("the pending marker is left after the gate passed")
	}
	if rep.Gate != "2 fresh handshake(s) on 1 listener(s) served the expected certificate" {
		t.Errorf("gate %q", rep.Gate)
	}
	if len(rep.Renewed) != 2 || rep.Renewed[1].NewSerial != serialOf(cur) || rep.Renewed[1].OldSerial != serialOf(old) {
		t.Errorf("renewed %+v", rep.Renewed)
	}
	if e.iss.count() != 2 {
		t.Errorf("%d certificates issued, want client and server", e.iss.count())
	}
	if rep := e.run(rrOpts()); rep.Status != "not_due" {
		t.Errorf("second run: %s %s", rep.Status, rep.Message)
	}
}

// The push fails (the plugin rolled its step back, or left the new pair
// served): the previous pair is pushed again where needed, gated, and only
// then the store is restored and the marker cleared.
func TestRotateRunApplyErrorRollsBack(t *testing.T) {
	for _, tc := range []struct {
		name  string
		takes bool
		// applies: forward push, plus the rollback's when the new pair
		// stayed served.
		applies int
	}{{"rolled back by the plugin", false, 1}, {"new pair left served", true, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newRREnv(t, false)
			old := e.seed()
			before := e.files()
			e.fake.applyFault = func(n int) (bool, error) {
				if n == 1 {
					return tc.takes, errors.New("reload failed: config test failed")
				}
				return true, nil
			}
			rep := e.run(forced())
			wantStatus(t, rep, "rolled_back", "apply of the renewed certificate failed", "reload failed: config test failed",
				"the previous certificate (serial "+serialOf(old)+") is served again")
			if cur := e.current("server"); !bytes.Equal(cur.Chain, before["server.pem"]) || !bytes.Equal(cur.Key, before["server-key.pem"]) {
				t.Error("the store's current pair is not the previous one again")
			}
			if !bytes.Equal(e.fake.serving(), old.Chain) {
				t.Error("the previous certificate is not served")
			}
			if e.store.Pending("server") {
				t.Error("the pending marker is left after the rollback")
			}
			if _, applies, _ := e.fake.calls(); applies != tc.applies {
				t.Errorf("%d applies, want %d", applies, tc.applies)
			}
		})
	}
}

// A push that does not take (the reload did nothing): the gate sees the
// old serial and fails; the store goes back to the previous pair only
// after the gate saw it served — every gate inventory of the rollback
// still finds the new pair current in the store.
func TestRotateRunGateFailsRollsBack(t *testing.T) {
	e := newRREnv(t, false)
	old := e.seed()
	e.fake.applyFault = func(int) (bool, error) { return false, nil }
	var storeAtInventory [][]byte
	e.fake.onInventory = func(_ context.Context, _ int, _ *sdk.InventoryResponse) {
		c, _ := os.ReadFile(filepath.Join(e.store.Dir, "server.pem"))
		storeAtInventory = append(storeAtInventory, c)
	}
	rep := e.run(forced())
	wantStatus(t, rep, "rolled_back", "verify gate failed", "not the expected serial", "is served again")
	if !strings.Contains(rep.Gate, "serves serial "+serialOf(old)) {
		t.Errorf("gate %q lacks the served serial", rep.Gate)
	}
	if len(storeAtInventory) != 3 {
		t.Fatalf("%d inventories, want what is live, the gate, the rollback's gate", len(storeAtInventory))
	}
	if bytes.Equal(storeAtInventory[2], old.Chain) {
		t.Error("the store was restored before the rollback's gate confirmed the previous certificate is served")
	}
	if cur := e.current("server"); !bytes.Equal(cur.Chain, old.Chain) || !bytes.Equal(cur.Key, old.Key) {
		t.Error("the store is not restored after the rollback's gate passed")
	}
	if e.store.Pending("server") {
		t.Error("the pending marker is left after the rollback")
	}
}

// Every handshake after the push shows the new certificate, but one
// session did not go through (a reset after the handshake): inconclusive
// is never a pass, so the previous pair is pushed back and gated.
func TestRotateRunGateInconclusiveRollsBack(t *testing.T) {
	e := newRREnv(t, false)
	old := e.seed()
	e.fake.onInventory = func(_ context.Context, n int, inv *sdk.InventoryResponse) {
		if n == 2 {
			inv.Listeners[0].Handshakes[1].Outcome, inv.Listeners[0].Handshakes[1].Evidence = sdk.OutcomeInconclusive, "read: connection reset by peer"
		}
	}
	rep := e.run(forced())
	wantStatus(t, rep, "rolled_back", "verify gate failed", "the session did not go through (inconclusive: read: connection reset by peer) in 1 of 2 handshake(s) (#2)", "is served again")
	if _, applies, _ := e.fake.calls(); applies != 2 || !bytes.Equal(e.fake.serving(), old.Chain) || !bytes.Equal(e.current("server").Chain, old.Chain) {
		t.Error("the previous pair is not pushed back, served and current")
	}
}

// A reload that takes a moment: the gate asks again until --gate-timeout
// and passes once every handshake shows the new certificate.
func TestRotateRunGateRetries(t *testing.T) {
	e := newRREnv(t, false)
	old := e.seed()
	e.fake.onInventory = func(_ context.Context, n int, inv *sdk.InventoryResponse) {
		if n == 2 {
			for i := range inv.Listeners[0].Handshakes {
				inv.Listeners[0].Handshakes[i].ChainPEM = old.Chain
			}
		}
	}
	o := forced()
	o.gateTimeout = 5 * time.Second
	rep := e.run(o)
	wantStatus(t, rep, "renewed")
	if _, _, inv := e.fake.calls(); inv != 3 {
		t.Errorf("%d inventories, want what is live and two gate rounds", inv)
	}
}

// The rollback's gate fails too (what is served cannot be read any more):
// an error, and the store keeps cur=new, prev=old and the marker, so the
// next run finds whichever is served and gates it again.
func TestRotateRunRollbackGateFails(t *testing.T) {
	e := newRREnv(t, false)
	old := e.seed()
	e.fake.applyFault = func(int) (bool, error) { return false, nil }
	e.fake.onInventory = func(_ context.Context, n int, inv *sdk.InventoryResponse) {
		if n == 3 {
			inv.Listeners[0].Handshakes, inv.Listeners[0].Error = nil, "i/o timeout"
		}
	}
	rep := e.run(forced())
	wantStatus(t, rep, "error", "verify gate failed", "after restoring the previous certificate the gate still fails", "i/o timeout",
		"the store keeps the new pair as current")
	e.keptForNextRun(old)
	// The next run: the previous pair is served, the marker says the new
	// one awaits its gate; it is pushed (a working reload now) and gated,
	// nothing issued.
	e.fake.applyFault, e.fake.onInventory = nil, nil
	newPair := e.current("server")
	rep = e.run(rrOpts())
	wantStatus(t, rep, "renewed")
	if len(rep.Renewed) != 1 || rep.Renewed[0].Reason != "resuming an interrupted rotation" || rep.Renewed[0].NewSerial != serialOf(newPair) {
		t.Errorf("renewed %+v", rep.Renewed)
	}
	if !bytes.Equal(e.fake.serving(), newPair.Chain) || e.store.Pending("server") || e.iss.count() != 1 {
		t.Errorf("after the resumed run: serves the new pair %v, pending %v, issued %d (want 1: the first run's)",
			bytes.Equal(e.fake.serving(), newPair.Chain), e.store.Pending("server"), e.iss.count())
	}
}

// keptForNextRun: the store holds cur=new (not old), prev=old and the
// pending marker naming the new serial.
func (e *rrEnv) keptForNextRun(old certstore.Pair) {
	e.t.Helper()
	cur, prev := e.current("server"), e.previous("server")
	if !cur.Valid() || bytes.Equal(cur.Chain, old.Chain) {
		e.t.Error("the store's current pair is not the new one")
	}
	if !bytes.Equal(prev.Chain, old.Chain) || !bytes.Equal(prev.Key, old.Key) {
		e.t.Error("the store's previous pair is not the one that was served")
	}
	marker, err := os.ReadFile(e.store.PendingPath("server"))
	if err != nil || strings.TrimSpace(string(marker)) != serialOf(cur) {
		e.t.Errorf("pending marker %q (%v), want the new serial %s", marker, err, serialOf(cur))
	}
}

// The push takes but the plan afterwards still lists a change (converged
// fails), and pushing the previous pair back fails too: an error saying
// both, and the store keeps cur=new, prev=old and the marker.
func TestRotateRunRollbackPushFails(t *testing.T) {
	e := newRREnv(t, false)
	old := e.seed()
	e.fake.extra, e.fake.extraAfter = []sdk.Change{{Resource: "listener config", Action: sdk.Update}}, 1
	e.fake.applyFault = func(n int) (bool, error) {
		if n == 2 {
			return false, errors.New("disk full")
		}
		return true, nil
	}
	rep := e.run(forced())
	wantStatus(t, rep, "error", "verify gate failed: after the push the plan still has 1 change(s): update listener config",
		"restoring the previous certificate failed too", "disk full", "the store keeps the new pair as current and the replaced one as previous")
	e.keptForNextRun(old)
	if bytes.Equal(e.fake.serving(), old.Chain) {
		t.Error("the fake says the failed rollback push took")
	}
}

// A pending marker left by a run killed after staging (the previous pair
// still served) or after the push (the new one served): the next run,
// not forced and nothing due, pushes and gates the staged pair; nothing
// new is issued. Without the marker (killed between staging and marking)
// the previous pair being served is enough to resume.
func TestRotateRunResumesInterrupted(t *testing.T) {
	for _, tc := range []struct {
		name           string
		marked, pushed bool
		applies        int
	}{{"killed at rotate-staged", true, false, 1}, {"killed at rotate-pushed", true, true, 0}, {"marker lost, previous served", false, false, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newRREnv(t, false)
			old := e.seed()
			next := e.iss.ca.pair(t, "app", "server", 90*24*time.Hour, "127.0.0.1")
			if err := e.store.Stage("server", next, old); err != nil {
				t.Fatal(err)
			}
			if tc.marked {
				if err := e.store.MarkPending("server", serialOf(next)); err != nil {
					t.Fatal(err)
				}
			}
			if tc.pushed {
				e.fake.served = next.Chain
			}
			rep := e.run(rrOpts())
			wantStatus(t, rep, "renewed")
			if len(rep.Renewed) != 1 || rep.Renewed[0].Reason != "resuming an interrupted rotation" || rep.Renewed[0].NewSerial != serialOf(next) {
				t.Errorf("renewed %+v", rep.Renewed)
			}
			if e.iss.count() != 0 {
				t.Errorf("%d certificates issued, want none", e.iss.count())
			}
			if _, applies, _ := e.fake.calls(); applies != tc.applies {
				t.Errorf("%d applies, want %d", applies, tc.applies)
			}
			if !bytes.Equal(e.fake.serving(), next.Chain) || !bytes.Equal(e.current("server").Chain, next.Chain) || e.store.Pending("server") {
				t.Error("not ended on the staged pair served, current, with no marker")
			}
			if !bytes.Equal(e.previous("server").Chain, old.Chain) {
				t.Error("the previous pair is no longer the one replaced")
			}
			if rep := e.run(rrOpts()); rep.Status != "not_due" {
				t.Errorf("third run: %s %s", rep.Status, rep.Message)
			}
		})
	}
	// A current pair half-written by a killed Stage (key of one, chain of
	// another) is never taken for live nor resumed: a fresh one is issued
	// and the served previous pair kept.
	t.Run("half-written current pair", func(t *testing.T) {
		e := newRREnv(t, false)
		old := e.seed()
		next := e.iss.ca.pair(t, "app", "server", 90*24*time.Hour, "127.0.0.1")
		if err := e.store.Stage("server", certstore.Pair{Chain: old.Chain, Key: next.Key}, old); err != nil {
			t.Fatal(err)
		}
		rep := e.run(rrOpts())
		wantStatus(t, rep, "renewed")
		if len(rep.Renewed) != 1 || rep.Renewed[0].Reason != "certificate and key do not match" || e.iss.count() != 1 {
			t.Errorf("renewed %+v, issued %d", rep.Renewed, e.iss.count())
		}
		cur := e.current("server")
		if !cur.Valid() || !bytes.Equal(e.fake.serving(), cur.Chain) || !bytes.Equal(e.previous("server").Chain, old.Chain) {
			t.Error("not ended on a fresh valid pair served with the served one as previous")
		}
	})
}

// Ctrl-C (or --timeout) during the gate: the rollback still runs, on a
// context of its own — its push reaches the target with a live context —
// and the store follows once the previous pair is served again.
func TestRotateRunCancelledDuringGate(t *testing.T) {
	e := newRREnv(t, false)
	old := e.seed()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.fake.onInventory = func(_ context.Context, n int, inv *sdk.InventoryResponse) {
		if n == 2 {
			// The new pair is served, but the run is cancelled before
			// the gate could pass.
			inv.Listeners[0].Handshakes[0].Outcome = sdk.OutcomeInconclusive
			cancel()
		}
	}
	o := forced()
	o.gateTimeout = time.Minute
	start := time.Now()
	rep := e.runCtx(ctx, o)
	if time.Since(start) > 30*time.Second {
		t.Errorf("the gate did not end with the context (%v)", time.Since(start))
	}
	wantStatus(t, rep, "rolled_back", "verify gate failed", "is served again")
	if _, applies, _ := e.fake.calls(); applies != 2 {
		t.Fatalf("%d applies, want the push and the rollback's", applies)
	}
	if err := e.fake.applyCtxErr[1]; err != nil {
		t.Errorf("the rollback's push ran on an ended context: %v", err)
	}
	if !bytes.Equal(e.fake.serving(), old.Chain) || !bytes.Equal(e.current("server").Chain, old.Chain) || e.store.Pending("server") {
		t.Error("not ended on the previous pair served and current, with no marker")
	}
}

// Failures of the steps between the checks and the push: the issuer
// refuses to sign (nothing changed); the store cannot be staged (nothing
// changed); the marker cannot be written (the pair is staged, nothing
// pushed: the next run resumes it); the marker cannot be cleared after the
// gate passed (an error; the new pair is served and current).
func TestRotateRunStoreAndIssueFailures(t *testing.T) {
	t.Run("issue fails", func(t *testing.T) {
		e := newRREnv(t, false)
		old := e.seed()
		before := e.files()
		e.iss.signErr = errors.New("permission denied on pki/sign/app")
		rep := e.run(forced())
		wantStatus(t, rep, "error", "renewing the server certificate: ", "permission denied on pki/sign/app", "nothing was changed")
		e.untouched(before, old.Chain)
	})
	// block makes the store's next write of file fail: writeAtomic first
	// removes <file>.tmp, and a non-empty directory there cannot be.
	block := func(e *rrEnv, file string) {
		if err := os.MkdirAll(filepath.Join(e.store.Dir, file+".tmp", "x"), 0o700); err != nil {
			e.t.Fatal(err)
		}
	}
	t.Run("stage fails", func(t *testing.T) {
		e := newRREnv(t, false)
		old := e.seed()
		before := e.files()
		e.fake.onPlan = func(n int) {
			if n == 1 {
				block(e, "server.prev-key.pem")
			}
		}
		rep := e.run(forced())
		wantStatus(t, rep, "error", "target app")
		e.sameFiles(before)
		if _, applies, _ := e.fake.calls(); applies != 0 || !bytes.Equal(e.fake.serving(), old.Chain) {
			t.Error("pushed although the store could not be staged")
		}
	})
	t.Run("marker fails", func(t *testing.T) {
		e := newRREnv(t, false)
		old := e.seed()
		e.fake.onPlan = func(n int) {
			if n == 1 {
				block(e, "server.pending")
			}
		}
		rep := e.run(forced())
		wantStatus(t, rep, "error")
		if _, applies, _ := e.fake.calls(); applies != 0 || !bytes.Equal(e.fake.serving(), old.Chain) {
			t.Error("pushed although the pending marker could not be written")
		}
		staged := e.current("server")
		if bytes.Equal(staged.Chain, old.Chain) || !bytes.Equal(e.previous("server").Chain, old.Chain) {
			t.Fatal("the new pair is not staged with the served one as previous")
		}
		os.RemoveAll(filepath.Join(e.store.Dir, "server.pending.tmp"))
		e.fake.onPlan = nil
		rep = e.run(rrOpts())
		wantStatus(t, rep, "renewed")
		if !bytes.Equal(e.fake.serving(), staged.Chain) || e.iss.count() != 1 || e.store.Pending("server") {
			t.Error("the next run did not resume the staged pair")
		}
	})
	t.Run("clearing the marker fails", func(t *testing.T) {
		e := newRREnv(t, false)
		e.seed()
		e.fake.onInventory = func(_ context.Context, n int, _ *sdk.InventoryResponse) {
			if n == 2 {
				p := e.store.PendingPath("server")
				os.Remove(p)
				os.MkdirAll(filepath.Join(p, "x"), 0o700)
			}
		}
		rep := e.run(forced())
		wantStatus(t, rep, "error", "server.pending")
		if cur := e.current("server"); !bytes.Equal(e.fake.serving(), cur.Chain) {
			t.Error("the new pair is not served and current")
		}
	})
}

// harden's client certificate merely due (--force-renew) is renewed after
// the checks; a login refused with the renewed one puts the previous one
// back and stops before the server certificate is touched.
func TestRotateRunDueClientLoginRefused(t *testing.T) {
	e := newRREnv(t, true)
	old := e.seed()
	client := e.current("client")
	e.fake.planErr = func(q sdk.RequestContext) error {
		if !bytes.Equal(q.Certificates.ClientChainPEM, client.Chain) {
			return errors.New("certificate revoked")
		}
		return nil
	}
	rep := e.run(forced())
	wantStatus(t, rep, "error", "harden cannot log in with its renewed client certificate", "certificate revoked", "the previous client certificate was put back")
	if got := e.current("client"); !bytes.Equal(got.Chain, client.Chain) || !bytes.Equal(got.Key, client.Key) {
		t.Error("the previous client certificate is not current again")
	}
	if got := e.current("server"); !bytes.Equal(got.Chain, old.Chain) || e.iss.count() != 1 {
		t.Errorf("the server certificate was touched (issued %d, want the client's alone)", e.iss.count())
	}
	if _, applies, _ := e.fake.calls(); applies != 0 {
		t.Error("pushed after the client renewal failed")
	}
}

// Only harden's client certificate is due: it is renewed, its login
// checked, the server certificate left alone.
func TestRotateRunOnlyClientDue(t *testing.T) {
	e := newRREnv(t, true)
	old := e.seedClient(20 * 24 * time.Hour)
	client := e.current("client")
	rep := e.run(rrOpts())
	wantStatus(t, rep, "renewed")
	if len(rep.Renewed) != 1 || rep.Renewed[0].Kind != "client" || !strings.HasPrefix(rep.Renewed[0].Reason, "within renew_before") {
		t.Errorf("renewed %+v", rep.Renewed)
	}
	if bytes.Equal(e.current("client").Chain, client.Chain) || !bytes.Equal(e.current("server").Chain, old.Chain) {
		t.Error("not the client certificate alone renewed")
	}
	if _, applies, _ := e.fake.calls(); applies != 0 {
		t.Error("pushed with only the client certificate due")
	}
}
