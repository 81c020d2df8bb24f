package rotate

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/host/internal/certstore"
	"github.com/harden-dev/harden/shared/sdk"
)

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, cn string) testCA {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour), KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return testCA{c, k, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

var serial int64 = 100

func (ca testCA) leaf(t *testing.T, life time.Duration) certstore.Pair {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "pg"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(life), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &k.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(k)
	return certstore.Pair{Chain: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), Key: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})}
}

func listener(name, reloads string, hs ...sdk.ServedHandshake) sdk.ServedListener {
	return sdk.ServedListener{Name: name, Address: "127.0.0.1:5432", ReloadsOn: reloads, Handshakes: hs}
}

func served(p certstore.Pair) sdk.ServedHandshake {
	return sdk.ServedHandshake{ChainPEM: p.Chain, Version: "TLSv1.3", Outcome: sdk.OutcomeAccepted, Evidence: "ok"}
}

func repeat(h sdk.ServedHandshake, n int) []sdk.ServedHandshake {
	out := make([]sdk.ServedHandshake, n)
	for i := range out {
		out[i] = h
	}
	return out
}

func TestJudge(t *testing.T) {
	ca := newCA(t, "ca")
	other := newCA(t, "other")
	oldP, newP := ca.leaf(t, 10*24*time.Hour), ca.leaf(t, 90*24*time.Hour)
	stranger := other.leaf(t, 90*24*time.Hour)
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	ex := Expect{Leaf: Leaf(newP), Old: Leaf(oldP), Roots: roots, Now: now, Handshakes: 4}
	inconclusive := sdk.ServedHandshake{Outcome: sdk.OutcomeInconclusive, Evidence: "TLS handshake: connection reset"}
	refusedAfter := served(newP)
	refusedAfter.Outcome, refusedAfter.Evidence = sdk.OutcomeRefused, "SQLSTATE 28000"
	cases := []struct {
		name     string
		inv      sdk.InventoryResponse
		ok       bool
		says     string
		pending  int
		counted  int
		listened int
	}{
		{"all new", sdk.InventoryResponse{Listeners: []sdk.ServedListener{listener("a", "", repeat(served(newP), 4)...), listener("b", "", repeat(served(newP), 4)...)}}, true, "8 fresh handshake(s) on 2 listener(s)", 0, 8, 2},
		{"one old handshake", sdk.InventoryResponse{Listeners: []sdk.ServedListener{listener("a", "", served(newP), served(newP), served(oldP), served(newP))}}, false, "not the expected serial " + serialHex(Leaf(newP)) + " in 1 of 4 handshake(s) (#3)", 0, 4, 1},
		{"old on a restart-only listener", sdk.InventoryResponse{Listeners: []sdk.ServedListener{listener("a", "", repeat(served(newP), 4)...), listener("CONTROLLER", "restart", repeat(served(oldP), 4)...)}}, true, "restart needed: CONTROLLER", 1, 8, 2},
		{"a stranger on a restart-only listener", sdk.InventoryResponse{Listeners: []sdk.ServedListener{listener("CONTROLLER", "restart", repeat(served(stranger), 4)...)}}, false, "not the expected serial", 0, 4, 1},
		{"untrusted chain", sdk.InventoryResponse{Listeners: []sdk.ServedListener{listener("a", "", repeat(served(stranger), 4)...)}}, false, "not the expected serial", 0, 4, 1},
		{"inconclusive", sdk.InventoryResponse{Listeners: []sdk.ServedListener{listener("a", "", served(newP), served(newP), served(newP), inconclusive)}}, false, "no certificate observed (inconclusive: TLS handshake: connection reset)", 0, 3, 1},
		{"session refused", sdk.InventoryResponse{Listeners: []sdk.ServedListener{listener("a", "", served(newP), served(newP), served(newP), refusedAfter)}}, false, "the session did not go through (refused: SQLSTATE 28000)", 0, 4, 1},
		{"too few", sdk.InventoryResponse{Listeners: []sdk.ServedListener{listener("a", "", served(newP))}}, false, "1 of 4 handshakes observed", 0, 1, 1},
		{"no listeners", sdk.InventoryResponse{}, false, "no TLS listener", 0, 0, 0},
		{"only restart-only listeners, all on the old one", sdk.InventoryResponse{Listeners: []sdk.ServedListener{listener("CONTROLLER", "restart", repeat(served(oldP), 4)...)}}, false, "no listener that takes new certificates live serves the new one", 1, 4, 1},
		{"unreachable", sdk.InventoryResponse{Listeners: []sdk.ServedListener{{Name: "a", Address: "127.0.0.1:1", Error: "connection refused"}}}, false, "connection refused", 0, 0, 0},
		{"diagnostic", sdk.InventoryResponse{Diagnostics: sdk.Diagnostics{{Severity: sdk.Error, Summary: "login failed"}}, Listeners: []sdk.ServedListener{listener("a", "", repeat(served(newP), 4)...)}}, false, "login failed", 0, 4, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := Judge(c.inv, ex)
			if v.OK != c.ok || !strings.Contains(v.String(), c.says) || len(v.Pending) != c.pending || v.Handshakes != c.counted || v.Listeners != c.listened {
				t.Errorf("verdict %+v (%s); want ok=%v saying %q, %d pending, %d handshakes on %d listeners", v, v, c.ok, c.says, c.pending, c.counted, c.listened)
			}
		})
	}
	// A listener seen before the push and missing after it.
	withNames := ex
	withNames.Listeners = []string{"a", "b"}
	if v := Judge(sdk.InventoryResponse{Listeners: []sdk.ServedListener{listener("a", "", repeat(served(newP), 4)...)}}, withNames); v.OK || !strings.Contains(v.String(), "listener b was live before the push and is not reported now") {
		t.Errorf("missing listener: %+v", v)
	}
	// The expected leaf under a bundle that does not hold its CA.
	otherRoots := x509.NewCertPool()
	otherRoots.AddCert(other.cert)
	untrusting := ex
	untrusting.Roots = otherRoots
	if v := Judge(sdk.InventoryResponse{Listeners: []sdk.ServedListener{listener("a", "", repeat(served(newP), 4)...)}}, untrusting); v.OK || !strings.Contains(v.String(), "would refuse it") {
		t.Errorf("untrusted bundle: %+v", v)
	}
	// Without an old certificate (a CA phase push), an old leaf fails even
	// on a restart-only listener.
	noOld := ex
	noOld.Old = nil
	if v := Judge(sdk.InventoryResponse{Listeners: []sdk.ServedListener{listener("a", "", repeat(served(newP), 4)...), listener("C", "restart", repeat(served(oldP), 4)...)}}, noOld); v.OK {
		t.Errorf("Old=nil: %+v", v)
	}
	// Wrong host name: the chain is trusted but not for the listener.
	inv := sdk.InventoryResponse{Listeners: []sdk.ServedListener{{Name: "a", Address: "127.0.0.9:5432", Handshakes: repeat(served(newP), 4)}}}
	if v := Judge(inv, ex); v.OK || !strings.Contains(v.String(), "would refuse it") {
		t.Errorf("wrong name: %+v", v)
	}
	// Expired by the gate's clock.
	late := ex
	late.Now = now.Add(100 * 24 * time.Hour)
	if v := Judge(sdk.InventoryResponse{Listeners: []sdk.ServedListener{listener("a", "", repeat(served(newP), 4)...)}}, late); v.OK {
		t.Errorf("an expired chain passed the gate")
	}
}

