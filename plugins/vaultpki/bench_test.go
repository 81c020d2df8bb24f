package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/shared/sdk/sdktest"
	"github.com/harden-dev/harden/testenv"
)

// hardenedVault starts a dev Vault and applies the test policy to it.
func hardenedVault(b *testing.B) (*testenv.Vault, *hostclient.Client, sdk.RequestContext) {
	v := testenv.VaultForTest(b)
	rc := vaultRequest(b, v, rootToken(b, v))
	client := hostclient.InProcess(vaultPKI{})
	b.Cleanup(func() { client.Close() })
	if ar, err := client.Apply(context.Background(), rc, nil, false); err != nil || ar.Diagnostics.HasError() {
		b.Fatalf("apply: %v %v", err, ar.Diagnostics.Err())
	}
	return v, client, rc
}

func median(ds []time.Duration) float64 {
	slices.Sort(ds)
	return float64(ds[len(ds)/2].Microseconds()) / 1000
}

// BenchmarkVerify: one full verify of the hardened Vault target (PKI, roles,
// lints with a fresh leaf, inventory, transit, audit canary, listener scan).
// Target: <= 0.5 s median. Reference in the same run: sslscan on Vault's
// listener (protocols and suites only).
func BenchmarkVerify(b *testing.B) {
	v, client, rc := hardenedVault(b)
	sdktest.BenchVerify(b, client, rc, nil, strings.TrimPrefix(v.Address, "https://"))
}

// BenchmarkIssueDemoCertificates: the certificates of the demo's targets
// (PostgreSQL server; Kafka peer + harden's client: 3 CSRs, each after a
// CA/CRL read, as the host asks) through the plugin. Target: <= 1 s.
// Reference in the same run: one bare pki_int/sign call.
func BenchmarkIssueDemoCertificates(b *testing.B) {
	_, client, rc := hardenedVault(b)
	ctx := context.Background()
	csr := func(cn string) []byte {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}, DNSNames: []string{cn}}, key)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	}
	var ours, ref []time.Duration
	for b.Loop() {
		start := time.Now()
		for _, req := range []struct{ usage, cn string }{{"server", "warehouse-pg"}, {"peer", "localhost"}, {"client", "harden-admin"}} {
			for _, usage := range []string{"ca", req.usage} {
				var body []byte
				if usage != "ca" {
					body = csr(req.cn)
				}
				r, err := client.IssueCertificate(ctx, sdk.IssueCertificateRequest{RequestContext: rc, ForTarget: "x", Usage: usage, CommonName: req.cn, CSRPEM: body, TTL: 24 * time.Hour})
				if err != nil || r.Diagnostics.HasError() {
					b.Fatalf("issue %s: %v %v", usage, err, r.Diagnostics.Err())
				}
			}
		}
		ours = append(ours, time.Since(start))
		cl, _ := client0(ctx, rc)
		start = time.Now()
		if _, err := cl.Logical().WriteWithContext(ctx, "pki_int/sign/server", map[string]any{"csr": string(csr("localhost")), "ttl": "24h"}); err != nil {
			b.Fatal(err)
		}
		ref = append(ref, time.Since(start))
	}
	b.ReportMetric(median(ours), "issue-demo-median-ms")
	b.ReportMetric(median(ref), "bare-sign-median-ms")
}
