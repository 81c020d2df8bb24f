package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk/faultkit"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/testenv"
)

// haproxyVerifyVia is the fault kit's verify through the plugin's gRPC
// path: the request edited to point one hop at addr.
func haproxyVerifyVia(t *testing.T, h *testenv.HAProxy, edit func(addr string, conn, spec map[string]any)) faultkit.Verify {
	client := hostclient.InProcess(proxyTLS{})
	t.Cleanup(func() { client.Close() })
	return func(ctx context.Context, addr string) ([]checks.Check, error) {
		q := haproxyRequest(t, h, false, func(conn, spec map[string]any) { edit(addr, conn, spec) })
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		r, err := client.Verify(ctx, q)
		if err == nil && r.Diagnostics.HasError() {
			err = r.Diagnostics.Err()
		}
		return r.Checks, err
	}
}

// The whole verify of the "before" HAProxy (TLS 1.0/1.1 and CBC on the
// front, no HSTS, the plaintext hop to weed), with every fault of the
// standard matrix in front of the front, then in front of weed's S3 TLS
// port: no fault turns a failing or erring check into a pass, or makes
// one vanish.
func TestHAProxyVerifyNeverPassesThroughFaults(t *testing.T) {
	h := testenv.HAProxyForTest(t, nil)
	t.Cleanup(probe.WithDefaultTimeout(time.Second))
	t.Run("front", func(t *testing.T) {
		direct := faultkit.NeverPasses(t, h.Front, haproxyVerifyVia(t, h, func(addr string, conn, _ map[string]any) { conn["front"] = addr }), faultkit.Standard(true)...)
		for _, id := range []string{"tls.protocol.versions", "tls.cipher_suites", "http.hsts", checkFrontSerialServed} {
			wantStatus(t, direct, id, "(front)", checks.Fail)
		}
		for _, id := range []string{checkBackendTLS, checkBackendVerified} {
			wantStatus(t, direct, id, "", checks.Fail)
		}
	})
	t.Run("backend", func(t *testing.T) {
		direct := faultkit.NeverPasses(t, h.BackendAddress, haproxyVerifyVia(t, h, func(addr string, _, spec map[string]any) {
			spec["backend"].(map[string]any)["address"] = addr
		}), faultkit.Standard(true)...)
		wantStatus(t, direct, checkBackendPlaintext, "", checks.Pass)
		wantStatus(t, direct, checkBackendTLS, "", checks.Fail)
	})
}

// The decoy proof's live half through faults: after apply, the canary's
// server alone is switched to verify none (the real route's server line
// still verifies), so only the decoy's observation fails
// proxy.backend.verified. Faults between harden's client and the canary
// front never make it pass.
func TestHAProxyDecoyProofNeverPassesThroughFaults(t *testing.T) {
	h := testenv.HAProxyForTest(t, nil)
	q := haproxyRequest(t, h, false, nil)
	if r := applyOf(t, q); r.Diagnostics.HasError() {
		t.Fatal(r.Diagnostics)
	}
	inc, _ := os.ReadFile(h.IncludeFile)
	front, canary, ok := strings.Cut(string(inc), "# harden's canary route")
	if !ok || !strings.Contains(canary, "server decoy ") {
		t.Fatal("no canary route in the applied include")
	}
	if err := os.WriteFile(h.IncludeFile, []byte(front+"# harden's canary route"+strings.Replace(canary, " verify required ", " verify none ", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(); err != nil {
		t.Fatal(err)
	}
	defer func(f func(*target) string) { canaryDialAddr = f }(canaryDialAddr)
	via := ""
	canaryDialAddr = func(t *target) string {
		if via != "" {
			return via
		}
		return t.spec.Canary.Listen
	}
	verify := haproxyVerifyVia(t, h, func(addr string, _, _ map[string]any) {
		via = ""
		if addr != h.CanaryListen {
			via = addr
		}
	})
	var rules []faultkit.Rule
	for _, f := range append(faultkit.Faults, faultkit.HangUp) {
		rules = append(rules, faultkit.Rule{Fault: f, Match: faultkit.TLS, Name: "on the canary front"})
	}
	direct := faultkit.NeverPasses(t, h.CanaryListen, verify, rules...)
	wantStatus(t, direct, checkBackendVerified, "", checks.Fail)
	for _, c := range direct {
		if c.ID == checkBackendVerified && !strings.Contains(c.Evidence, "forwarded the request") {
			t.Errorf("direct %s fails without the decoy's evidence: %s", c.ID, c.Evidence)
		}
	}
}
