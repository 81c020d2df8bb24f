package exporter

import (
	"fmt"
	"time"

	"github.com/harden-dev/harden/host/internal/inventory"
	"github.com/harden-dev/harden/host/internal/report"
)

var fleetChecks = []string{"tls.plaintext.refused", "tls.enabled", "tls.protocol.versions", "tls.cipher_suites", "tls.key_exchange.groups",
	"tls.certificate.trusted", "tls.certificate.lint", "tls.certificate.lifetime", "postgres.plaintext.other_addresses",
	"postgres.hba.network_methods", "postgres.password_encryption", "postgres.sessions.unencrypted"}

// fleet is a verify run with inventory over targets×perTarget endpoints,
// each looking like a hardened PostgreSQL listener (the sample verify of
// /tmp/h/sample-verify.json): 12 checks, 5 versions, 6 suites, 1 group,
// a served and a held certificate; one CA per target.
func fleet(targets, perTarget int, now time.Time) *report.Run {
	run := &report.Run{FormatVersion: 1, Command: "verify", Policy: "/etc/harden/policy.yaml", Profile: "intermediate", GeneratedAt: now}
	inv := &inventory.Report{FormatVersion: 1, GeneratedAt: now}
	for i := range targets {
		name := fmt.Sprintf("pg-%04d", i)
		t := report.Target{Name: name, Plugin: "postgres", Status: "ok"}
		for j := range perTarget {
			addr := fmt.Sprintf("10.0.%d.%d:5432", i/250, (i*perTarget+j)%250)
			for _, id := range fleetChecks {
				t.Checks = append(t.Checks, report.Check{ID: id, Status: "pass", Severity: "high", Subject: addr})
			}
			e := report.Endpoint{Name: "postgres", Address: addr, Dialect: "postgres", Groups: []string{"secp256r1"},
				ClientCertRequested: true, NoClientCert: "refused", Plaintext: "refused", TrustChecked: true}
			for _, v := range []string{"SSLv3", "TLSv1", "TLSv1.1"} {
				e.Versions = append(e.Versions, report.Version{Version: v, Outcome: "refused"})
			}
			e.Versions = append(e.Versions, report.Version{Version: "TLSv1.2", Outcome: "accepted"}, report.Version{Version: "TLSv1.3", Outcome: "accepted"})
			for _, s := range []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"} {
				e.Suites = append(e.Suites, report.Suite{Version: "TLSv1.2", Name: s})
			}
			for _, s := range []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"} {
				e.Suites = append(e.Suites, report.Suite{Version: "TLSv1.3", Name: s})
			}
			t.Endpoints = append(t.Endpoints, e)
			cert := &inventory.Certificate{Subject: "CN=" + name, Serial: fmt.Sprintf("%x", 1000+i*perTarget+j), NotBefore: now.Add(-80 * 24 * time.Hour),
				NotAfter: now.Add(10 * 24 * time.Hour), RenewAt: now.Add(-20 * 24 * time.Hour)}
			inv.Items = append(inv.Items,
				inventory.Item{Kind: inventory.KindServed, Target: name, Where: addr, Name: "postgres", Certificate: cert, Tier: "14d"},
				inventory.Item{Kind: inventory.KindServer, Target: name, Where: fmt.Sprintf("/etc/harden/%s-%d.pem", name, j), Certificate: cert, Tier: "14d"})
		}
		run.Targets = append(run.Targets, t)
		inv.Targets = append(inv.Targets, name)
	}
	var names []string
	names = append(names, inv.Targets...)
	inv.Items = append(inv.Items, inventory.Item{Kind: inventory.KindCA, Targets: names, Where: "/etc/harden/ca.pem",
		Certificate: &inventory.Certificate{Subject: "CN=fleet CA", Serial: "1", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour)}, Tier: "ok"})
	run.Inventory = inv
	return run
}
