package rotate

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/host/internal/policy"
)

var schedNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// fixed is a jitter source that always returns j.
func fixed(j float64) func() float64 { return func() float64 { return j } }

func store(target, kind string, notBefore, notAfter time.Time) Held {
	return Held{Target: target, Kind: kind, Source: "store", File: "/s/" + target + "/" + kind + ".pem", Serial: "0" + target[:1],
		NotBefore: notBefore, NotAfter: notAfter}
}

func TestNextRun(t *testing.T) {
	now := schedNow
	for name, tc := range map[string]struct {
		held        []Held
		renewBefore time.Duration
		jitter      float64
		wantNext    time.Time
		wantDueNow  bool
		wantRule    string
		wantTarget  string
		wantWhy     []string
	}{
		"90-day certificate at day 0: day 60 (both rules agree), 5 % jitter": {
			held:        []Held{store("pg", "server", now, now.Add(90*day))},
			renewBefore: 30 * day, jitter: 0.5,
			wantNext: now.Add(60*day - 3*day), wantRule: RuleRenewBefore, wantTarget: "pg",
			wantWhy: []string{"target pg server certificate serial 0p enters renew_before (30d) on 2026-07-31T12:00:00Z", "jitter 3d earlier"},
		},
		"90-day certificate at day 0 without jitter: day 60": {
			held:        []Held{store("pg", "server", now, now.Add(90*day))},
			renewBefore: 30 * day, jitter: 0,
			wantNext: now.Add(60 * day), wantRule: RuleRenewBefore, wantTarget: "pg",
		},
		"20 days left, renew_before 30 days: now": {
			held:        []Held{store("pg", "server", now.Add(-70*day), now.Add(20*day))},
			renewBefore: 30 * day, jitter: 0.9,
			wantNext: now, wantDueNow: true, wantRule: RuleRenewBefore, wantTarget: "pg",
			wantWhy: []string{"due now: target pg server certificate serial 0p is within renew_before (30d) of its end on 2026-06-21T12:00:00Z"},
		},
		"the 2/3 rule decides when renew_before is short": {
			held:        []Held{store("pg", "server", now, now.Add(90*day))},
			renewBefore: 7 * day, jitter: 0,
			wantNext: now.Add(60 * day), wantRule: RuleTwoThirds, wantTarget: "pg",
			wantWhy: []string{"reaches 2/3 of its remaining lifetime on 2026-07-31T12:00:00Z", "renew_before window from 2026-08-23T12:00:00Z", "rotate renews only what is due then"},
		},
		"the renew_before rule decides when it is long": {
			held:        []Held{store("pg", "server", now, now.Add(90*day))},
			renewBefore: 45 * day, jitter: 0,
			wantNext: now.Add(45 * day), wantRule: RuleRenewBefore, wantTarget: "pg",
		},
		"several certificates: the earliest decides": {
			held: []Held{
				store("pg", "server", now, now.Add(90*day)),
				store("kafka", "server", now, now.Add(40*day)), // 2/3: day 26.67; window: day 10
				store("kafka", "client", now, now.Add(50*day)), // window: day 20
				{Client: "spark-etl", Kind: "client", Source: "store", File: "/s/clients/spark-etl/client.pem", Serial: "0s", NotAfter: now.Add(35 * day)}, // window: day 5
			},
			renewBefore: 30 * day, jitter: 0,
			wantNext: now.Add(5 * day), wantRule: RuleRenewBefore,
			wantWhy: []string{"client spark-etl certificate serial 0s enters renew_before"},
		},
		"a tie: the first in policy order": {
			held:        []Held{store("pg", "server", now, now.Add(90*day)), store("kafka", "server", now, now.Add(90*day))},
			renewBefore: 30 * day, wantNext: now.Add(60 * day), wantRule: RuleRenewBefore, wantTarget: "pg",
		},
		"expired: now": {
			held:        []Held{store("pg", "server", now, now.Add(90*day)), store("kafka", "server", now.Add(-91*day), now.Add(-day))},
			renewBefore: 30 * day, jitter: 0.5, wantNext: now, wantDueNow: true, wantRule: RuleExpired, wantTarget: "kafka",
			wantWhy: []string{"due now: target kafka server certificate serial 0k expired on 2026-05-31T12:00:00Z"},
		},
		"a stored pair that does not match: now": {
			held: []Held{store("pg", "server", now, now.Add(90*day)),
				{Target: "kafka", Kind: "client", Source: "store", File: "/s/kafka/client.pem", NotAfter: now.Add(80 * day), Problem: "certificate and key do not match"}},
			renewBefore: 30 * day, wantNext: now, wantDueNow: true, wantRule: RuleUnusable, wantTarget: "kafka",
			wantWhy: []string{"due now: target kafka harden client certificate (/s/kafka/client.pem): certificate and key do not match"},
		},
		"a stored certificate not valid yet: now (rotate renews it)": {
			held:        []Held{store("pg", "server", now.Add(time.Hour), now.Add(90*day))},
			renewBefore: 30 * day, wantNext: now, wantDueNow: true, wantRule: RuleNotYetValid, wantTarget: "pg",
			wantWhy: []string{"is not valid before 2026-06-01T13:00:00Z (check the clocks)"},
		},
		"a files certificate not valid yet: by its dates (rotate cannot renew it)": {
			held:        []Held{{Target: "pg", Kind: "server", Source: "files", File: "/etc/pg.pem", NotBefore: now.Add(time.Hour), NotAfter: now.Add(90 * day)}},
			renewBefore: 30 * day, wantNext: now.Add(60 * day), wantRule: RuleRenewBefore, wantTarget: "pg",
			wantWhy: []string{"it comes from a file harden cannot renew"},
		},
		"renew_before longer than what is left but not expired: now": {
			held:        []Held{store("pg", "server", now.Add(-day), now.Add(time.Minute))},
			renewBefore: 30 * day, jitter: 0.5, wantNext: now, wantDueNow: true, wantRule: RuleRenewBefore, wantTarget: "pg",
		},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := NextRun(tc.held, tc.renewBefore, now, fixed(tc.jitter))
			if err != nil {
				t.Fatal(err)
			}
			if !s.Next.Equal(tc.wantNext) || s.DueNow != tc.wantDueNow || s.DecidedBy.Rule != tc.wantRule {
				t.Errorf("next %s due now %v rule %s; want %s %v %s", s.Next, s.DueNow, s.DecidedBy.Rule, tc.wantNext, tc.wantDueNow, tc.wantRule)
			}
			if tc.wantTarget != "" && s.DecidedBy.Target != tc.wantTarget {
				t.Errorf("decided by %+v, want target %s", s.DecidedBy.Held, tc.wantTarget)
			}
			if len(s.Certificates) != len(tc.held) {
				t.Errorf("%d certificates listed, want %d", len(s.Certificates), len(tc.held))
			}
			why := s.Why(tc.renewBefore)
			for _, w := range tc.wantWhy {
				if !strings.Contains(why, w) {
					t.Errorf("why %q\nlacks %q", why, w)
				}
			}
		})
	}
}

