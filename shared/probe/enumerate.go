package probe

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/harden-dev/harden/shared/tlsprofile"
)

// offerOnce sends one raw ClientHello on a fresh connection and reads the
// server's first answer. Errors: a *dialError (could not connect), one
// wrapping ErrTLSRefused (the dialect's negotiation was declined), or a
// transient failure (reset, close, timeout, bytes that are not TLS, a
// truncated record).
func (s *scanner) offerOnce(ctx context.Context, h hello, wantKeyExchange bool) (serverAnswer, error) {
	conn, err := s.dial(ctx)
	if err != nil {
		return serverAnswer{}, err
	}
	defer s.release()
	defer conn.Close()
	if err := s.target.Dialect.StartTLS(ctx, conn); err != nil {
		return serverAnswer{}, err
	}
	h.serverName, h.alpn = s.target.ServerName, s.target.Dialect.ALPN()
	if _, err := conn.Write(h.marshal()); err != nil {
		return serverAnswer{}, transient("send ClientHello", err)
	}
	a, err := readServerAnswer(conn, wantKeyExchange)
	if err != nil {
		return serverAnswer{}, transient("read the answer to ClientHello", err)
	}
	return a, nil
}

// offer is offerOnce with the retry policy, classified: Accepted when a
// ServerHello (or HelloRetryRequest) arrived — the caller judges its
// version, suite and group —, Refused on a TLS alert or a declined
// negotiation, Inconclusive otherwise.
func (s *scanner) offer(ctx context.Context, h hello, wantKeyExchange ...bool) (serverAnswer, Observation) {
	var a serverAnswer
	o := s.attempt(ctx, "ClientHello ("+tlsprofile.VersionName(h.version)+")", func() (Observation, error) {
		var err error
		a, err = s.offerOnce(ctx, h, len(wantKeyExchange) > 0 && wantKeyExchange[0])
		switch {
		case errors.Is(err, ErrTLSRefused):
			a = serverAnswer{tlsRefused: true}
			return Observation{Refused, err.Error()}, nil
		case err != nil:
			return Observation{}, err
		case a.alert && !helloNotProcessedAlerts[a.alertDesc]:
			return refused("%s", describe(a)), nil
		case a.alert:
			return Observation{}, transient("ClientHello", fmt.Errorf("answered with %s, which is not a refusal of the offer", describe(a)))
		}
		return Observation{Accepted, describe(a)}, nil
	})
	return a, o
}
func legacySuites() []uint16 {
	var ids []uint16
	for _, s := range tlsprofile.All() {
		if !s.TLS13 {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

func tls13Suites() []uint16 {
	var ids []uint16
	for _, s := range tlsprofile.All() {
		if s.TLS13 {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

// versionScan is what one version's probing observed: whether the version
// is accepted, and which suites — with the reason when the enumeration could
// not finish (a later offer was inconclusive).
type versionScan struct {
	obs        Observation
	tlsRefused bool
	suites     []uint16
	incomplete string
}

// enumerateSuites finds every suite of candidates the server accepts at
// version v: offer all remaining suites, record the one chosen, remove it,
// repeat until the server refuses. The candidates are split into parts
// probed in parallel (bounded by the connection cap); a part the server does
// not answer as a whole (a hello too large for it) is split again. The
// enumeration is complete only when every part ended in a refusal.
func (s *scanner) enumerateSuites(ctx context.Context, v uint16, candidates []uint16, parts int) versionScan {
	name := tlsprofile.VersionName(v)
	var mu sync.Mutex
	var res versionScan
	noteIncomplete := func(reason string) {
		mu.Lock()
		if res.incomplete == "" {
			res.incomplete = reason
		}
		mu.Unlock()
	}
	var wg sync.WaitGroup
	var run func(offer []uint16, depth int)
	run = func(offer []uint16, depth int) {
		defer wg.Done()
		remaining := slices.Clone(offer)
		for len(remaining) > 0 {
			a, o := s.offer(ctx, hello{version: v, suites: remaining, groups: allGroups()})
			if o.Outcome == Inconclusive && len(remaining) > 32 && depth < 4 && len(remaining) == len(offer) {
				half := len(remaining) / 2
				wg.Add(2)
				go run(remaining[:half], depth+1)
				go run(remaining[half:], depth+1)
				return
			}
			switch suite, ok := accepts(a, v); {
			case o.Outcome == Inconclusive:
				noteIncomplete(o.Evidence)
				return
			case o.Outcome == Refused && a.tlsRefused:
				noteIncomplete("the server declined TLS in the middle of the enumeration: " + o.Evidence)
				return
			case o.Outcome == Refused || (a.hello && a.version != v):
				return // the rest of this part is refused
			case !ok || !slices.Contains(remaining, suite):
				noteIncomplete(fmt.Sprintf("server chose suite %s, which was not offered", tlsprofile.HexID(a.suite)))
				return
			default:
				mu.Lock()
				res.suites = append(res.suites, suite)
				mu.Unlock()
				remaining = slices.DeleteFunc(remaining, func(x uint16) bool { return x == suite })
			}
		}
	}
	// One offer of everything first: a refused version costs one
	// connection, not one per part.
	a, o := s.offer(ctx, hello{version: v, suites: candidates, groups: allGroups()})
	split := false
	if o.Outcome == Inconclusive && len(candidates) > 32 {
		// No answer to the whole offer: a hello too large for the server,
		// or a fault. A small hello tells them apart before any splitting.
		sa, so := s.offer(ctx, hello{version: v, suites: candidates[:16], groups: allGroups()})
		if so.Outcome == Inconclusive {
			res.obs = inconclusive("%s not tested: %s", name, o.Evidence)
			return res
		}
		split = true
		if suite, ok := accepts(sa, v); ok && slices.Contains(candidates, suite) {
			res.suites = append(res.suites, suite)
			candidates = slices.DeleteFunc(slices.Clone(candidates), func(x uint16) bool { return x == suite })
		}
	}
	first, ok := accepts(a, v)
	switch {
	case split:
	case o.Outcome == Inconclusive:
		res.obs = inconclusive("%s not tested: %s", name, o.Evidence)
		return res
	case o.Outcome == Refused:
		res.obs, res.tlsRefused = refused("%s refused (%s)", name, o.Evidence), a.tlsRefused
		return res
	case a.hello && a.version != v:
		res.obs = refused("%s refused (server answered with %s)", name, tlsprofile.VersionName(a.version))
		return res
	case !ok || !slices.Contains(candidates, first):
		res.obs = inconclusive("%s not tested: server chose suite %s, which was not offered", name, tlsprofile.HexID(a.suite))
		return res
	default:
		res.suites = append(res.suites, first)
		candidates = slices.DeleteFunc(slices.Clone(candidates), func(x uint16) bool { return x == first })
	}
	parts = max(1, min(parts, len(candidates)))
	for i := range parts {
		lo, hi := i*len(candidates)/parts, (i+1)*len(candidates)/parts
		wg.Add(1)
		go run(candidates[lo:hi], 0)
	}
	wg.Wait()
	switch {
	case len(res.suites) > 0:
		res.obs = accepted("%s accepted (%d suites)", name, len(res.suites))
	case res.incomplete != "":
		res.obs = inconclusive("%s not tested: %s", name, res.incomplete)
	default:
		res.obs = refused("%s refused (every part of the offer refused)", name)
	}
	return res
}

// preferenceOrder reports whether the server picks by its own order and,
// if so, that order. Offering two accepted suites both ways detects the
// preference. With sequential enumeration (one part) the discovery order is
// the server's order already; otherwise it is rebuilt by offering the
// accepted suites, recording the choice, removing it, and repeating. It is
// informational: an inconclusive offer leaves the preference unknown.
func (s *scanner) preferenceOrder(ctx context.Context, v uint16, accepted []uint16, discoveryIsOrder bool) ([]uint16, bool) {
	if len(accepted) < 2 {
		return accepted, false
	}
	if discoveryIsOrder {
		// Sequential discovery offered every remaining suite each time, so
		// accepted[0] beat accepted[1] once. Offered the other way round,
		// a server that follows the client picks accepted[1].
		a, o := s.offer(ctx, hello{version: v, suites: []uint16{accepted[1], accepted[0]}, groups: allGroups()})
		if o.Outcome != Accepted || !a.hello || a.suite != accepted[0] {
			return nil, false
		}
		return accepted, true
	}
	a1, o1 := s.offer(ctx, hello{version: v, suites: []uint16{accepted[0], accepted[1]}, groups: allGroups()})
	a2, o2 := s.offer(ctx, hello{version: v, suites: []uint16{accepted[1], accepted[0]}, groups: allGroups()})
	if o1.Outcome != Accepted || o2.Outcome != Accepted || !a1.hello || !a2.hello || a1.suite != a2.suite {
		return nil, false
	}
	var order []uint16
	remaining := slices.Clone(accepted)
	for len(remaining) > 0 {
		a, o := s.offer(ctx, hello{version: v, suites: remaining, groups: allGroups()})
		suite, ok := accepts(a, v)
		if o.Outcome != Accepted || !ok || !slices.Contains(remaining, suite) {
			break
		}
		order = append(order, suite)
		remaining = slices.DeleteFunc(remaining, func(x uint16) bool { return x == suite })
	}
	return order, true
}

// groupScan is what group enumeration observed; incomplete is the reason
// when it could not finish.
type groupScan struct {
	groups     []uint16
	tested     bool
	incomplete string
}

// enumerateGroups finds the key-exchange groups the server accepts: with
// TLS 1.3, one group per hello and an empty key_share (a HelloRetryRequest or
// ServerHello naming the group accepts it); with only TLS 1.2, one group per
// hello offering only the accepted ECDHE suites.
func (s *scanner) enumerateGroups(ctx context.Context, tls13 bool, ecdheSuites []uint16) groupScan {
	if tls13 {
		// The HelloRetryRequest names the group the server prefers among
		// those offered.
		return s.successiveGroups(ctx, hello{version: tlsprofile.VersionTLS13, suites: tls13Suites()}, allGroups(), false)
	}
	// TLS 1.2: the ServerKeyExchange names the curve the server chose
	// among those offered.
	if len(ecdheSuites) == 0 {
		return groupScan{}
	}
	return s.successiveGroups(ctx, hello{version: tlsprofile.VersionTLS12, suites: ecdheSuites}, ecGroups(), true)
}

// successiveGroups offers all remaining groups, records the one the server
// names, removes it and offers the rest again: one connection per accepted
// group plus one. It is complete only when the server refuses the rest.
func (s *scanner) successiveGroups(ctx context.Context, h hello, remaining []uint16, wantKeyExchange bool) groupScan {
	res := groupScan{tested: true}
	for len(remaining) > 0 {
		h.groups = remaining
		a, o := s.offer(ctx, h, wantKeyExchange)
		if o.Outcome == Refused || (o.Outcome == Accepted && a.version != h.version) {
			break
		}
		if o.Outcome == Inconclusive {
			res.incomplete = o.Evidence
			break
		}
		if !slices.Contains(remaining, a.group) {
			if a.group == 0 {
				res.incomplete = "the server's answer named no key-exchange group"
			} else {
				res.incomplete = fmt.Sprintf("server chose group %s, which was not offered", GroupName(a.group))
			}
			break
		}
		res.groups = append(res.groups, a.group)
		remaining = slices.DeleteFunc(slices.Clone(remaining), func(x uint16) bool { return x == a.group })
	}
	slices.SortFunc(res.groups, func(a, b uint16) int { return groupRank(a) - groupRank(b) })
	return res
}

// ecGroups are the groups usable for ECDHE in TLS 1.2 (no FFDHE, no hybrids).
func ecGroups() []uint16 {
	var out []uint16
	for _, g := range allGroups() {
		if g < 0x0100 && (g < 0x001F || g > 0x0021) {
			out = append(out, g)
		}
	}
	return out
}

// groupRank orders groups as groupNames lists them (PQ hybrids first).
func groupRank(id uint16) int {
	for i, g := range groupNames {
		if g.ID == id {
			return i
		}
	}
	return len(groupNames)
}

var alertNames = map[byte]string{
	10: "unexpected_message", 20: "bad_record_mac", 22: "record_overflow", 40: "handshake_failure",
	42: "bad_certificate", 47: "illegal_parameter", 50: "decode_error", 51: "decrypt_error",
	70: "protocol_version", 71: "insufficient_security", 80: "internal_error", 86: "inappropriate_fallback",
	109: "missing_extension", 110: "unsupported_extension", 112: "unrecognized_name",
	116: "certificate_required", 120: "no_application_protocol",
}

// describe says how the server answered an offer.
func describe(a serverAnswer) string {
	switch {
	case a.alert:
		if n, ok := alertNames[a.alertDesc]; ok {
			return "alert " + n
		}
		return fmt.Sprintf("alert %d", a.alertDesc)
	case a.retry:
		return "HelloRetryRequest for " + tlsprofile.VersionName(a.version)
	case a.hello:
		return "ServerHello for " + tlsprofile.VersionName(a.version)
	}
	return "no answer"
}

func isECDHE(id uint16) bool {
	s, ok := tlsprofile.SuiteByID(id)
	return ok && (s.Kx == "ECDH" || s.Kx == "ECDHEPSK")
}

// helloNotProcessedAlerts say the server could not read the hello at all
// (too large, or an extension it cannot parse), not that it refuses what the
// hello offers: inconclusive, and a reason to retry with a smaller hello.
// Every other fatal alert is the server's refusal of the offer — OpenSSL 3,
// for one, refuses TLS 1.0/1.1 with internal_error when its security level
// leaves them no usable suite. Warnings are skipped and close_notify is a
// close without an answer (readServerAnswer).
var helloNotProcessedAlerts = map[byte]bool{22: true, 50: true}

// accepts reports whether an answer accepts version v and returns the suite.
func accepts(a serverAnswer, v uint16) (uint16, bool) {
	if !a.hello || a.version != v {
		return 0, false
	}
	return a.suite, true
}
