package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/host/internal/inventory"
)

// htmlFleetRun is a fleet as verify --inventory reports it: targets with
// perTarget endpoints each, ~10 accepted suites per endpoint (a third with
// CBC suites outside the profile), three-certificate chains (a leaf per
// endpoint, an issuing CA per target, one root), the checks the real
// plugins send per endpoint with evidence as long as theirs, and the
// inventory of every served and held certificate and a KEK per target.
func htmlFleetRun(targets, perTarget int) *Run {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	day := func(n int) time.Time { return now.Add(time.Duration(n) * 24 * time.Hour) }
	sample := htmlSyntheticRun()
	prof := &Profile{Name: "intermediate", Versions: []string{"TLSv1.2", "TLSv1.3"},
		Suites: []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
			"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
			"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"},
		Groups: []string{"X25519MLKEM768", "x25519", "secp256r1", "secp384r1"}}
	r := &Run{FormatVersion: FormatVersion, Command: "verify", Policy: "fleet/policy.yaml", Profile: prof.Name, ProfileDetail: prof,
		GeneratedAt: now, DurationMS: 93000}
	inv := &inventory.Report{FormatVersion: 1, GeneratedAt: now, Policy: r.Policy, RenewBefore: "30d", AlertAt: []string{"30d", "14d", "7d"}}
	root := ChainCert{Subject: "CN=Fleet Root CA,O=Example Corp", Issuer: "CN=Fleet Root CA,O=Example Corp", Serial: "3d6eb0cc6c482f4492a39460a3e81dc1",
		SHA256: fmt.Sprintf("%064x", 1), NotBefore: day(-300), NotAfter: day(3350), Key: "ECDSA P-384", SignatureAlgorithm: "ECDSA-SHA384"}
	plugins := []string{"postgres", "kafka", "objectstore", "vaultpki"}
	suites12 := []Suite{{"TLSv1.2", "0xC02B", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}, {"TLSv1.2", "0xC02C", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"},
		{"TLSv1.2", "0xCCA9", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"}}
	suites13 := []Suite{{"TLSv1.3", "0x1301", "TLS_AES_128_GCM_SHA256"}, {"TLSv1.3", "0x1302", "TLS_AES_256_GCM_SHA384"}, {"TLSv1.3", "0x1303", "TLS_CHACHA20_POLY1305_SHA256"}}
	cbc := []Suite{{"TLSv1.2", "0xC009", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"}, {"TLSv1.2", "0xC00A", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"},
		{"TLSv1.2", "0xC023", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"}, {"TLSv1.2", "0xC024", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384"}}
	refs := []string{"Mozilla Server Side TLS 6.0 (https://ssl-config.mozilla.org/guidelines/6.0.json)", "CIS PostgreSQL 14 Benchmark v1.2.0 6.10: Ensure Weak SSL/TLS Ciphers Are Disabled"}
	n := 0
	for ti := range targets {
		name := fmt.Sprintf("%s-%03d", plugins[ti%len(plugins)], ti)
		inter := ChainCert{Subject: fmt.Sprintf("CN=Issuing CA %03d,O=Example Corp", ti), Issuer: root.Subject, Serial: fmt.Sprintf("%032x", 1000+ti),
			SHA256: fmt.Sprintf("%064x", 1000+ti), NotBefore: day(-200), NotAfter: day(1600), Key: "ECDSA P-256", SignatureAlgorithm: "ECDSA-SHA384"}
		t := Target{Name: name, Plugin: plugins[ti%len(plugins)], Line: 10 + 6*ti, Column: 5, Status: "ok"}
		for ei := range perTarget {
			n++
			addr := fmt.Sprintf("127.0.%d.%d:%d", ti/250, ti%250+1, 5432+ei)
			left := (n*37)%400 - 5
			leaf := ChainCert{Subject: fmt.Sprintf("CN=%s-%d.db.example.internal", name, ei), Issuer: inter.Subject, Serial: fmt.Sprintf("%032x", 100000+n),
				SHA256: fmt.Sprintf("%064x", 100000+n), NotBefore: day(left - 398), NotAfter: day(left), DNSNames: []string{fmt.Sprintf("%s-%d.db.example.internal", name, ei)},
				IPAddresses: []string{"127.0.0.1"}, Key: "ECDSA P-256", SignatureAlgorithm: "ECDSA-SHA256"}
			e := Endpoint{Name: fmt.Sprintf("listener-%d", ei), Address: addr, Dialect: t.Plugin,
				Versions: []Version{{"SSLv3", "refused", "SSLv3 refused (alert handshake_failure)", ""}, {"TLSv1", "refused", "TLSv1 refused (alert protocol_version)", ""},
					{"TLSv1.1", "refused", "TLSv1.1 refused (alert protocol_version)", ""}, {"TLSv1.2", "accepted", "TLSv1.2 accepted (3 suites)", ""},
					{"TLSv1.3", "accepted", "TLSv1.3 accepted (3 suites)", ""}},
				Suites: append(append([]Suite{}, suites12...), suites13...), Groups: []string{"x25519", "secp256r1", "secp384r1"},
				Chain: []ChainCert{leaf, inter, root}, TrustChecked: true, ClientCertRequested: true, NoClientCert: "refused", Plaintext: "refused"}
			bad := n%3 == 0
			if bad {
				e.Suites = append(e.Suites, cbc...)
			}
			t.Endpoints = append(t.Endpoints, e)
			status := func(fail bool) string {
				if fail {
					return "fail"
				}
				return "pass"
			}
			suiteEv := "accepted TLSv1.2 TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (0xC02B); accepted TLSv1.2 TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 (0xC02C); accepted TLSv1.2 TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 (0xCCA9); accepted TLSv1.3 TLS_AES_128_GCM_SHA256 (0x1301); accepted TLSv1.3 TLS_AES_256_GCM_SHA384 (0x1302); accepted TLSv1.3 TLS_CHACHA20_POLY1305_SHA256 (0x1303); tested: 195 suites offered in raw ClientHellos per version"
			if bad {
				suiteEv = "accepted outside the intermediate profile: TLSv1.2 TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA (0xC009); accepted outside the intermediate profile: TLSv1.2 TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA (0xC00A); accepted outside the intermediate profile: TLSv1.2 TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 (0xC023); accepted outside the intermediate profile: TLSv1.2 TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384 (0xC024)"
			}
			lifetime := fmt.Sprintf("valid %s to %s, %d days left, lifespan 398 days", leaf.NotBefore.Format("2006-01-02"), leaf.NotAfter.Format("2006-01-02"), left)
			checks := []Check{
				{ID: "tls.plaintext.refused", Status: "pass", Severity: "high", Title: "Endpoint refuses plaintext sessions", Subject: addr,
					Evidence:    "server refused the plaintext session: pg_hba.conf rejects connection for host \"127.0.0.1\", user \"harden_probe\", database \"postgres\", no encryption (SQLSTATE 28000)",
					Remediation: "Disable the plaintext listener or require TLS for every connection.", References: refs[:1]},
				{ID: "tls.enabled", Status: "pass", Severity: "high", Title: "Endpoint offers TLS", Subject: addr, Evidence: "TLS handshake completed (TLSv1.2, TLSv1.3)",
					Remediation: "Configure a certificate and key and enable TLS on the endpoint.", References: refs[:1]},
				{ID: "tls.protocol.versions", Status: "pass", Severity: "high", Title: "Only the profile's TLS versions are accepted", Subject: addr,
					Evidence:    "SSLv3 refused (alert handshake_failure); TLSv1 refused (alert protocol_version); TLSv1.1 refused (alert protocol_version); TLSv1.2 accepted; TLSv1.3 accepted",
					Remediation: "Set the minimum (and maximum) protocol version to the profile's versions.", References: refs[:1]},
				{ID: "tls.cipher_suites", Status: status(bad), Severity: "medium", Title: "Only the profile's cipher suites are accepted", Subject: addr,
					Evidence: suiteEv, Remediation: "Restrict the cipher list to the profile's suites.", References: refs},
				{ID: "tls.key_exchange.groups", Status: "pass", Severity: "low", Title: "Only the profile's key-exchange groups are accepted", Subject: addr,
					Evidence: "accepted x25519; accepted secp256r1; accepted secp384r1", Remediation: "Restrict the server's groups/curves to the profile's.", References: refs[:1]},
				{ID: "tls.certificate.trusted", Status: "pass", Severity: "high", Title: "Certificate chains to the expected CA and matches the endpoint name", Subject: addr,
					Evidence:    fmt.Sprintf("subject %q issued by %q, ECDSA P-256: chains to the policy CA and matches the endpoint name", leaf.Subject, inter.Subject),
					Remediation: "Install a certificate issued by the policy's CA that names the endpoint's host or IP.", References: refs[:1]},
				{ID: "tls.certificate.lint", Status: "pass", Severity: "medium", Title: "Certificate chain passes the RFC 5280 profile lints (zlint)", Subject: addr,
					Evidence: "3 certificate(s): no RFC 5280/5480/5891/8813 lint errors or warnings", Remediation: "Reissue the certificate with a compliant profile.", References: refs[:1]},
				{ID: "tls.certificate.lifetime", Status: status(left < 7), Severity: "high", Title: "Certificate is valid and not close to expiry", Subject: addr,
					Evidence: lifetime, Remediation: "Renew the certificate (harden rotate).", References: refs[:1]},
				{ID: "tls.client_auth.required", Status: "pass", Severity: "high", Title: "Sessions without a client certificate are refused", Subject: addr,
					Evidence: "server requested a client certificate and refused the session without one (alert certificate_required)", Remediation: "Require client certificates.", References: refs[:1]},
			}
			if n%50 == 0 {
				checks[2] = Check{ID: "tls.protocol.versions", Status: "error", Severity: "high", Title: checks[2].Title, Subject: addr, References: refs[:1],
					Evidence: "1 of 5 observations inconclusive: TLSv1.1: not tested: read tcp 127.0.0.1:41002->" + addr + ": i/o timeout; conclusive: SSLv3 refused; TLSv1 refused; TLSv1.2 accepted; TLSv1.3 accepted", Inconclusive: 1}
				t.Endpoints[len(t.Endpoints)-1].Versions[2] = Version{"TLSv1.1", "inconclusive", "TLSv1.1: i/o timeout", ""}
			}
			t.Checks = append(t.Checks, checks...)
			inv.Items = append(inv.Items, inventory.Item{Kind: "served", Target: name, Where: addr, Name: e.Name, Tier: htmlTierOf(left),
				Certificate: &inventory.Certificate{Subject: leaf.Subject, Issuer: leaf.Issuer, Serial: leaf.Serial, SHA256: leaf.SHA256, NotBefore: leaf.NotBefore,
					NotAfter: leaf.NotAfter, DaysLeft: left, RenewAt: leaf.NotAfter.Add(-30 * 24 * time.Hour)},
				Served: &inventory.Served{Address: addr, Handshakes: 1, Version: "TLSv1.3", Outcome: "accepted", Trusted: true}})
		}
		t.Checks = append(t.Checks,
			Check{ID: t.Plugin + ".config.settings", Status: "warn", Severity: "high", Title: "Server settings enforce TLS", Subject: "server configuration",
				Evidence: sample.Targets[0].Checks[5].Evidence, Remediation: "Apply the policy (harden apply).", References: refs[:1], ConfigurationOnly: true},
			Check{ID: t.Plugin + ".sessions.unencrypted", Status: "pass", Severity: "high", Title: "No live session without TLS", Subject: "live sessions",
				Evidence: "pg_stat_ssl: 0 other live network sessions, every one with TLS", Remediation: "Terminate plaintext sessions.", References: refs[:1]})
		clientLeft := (ti*53)%200 + 3
		inv.Items = append(inv.Items,
			inventory.Item{Kind: "client", Target: name, Where: "/var/lib/harden/" + name + "/client.pem", Tier: htmlTierOf(clientLeft),
				Certificate: &inventory.Certificate{Subject: "CN=harden-" + name, Issuer: inter.Subject, Serial: fmt.Sprintf("%032x", 500000+ti), SHA256: fmt.Sprintf("%064x", 500000+ti),
					NotBefore: day(clientLeft - 90), NotAfter: day(clientLeft), DaysLeft: clientLeft}},
			inventory.Item{Kind: "key", Target: name, Where: "transit/keys/" + name + "-kek", Name: name + "-kek", Tier: "ok",
				Key: &inventory.Key{Type: "aes256-gcm96", LatestVersion: 1 + ti%5, LatestCreated: htmlPtr(day(-(ti % 80))), AgeDays: htmlPtr(ti % 80), AutoRotatePeriod: "90d",
					AutoRotatePeriodSeconds: 7776000, NextRotation: htmlPtr(day(90 - ti%80))}})
		r.Targets = append(r.Targets, t)
	}
	r.Inventory = inv
	r.Finish("verify")
	return r
}

func htmlTierOf(left int) string {
	switch {
	case left < 0:
		return "expired"
	case left <= 7:
		return "7d"
	case left <= 14:
		return "14d"
	case left <= 30:
		return "30d"
	}
	return "ok"
}

// BenchmarkHTML1000Endpoints: the dashboard of 1,000 endpoints (target
// ≤ 1 s, ≤ 5 MB) in both fleet shapes — 100 targets × 10 endpoints, and
// 1,000 real PostgreSQL targets × 1 before and after apply — beside the
// JSON of the same run as the reference.
func BenchmarkHTML1000Endpoints(b *testing.B) {
	shapes := htmlFleetShapes(b)
	for _, shape := range []string{"100x10", "1000x1-pg-before", "1000x1-pg-after"} {
		r := shapes[shape]
		for _, f := range []struct {
			name  string
			write func(io.Writer, *Run) error
		}{{"html", WriteHTML}, {"json", WriteJSON}} {
			b.Run(shape+"/"+f.name, func(b *testing.B) {
				var buf bytes.Buffer
				for b.Loop() {
					buf.Reset()
					if err := f.write(&buf, r); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(buf.Len()), "bytes")
			})
		}
	}
}

// htmlPGFleet is a fleet of n real PostgreSQL targets with one endpoint
// each: testdata's warehouse-pg (a real testenv run, before or after
// apply) n times over, each on its own address with its own leaf
// certificate, with its inventory items (served and held certificates),
// and the run's CA once.
func htmlPGFleet(t testing.TB, file string, n int) *Run {
	src := htmlLoadRun(t, file)
	pg := src.Targets[0]
	if pg.Plugin != "postgres" || len(pg.Endpoints) != 1 {
		t.Fatalf("%s: target 0 is %s with %d endpoints, want PostgreSQL with one", file, pg.Plugin, len(pg.Endpoints))
	}
	addr := pg.Endpoints[0].Address
	r := &Run{FormatVersion: src.FormatVersion, Command: src.Command, Policy: "fleet/policy.yaml", Profile: src.Profile,
		ProfileDetail: src.ProfileDetail, GeneratedAt: src.GeneratedAt, DurationMS: src.DurationMS}
	inv := *src.Inventory
	inv.Items, inv.Targets = nil, nil
	for i := range n {
		name := fmt.Sprintf("pg-%04d", i)
		a := fmt.Sprintf("127.%d.%d.%d:5432", i/62500, i/250%250, i%250+1)
		sub := strings.NewReplacer(addr, a, pg.Name, name)
		b, err := json.Marshal(pg)
		if err != nil {
			t.Fatal(err)
		}
		var tg Target
		if err := json.Unmarshal([]byte(sub.Replace(string(b))), &tg); err != nil {
			t.Fatal(err)
		}
		tg.Line = 10 + 4*i
		e := &tg.Endpoints[0]
		leafSHA := ""
		if len(e.Chain) > 0 {
			leafSHA = e.Chain[0].SHA256
			e.Chain[0].SHA256 = fmt.Sprintf("%060x%04x", 0xfeed, i)
			e.Chain[0].Serial = fmt.Sprintf("%032x", 7000+i)
			e.Chain[0].Subject = "CN=" + name
		}
		r.Targets = append(r.Targets, tg)
		inv.Targets = append(inv.Targets, name)
		for _, it := range src.Inventory.Items {
			if it.Target != pg.Name {
				continue
			}
			b, err := json.Marshal(it)
			if err != nil {
				t.Fatal(err)
			}
			var c inventory.Item
			if err := json.Unmarshal([]byte(sub.Replace(string(b))), &c); err != nil {
				t.Fatal(err)
			}
			if c.Certificate != nil && c.Certificate.SHA256 == leafSHA && len(e.Chain) > 0 {
				c.Certificate.SHA256, c.Certificate.Serial, c.Certificate.Subject = e.Chain[0].SHA256, e.Chain[0].Serial, e.Chain[0].Subject
			}
			inv.Items = append(inv.Items, c)
		}
	}
	for _, it := range src.Inventory.Items {
		if it.Kind == inventory.KindCA {
			it.Targets = inv.Targets
			inv.Items = append(inv.Items, it)
		}
	}
	inv.Summary = dashRulesOf(&inv).Summarize(inv.Items)
	r.Inventory = &inv
	r.Finish("verify")
	return r
}

// htmlFleetShapes: the fleets the dashboard's budget (≤ 5 MB, ≤ 1 s) holds
// for: 100 targets of 10 endpoints, and 1,000 real PostgreSQL targets of
// one endpoint, before and after apply.
func htmlFleetShapes(t testing.TB) map[string]*Run {
	return map[string]*Run{
		"100x10":           htmlFleetRun(100, 10),
		"1000x1-pg-before": htmlPGFleet(t, "testenv-before.json", 1000),
		"1000x1-pg-after":  htmlPGFleet(t, "testenv-after.json", 1000),
	}
}