func TestNextRunNothing(t *testing.T) {
	if _, err := NextRun(nil, 30*day, schedNow, fixed(0)); !errors.Is(err, ErrNothingToSchedule) {
		t.Fatalf("no certificate: %v", err)
	}
}

// Jitter bounds: for any certificate and any jitter value (broken sources
// included) the run is never before now, never after the due time, and
// pulled forward by at most 10 % of the time until the due time; due
// certificates get no jitter.
func TestNextRunJitterBounds(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	jitters := []float64{0, 0.5, 0.999999, 1, 1.5, -1, math.NaN(), math.Inf(1), math.Inf(-1)}
	for i := range 5000 {
		left := time.Duration(r.Int64N(int64(400*day))) - 10*day
		rb := time.Duration(r.Int64N(int64(100 * day)))
		h := store("pg", "server", schedNow.Add(-day), schedNow.Add(left))
		var j float64
		if i < len(jitters) {
			j = jitters[i]
		} else {
			j = r.Float64()
		}
		s, err := NextRun([]Held{h}, rb, schedNow, fixed(j))
		if err != nil {
			t.Fatal(err)
		}
		d := s.DecidedBy.Due
		until := d.Sub(schedNow)
		if s.Next.Before(schedNow) || s.Next.After(d) || d.Sub(s.Next) > time.Duration(float64(until)*MaxJitter)+time.Nanosecond {
			t.Fatalf("left %s rb %s jitter %v: next %s due %s", left, rb, j, s.Next, d)
		}
		if s.DueNow != (until <= 0) || (s.DueNow && s.Jitter != 0) {
			t.Fatalf("left %s rb %s: due now %v jitter %s", left, rb, s.DueNow, s.Jitter)
		}
		want := schedNow.Add(left - left/3)
		if w := h.NotAfter.Add(-rb); !w.After(want) {
			want = w
		}
		if left > 0 && d.After(schedNow) && !d.Equal(want) {
			t.Fatalf("left %s rb %s: due %s, want %s", left, rb, d, want)
		}
	}
	// A certificate ending in the far future: no overflow.
	far := store("pg", "server", schedNow, time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC))
	if s, _ := NextRun([]Held{far}, 30*day, schedNow, fixed(0)); !s.Next.After(schedNow) || s.Next.After(far.NotAfter) {
		t.Errorf("far future: %s", s.Next)
	}
	// The real source stays in [0, 1) and is not constant.
	seen := map[float64]bool{}
	for range 1000 {
		j := CryptoJitter()
		if j < 0 || j >= 1 {
			t.Fatalf("CryptoJitter %v", j)
		}
		seen[j] = true
	}
	if len(seen) < 990 {
		t.Errorf("CryptoJitter gave %d distinct values in 1000", len(seen))
	}
}

