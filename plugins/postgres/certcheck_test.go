package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/testenv"
)

func certPEM(t *testing.T, notBefore, notAfter time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// An expired or not-yet-valid certificate is refused before apply writes
// anything (it used to go live for ~5 s, then be rolled back).
func TestApplyRefusesCertificateNotValidNow(t *testing.T) {
	now := time.Now()
	expiredAt := now.Add(-time.Hour).UTC().Truncate(time.Second)
	cases := map[string]struct {
		pem  []byte
		want string
	}{
		"expired":       {certPEM(t, now.Add(-48*time.Hour), expiredAt), "not_after " + expiredAt.Format(time.RFC3339)},
		"not yet valid": {certPEM(t, now.Add(time.Hour), now.Add(48*time.Hour)), "not valid yet"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if err := certificateCurrent(tc.pem, now); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("certificateCurrent: %v, want %q", err, tc.want)
			}
		})
	}
	if err := certificateCurrent(certPEM(t, now.Add(-time.Hour), now.Add(time.Hour)), now); err != nil {
		t.Fatalf("a current certificate: %v", err)
	}
	pg := testenv.PostgresForTest(t)
	rc := request(t, pg, `{}`, false)
	rc.Certificates.ChainPEM = cases["expired"].pem
	var r sdk.ApplyResponse
	postgres{}.Apply(context.Background(), sdk.ApplyRequest{RequestContext: rc}, &r)
	d, ok := firstError(r.Diagnostics)
	if !ok || d.Code != "postgres.apply.certificate_expired" || !strings.Contains(d.Error(), cases["expired"].want) || len(r.Applied) != 0 {
		t.Fatalf("apply with an expired certificate: %v", r.Diagnostics)
	}
	journal, _ := journalOf(t, pg)
	for _, p := range []string{filepath.Join(pg.DataDir, "harden"), journal} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s exists after a refused apply: %v", p, err)
		}
	}
}

// A step's own timeout is that step's failure; only the request's end is
// an interruption (the first version took any DeadlineExceeded for one and
// then read the cause of a context that had none).
func TestFailureCode(t *testing.T) {
	code, what := failureCode(context.Background(), "postgres.apply.rejected", "PostgreSQL did not take the new configuration")
	if code != "postgres.apply.rejected" || what != "PostgreSQL did not take the new configuration" {
		t.Errorf("own timeout: %s %s", code, what)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("stopped by the host"))
	code, what = failureCode(ctx, "postgres.apply.rejected", "x")
	if code != "postgres.apply.interrupted" || what != "apply was interrupted (stopped by the host)" {
		t.Errorf("cancelled: %s %s", code, what)
	}
}
