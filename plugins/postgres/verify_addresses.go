package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/probe"
)

// postgres.plaintext.other_addresses proves that the plaintext refusal does
// not depend on the address: a plaintext StartupMessage is sent to every
// address the target's host resolves to and, where the target is local,
// from another loopback source (127.0.0.2 reaches a 127.0.0.1 listener) and
// over the other loopback family. Each attempt is one observation:
//
//   - refused: only PostgreSQL's own pg_hba rejection (SQLSTATE 28000 —
//     the probe's postgres dialect decides what counts);
//   - nothing listens there (the connection was refused at TCP level): no
//     plaintext session can be had there, a conclusive good observation;
//   - accepted: the server asked for credentials — a failure;
//   - anything else (timeout, reset, another SQLSTATE, a name that does not
//     resolve, a source address that cannot be bound) is inconclusive.
//
// The check passes only when every attempt concluded well AND at least one
// of them was the server's own refusal; zero attempts is an error.

const otherAddressesID = "postgres.plaintext.other_addresses"

// otherSource is the second loopback source address.
var otherSource = netip.MustParseAddr("127.0.0.2")

// addressAttempt is one plaintext attempt: to addr (host:port), from local
// (empty: the system's choice).
type addressAttempt struct {
	label, addr, local string
}

// attemptResult is what one attempt showed. byServer: the server itself
// refused (the evidence the check needs at least once).
type attemptResult struct {
	obs      checks.Observation
	byServer bool
}

// addressProber holds the network operations of the check, so that tests
// can replace them (only loopback targets may be dialed by tests).
type addressProber struct {
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	// locals reports which extra loopback sources exist on this machine.
	locals func() (otherV4Source, ipv6Loopback bool)
	try    func(ctx context.Context, a addressAttempt) attemptResult
}

var liveAddressProber = addressProber{lookup: lookupHost, locals: localLoopbacks, try: tryPlaintext}

// otherAddressChecks runs postgres.plaintext.other_addresses on the live
// network.
func otherAddressChecks(ctx context.Context, host string, port int) checks.Check {
	return liveAddressProber.check(ctx, host, port)
}

func (p addressProber) check(ctx context.Context, host string, port int) checks.Check {
	subject := net.JoinHostPort(host, strconv.Itoa(port))
	attempts, obs := p.attempts(ctx, host, port)
	refusedByServer := false
	for _, a := range attempts {
		r := p.try(ctx, a)
		obs = append(obs, r.obs)
		refusedByServer = refusedByServer || r.byServer
	}
	if len(attempts) > 0 && !refusedByServer {
		obs = append(obs, checks.Unknown("plaintext refusal", "no address answered with PostgreSQL's own refusal (SQLSTATE 28000)"))
	}
	return checks.Reduce(otherAddressesID, subject, obs...)
}

// attempts lists what to try for host:port; a host that cannot be
// resolved is an inconclusive observation, not an empty list.
func (p addressProber) attempts(ctx context.Context, host string, port int) ([]addressAttempt, []checks.Observation) {
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip.Unmap()}
	} else {
		found, err := p.lookup(ctx, host)
		if err != nil {
			return nil, []checks.Observation{checks.Unknown("resolve "+host, err.Error())}
		}
		for _, a := range found {
			addrs = append(addrs, a.Unmap())
		}
		if len(addrs) == 0 {
			return nil, []checks.Observation{checks.Unknown("resolve "+host, "the name resolves to no address")}
		}
	}
	otherV4, v6 := p.locals()
	seen := map[addressAttempt]bool{}
	var out []addressAttempt
	add := func(a addressAttempt) {
		key := addressAttempt{addr: a.addr, local: a.local}
		if !seen[key] {
			seen[key] = true
			out = append(out, a)
		}
	}
	local := false
	for _, a := range addrs {
		to := netip.AddrPortFrom(a, uint16(port)).String()
		add(addressAttempt{label: "to " + to, addr: to})
		if a.IsLoopback() {
			local = true
		}
		if a.Is4() && a.IsLoopback() && otherV4 && a != otherSource {
			add(addressAttempt{label: "to " + to + " from " + otherSource.String(), addr: to, local: otherSource.String()})
		}
	}
	if local {
		// The other loopback addresses of this machine: a pg_hba line for
		// 127.0.0.1/32 alone would let ::1 in, and the other way round.
		others := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
		if v6 {
			others = append(others, netip.IPv6Loopback())
		}
		for _, a := range others {
			to := netip.AddrPortFrom(a, uint16(port)).String()
			add(addressAttempt{label: "over " + to, addr: to})
		}
	}
	return out, nil
}

func lookupHost(ctx context.Context, host string) ([]netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// localLoopbacks reports whether 127.0.0.2 can be a source address here
// (Linux routes all of 127/8 to lo; other systems may not) and whether the
// machine has an IPv6 loopback.
func localLoopbacks() (otherV4Source, ipv6Loopback bool) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false, false
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		if n.Contains(otherSource.AsSlice()) {
			otherV4Source = true
		}
		if n.IP.Equal(net.IPv6loopback) {
			ipv6Loopback = true
		}
	}
	return otherV4Source, ipv6Loopback
}

// tryPlaintext makes one attempt. A TCP-level "connection refused" means
// nothing listens there (no plaintext session possible); it is found by a
// bare connect first, so that the probe's attempt (with its retries and its
// dialect's refusal rules) runs only where a server listens.
func tryPlaintext(ctx context.Context, a addressAttempt) attemptResult {
	d := net.Dialer{Timeout: 5 * time.Second}
	if a.local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(a.local)}
	}
	conn, err := d.DialContext(ctx, "tcp", a.addr)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return attemptResult{obs: checks.Good(a.label + ": nothing listens there (TCP connection refused), no plaintext session possible")}
		}
		return attemptResult{obs: checks.Unknown(a.label, fmt.Sprintf("cannot connect: %v", err))}
	}
	conn.Close()
	pt := probe.PlaintextOnly(ctx, probe.Target{Address: a.addr, Dialect: probe.Postgres}, probe.Options{LocalAddr: a.local})
	return judgePlaintext(a.label, pt)
}

// judgePlaintext maps the probe's plaintext outcome to an observation:
// only the dialect's refusal (SQLSTATE 28000) is good.
func judgePlaintext(label string, pt probe.Plaintext) attemptResult {
	switch pt.Outcome {
	case probe.Refused:
		return attemptResult{obs: checks.Good(label + ": " + pt.Evidence), byServer: true}
	case probe.Accepted:
		return attemptResult{obs: checks.Bad(label + ": " + pt.Evidence)}
	case probe.NotAttempted:
		return attemptResult{obs: checks.Unknown(label, "the probe did not attempt a plaintext session")}
	}
	reason := pt.Evidence
	if reason == "" && pt.Err != nil {
		reason = pt.Err.Error()
	}
	return attemptResult{obs: checks.Unknown(label, reason)}
}
