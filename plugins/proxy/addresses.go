package main

import (
	"net"
	"net/netip"

	"github.com/harden-dev/harden/shared/sdk"
)

// checkAddresses refuses routes that cannot be proved: a backend that is
// the proxy itself (a loop: every "backend" observation would be the
// front's), and canary or decoy addresses off loopback (verify listens and
// sends there; harden generates traffic only to loopback).
func (t *target) checkAddresses(d *sdk.Diagnostics) {
	same := sameAddress
	b := t.spec.Backend.Address
	for _, o := range []struct {
		what, addr string
	}{{"the front", t.conn.Front}, {"the canary front", t.spec.Canary.Listen}, {"the decoy", t.spec.Canary.Decoy}} {
		if same(b, o.addr) {
			d.AddAttributeError(sdk.Path{"spec", "backend", "address"}, "the backend is "+o.what+" itself (a loop): forward to the backend's own TLS port", b)
		}
	}
	if same(t.conn.Front, t.spec.Canary.Listen) || same(t.conn.Front, t.spec.Canary.Decoy) || same(t.spec.Canary.Listen, t.spec.Canary.Decoy) {
		d.AddAttributeError(sdk.Path{"spec", "canary"}, "the canary front, the decoy and the front must be three different addresses", t.spec.Canary.Listen+", "+t.spec.Canary.Decoy)
	}
	for _, a := range []struct {
		path sdk.Path
		v    string
	}{{sdk.Path{"spec", "canary", "listen"}, t.spec.Canary.Listen}, {sdk.Path{"spec", "canary", "decoy"}, t.spec.Canary.Decoy}} {
		h, _, _ := net.SplitHostPort(a.v)
		if ip, err := netip.ParseAddr(h); err != nil || !ip.IsLoopback() {
			d.AddAttributeError(a.path, "must be a loopback IP address (127.0.0.0/8 or ::1): harden listens and sends there during verify", a.v)
		}
	}
}

// sameAddress: a and b (host:port) reach the same listener as far as the
// text says: the same port, and the same host, an unspecified one
// (0.0.0.0 / :: listen on every address, loopback included), two loopback
// addresses of one family, or localhost and a loopback address.
func sameAddress(a, b string) bool {
	ah, ap, _ := net.SplitHostPort(a)
	bh, bp, _ := net.SplitHostPort(b)
	if ap != bp {
		return false
	}
	if ah == bh {
		return true
	}
	aa, aerr := netip.ParseAddr(ah)
	ba, berr := netip.ParseAddr(bh)
	if aerr == nil && berr == nil {
		return aa == ba || aa.IsUnspecified() || ba.IsUnspecified() || (aa.IsLoopback() && ba.IsLoopback() && aa.Is4() == ba.Is4())
	}
	return (ah == "localhost" && (berr == nil && ba.IsLoopback())) || (bh == "localhost" && (aerr == nil && aa.IsLoopback()))
}
