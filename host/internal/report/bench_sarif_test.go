package report

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/harden-dev/harden/host/internal/inventory"
)

// fleetRun is a verify --inventory of 1,000 endpoints (100 targets of 10)
// with the ten checks each endpoint gets: the nine generic TLS checks and
// one of the plugin's, most passing. failEvery: every n-th check fails
// (1: all of them).
func fleetRun(failEvery int) *Run {
	ids := []string{"tls.plaintext.refused", "tls.enabled", "tls.protocol.versions", "tls.cipher_suites", "tls.key_exchange.groups",
		"tls.certificate.trusted", "tls.certificate.lint", "tls.certificate.lifetime", "tls.client_auth.required", "postgres.hba.network_methods"}
	now := time.Date(2027, 1, 10, 12, 0, 0, 0, time.UTC)
	r := &Run{FormatVersion: FormatVersion, Policy: "deploy/fleet.yaml", Profile: "intermediate", ProfileDetail: &Profile{Name: "intermediate",
		Versions: []string{"TLSv1.2", "TLSv1.3"}, Groups: []string{"X25519MLKEM768", "x25519", "secp256r1", "secp384r1"},
		Suites: []string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"}},
		GeneratedAt: now, DurationMS: 48000,
		Inventory: &inventory.Report{FormatVersion: 1, GeneratedAt: now, Policy: "deploy/fleet.yaml", RenewBefore: "30d", AlertAt: []string{"30d", "14d", "7d"}}}
	n := 0
	for ti := 0; ti < 100; ti++ {
		t := Target{Name: fmt.Sprintf("pg-%02d", ti), Plugin: "postgres", Status: "ok", Line: 12 + 9*ti, Column: 5}
		for ei := 0; ei < 10; ei++ {
			addr := fmt.Sprintf("10.20.%d.%d:5432", ti, ei)
			for _, id := range ids {
				n++
				c := Check{ID: id, Status: "pass", Severity: "high", Subject: addr, References: []string{"RFC 8996"},
					Evidence: "SSLv3 refused (alert handshake_failure); TLSv1 refused (alert protocol_version); TLSv1.1 refused (alert protocol_version); TLSv1.2 accepted; TLSv1.3 accepted"}
				switch {
				case n%failEvery == 0:
					c.Status, c.Evidence = "fail", "TLSv1.1 accepted (server chose TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA)"
				case n%53 == 0:
					c.Status, c.Inconclusive = "error", 1
					c.Evidence = "read tcp 10.0.0.1:51234->" + addr + ": connection reset by peer"
				case n%41 == 0:
					c.Status = "warn"
				case n%37 == 0:
					c.Status = "skip"
				}
				t.Checks = append(t.Checks, c)
			}
			ep := Endpoint{Name: "postgres", Address: addr, Dialect: "postgres", Groups: []string{"x25519", "secp256r1"}, TrustChecked: true,
				ClientCertRequested: true, NoClientCert: "refused", Plaintext: "refused"}
			for _, v := range []string{"SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"} {
				ep.Versions = append(ep.Versions, Version{Version: v, Outcome: "refused", Evidence: "alert protocol_version"})
			}
			for i := 0; i < 9; i++ {
				ep.Suites = append(ep.Suites, Suite{Version: "TLSv1.2", ID: fmt.Sprintf("0xc0%02x", i), Name: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"})
			}
			for i := 0; i < 2; i++ {
				ep.Chain = append(ep.Chain, ChainCert{Subject: "CN=" + addr, Issuer: "CN=fleet CA", Serial: "30e82ff5fe91662a7d1ae589a27bb7c",
					SHA256: "273f10f443e98c795ccb80762a4694f79eb0224d24423b40a54e0ae08d7bcd93", NotBefore: now.AddDate(0, -1, 0), NotAfter: now.AddDate(0, 2, 0),
					DNSNames: []string{"pg.example"}, Key: "ECDSA P-256", SignatureAlgorithm: "ECDSA-SHA256"})
			}
			t.Endpoints = append(t.Endpoints, ep)
			tier := inventory.TierOK
			if (ti*10+ei)%20 == 0 {
				tier = "30d"
			}
			r.Inventory.Items = append(r.Inventory.Items, inventory.Item{Kind: inventory.KindServed, Target: t.Name, Where: addr, Name: "postgres",
				Certificate: &inventory.Certificate{Subject: "CN=" + addr, Serial: "0a", NotAfter: now.AddDate(0, 0, 25), DaysLeft: 25}, Tier: tier})
		}
		r.Targets = append(r.Targets, t)
	}
	r.Finish("verify")
	return r
}

// BenchmarkSARIF1000Endpoints: the budget is 0.5 s per render.
func BenchmarkSARIF1000Endpoints(b *testing.B) {
	r := fleetRun(9)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := WriteSARIF(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSARIF1000EndpointsAllFailing: the worst case, every check a
// result (10,000 of them).
func BenchmarkSARIF1000EndpointsAllFailing(b *testing.B) {
	r := fleetRun(1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := WriteSARIF(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJSON1000Endpoints: the same run as JSON, the reference.
func BenchmarkJSON1000Endpoints(b *testing.B) {
	r := fleetRun(9)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := WriteJSON(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJUnit1000Endpoints: JUnit of the same run.
func BenchmarkJUnit1000Endpoints(b *testing.B) {
	r := fleetRun(9)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := WriteJUnit(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSARIF1000EndpointsWithinBudget holds the performance target:
// SARIF for 1,000 endpoints (the realistic run) in at most 0.5 s. It
// measures about 55 ms on an idle 2-core machine, so a loaded CI runner
// does not make it flaky. The all-failing worst case (10,000 results,
// about 300 ms idle) is only logged: its time follows the machine's load.
func TestSARIF1000EndpointsWithinBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("benchmark-backed test")
	}
	res := testing.Benchmark(BenchmarkSARIF1000Endpoints)
	per := time.Duration(res.NsPerOp())
	t.Logf("realistic: %v per render (%d runs)", per, res.N)
	if res.N == 0 || per > 500*time.Millisecond {
		t.Errorf("SARIF for 1,000 endpoints took %v, budget 0.5 s", per)
	}
	worst := testing.Benchmark(BenchmarkSARIF1000EndpointsAllFailing)
	t.Logf("all failing: %v per render (%d runs)", time.Duration(worst.NsPerOp()), worst.N)
}
