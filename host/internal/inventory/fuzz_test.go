package inventory

import (
	"slices"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
)

// The chains in a plugin's answer are untrusted bytes (what a server sent,
// relayed). Whatever they are: no panic, every item ends in a tier the rules
// know, an item that could not be read is "unknown" with its error (never
// "ok"), a tiered item carries the certificate or key it was judged by, a
// served certificate is listed only from bytes that parse, and the exit code
// is the most urgent item's.
func FuzzCollect(f *testing.F) {
	ca := newCA(f, "Fuzz CA", now.Add(400*day))
	leaf := ca.leaf(f, 2, "a", now.Add(10*day))
	f.Add(leaf, ca.pem, leaf, int64(0), int64(-1))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), []byte{}, []byte("garbage"), int64(30*day), int64(day))
	f.Add(leaf[:len(leaf)/2], ca.pem[10:], []byte{}, int64(-5), int64(1<<62))
	pol := parsePolicy(f, filesPolicy)
	rules := NewRules(pol.Certificates.Rotation.RenewBefore, pol.Certificates.Rotation.AlertAt)
	known := append([]string{TierOK, TierExpired, TierNotYetValid, TierRotationDisabled, TierOverdue, TierUnknown}, rules.TierNames()...)
	f.Fuzz(func(t *testing.T, served, bundle, stored []byte, period, created int64) {
		tgt := Target{Name: "a", Certificates: sdk.Certificates{ChainPEM: stored, CABundlePEM: bundle},
			Response: sdk.InventoryResponse{
				Listeners: []sdk.ServedListener{{Name: "tls", Address: "127.0.0.1:1", Handshakes: []sdk.ServedHandshake{{ChainPEM: served, Outcome: sdk.OutcomeAccepted}, {ChainPEM: stored}}}},
				Stored: []sdk.StoredItem{{Kind: sdk.StoredCA, Name: "pki", ChainPEM: stored}, {Kind: sdk.StoredCertificate, ChainPEM: served},
					{Kind: sdk.StoredKey, Name: "kek", AutoRotatePeriod: time.Duration(period), LatestCreated: now.Add(time.Duration(created))}}}}
		r := Collect(pol, []Target{tgt}, now)
		_, servedErr := sdk.ParseCertificatesPEM(served)
		_, storedErr := sdk.ParseCertificatesPEM(stored)
		code := 0
		for _, it := range r.Items {
			if !slices.Contains(known, it.Tier) {
				t.Fatalf("tier %q of %+v", it.Tier, it)
			}
			if it.Error != "" && it.Tier != TierUnknown {
				t.Fatalf("an item with an error has tier %q: %+v", it.Tier, it)
			}
			if it.Tier != TierUnknown && it.Certificate == nil && it.Key == nil {
				t.Fatalf("tier %q without a certificate or key: %+v", it.Tier, it)
			}
			if it.Kind == KindServed && it.Certificate != nil && servedErr != nil && storedErr != nil {
				t.Fatalf("a served certificate from bytes that do not parse: %+v", it)
			}
			code = max(code, rules.ExitCode(it.Tier))
		}
		if code != r.Summary.ExitCode || r.Summary.Items != len(r.Items) {
			t.Fatalf("summary %+v, want exit %d over %d items", r.Summary, code, len(r.Items))
		}
	})
}
