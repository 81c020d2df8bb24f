package cli

import (
	"bytes"
	"context"
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

// voTarget is a verify-only plugin (like the service plugin: verify and
// inventory, no render, plan or apply) in front of a service that asks for
// a client certificate and lets in the chains accept allows. The service's
// own certificate is not harden's (ReloadsOn never).
type voTarget struct {
	mu          sync.Mutex
	accept      func(clientChain []byte) bool
	notAsked    bool
	inventories int
	presented   [][]byte
}

func (*voTarget) Metadata(_ context.Context, _ sdk.MetadataRequest, r *sdk.MetadataResponse) {
	r.Name, r.Version = "rrfake", "0.0.0-test"
}
func (*voTarget) Schema(context.Context, sdk.SchemaRequest, *sdk.SchemaResponse) {}
func (*voTarget) Verify(context.Context, sdk.VerifyRequest, *sdk.VerifyResponse) {}

func (f *voTarget) Inventory(_ context.Context, q sdk.InventoryRequest, r *sdk.InventoryResponse) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inventories++
	f.presented = append(f.presented, q.Certificates.ClientChainPEM)
	l := sdk.ServedListener{Name: "https", Address: "127.0.0.1:8443", ReloadsOn: sdk.ReloadsNever}
	for range q.Handshakes {
		h := sdk.ServedHandshake{ChainPEM: []byte("the service's own"), Version: "TLSv1.3", ClientCertRequested: !f.notAsked}
		switch {
		case f.notAsked:
			h.Outcome, h.Evidence = sdk.OutcomeAccepted, "TLSv1.3 handshake completed"
		case f.accept == nil || f.accept(q.Certificates.ClientChainPEM):
			h.Outcome, h.Evidence = sdk.OutcomeAccepted, "TLS 1.3 session accepted: the server sent a session ticket"
		default:
			h.Outcome, h.Evidence = sdk.OutcomeRefused, "session refused after the TLS 1.3 handshake with a TLS alert: remote error: tls: unknown certificate authority"
		}
		l.Handshakes = append(l.Handshakes, h)
	}
	r.Listeners = []sdk.ServedListener{l}
}

func (f *voTarget) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inventories
}

// newVOEnv is newRREnv with target app behind the verify-only plugin.
func newVOEnv(t *testing.T, mtls bool) (*rrEnv, *voTarget) {
	t.Helper()
	e := newRREnv(t, mtls)
	vo := &voTarget{}
	e.s.eng.Plugins["rrfake"].Client.Close()
	e.s.eng.Plugins["rrfake"] = &engine.Plugin{Client: hostclient.InProcess(vo), Meta: sdk.MetadataResponse{Name: "rrfake", Capabilities: sdk.CapabilitiesOf(vo)}}
	if !e.s.eng.Plugins["rrfake"].VerifyOnly() {
		t.Fatal("the fake is not verify-only")
	}
	return e, vo
}

// seedVO is what harden apply leaves for a verify-only target in the mTLS
// scope: harden's client certificate only.
func (e *rrEnv) seedVO(ttl time.Duration) certstore.Pair {
	e.t.Helper()
	p := e.iss.ca.pair(e.t, "harden-admin", "client", ttl)
	if err := e.store.Stage("client", p, certstore.Pair{}); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *rrEnv) rotateTarget(o rotateOptions) rotateTargetReport {
	e.t.Helper()
	rep := rotateTarget(context.Background(), e.s, e.tgt, o, e.s.io)
	e.t.Logf("%s: %s; gate: %s", rep.Status, rep.Message, rep.Gate)
	return rep
}

