package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
	"github.com/harden-dev/harden/shared/sdk/sdktest"
	"github.com/harden-dev/harden/shared/tlsprofile"
	"github.com/harden-dev/harden/testenv"
)

// Ctrl-C (the host's Stop cancels the request) once nginx already runs
// the new files: the run is undone — every file restored byte for byte,
// nginx reloaded with them, serving the old front — and no journal stays.
func TestApplyCancelledAfterReloadRollsBack(t *testing.T) {
	n := testenv.NginxForTest(t)
	q := nginxRequest(t, n, false, nil)
	snap := snapshot(t, n)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer func() { stepHook = nil }()
	stepHook = func(phase string) {
		if phase == "served" {
			cancel()
		}
	}
	var r sdk.ApplyResponse
	proxyTLS{}.Apply(ctx, sdk.ApplyRequest{RequestContext: q}, &r)
	if !r.Diagnostics.HasError() || !strings.Contains(diagText(r.Diagnostics), "interrupted") {
		t.Fatalf("cancelled apply: %v", r.Diagnostics)
	}
	sameSnapshot(t, "cancelled apply", snap, snapshot(t, n))
	wantStatus(t, verifyOf(t, q), checkFrontSerialServed, "", checks.Fail)
	tg, _ := load(q, &sdk.Diagnostics{})
	if jp, _, _ := tg.journalPaths(); fileExists(jp) {
		t.Errorf("journal %s left behind", jp)
	}
}

// helperEnv carries the request to the helper process.
const helperEnv = "HARDEN_PROXY_APPLY_HELPER"

type helperRequest struct {
	Conn, Spec json.RawMessage
	Certs      sdk.Certificates
}

// TestApplyHelperProcess is one apply in a process of its own, started by
// TestApplyKilledIsRolledBack with the crash hook set; alone it does
// nothing.
func TestApplyHelperProcess(t *testing.T) {
	raw := os.Getenv(helperEnv)
	if raw == "" {
		return
	}
	var h helperRequest
	if err := json.Unmarshal([]byte(raw), &h); err != nil {
		t.Fatal(err)
	}
	q := sdk.RequestContext{Policy: sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate(), CertificateSource: "files"},
		Target: sdk.NewTarget("ingest-proxy", h.Conn, h.Spec, nil), Certificates: h.Certs}
	var r sdk.ApplyResponse
	proxyTLS{}.Apply(context.Background(), sdk.ApplyRequest{RequestContext: q}, &r)
	t.Fatalf("the crash hook did not fire: %v", r.Diagnostics)
}

// A real apply process SIGKILLed with the files written but nginx not
// reloaded, and with nginx already reloaded: plan says an apply was
// interrupted; the next apply restores the killed run's files, reloads,
// applies anew and every check passes; the journal is gone and a third
// apply changes nothing.
func TestApplyKilledIsRolledBack(t *testing.T) {
	for _, at := range []string{"reload", "served"} {
		t.Run(at, func(t *testing.T) {
			n := testenv.NginxForTest(t)
			q := nginxRequest(t, n, false, nil)
			raw, _ := json.Marshal(helperRequest{Conn: q.Target.Connection, Spec: q.Target.Spec, Certs: q.Certificates})
			if killed, _ := sdktest.RunHelperProcess(t, "TestApplyHelperProcess", helperEnv+"="+string(raw), applykit.CrashEnv+"=proxy:"+at); !killed {
				t.Fatal("the helper apply was not killed at " + at)
			}
			p := planOf(t, q)
			if p.Diagnostics.HasError() || !strings.Contains(diagText(p.Diagnostics), "interrupted") {
				t.Fatalf("plan after the kill: %v", p.Diagnostics)
			}
			var r sdk.ApplyResponse
			proxyTLS{}.Apply(context.Background(), sdk.ApplyRequest{RequestContext: q, PlanToken: p.PlanToken}, &r)
			if r.Diagnostics.HasError() || !strings.Contains(diagText(r.Diagnostics), "interrupted") {
				t.Fatalf("apply after the kill: %v", r.Diagnostics)
			}
			for _, c := range verifyOf(t, q) {
				if c.Status != checks.Pass {
					t.Errorf("after recovery: %s (%s) = %s: %s", c.ID, c.Subject, c.Status, c.Evidence)
				}
			}
			tg, _ := load(q, &sdk.Diagnostics{})
			if jp, _, _ := tg.journalPaths(); fileExists(jp) {
				t.Errorf("journal %s left behind", jp)
			}
			if r := applyOf(t, q); r.Diagnostics.HasError() || len(r.Applied) != 0 {
				t.Errorf("third apply: %v %+v", r.Diagnostics, r.Applied)
			}
		})
	}
}