func TestDue(t *testing.T) {
	ca := newCA(t, "ca")
	other := newCA(t, "other")
	w := certstore.Want{Kind: "server", CommonName: "pg", Names: []string{"127.0.0.1"}, CAPEM: ca.pem}
	rb := 30 * 24 * time.Hour
	good, soon, expired := ca.leaf(t, 60*24*time.Hour), ca.leaf(t, 20*24*time.Hour), ca.leaf(t, time.Hour)
	mismatched := certstore.Pair{Chain: good.Chain, Key: soon.Key}
	for _, c := range []struct {
		name string
		p    certstore.Pair
		w    certstore.Want
		at   time.Time
		want string
	}{
		{"good", good, w, now, ""},
		{"nothing", certstore.Pair{}, w, now, "no certificate stored"},
		{"mismatched", mismatched, w, now, "do not match"},
		{"within renew_before", soon, w, now, "within renew_before (720h0m0s)"},
		{"expired", expired, w, now.Add(2 * time.Hour), "expired on"},
		{"not yet valid", good, w, now.Add(-2 * time.Hour), "not valid before"},
		{"another CA", good, certstore.Want{Kind: "server", CAPEM: other.pem}, now, "does not chain"},
		{"a missing name", good, certstore.Want{Kind: "server", Names: []string{"db.example"}, CAPEM: ca.pem}, now, "does not cover db.example"},
	} {
		if got := Due(c.p, c.w, rb, c.at); (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: Due = %q, want %q", c.name, got, c.want)
		}
	}
}