// noServerCertificate: harden never issues or stores a server certificate
// for a verify-only target.
func (e *rrEnv) noServerCertificate() {
	e.t.Helper()
	if c, _ := e.store.Paths("server"); fileExists(c) {
		e.t.Errorf("a server certificate was stored for the verify-only target (%s)", c)
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// A verify-only target in the mTLS scope: harden's client certificate is
// the one certificate rotate renews there, when due, behind a live gate
// (the service asks for a client certificate and lets the renewed one in);
// nothing else is issued and nothing pushed.
func TestRotateVerifyOnlyRenewsHardensClientCertificate(t *testing.T) {
	e, vo := newVOEnv(t, true)
	old := e.seedVO(90 * 24 * time.Hour)

	rep := e.rotateTarget(rrOpts())
	wantStatus(t, rep, "not_due", "verify only", "harden's client certificate serial")
	if e.iss.count() != 0 || vo.calls() != 0 {
		t.Errorf("not due, yet %d issued and %d inventories", e.iss.count(), vo.calls())
	}

	dry := rrOpts()
	dry.force, dry.dryRun = true, true
	rep = e.rotateTarget(dry)
	wantStatus(t, rep, "would_renew")
	if len(rep.Renewed) != 1 || rep.Renewed[0].Kind != "client" || e.iss.count() != 0 {
		t.Errorf("dry run: %+v, %d issued", rep.Renewed, e.iss.count())
	}

	rep = e.rotateTarget(forced())
	wantStatus(t, rep, "renewed", "harden's own client certificate renewed")
	if !strings.Contains(rep.Gate, "accepted in 2 handshake(s)") {
		t.Errorf("gate %q", rep.Gate)
	}
	cur := e.current("client")
	if bytes.Equal(cur.Chain, old.Chain) || !cur.Valid() || e.iss.count() != 1 {
		t.Fatalf("the client certificate was not renewed (%d issued)", e.iss.count())
	}
	if len(rep.Renewed) != 1 || rep.Renewed[0].Kind != "client" || rep.Renewed[0].NewSerial != serialOf(cur) || rep.Renewed[0].OldSerial != serialOf(old) {
		t.Errorf("renewed %+v", rep.Renewed)
	}
	if !bytes.Equal(vo.presented[len(vo.presented)-1], cur.Chain) {
		t.Error("the gate did not present the renewed client certificate")
	}
	if e.store.Pending("client") {
		t.Error("the gate passed and the rotation is still marked pending")
	}
	e.noServerCertificate()

	// Due by date: renewed without --force-renew.
	e.seedVO(10 * 24 * time.Hour)
	rep = e.rotateTarget(rrOpts())
	wantStatus(t, rep, "renewed")
	if len(rep.Renewed) != 1 || !strings.Contains(rep.Renewed[0].Reason, "within renew_before") {
		t.Errorf("renewed %+v", rep.Renewed)
	}
}

// The service refuses the renewed client certificate (it does not trust
// what the source signs now): the previous one is put back — after a live
// check that it still gets in — and the run is rolled back; a service that
// never asks for a client certificate proves nothing, so the gate fails.
func TestRotateVerifyOnlyGateFails(t *testing.T) {
	t.Run("renewed one refused", func(t *testing.T) {
		e, vo := newVOEnv(t, true)
		old := e.seedVO(90 * 24 * time.Hour)
		vo.accept = func(chain []byte) bool { return bytes.Equal(chain, old.Chain) }
		rep := e.rotateTarget(forced())
		wantStatus(t, rep, "rolled_back", "verify gate failed", "was refused", "is current again and still gets in")
		if cur := e.current("client"); !bytes.Equal(cur.Chain, old.Chain) || !bytes.Equal(cur.Key, old.Key) {
			t.Error("the previous client certificate is not current again")
		}
		if e.store.Pending("client") {
			t.Error("still pending after the rollback")
		}
		e.noServerCertificate()
	})
	t.Run("never asked", func(t *testing.T) {
		e, vo := newVOEnv(t, true)
		old := e.seedVO(90 * 24 * time.Hour)
		vo.notAsked = true
		rep := e.rotateTarget(forced())
		wantStatus(t, rep, "error", "never asked for a client certificate", "does not get in either")
		if cur := e.current("client"); !bytes.Equal(cur.Chain, old.Chain) {
			t.Error("the previous client certificate is not current again")
		}
	})
}

// A run killed after the store took the renewed client certificate and
// before its gate passed: the next run gates it (nothing new issued); when
// that gate fails, the certificate before the interrupted run comes back.
func TestRotateVerifyOnlyResumesInterrupted(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		e, vo := newVOEnv(t, true)
		old := e.seedVO(90 * 24 * time.Hour)
		next := e.iss.ca.pair(t, "harden-admin", "client", 90*24*time.Hour)
		if err := e.store.Stage("client", next, old); err != nil {
			t.Fatal(err)
		}
		if err := e.store.MarkPending("client", serialOf(next)); err != nil {
			t.Fatal(err)
		}
		if refuse {
			vo.accept = func(chain []byte) bool { return bytes.Equal(chain, old.Chain) }
		}
		rep := e.rotateTarget(rrOpts())
		if e.iss.count() != 0 {
			t.Errorf("%d certificates issued while resuming", e.iss.count())
		}
		want, wantChain := "renewed", next.Chain
		if refuse {
			want, wantChain = "rolled_back", old.Chain
		}
		wantStatus(t, rep, want)
		if len(rep.Renewed) != 1 || rep.Renewed[0].Reason != "resuming an interrupted rotation" {
			t.Errorf("renewed %+v", rep.Renewed)
		}
		if !bytes.Equal(e.current("client").Chain, wantChain) || e.store.Pending("client") {
			t.Errorf("refuse=%v: wrong client certificate current, or still pending", refuse)
		}
	}
}

// Outside the mTLS scope harden holds nothing for a verify-only target:
// skipped, nothing asked.
func TestRotateVerifyOnlyOutsideMTLS(t *testing.T) {
	e, vo := newVOEnv(t, false)
	rep := e.rotateTarget(forced())
	wantStatus(t, rep, "skipped", "verify only")
	if e.iss.count() != 0 || vo.calls() != 0 {
		t.Errorf("%d issued, %d inventories", e.iss.count(), vo.calls())
	}
}

// A staged CA rotation with a verify-only target: phases trust and retire
// (and their aborts) skip it without asking it anything; phase reissue
// re-issues harden's client certificate from the CA that signs now behind
// the live gate — refused by a service that does not trust the next CA
// yet (put back: the phase stops there) — and, aborting, from the current
// CA again.
func TestCARotationVerifyOnlyTarget(t *testing.T) {
	e, vo := newVOEnv(t, true)
	cur := e.iss.ca
	old := e.seedVO(90 * 24 * time.Hour)
	next := newRRCA(t, "rr next CA")
	st := &rotate.CAState{Phase: rotate.PhaseTrust, CurrentRootPEM: string(cur.pem), NextRootPEM: string(next.pem), Done: map[string][]string{}}
	step := func(phase string, aborting bool) rotateTargetReport {
		t.Helper()
		st.Phase, st.Aborting = phase, aborting
		rep := caTargetStep(context.Background(), e.s, st, phase, e.tgt, rrOpts())
		t.Logf("%s (aborting %v): %s: %s; gate %s", phase, aborting, rep.Status, rep.Message, rep.Gate)
		return rep
	}
	for _, p := range []struct {
		phase    string
		aborting bool
	}{{rotate.PhaseTrust, false}, {rotate.PhaseTrust, true}, {rotate.PhaseRetire, false}, {rotate.PhaseRetire, true}} {
		if rep := step(p.phase, p.aborting); rep.Status != "skipped" || !strings.Contains(rep.Message, "verify only") {
			t.Errorf("%s (aborting %v): %s %s, want skipped", p.phase, p.aborting, rep.Status, rep.Message)
		}
	}
	if vo.calls() != 0 || e.iss.count() != 0 {
		t.Fatalf("trust/retire asked the target %d times and issued %d", vo.calls(), e.iss.count())
	}

	// The next intermediate signs; the service trusts only the current CA.
	e.iss.ca = next
	vo.accept = func(chain []byte) bool { return bytes.Equal(chain, old.Chain) }
	rep := step(rotate.PhaseReissue, false)
	wantStatus(t, rep, "rolled_back", "is current again")
	if !bytes.Equal(e.current("client").Chain, old.Chain) {
		t.Fatal("the refused client certificate from the next CA stayed")
	}
	// The service's operator adds the next CA: the reissue goes through.
	vo.accept = nil
	rep = step(rotate.PhaseReissue, false)
	wantStatus(t, rep, "renewed")
	moved := e.current("client")
	if rotate.Due(moved, certstore.Want{Kind: "client", CAPEM: next.pem}, 0, time.Now()) != "" {
		t.Error("harden's client certificate does not chain to the next CA after phase reissue")
	}
	if rep := step(rotate.PhaseReissue, false); rep.Status != "not_due" {
		t.Errorf("a second reissue step: %s %s, want not_due", rep.Status, rep.Message)
	}
	// Aborting phase reissue: back to the current CA.
	e.iss.ca = cur
	rep = step(rotate.PhaseReissue, true)
	wantStatus(t, rep, "renewed")
	if rotate.Due(e.current("client"), certstore.Want{Kind: "client", CAPEM: cur.pem}, 0, time.Now()) != "" {
		t.Error("harden's client certificate does not chain to the current CA after aborting phase reissue")
	}
	e.noServerCertificate()

	// caSync hands a verify-only target nothing.
	var synced rotateReport
	if !caSync(context.Background(), e.s, []policy.Target{e.tgt}, rrOpts(), &synced) || len(synced.Targets) != 1 || synced.Targets[0].Status != "skipped" {
		t.Errorf("caSync: %+v", synced.Targets)
	}
}

// harden plan on a verify-only target is empty (nothing to change, nothing
// issued but harden's client certificate); a plugin that applies but
// cannot plan is an error, not "unchanged"; a render-only plugin is not
// verify-only, so harden issues its server certificate.
func TestPlanVerifyOnlyAndPartialPlugins(t *testing.T) {
	e, vo := newVOEnv(t, true)
	e.s.targets = []policy.Target{e.tgt}
	rep, _, err := runPlan(context.Background(), e.s)
	if err != nil || rep.Targets[0].Error != "" || len(rep.Targets[0].Changes) != 0 {
		t.Fatalf("plan of a verify-only target: %v %+v", err, rep.Targets[0])
	}
	if vo.calls() != 0 {
		t.Error("plan asked the verify-only target")
	}
	e.noServerCertificate()
	if !e.current("client").Valid() {
		t.Error("harden's client certificate for the verify-only target in the mTLS scope was not issued")
	}

	for name, p := range map[string]sdk.Plugin{"apply without plan": applyOnly{}, "render only": renderOnly{}} {
		t.Run(name, func(t *testing.T) {
			e := newRREnv(t, false)
			e.s.eng.Plugins["rrfake"].Client.Close()
			e.s.eng.Plugins["rrfake"] = &engine.Plugin{Client: hostclient.InProcess(p), Meta: sdk.MetadataResponse{Name: "rrfake", Capabilities: sdk.CapabilitiesOf(p)}}
			if e.s.eng.Plugins["rrfake"].VerifyOnly() {
				t.Fatal("counted as verify-only")
			}
			e.s.targets = []policy.Target{e.tgt}
			rep, _, err := runPlan(context.Background(), e.s)
			if err != nil {
				t.Fatal(err)
			}
			if got := rep.Targets[0]; got.Error == "" || !strings.Contains(got.Error, "does not support plan") {
				t.Errorf("plan: %+v, want the plugin's 'does not support plan' error", got)
			}
			if c, _ := e.store.Paths("server"); !fileExists(c) {
				t.Errorf("no server certificate issued for a plugin that deploys one (%s)", filepath.Base(c))
			}
		})
	}
}

type applyOnly struct{}

func (applyOnly) Metadata(_ context.Context, _ sdk.MetadataRequest, r *sdk.MetadataResponse) {
	r.Name = "rrfake"
}
func (applyOnly) Schema(context.Context, sdk.SchemaRequest, *sdk.SchemaResponse) {}
func (applyOnly) Apply(context.Context, sdk.ApplyRequest, *sdk.ApplyResponse)    {}

type renderOnly struct{}

func (renderOnly) Metadata(_ context.Context, _ sdk.MetadataRequest, r *sdk.MetadataResponse) {
	r.Name = "rrfake"
}
func (renderOnly) Schema(context.Context, sdk.SchemaRequest, *sdk.SchemaResponse) {}
func (renderOnly) Render(context.Context, sdk.RenderRequest, *sdk.RenderResponse) {}
