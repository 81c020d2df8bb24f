package inventory

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/host/internal/engine"
	"github.com/harden-dev/harden/host/internal/policy"
	"github.com/harden-dev/harden/shared/sdk"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t testing.TB, cn string, notAfter time.Time) testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: now.Add(-100 * day), NotAfter: notAfter,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return testCA{cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// leaf is a certificate from ca valid until notAfter; its PEM chain is the
// leaf followed by the CA.
func (ca testCA) leaf(t testing.TB, serial int64, cn string, notAfter time.Time) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, NotBefore: now.Add(-60 * day), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), ca.pem...)
}

func parsePolicy(t testing.TB, yaml string) *policy.Policy {
	t.Helper()
	pol, err := policy.Parse(filepath.Join("/srv/harden", "policy.yaml"), []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

const filesPolicy = `apiVersion: harden/v1
profile: intermediate
certificates:
  source: files
  files: {ca_file: ca.pem}
mtls: {scope: [a]}
targets:
  - name: a
    plugin: redis
    certificate: {cert_file: a.pem, key_file: a-key.pem, client_cert_file: harden.pem, client_key_file: harden-key.pem}
  - name: b
    plugin: redis
    certificate: {cert_file: b.pem, key_file: b-key.pem}
`

func items(r *Report, kind, target string) []Item {
	var out []Item
	for _, it := range r.Items {
		if it.Kind == kind && it.Target == target {
			out = append(out, it)
		}
	}
	return out
}

func hasFinding(it Item, phrase string) bool {
	for _, f := range it.Findings {
		if strings.Contains(f, phrase) {
			return true
		}
	}
	return false
}

// One target's served, held and stored items and the CA bundle shared with
// a second target: trust against the held bundle, matches_held, listeners
// that could not be read, stored CAs and keys, diagnostics.
func TestCollect(t *testing.T) {
	pol := parsePolicy(t, filesPolicy)
	ca := newCA(t, "Test CA", now.Add(400*day))
	other := newCA(t, "Other CA", now.Add(400*day))
	heldA := ca.leaf(t, 10, "a", now.Add(25*day))
	client := ca.leaf(t, 11, "harden", now.Add(40*day))
	heldB := ca.leaf(t, 12, "b", now.Add(3*day))
	foreign := other.leaf(t, 13, "a", now.Add(10*day))
	vaultRoot := newCA(t, "Vault root", now.Add(-day)) // expired
	kekCreated := now.Add(-40 * day)
	a := Target{Name: "a", Certificates: sdk.Certificates{ChainPEM: heldA, ClientChainPEM: client, CABundlePEM: ca.pem},
		Response: sdk.InventoryResponse{
			Listeners: []sdk.ServedListener{
				{Name: "tls", Address: "127.0.0.1:1", Handshakes: []sdk.ServedHandshake{{ChainPEM: heldA, Version: "TLSv1.3", Outcome: sdk.OutcomeAccepted, Evidence: "PONG"}}},
				{Name: "other", Address: "127.0.0.1:2", Handshakes: []sdk.ServedHandshake{{ChainPEM: foreign, Version: "TLSv1.2", Outcome: sdk.OutcomeRefused, Evidence: "alert bad certificate"}}},
				{Name: "down", Address: "127.0.0.1:3", Error: "connection refused"},
				{Name: "silent", Address: "127.0.0.1:4", Handshakes: []sdk.ServedHandshake{{Outcome: sdk.OutcomeInconclusive, Evidence: "TLS handshake: timeout"}}},
			},
			Stored: []sdk.StoredItem{
				{Kind: sdk.StoredCA, Name: "pki", Location: "pki/", ChainPEM: append(ca.pem, vaultRoot.pem...)},
				{Kind: sdk.StoredCA, Name: "root", Location: "root/", ChainPEM: vaultRoot.pem},
				{Kind: sdk.StoredKey, Name: "harden-kek", Location: "transit/keys/harden-kek", LatestVersion: 2, LatestCreated: kekCreated, KeyType: "aes256-gcm96"},
				{Kind: sdk.StoredKey, Name: "rotating", Location: "transit/keys/rotating", LatestVersion: 5, LatestCreated: now.Add(-day), AutoRotatePeriod: 30 * day},
				{Kind: sdk.StoredKey, Name: "locked", Location: "transit/keys/locked", Error: "permission denied"},
				{Kind: "blob", Name: "x", Location: "somewhere"},
			},
			Diagnostics: sdk.Diagnostics{{Severity: sdk.Warning, Summary: "an interrupted apply"}, {Severity: sdk.Error, Summary: "cannot list mounts"}},
		}}
	b := Target{Name: "b", Certificates: sdk.Certificates{ChainPEM: heldB, CABundlePEM: ca.pem}}
	r := Collect(pol, []Target{a, b}, now)

	served := items(r, KindServed, "a")
	if len(served) != 4 {
		t.Fatalf("%d served items, want 4: %+v", len(served), served)
	}
	ok := served[0]
	if ok.Tier != "30d" || ok.Served == nil || !ok.Served.Trusted || ok.Served.MatchesHeld == nil || !*ok.Served.MatchesHeld ||
		ok.Served.Outcome != sdk.OutcomeAccepted || ok.Served.Version != "TLSv1.3" || ok.Certificate.Serial != "a" || ok.Certificate.DaysLeft != 25 ||
		!ok.Certificate.RenewAt.Equal(now.Add(-5*day)) || len(ok.Findings) != 0 {
		t.Errorf("served leaf harden holds: %+v %+v", ok, ok.Served)
	}
	bad := served[1]
	if bad.Tier != "14d" || bad.Served.Trusted || bad.Served.TrustError == "" || *bad.Served.MatchesHeld ||
		!hasFinding(bad, "does not verify against the CA bundle") || !hasFinding(bad, "other than the one harden holds") || !hasFinding(bad, "refused: alert bad certificate") {
		t.Errorf("foreign leaf: %+v %+v", bad, bad.Served)
	}
	if served[2].Tier != TierUnknown || !strings.Contains(served[2].Error, "connection refused") || served[2].Certificate != nil {
		t.Errorf("unreachable listener: %+v", served[2])
	}
	if served[3].Tier != TierUnknown || !strings.Contains(served[3].Error, "no certificate seen") || !strings.Contains(served[3].Error, "timeout") {
		t.Errorf("listener without a chain: %+v", served[3])
	}
	if h := items(r, KindServer, "a"); len(h) != 1 || h[0].Where != "/srv/harden/a.pem" || h[0].Tier != "30d" {
		t.Errorf("held server certificate: %+v", h)
	}
	if h := items(r, KindClient, "a"); len(h) != 1 || h[0].Where != "/srv/harden/harden.pem" || h[0].Tier != TierOK || h[0].Certificate.Subject != "CN=harden" {
		t.Errorf("held client certificate: %+v", h)
	}
	if h := items(r, KindServer, "b"); len(h) != 1 || h[0].Tier != "7d" {
		t.Errorf("b's held certificate: %+v", h)
	}
	if cas := items(r, KindCA, ""); len(cas) != 1 || strings.Join(cas[0].Targets, ",") != "a,b" || cas[0].Where != "/srv/harden/ca.pem" || cas[0].Tier != TierOK {
		t.Errorf("CA bundle, deduplicated: %+v", cas)
	}
	// The root in pki's chain is an issuer of its own: listed once, there.
	if st := items(r, KindStoredCA, "a"); len(st) != 2 || st[0].Tier != TierOK || st[0].Where != "pki/" || st[1].Tier != TierExpired || st[1].Where != "root/" {
		t.Errorf("stored CA chain: %+v", st)
	}
	keys := items(r, KindKey, "a")
	if len(keys) != 3 {
		t.Fatalf("keys: %+v", keys)
	}
	if k := keys[0]; k.Tier != TierRotationDisabled || !hasFinding(k, "rotation disabled") || k.Key.NextRotation != nil || *k.Key.AgeDays != 40 ||
		k.Key.LatestVersion != 2 || k.Key.AutoRotatePeriodSeconds != 0 {
		t.Errorf("KEK without rotation: %+v %+v", k, k.Key)
	}
	if k := keys[1]; k.Tier != TierOK || k.Key.NextRotation == nil || !k.Key.NextRotation.Equal(now.Add(29*day)) || k.Key.AutoRotatePeriod != "30d" {
		t.Errorf("rotating KEK: %+v %+v", k, k.Key)
	}
	if k := keys[2]; k.Tier != TierUnknown || k.Error != "permission denied" {
		t.Errorf("unreadable KEK: %+v", k)
	}
	tgt := items(r, KindTarget, "a")
	if len(tgt) != 2 || !strings.Contains(tgt[0].Error, "cannot list mounts") || !strings.Contains(tgt[1].Error, `unknown kind "blob"`) {
		t.Errorf("target-level items: %+v", tgt)
	}
	if len(r.Notes) != 1 || r.Notes[0].Target != "a" || !strings.Contains(r.Notes[0].Message, "interrupted apply") {
		t.Errorf("notes: %+v", r.Notes)
	}
	s := r.Summary
	if s.ExitCode != ExitExpired || s.Tiers["7d"] != 1 || s.Tiers["30d"] != 2 || s.Tiers[TierExpired] != 1 || s.Incomplete != 5 || s.Items != len(r.Items) {
		t.Errorf("summary: %+v", s)
	}
}

// The most urgent item decides the exit code; an unreadable item alone is 3.
func TestCollectExitCode(t *testing.T) {
	pol := parsePolicy(t, filesPolicy)
	ca := newCA(t, "Test CA", now.Add(400*day))
	for name, tc := range map[string]struct {
		left []time.Duration
		err  bool
		want int
	}{
		"all fine":              {[]time.Duration{40 * day}, false, 0},
		"unreadable only":       {[]time.Duration{40 * day}, true, 3},
		"30d beats unreadable":  {[]time.Duration{25 * day}, true, 4},
		"14d":                   {[]time.Duration{40 * day, 10 * day, 25 * day}, false, 5},
		"7d":                    {[]time.Duration{3 * day, 10 * day}, false, 6},
		"expired beats the 7d":  {[]time.Duration{3 * day, -time.Hour}, true, 7},
		"expired at the minute": {[]time.Duration{0}, false, 7},
	} {
		t.Run(name, func(t *testing.T) {
			var hs []sdk.ServedHandshake
			for i, l := range tc.left {
				hs = append(hs, sdk.ServedHandshake{ChainPEM: ca.leaf(t, int64(100+i), "a", now.Add(l)), Outcome: sdk.OutcomeAccepted})
			}
			tgt := Target{Name: "a", Certificates: sdk.Certificates{CABundlePEM: ca.pem},
				Response: sdk.InventoryResponse{Listeners: []sdk.ServedListener{{Name: "tls", Address: "127.0.0.1:1", Handshakes: hs}}}}
			if tc.err {
				tgt.Errors = []error{errors.New("listener list unreadable")}
			}
			r := Collect(pol, []Target{tgt}, now)
			if r.Summary.ExitCode != tc.want {
				t.Errorf("exit %d, want %d: %+v", r.Summary.ExitCode, tc.want, r.Summary)
			}
			if len(tc.left) > 1 && !hasFinding(items(r, KindServed, "a")[0], "different certificates") {
				t.Errorf("a listener serving several leaves is not a finding: %+v", r.Items)
			}
		})
	}
}

// A plugin without the capability is an unreadable target item (3), not an
// empty inventory; the plugin is not called.
func TestAskWithoutCapability(t *testing.T) {
	p := &engine.Plugin{Meta: sdk.MetadataResponse{Name: "echo", Capabilities: []sdk.Capability{sdk.CapVerify}}}
	got := Ask(t.Context(), p, sdk.RequestContext{Target: sdk.NewTarget("e", nil, nil, nil)})
	if len(got.Errors) != 1 || !strings.Contains(got.Errors[0].Error(), "plugin echo does not report an inventory") {
		t.Fatalf("%+v", got)
	}
	r := Collect(parsePolicy(t, filesPolicy), []Target{got}, now)
	if r.Summary.ExitCode != ExitIncomplete || r.Items[0].Kind != KindTarget {
		t.Errorf("%+v", r)
	}
}

// vault-pki: harden's certificates are in the store; none stored yet is an
// unreadable item naming the file and apply — unless the request failed,
// whose error is then the item.
func TestCollectVaultPKIStore(t *testing.T) {
	pol := parsePolicy(t, `apiVersion: harden/v1
profile: intermediate
certificates:
  source: vault-pki
  vault: {target: vault, store_dir: /var/lib/harden/certs}
  rotation: {renew_before: 45d, alert_at: [7d]}
mtls: {scope: [pg]}
targets:
  - {name: vault, plugin: vaultpki}
  - {name: pg, plugin: postgres}
`)
	r := Collect(pol, []Target{{Name: "vault"}, {Name: "pg"}}, now)
	srv, cl := items(r, KindServer, "pg"), items(r, KindClient, "pg")
	if len(srv) != 1 || srv[0].Where != "/var/lib/harden/certs/pg/server.pem" || !strings.Contains(srv[0].Error, "harden apply issues it") ||
		len(cl) != 1 || cl[0].Where != "/var/lib/harden/certs/pg/client.pem" || len(items(r, KindServer, "vault")) != 0 {
		t.Errorf("missing stored certificates: %+v", r.Items)
	}
	r = Collect(pol, []Target{{Name: "pg", RequestErr: errors.New("certificate source vault-pki could not provide the policy CA")}}, now)
	if len(r.Items) != 1 || r.Items[0].Kind != KindTarget || r.Summary.ExitCode != ExitIncomplete {
		t.Errorf("failed request: %+v", r.Items)
	}
	// renew_before (45d) beyond the only alert tier (7d): due for renewal
	// is a finding, the tier stays ok.
	ca := newCA(t, "Vault CA", now.Add(400*day))
	r = Collect(pol, []Target{{Name: "pg", Certificates: sdk.Certificates{ChainPEM: ca.leaf(t, 5, "pg", now.Add(40*day)), ClientChainPEM: ca.leaf(t, 6, "harden-admin", now.Add(80*day)), CABundlePEM: ca.pem}}}, now)
	srv = items(r, KindServer, "pg")
	if len(srv) != 1 || srv[0].Tier != TierOK || !hasFinding(srv[0], "due for renewal since") || r.Summary.ExitCode != 0 ||
		items(r, KindCA, "")[0].Where != "certificate source vault-pki (target vault)" {
		t.Errorf("stored certificate due for renewal: %+v", r.Items)
	}
}

// The JSON names issue 15's exporter reads, and the text table.
func TestReportFormats(t *testing.T) {
	pol := parsePolicy(t, filesPolicy)
	ca := newCA(t, "Test CA", now.Add(400*day))
	r := Collect(pol, []Target{{Name: "a", Certificates: sdk.Certificates{ChainPEM: ca.leaf(t, 7, "a", now.Add(10*day)), CABundlePEM: ca.pem},
		Response: sdk.InventoryResponse{
			Listeners: []sdk.ServedListener{{Name: "tls", Address: "127.0.0.1:1", Handshakes: []sdk.ServedHandshake{{ChainPEM: ca.leaf(t, 8, "a", now.Add(10*day)), Outcome: sdk.OutcomeAccepted}}}},
			Stored:    []sdk.StoredItem{{Kind: sdk.StoredKey, Name: "kek", Location: "transit/keys/kek", LatestVersion: 1, LatestCreated: now.Add(-3 * day)}}}}, {Name: "b"}}, now)
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(r); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"format_version":1`, `"generated_at":"2026-03-01T12:00:00Z"`, `"policy":"/srv/harden/policy.yaml"`, `"alert_at":["30d","14d","7d"]`,
		`"kind":"served"`, `"days_left":10`, `"renew_at":`, `"not_after":`, `"sha256":`, `"serial":"8"`, `"trusted":true`, `"matches_held":false`,
		`"reloads_on":""`, `"tier":"14d"`, `"next_rotation":null`, `"auto_rotate_period_seconds":0`, `"age_days":3`, `"tier":"rotation_disabled"`,
		`"summary":{"items":4,"tiers":{"14d":2,"ok":1,"rotation_disabled":1},"incomplete":0,"findings":2,"exit_code":5}`} {
		if !strings.Contains(buf.String(), k) {
			t.Errorf("JSON lacks %s:\n%s", k, buf.String())
		}
	}
	buf.Reset()
	if err := WriteText(&buf, r); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, k := range []string{"target a\n", "KIND", "RENEW AT / NEXT ROTATION", "served  tls 127.0.0.1:1", "CN=a", "never (rotation off)",
		"! serves a certificate other than the one harden holds", "CA certificates harden trusts", "(a)",
		"Summary: 4 items: 1 ok, 2 14d, 1 rotation_disabled; 2 with findings; exit code 5", "target b\n  (nothing listed)"} {
		if !strings.Contains(out, k) {
			t.Errorf("text lacks %q:\n%s", k, out)
		}
	}
}

// Without a bundle (the certificate source's own target) the chain is not
// judged and that is no finding; without a held certificate matches_held is
// null.
func TestServedWithoutBundle(t *testing.T) {
	ca := newCA(t, "API CA", now.Add(400*day))
	r := Collect(parsePolicy(t, filesPolicy), []Target{{Name: "b", Response: sdk.InventoryResponse{Listeners: []sdk.ServedListener{
		{Name: "api", Address: "127.0.0.1:8200", ReloadsOn: "SIGHUP", Handshakes: []sdk.ServedHandshake{{ChainPEM: ca.leaf(t, 3, "vault", now.Add(60*day)), Outcome: sdk.OutcomeAccepted}}}}}}}, now)
	s := items(r, KindServed, "b")
	if len(s) != 1 || s[0].Served.Trusted || !strings.Contains(s[0].Served.TrustError, "not judged") || len(s[0].Findings) != 0 ||
		s[0].Served.MatchesHeld != nil || s[0].Served.ReloadsOn != "SIGHUP" || r.Summary.ExitCode != 0 {
		t.Errorf("%+v %+v", s, s[0].Served)
	}
	j, _ := json.Marshal(s[0])
	if !strings.Contains(string(j), `"matches_held":null`) {
		t.Errorf("matches_held not null: %s", j)
	}
}

// A listener harden does not deploy to (reloads_on never: an object
// store's own TLS, where harden holds a certificate it cannot install)
// serving its operator's certificate is no finding; the same certificate
// on a listener harden deploys to is one.
func TestServedOnListenerHardenDoesNotDeployIsNoMismatch(t *testing.T) {
	pol := parsePolicy(t, filesPolicy)
	ca := newCA(t, "Test CA", now.Add(400*day))
	held := ca.leaf(t, 20, "a", now.Add(60*day))
	operators := ca.leaf(t, 21, "a", now.Add(60*day))
	for _, c := range []struct {
		reloadsOn string
		finding   bool
	}{{sdk.ReloadsNever, false}, {"reload", true}} {
		a := Target{Name: "a", Certificates: sdk.Certificates{ChainPEM: held, CABundlePEM: ca.pem},
			Response: sdk.InventoryResponse{Listeners: []sdk.ServedListener{{Name: "s3", Address: "127.0.0.1:1", ReloadsOn: c.reloadsOn,
				Handshakes: []sdk.ServedHandshake{{ChainPEM: operators, Version: "TLSv1.3", Outcome: sdk.OutcomeAccepted, Evidence: "200"}}}}}}
		r := Collect(pol, []Target{a, {Name: "b", Certificates: sdk.Certificates{ChainPEM: held, CABundlePEM: ca.pem}}}, now)
		served := items(r, KindServed, "a")
		if len(served) != 1 || hasFinding(served[0], "other than the one harden holds") != c.finding {
			t.Errorf("reloads_on %q: %+v", c.reloadsOn, served)
		}
	}
}

// Client identities belong to no target: the text report prints them in
// their own table, so every item the summary counts is on screen (an
// unissued one's "could not be read" included).
func TestWriteTextPrintsClientIdentities(t *testing.T) {
	pol := parsePolicy(t, filesPolicy)
	ca := newCA(t, "Test CA", now.Add(400*day))
	r := CollectWith(pol, []Target{{Name: "a", Certificates: sdk.Certificates{CABundlePEM: ca.pem}}, {Name: "b"}},
		[]HeldClient{{Name: "spark-etl", Where: "/store/clients/spark-etl", Chain: ca.leaf(t, 30, "spark-etl", now.Add(40*day))}, {Name: "reporting", Where: "/store/clients/reporting"}}, now)
	var buf bytes.Buffer
	if err := WriteText(&buf, r); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, k := range []string{"Client identities (clients:)", "CN=spark-etl", "client reporting has no certificate yet"} {
		if !strings.Contains(out, k) {
			t.Errorf("text lacks %q:\n%s", k, out)
		}
	}
}
