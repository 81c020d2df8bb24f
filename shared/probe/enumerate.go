package probe

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/harden-dev/harden/shared/tlsprofile"
)

// offer sends one raw ClientHello on a fresh connection and reads the
// server's answer. A refused offer is an alert, a close, or a ServerHello for
// another version; transport failures are errors.
func (s *scanner) offer(ctx context.Context, h hello, wantKeyExchange ...bool) (serverAnswer, error) {
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
		return serverAnswer{}, err
	}
	a, err := readServerAnswer(conn, wantKeyExchange...)
	if err != nil && !errors.Is(err, errNotTLS) {
		// A server that hangs up without an alert refused the offer.
		return serverAnswer{}, &closedError{err}
	}
	return a, err
}

// closedError: the server closed or reset the connection instead of answering.
type closedError struct{ err error }

func (e *closedError) Error() string {
	return "connection closed without a ServerHello: " + e.err.Error()
}
func (e *closedError) Unwrap() error { return e.err }

// accepts reports whether an answer accepts version v and returns the suite.
func accepts(a serverAnswer, v uint16) (uint16, bool) {
	if !a.hello || a.version != v {
		return 0, false
	}
	return a.suite, true
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

// enumerateSuites finds every suite of candidates the server accepts at
// version v: offer all remaining suites, record the one chosen, remove it,
// repeat until the server refuses. The candidates are split into parts
// probed in parallel (bounded by the connection cap); a part the server
// rejects as a whole without an alert (a hello too large for it) is split
// again. The first error that is not a refusal is returned.
func (s *scanner) enumerateSuites(ctx context.Context, v uint16, candidates []uint16, parts int) ([]uint16, string, error) {
	var mu sync.Mutex
	var found []uint16
	var firstErr error
	refusal := ""
	var wg sync.WaitGroup
	var run func(offer []uint16, depth int)
	run = func(offer []uint16, depth int) {
		defer wg.Done()
		remaining := slices.Clone(offer)
		for len(remaining) > 0 {
			a, err := s.offer(ctx, hello{version: v, suites: remaining, groups: allGroups()})
			var closed *closedError
			if errors.As(err, &closed) && len(remaining) > 32 && depth < 4 && len(remaining) == len(offer) {
				half := len(remaining) / 2
				wg.Add(2)
				go run(remaining[:half], depth+1)
				go run(remaining[half:], depth+1)
				return
			}
			if err != nil && !errors.As(err, &closed) {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				return
			}
			suite, ok := accepts(a, v)
			if !ok || !slices.Contains(remaining, suite) {
				mu.Lock()
				if refusal == "" {
					refusal = describe(a, err)
				}
				mu.Unlock()
				return
			}
			mu.Lock()
			found = append(found, suite)
			mu.Unlock()
			remaining = slices.DeleteFunc(remaining, func(x uint16) bool { return x == suite })
		}
	}
	// One offer of everything first: a refused version costs one
	// connection, not one per part.
	a, err := s.offer(ctx, hello{version: v, suites: candidates, groups: allGroups()})
	var closed *closedError
	first, ok := accepts(a, v)
	if !ok && errors.As(err, &closed) && len(candidates) > 32 {
		// Closed without an alert: a hello too large for the server, or
		// no TLS server at all (a Kafka or HTTP plaintext port hangs up
		// too). A small hello tells them apart before any splitting.
		var smallClosed *closedError
		if _, serr := s.offer(ctx, hello{version: v, suites: candidates[:16], groups: allGroups()}); errors.As(serr, &smallClosed) || errors.Is(serr, errNotTLS) {
			return nil, describe(a, err), nil
		}
	}
	switch {
	case err != nil && !errors.As(err, &closed):
		return nil, "", err
	case !ok && !(errors.As(err, &closed) && len(candidates) > 32):
		return nil, describe(a, err), nil
	case ok && slices.Contains(candidates, first):
		found = append(found, first)
		candidates = slices.DeleteFunc(slices.Clone(candidates), func(x uint16) bool { return x == first })
	}
	parts = max(1, min(parts, len(candidates)))
	for i := range parts {
		lo, hi := i*len(candidates)/parts, (i+1)*len(candidates)/parts
		wg.Add(1)
		go run(candidates[lo:hi], 0)
	}
	wg.Wait()
	return found, refusal, firstErr
}

// preferenceOrder reports whether the server picks by its own order and,
// if so, that order. Offering two accepted suites both ways detects the
// preference. With sequential enumeration (one part) the discovery order is
// the server's order already; otherwise it is rebuilt by offering the
// accepted suites, recording the choice, removing it, and repeating.
func (s *scanner) preferenceOrder(ctx context.Context, v uint16, accepted []uint16, discoveryIsOrder bool) ([]uint16, bool) {
	if len(accepted) < 2 {
		return accepted, false
	}
	if discoveryIsOrder {
		// Sequential discovery offered every remaining suite each time, so
		// accepted[0] beat accepted[1] once. Offered the other way round,
		// a server that follows the client picks accepted[1].
		a, err := s.offer(ctx, hello{version: v, suites: []uint16{accepted[1], accepted[0]}, groups: allGroups()})
		if err != nil || !a.hello || a.suite != accepted[0] {
			return nil, false
		}
		return accepted, true
	}
	a1, err1 := s.offer(ctx, hello{version: v, suites: []uint16{accepted[0], accepted[1]}, groups: allGroups()})
	a2, err2 := s.offer(ctx, hello{version: v, suites: []uint16{accepted[1], accepted[0]}, groups: allGroups()})
	if err1 != nil || err2 != nil || !a1.hello || !a2.hello || a1.suite != a2.suite {
		return nil, false
	}
	var order []uint16
	remaining := slices.Clone(accepted)
	for len(remaining) > 0 {
		a, err := s.offer(ctx, hello{version: v, suites: remaining, groups: allGroups()})
		suite, ok := accepts(a, v)
		if err != nil || !ok || !slices.Contains(remaining, suite) {
			break
		}
		order = append(order, suite)
		remaining = slices.DeleteFunc(remaining, func(x uint16) bool { return x == suite })
	}
	return order, true
}

// enumerateGroups finds the key-exchange groups the server accepts: with
// TLS 1.3, one group per hello and an empty key_share (a HelloRetryRequest or
// ServerHello naming the group accepts it); with only TLS 1.2, one group per
// hello offering only the accepted ECDHE suites.
func (s *scanner) enumerateGroups(ctx context.Context, tls13 bool, ecdheSuites []uint16) []uint16 {
	if tls13 {
		// The HelloRetryRequest names the group the server prefers among
		// those offered.
		return s.successiveGroups(ctx, hello{version: tlsprofile.VersionTLS13, suites: tls13Suites()}, allGroups(), false)
	}
	// TLS 1.2: the ServerKeyExchange names the curve the server chose
	// among those offered.
	if len(ecdheSuites) == 0 {
		return nil
	}
	return s.successiveGroups(ctx, hello{version: tlsprofile.VersionTLS12, suites: ecdheSuites}, ecGroups(), true)
}

// successiveGroups offers all remaining groups, records the one the server
// names, removes it and offers the rest again: one connection per accepted
// group plus one.
func (s *scanner) successiveGroups(ctx context.Context, h hello, remaining []uint16, wantKeyExchange bool) []uint16 {
	var found []uint16
	for len(remaining) > 0 {
		h.groups = remaining
		a, err := s.offer(ctx, h, wantKeyExchange)
		if err != nil || !a.hello || !slices.Contains(remaining, a.group) {
			break
		}
		found = append(found, a.group)
		remaining = slices.DeleteFunc(slices.Clone(remaining), func(x uint16) bool { return x == a.group })
	}
	slices.SortFunc(found, func(a, b uint16) int { return groupRank(a) - groupRank(b) })
	return found
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

// describe says how the server answered a refused offer.
func describe(a serverAnswer, err error) string {
	switch {
	case err != nil:
		return err.Error()
	case a.alert:
		if n, ok := alertNames[a.alertDesc]; ok {
			return "alert " + n
		}
		return fmt.Sprintf("alert %d", a.alertDesc)
	case a.hello:
		return "server answered with " + tlsprofile.VersionName(a.version)
	}
	return "no answer"
}

func isECDHE(id uint16) bool {
	s, ok := tlsprofile.SuiteByID(id)
	return ok && (s.Kx == "ECDH" || s.Kx == "ECDHEPSK")
}