func TestHuman(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0s", 42 * time.Second: "42s", 59*day + 23*time.Hour + 5*time.Minute: "59d23h5m",
		30 * day: "30d", 90 * time.Minute: "1h30m", -2 * time.Hour: "-2h"} {
		if got := Human(d); got != want {
			t.Errorf("Human(%s) = %q, want %q", d, got, want)
		}
	}
}

// testCert is a self-signed certificate from notBefore to notAfter with its
// key, as PEM.
func testCert(t testing.TB, cn string, serial int64, notBefore, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
}

func write(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile keeps an existing file's mode
		t.Fatal(err)
	}
}

const collectPolicy = `apiVersion: harden/v1
profile: intermediate
certificates:
  source: vault-pki
  vault: {target: vault, store_dir: certs}
mtls: {scope: [events]}
targets:
  - name: vault
    plugin: vaultpki
    connection: {address: "https://127.0.0.1:1", token_file: ./vault-token}
  - name: warehouse-pg
    plugin: postgres
    connection: {host: 127.0.0.1, port: 5432, user: postgres}
  - name: events
    plugin: kafka
    connection: {bootstrap: ["127.0.0.1:9093"]}
  - name: legacy
    plugin: postgres
    connection: {host: 127.0.0.1, port: 5433, user: postgres}
    certificate: {cert_file: legacy.pem, key_file: legacy-key.pem}
  - name: fresh
    plugin: postgres
    connection: {host: 127.0.0.1, port: 5434, user: postgres}
clients:
  - name: spark-etl
    targets: [events]
    deliver: {dir: delivered/spark-etl}
`

