package rotate

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
)

// Expect is what the gate requires of every listener.
type Expect struct {
	// Leaf is the certificate every listener must serve.
	Leaf *x509.Certificate
	// Old is the certificate being replaced: a listener that takes new
	// material only on restart (ReloadsOn) may still serve it, and the
	// gate then reports the restart as pending instead of failing.
	Old *x509.Certificate
	// Roots is the bundle clients hold: every served chain must verify
	// against it, for the listener's host name, now.
	Roots *x509.CertPool
	Now   time.Time
	// Handshakes each listener must have answered.
	Handshakes int
	// Listeners: names that must all be observed (what was live before
	// the push); none missing.
	Listeners []string
}

// Verdict of one gate run.
type Verdict struct {
	OK bool
	// Listeners and Handshakes counted (each handshake a fresh session).
	Listeners, Handshakes int
	// Pending: listeners that serve the new certificate only after a
	// restart (named, with what they serve now).
	Pending []string
	// Problems: why the gate failed, with the evidence.
	Problems []string
}

func (v Verdict) String() string {
	if v.OK {
		s := fmt.Sprintf("%d fresh handshake(s) on %d listener(s) served the expected certificate", v.Handshakes, v.Listeners)
		if len(v.Pending) > 0 {
			s += "; restart needed: " + strings.Join(v.Pending, "; ")
		}
		return s
	}
	return strings.Join(v.Problems, "; ")
}

// Judge decides from one Inventory answer. Only conclusive evidence passes:
// a listener that could not be reached, a handshake without a chain, an
// inconclusive session, fewer handshakes than asked or zero listeners
// fail the gate — a gate that saw nothing proves nothing.
func Judge(inv sdk.InventoryResponse, ex Expect) Verdict {
	var v Verdict
	fail := func(format string, args ...any) { v.Problems = append(v.Problems, fmt.Sprintf(format, args...)) }
	if inv.Diagnostics.HasError() {
		fail("inventory: %v", inv.Diagnostics.Err())
	}
	if len(inv.Listeners) == 0 {
		fail("the plugin reported no TLS listener: nothing was observed")
	}
	seenNames := map[string]bool{}
	for _, l := range inv.Listeners {
		seenNames[l.Name] = true
	}
	for _, n := range ex.Listeners {
		if !seenNames[n] {
			fail("listener %s was live before the push and is not reported now", n)
		}
	}
	live := 0
	for _, l := range inv.Listeners {
		name := l.Name + " at " + l.Address
		if l.Error != "" {
			fail("listener %s: %s", name, l.Error)
			continue
		}
		v.Listeners++
		if len(l.Handshakes) < ex.Handshakes {
			fail("listener %s: %d of %d handshakes observed", name, len(l.Handshakes), ex.Handshakes)
		}
		pending := false
		// The same finding in several handshakes is said once, with the
		// handshakes it was seen in.
		var order []string
		seen := map[string][]int{}
		note := func(i int, format string, args ...any) {
			m := fmt.Sprintf(format, args...)
			if _, ok := seen[m]; !ok {
				order = append(order, m)
			}
			seen[m] = append(seen[m], i+1)
		}
		for i, h := range l.Handshakes {
			chain, err := sdk.ParseCertificatesPEM(h.ChainPEM)
			if err != nil || len(chain) == 0 {
				note(i, "no certificate observed (%s: %s)", h.Outcome, h.Evidence)
				continue
			}
			v.Handshakes++
			leaf := chain[0]
			switch {
			case bytes.Equal(leaf.Raw, ex.Leaf.Raw):
			case l.ReloadsOn != "" && ex.Old != nil && bytes.Equal(leaf.Raw, ex.Old.Raw):
				pending = true
			default:
				note(i, "serves serial %s (%s), not the expected serial %s", serialHex(leaf), leaf.Subject.CommonName, serialHex(ex.Leaf))
				continue
			}
			if err := verifyChain(chain, ex.Roots, hostOf(l.Address), ex.Now); err != nil {
				note(i, "a client holding the current bundle would refuse it: %v", err)
			}
			if h.Outcome != sdk.OutcomeAccepted {
				note(i, "the session did not go through (%s: %s)", h.Outcome, h.Evidence)
			}
		}
		for _, m := range order {
			fail("listener %s: %s in %d of %d handshake(s) (%s)", name, m, len(seen[m]), len(l.Handshakes), handshakeList(seen[m]))
		}
		if pending {
			v.Pending = append(v.Pending, fmt.Sprintf("%s serves serial %s until its next %s", name, serialHex(ex.Old), l.ReloadsOn))
		} else if l.ReloadsOn == "" && len(l.Handshakes) > 0 {
			live++
		}
	}
	if len(inv.Listeners) > 0 && live == 0 {
		fail("no listener that takes new certificates live serves the new one: nothing proves the push took")
	}
	v.OK = len(v.Problems) == 0
	return v
}

func handshakeList(ns []int) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = fmt.Sprint(n)
	}
	if len(parts) > 6 {
		parts = append(parts[:5], "…", parts[len(parts)-1])
	}
	return "#" + strings.Join(parts, ",")
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

func verifyChain(chain []*x509.Certificate, roots *x509.CertPool, host string, now time.Time) error {
	if roots == nil {
		return fmt.Errorf("no trust bundle to verify against")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: host, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err
}

// serialHex is a certificate's serial as Vault and openssl print it.
func serialHex(c *x509.Certificate) string {
	if c == nil {
		return "none"
	}
	b := c.SerialNumber.Bytes()
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = fmt.Sprintf("%02x", x)
	}
	return strings.Join(parts, ":")
}

// Serial is serialHex for callers outside the package.
func Serial(c *x509.Certificate) string { return serialHex(c) }
