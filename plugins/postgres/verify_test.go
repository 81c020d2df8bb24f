package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/sdktest"
	"github.com/harden-dev/harden/shared/tlsprofile"
	"github.com/harden-dev/harden/testenv"
)

func TestConformance(t *testing.T) {
	sdktest.Run(t, sdktest.Harness{
		Plugin: postgres{},
		Name:   "postgres",
		Target: func(addr string) sdk.Target {
			host, port, _ := strings.Cut(addr, ":")
			conn, _ := json.Marshal(map[string]any{"host": host, "port": json.Number(port)})
			return sdk.NewTarget("pg", conn, []byte(`{}`), nil)
		},
	})
}

func statuses(cs []checks.Check) map[string]checks.Check {
	m := map[string]checks.Check{}
	for _, c := range cs {
		if _, ok := m[c.ID]; !ok {
			m[c.ID] = c
		}
	}
	return m
}

// TestVerifyLivePostgres proves the checks against a real server, before and
// after TLS is switched on by hand (as a DBA would, outside harden).
func TestVerifyLivePostgres(t *testing.T) {
	pg := testenv.PostgresForTest(t)
	ctx := context.Background()
	client := sdk.InProcess(postgres{})
	defer client.Close()
	conn, _ := json.Marshal(map[string]any{"host": pg.Host, "port": pg.Port, "user": pg.User})
	ca, err := os.ReadFile(pg.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	rc := sdk.RequestContext{
		Policy:       sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate()},
		Target:       sdk.NewTarget("pg", conn, []byte(`{}`), nil),
		Certificates: sdk.Certificates{CABundlePEM: ca},
	}
	rc.Policy.Rotation.RenewBefore = 7 * 24 * 3600 * 1e9

	before, err := client.Verify(ctx, rc)
	if err != nil || before.Diagnostics.HasError() {
		t.Fatalf("verify: %v %v", err, before.Diagnostics)
	}
	b := statuses(before.Checks)
	if b["tls.plaintext.refused"].Status != checks.Fail || b["tls.enabled"].Status != checks.Fail ||
		!strings.Contains(b["tls.enabled"].Evidence, "answered 'N'") {
		t.Fatalf("before: %+v", before.Checks)
	}

	// Switch TLS on with PostgreSQL's default cipher list (accepts CBC suites).
	if err := pg.EnableTLS(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := client.Verify(ctx, rc)
	if err != nil || after.Diagnostics.HasError() {
		t.Fatalf("verify: %v %v", err, after.Diagnostics)
	}
	a := statuses(after.Checks)
	want := map[string]checks.Status{
		"tls.enabled": checks.Pass, "tls.protocol.versions": checks.Pass, "tls.cipher_suites": checks.Fail,
		"tls.certificate.trusted": checks.Pass, "tls.certificate.lifetime": checks.Pass, "tls.certificate.lint": checks.Pass,
		// hba still has "host ... scram-sha-256": plaintext is still accepted.
		"tls.plaintext.refused": checks.Fail,
	}
	for id, st := range want {
		if a[id].Status != st {
			t.Errorf("after: %s = %s (%s), want %s", id, a[id].Status, a[id].Evidence, st)
		}
	}
	if ev := a["tls.cipher_suites"].Evidence; !strings.Contains(ev, "_CBC_") {
		t.Errorf("PostgreSQL's default ciphers accept CBC suites; evidence: %s", ev)
	}
	if ev := a["tls.protocol.versions"].Evidence; !strings.Contains(ev, "accepted: TLSv1.2, TLSv1.3") {
		t.Errorf("versions evidence: %s", ev)
	}
}