// Collect reads what rotate covers from the store and the policy's files:
// the server certificate of every issued target, harden's client
// certificate where the target is in the mTLS scope, a files target's
// cert_file, each client identity; not the certificate source's own
// listener; a target with nothing stored is listed as missing.
func TestCollect(t *testing.T) {
	dir := t.TempDir()
	pol, err := policy.Parse(filepath.Join(dir, "policy.yaml"), []byte(collectPolicy))
	if err != nil {
		t.Fatal(err)
	}
	certs := filepath.Join(dir, "certs")
	pair := func(path string, serial int64, days int) {
		c, k := testCert(t, filepath.Base(filepath.Dir(path)), serial, schedNow.Add(-day), schedNow.Add(time.Duration(days)*day))
		write(t, path+".pem", c, 0o644)
		write(t, path+"-key.pem", k, 0o600)
	}
	pair(filepath.Join(certs, "warehouse-pg", "server"), 0x11, 80)
	pair(filepath.Join(certs, "events", "server"), 0x12, 70)
	pair(filepath.Join(certs, "events", "client"), 0x13, 60)
	pair(filepath.Join(certs, "clients", "spark-etl", "client"), 0x14, 50)
	pair(filepath.Join(certs, "vault", "server"), 0x15, 1) // never covered: the source's own listener
	legacy, _ := testCert(t, "legacy", 0x16, schedNow.Add(-day), schedNow.Add(65*day))
	write(t, filepath.Join(dir, "legacy.pem"), legacy, 0o644)

	held, missing, err := Collect(pol, pol.Targets, pol.Clients, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range held {
		got = append(got, h.Owner()+"|"+h.Source+"|"+h.Serial+"|"+h.NotAfter.Sub(schedNow).String())
	}
	want := []string{
		"target warehouse-pg server certificate|store|11|1920h0m0s",
		"target events server certificate|store|12|1680h0m0s",
		"target events harden client certificate|store|13|1440h0m0s",
		"target legacy server certificate|files|16|1560h0m0s",
		"client spark-etl certificate|store|14|1200h0m0s",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("held:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(missing) != 1 || !strings.HasPrefix(missing[0], "target fresh server certificate (") || !strings.Contains(missing[0], filepath.Join("certs", "fresh", "server.pem")) {
		t.Errorf("missing %q", missing)
	}
	s, err := NextRun(held, pol.Certificates.Rotation.RenewBefore, schedNow, fixed(0))
	if err != nil || s.DecidedBy.Client != "spark-etl" || !s.Next.Equal(schedNow.Add(20*day)) {
		t.Errorf("schedule %+v %v", s.DecidedBy, err)
	}

	// A crash between the key and the chain write: a pair that does not
	// match is due now, named by its file.
	other, _ := testCert(t, "x", 0x17, schedNow.Add(-day), schedNow.Add(80*day))
	write(t, filepath.Join(certs, "warehouse-pg", "server.pem"), other, 0o644)
	held, _, err = Collect(pol, pol.Targets[:2], nil, nil)
	if err != nil || len(held) != 1 || held[0].Problem != "certificate and key do not match" {
		t.Fatalf("mismatched pair: %+v %v", held, err)
	}
	if s, _ := NextRun(held, 30*day, schedNow, fixed(0.5)); !s.DueNow || s.DecidedBy.Rule != RuleUnusable {
		t.Errorf("mismatched pair schedule %+v", s)
	}

	// What cannot be read is an error naming it, never a schedule without it.
	write(t, filepath.Join(certs, "warehouse-pg", "server-key.pem"), []byte("x"), 0o644)
	if _, _, err := Collect(pol, pol.Targets[:2], nil, nil); err == nil || !strings.Contains(err.Error(), "server-key.pem") || !strings.Contains(err.Error(), "warehouse-pg") {
		t.Errorf("key readable by others: %v", err)
	}
	write(t, filepath.Join(dir, "legacy.pem"), []byte("-----BEGIN CERTIFICATE-----\nnot base64\n"), 0o644)
	if _, _, err := Collect(pol, pol.Targets[3:4], nil, nil); err == nil || !strings.Contains(err.Error(), "target legacy") || !strings.Contains(err.Error(), "legacy.pem") {
		t.Errorf("garbled files certificate: %v", err)
	}
	os.Remove(filepath.Join(dir, "legacy.pem"))
	if _, _, err := Collect(pol, pol.Targets[3:4], nil, nil); err == nil || !strings.Contains(err.Error(), "legacy.pem") {
		t.Errorf("missing files certificate: %v", err)
	}
	// Nothing issued at all.
	held, missing, err = Collect(pol, pol.Targets[4:], nil, nil)
	if err != nil || len(held) != 0 || len(missing) != 1 {
		t.Errorf("nothing issued: %v %v %v", held, missing, err)
	}
}

// The store's certificate file is whatever is on disk (a hand edit, a
// truncated write): any content gives a schedule with the run never before
// now and never after the certificate's end, or an error naming the file —
// never a panic.
func FuzzCollectStoredCertificate(f *testing.F) {
	c, _ := testCert(f, "seed", 1, schedNow.Add(-day), schedNow.Add(90*day))
	f.Add(c)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{})
	f.Add(append(append([]byte{}, c...), "-----BEGIN"...))
	dir := f.TempDir()
	pol, err := policy.Parse(filepath.Join(dir, "policy.yaml"), []byte(collectPolicy))
	if err != nil {
		f.Fatal(err)
	}
	_, key := testCert(f, "k", 2, schedNow, schedNow.Add(day))
	certFile := filepath.Join(dir, "certs", "warehouse-pg", "server.pem")
	write(f, certFile+"", nil, 0o644)
	write(f, filepath.Join(dir, "certs", "warehouse-pg", "server-key.pem"), key, 0o600)
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(certFile, data, 0o644); err != nil {
			t.Fatal(err)
		}
		held, missing, err := Collect(pol, pol.Targets[1:2], nil, nil)
		if err != nil {
			if !strings.Contains(err.Error(), "warehouse-pg") {
				t.Fatalf("error without the target: %v", err)
			}
			return
		}
		if len(held)+len(missing) != 1 {
			t.Fatalf("held %v missing %v", held, missing)
		}
		if len(held) == 0 {
			return
		}
		s, err := NextRun(held, 30*day, schedNow, CryptoJitter)
		if err != nil {
			t.Fatal(err)
		}
		if s.Next.Before(schedNow) || (s.DecidedBy.Problem == "" && s.Next.After(held[0].NotAfter) && held[0].NotAfter.After(schedNow)) {
			t.Fatalf("next %s for %+v", s.Next, held[0])
		}
		// This key belongs to no certificate in the input: the pair is
		// never usable, so it is always due now.
		if !s.DueNow {
			t.Fatalf("a pair whose key matches nothing is not due now: %+v", s.DecidedBy)
		}
	})
}

