package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
)

// Verify observes the live service: the probe's TLS scan of its address
// through the protocol's dialect (tls.*), each declared plaintext port
// (service.plaintext.refused), and for HTTPS the security headers of one
// answer fetched over a verified session (http.*). An address that speaks
// no TLS at all is one error naming the target and the address (with the
// probe's tls.enabled failure as the evidence), never a pass.
func (service) Verify(ctx context.Context, q sdk.VerifyRequest, r *sdk.VerifyResponse) {
	t, ok := load(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	pt, exp, ok := t.probeTarget(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	var wg sync.WaitGroup
	plain := make([]checks.Check, len(t.conn.PlaintextAddresses))
	for i, a := range t.conn.PlaintextAddresses {
		wg.Go(func() { plain[i] = plaintextCheck(ctx, t.dialect, a) })
	}
	res, err := probe.Scan(ctx, pt, probe.Options{})
	if err != nil {
		r.Checks = append(r.Checks, checks.Errored("tls.enabled", t.conn.Address, err))
	} else {
		r.Checks = append(r.Checks, res.Checks(exp)...)
		r.Endpoints = append(r.Endpoints, res.Describe(t.listenerName()))
	}
	enabled := checkOf(r.Checks, "tls.enabled")
	if enabled.Status != checks.Pass {
		r.Diagnostics.AddTargetError("service.no_tls", fmt.Sprintf("target %s: %s (connection.address) speaks no TLS that harden could observe; point address at the service's TLS port", t.name, t.conn.Address), errors.New(enabled.Evidence))
	}
	if t.conn.Protocol == "https" && enabled.Status != checks.Fail {
		// Conclusively without TLS, the headers are moot (tls.enabled says
		// why); otherwise they are judged, or errors.
		var head *probe.HTTPHead
		err := errors.New("no TLS session: " + enabled.Evidence)
		if enabled.Status == checks.Pass {
			head, err = probe.FetchHTTPHead(ctx, pt, t.conn.Path, probe.Options{})
		}
		r.Checks = append(r.Checks, probe.HTTPHeaderChecks(t.conn.Address, head, err)...)
	}
	wg.Wait()
	r.Checks = append(r.Checks, plain...)
}

func checkOf(cs []checks.Check, id string) checks.Check {
	for _, c := range cs {
		if c.ID == id {
			return c
		}
	}
	return checks.New(id, checks.Error, "", "not observed")
}

// plaintextCheck proves one declared plaintext port refuses: nothing
// listening there as seen from this host (TCP connection refused) or a refusal in the protocol's
// own words (a TLS record answer, Go's or nginx's "use HTTPS" 400) is
// good; a plaintext session the service takes is bad; anything else — a
// timeout, a reset, a garbled answer, or a protocol with no plaintext
// session to attempt while the port takes connections — proves nothing.
func plaintextCheck(ctx context.Context, d probe.Dialect, addr string) checks.Check {
	what := "plaintext session to " + addr
	dialer := net.Dialer{Timeout: probe.DefaultTimeout}
	c, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			// Seen from this host only: a firewall between harden and the
			// port may refuse what other clients still reach.
			return checks.Reduce(checkPlaintextRefused, addr, checks.Good(addr+": nothing listening, seen from this host (TCP connection refused): no plaintext session possible from here"))
		}
		return checks.Reduce(checkPlaintextRefused, addr, checks.Unknown(what, "cannot connect: "+err.Error()))
	}
	c.Close()
	p := probe.PlaintextOnly(ctx, probe.Target{Address: addr, Dialect: d}, probe.Options{})
	switch p.Outcome {
	case probe.Accepted:
		return checks.Reduce(checkPlaintextRefused, addr, checks.Bad(addr+" takes plaintext sessions: "+p.Evidence))
	case probe.Refused:
		return checks.Reduce(checkPlaintextRefused, addr, checks.Good(addr+" refused a plaintext session: "+p.Evidence))
	case probe.NotAttempted:
		return checks.Reduce(checkPlaintextRefused, addr, checks.Unknown(what, "the port takes TCP connections and "+p.Evidence+": set protocol to what the port speaks"))
	}
	return checks.Reduce(checkPlaintextRefused, addr, checks.Unknown(what, p.Evidence))
}
