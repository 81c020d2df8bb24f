package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
)

func verifyChecks(t *testing.T, cl *hostclient.Client, rc sdk.RequestContext) []sdk.Check {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := cl.Verify(ctx, rc)
	if err != nil {
		t.Fatal(err)
	}
	if r.Diagnostics.HasError() {
		t.Fatalf("verify: %v", r.Diagnostics.Err())
	}
	return r.Checks
}

func applyOnce(t *testing.T, cl *hostclient.Client, rc sdk.RequestContext, token []byte) sdk.ApplyResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := cl.Apply(ctx, rc, token, false)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A plaintext-only redis with a password → verify fails with the IDs
// expected → plan → apply with the plan's token → verify passes (after a
// restart from the rewritten redis.conf with the rendered OpenSSL
// configuration: redis has no setting for key-exchange groups) → a second
// apply changes nothing. Under mTLS, with both a plain and an mTLS policy.
func TestFlow(t *testing.T) {
	for name, mtls := range map[string]bool{"tls": false, "mtls": true} {
		t.Run(name, func(t *testing.T) {
			s := startRedis(t, "s3cret-pass")
			p := newPKI(t, "test CA")
			rc := s.request(t, p, mtls, nil, nil)
			cl := hostclient.InProcess(redisTLS{})
			defer cl.Close()

			before := byID(verifyChecks(t, cl, rc))
			for id, want := range map[string]checks.Status{checkPlaintextClosed: checks.Fail, checkConfigTLS: checks.Fail, checkAuthRequired: checks.Pass} {
				if c := before[id]; c.Status != want {
					t.Errorf("before apply: %s = %s, want %s: %s", id, c.Status, want, c.Evidence)
				}
			}
			if c := before["tls.enabled"]; c.Status == checks.Pass {
				t.Errorf("before apply: tls.enabled passes: %s", c.Evidence)
			}

			ctx := context.Background()
			pr, err := cl.Plan(ctx, rc)
			if err != nil || pr.Diagnostics.HasError() {
				t.Fatalf("plan: %v %v", err, pr.Diagnostics.Err())
			}
			var resources []string
			for _, c := range pr.Changes {
				resources = append(resources, c.Resource)
				if c.Sensitive && (strings.Contains(c.Before, "PRIVATE") || strings.Contains(c.After, "PRIVATE")) {
					t.Errorf("sensitive change shows key material: %+v", c)
				}
			}
			for _, want := range []string{"file " + filepath.Join(s.dir, "tls", "redis.key"), "config tls-port", "config port", "file " + s.conf} {
				if !strings.Contains(strings.Join(resources, "\n"), want) {
					t.Errorf("plan lacks %q: %v", want, resources)
				}
			}
			ar := applyOnce(t, cl, rc, pr.PlanToken)
			if ar.Diagnostics.HasError() {
				t.Fatalf("apply: %v", ar.Diagnostics.Err())
			}
			if len(ar.Applied) == 0 {
				t.Fatal("apply applied nothing")
			}
			if st, err := os.Stat(filepath.Join(s.dir, "tls", "redis.key")); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("redis.key: %v, mode %v", err, st.Mode())
			}
			if got := s.config("port"); got != "0" {
				t.Errorf("port after apply = %s, want 0", got)
			}
			conf, _ := os.ReadFile(s.conf)
			if !strings.Contains(string(conf), "tls-port") || !strings.Contains(string(conf), "\nport 0") {
				t.Errorf("CONFIG REWRITE did not persist tls-port and port 0:\n%s", conf)
			}
			wantAuth := "no"
			if mtls {
				wantAuth = "yes"
			}
			if got := s.config("tls-auth-clients"); got != wantAuth {
				t.Errorf("tls-auth-clients = %s, want %s", got, wantAuth)
			}

			// Live now, before the restart: everything but the groups.
			after := verifyChecks(t, cl, rc)
			for _, c := range after {
				if c.ID == "tls.key_exchange.groups" || c.Status == checks.Pass || c.Status == checks.Skip {
					continue
				}
				t.Errorf("after apply: %s %s: %s", c.ID, c.Status, c.Evidence)
			}

			// The rendered OpenSSL configuration limits the groups.
			s.restart("OPENSSL_CONF=" + filepath.Join(s.dir, "tls", "openssl.cnf"))
			final := verifyChecks(t, cl, rc)
			got := byID(final)
			for _, c := range final {
				if c.Status != checks.Pass && c.Status != checks.Skip {
					t.Errorf("after restart: %s %s: %s", c.ID, c.Status, c.Evidence)
				}
			}
			required := []string{"tls.enabled", "tls.key_exchange.groups", "tls.certificate.trusted", checkPlaintextClosed, checkAuthRequired, checkConfigTLS}
			if mtls {
				required = append(required, "tls.client_auth.required")
			}
			for _, id := range required {
				if got[id].Status != checks.Pass {
					t.Errorf("after restart: %s = %s, want pass: %s", id, got[id].Status, got[id].Evidence)
				}
			}
			if c := got[checkPlaintextClosed]; !strings.Contains(c.Evidence, "connection refused") {
				t.Errorf("%s passed without the live refusal: %s", checkPlaintextClosed, c.Evidence)
			}
			if t.Failed() {
				t.Logf("checks:\n%s", summarize(final))
			}

			// Second apply: nothing to change.
			pr2, err := cl.Plan(ctx, rc)
			if err != nil || pr2.Diagnostics.HasError() {
				t.Fatalf("second plan: %v %v", err, pr2.Diagnostics.Err())
			}
			if len(pr2.Changes) != 0 {
				t.Errorf("second plan lists changes: %+v", pr2.Changes)
			}
			ar2 := applyOnce(t, cl, rc, pr2.PlanToken)
			if ar2.Diagnostics.HasError() || len(ar2.Applied) != 0 {
				t.Errorf("second apply: %v, applied %+v", ar2.Diagnostics.Err(), ar2.Applied)
			}
		})
	}
}