// A verify-only target (the service plugin) in the mTLS scope: harden holds
// only its own client certificate for it, so that one is scheduled and no
// server certificate is expected (none is "not issued yet"); outside the
// scope nothing is expected at all.
func TestCollectVerifyOnly(t *testing.T) {
	dir := t.TempDir()
	pol, err := policy.Parse(filepath.Join(dir, "policy.yaml"), []byte(`apiVersion: harden/v1
profile: intermediate
certificates:
  source: vault-pki
  vault: {target: vault, store_dir: certs}
mtls: {scope: [ingest]}
targets:
  - name: vault
    plugin: vaultpki
    connection: {address: "https://127.0.0.1:1", token_file: ./vault-token}
  - name: ingest
    plugin: service
    connection: {address: "127.0.0.1:8443", protocol: https}
  - name: public
    plugin: service
    connection: {address: "127.0.0.1:9443", protocol: https}
`))
	if err != nil {
		t.Fatal(err)
	}
	c, k := testCert(t, "harden-admin", 0x21, schedNow.Add(-day), schedNow.Add(60*day))
	write(t, filepath.Join(dir, "certs", "ingest", "client.pem"), c, 0o644)
	write(t, filepath.Join(dir, "certs", "ingest", "client-key.pem"), k, 0o600)
	service := func(t policy.Target) bool { return t.Plugin == "service" }
	held, missing, err := Collect(pol, pol.Targets, nil, service)
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 1 || held[0].Owner() != "target ingest harden client certificate" || held[0].Serial != "21" {
		t.Errorf("held %+v, want only harden's client certificate for ingest", held)
	}
	if len(missing) != 0 {
		t.Errorf("missing %q: a verify-only target has no server certificate to issue", missing)
	}
	// Without the knowledge, the server certificates would be "missing".
	if _, missing, _ := Collect(pol, pol.Targets, nil, nil); len(missing) != 2 {
		t.Errorf("missing without verifyOnly: %q", missing)
	}
}
