package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// HTTP security headers: what an HTTPS service (or a TLS-terminating proxy's
// front) says to browsers and other clients about using it safely. The
// probe owns these checks so that every plugin that fronts HTTPS — the
// service plugin, the proxy plugin — judges the same way:
//
//   - http.hsts: Strict-Transport-Security with max-age of at least one
//     year (RFC 6797). It is judged only on a response that came over TLS:
//     a user agent ignores the header over plain HTTP (RFC 6797 §8.1), so a
//     plaintext answer proves nothing either way;
//   - http.content_type_options: X-Content-Type-Options: nosniff (the
//     Fetch standard's rule: the first value of the header list).
//
// A header can only be judged on an answer from the server the policy
// names: the response is fetched over a session whose certificate chains
// to Target.RootCAs and names Target.ServerName. Without a CA to check
// against, or with a chain that does not verify, the answer could be
// anyone's, and both checks are errors, never a pass.

// Check IDs of the HTTP security headers (registered in shared/checks).
const (
	CheckHSTS               = "http.hsts"
	CheckContentTypeOptions = "http.content_type_options"
)

// MinHSTSMaxAge is the shortest Strict-Transport-Security max-age that
// passes: one year, the OWASP and Mozilla recommendation (and the floor
// of the browsers' preload lists).
const MinHSTSMaxAge = 365 * 24 * 60 * 60

// HTTPHead is the status line and header of one HTTPS response.
type HTTPHead struct {
	Address string
	// Path is what was requested.
	Path string
	// Status is the status line after the protocol ("200 OK");
	// StatusCode its number.
	Status     string
	StatusCode int
	Header     http.Header
	// TLSVersion is the session's protocol version (0: not over TLS, and
	// HTTPHeaderChecks judges nothing).
	TLSVersion uint16
	// ServerName is the host the request named (Target.ServerName): an IP
	// literal is never an HSTS host (RFC 6797 §8.1.1). Empty: the host of
	// Address.
	ServerName string
}

// FetchHTTPHead sends one GET for path ("" is "/") over a fresh TLS session
// to target and returns the answer's status line and header. The session
// is the probe's own (its dialer, deadlines, cancellation and retries of
// transient failures) with ALPN http/1.1; target.ClientCert is presented
// when the server asks for a certificate (an mTLS endpoint answers only a
// trusted client). The server's chain must verify against target.RootCAs
// for target.ServerName before the request is sent.
//
// The error says why there is no answer to judge: no CA given, a chain
// that does not verify, a refusal (a TLS alert), an answer that is not
// HTTP, or a transient failure (timeout, reset) that persisted through the
// retries. Judge the result with HTTPHeaderChecks.
func FetchHTTPHead(ctx context.Context, target Target, path string, opts Options) (*HTTPHead, error) {
	if path == "" {
		path = "/"
	}
	if err := validRequestPath(path); err != nil {
		return nil, err
	}
	target.Dialect = HTTP
	s, err := newScanner(target, opts, 1)
	if err != nil {
		return nil, err
	}
	if target.RootCAs == nil {
		return nil, fmt.Errorf("%s: no CA to verify the server against: an answer over an unverified session could be anyone's", target.Address)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Budget)
	defer cancel()
	var head *HTTPHead
	var final error
	obs := s.attempt(ctx, "GET "+path+" over TLS", func() (Observation, error) {
		h, err := s.fetchHead(ctx, path)
		var fatal *fetchError
		switch {
		case errors.As(err, &fatal):
			final = fatal.err
			return Observation{Refused, err.Error()}, nil
		case err != nil:
			return Observation{}, err
		}
		head = h
		return Observation{Accepted, h.Status}, nil
	})
	switch {
	case head != nil:
		return head, nil
	case final != nil:
		return nil, fmt.Errorf("%s: %w", target.Address, final)
	}
	return nil, fmt.Errorf("%s: %s", target.Address, obs.Evidence)
}

// fetchError is a conclusive reason there is no answer to judge (not worth
// another attempt).
type fetchError struct{ err error }

func (e *fetchError) Error() string { return e.err.Error() }

// validRequestPath refuses a path that would not be one request-target:
// spaces or control characters would change the request line.
func validRequestPath(path string) error {
	if !strings.HasPrefix(path, "/") {
		return fmt.Errorf("HTTP path %q must start with /", path)
	}
	for _, r := range path {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("HTTP path %q contains a space or control character", path)
		}
	}
	return nil
}

// unverifiedServer: the server's chain did not verify, so the handshake
// was ended before the client's certificate flight.
type unverifiedServer struct{ why string }

func (e *unverifiedServer) Error() string {
	return "the server's certificate does not verify (" + e.why + "): harden's client certificate not sent"
}

// verifiedServer is a tls.Config.VerifyConnection that ends the handshake
// unless the server's chain verifies against Target.RootCAs for
// Target.ServerName. Go's client runs it as soon as it has the server's
// certificate, before it sends its own Certificate and CertificateVerify
// (TLS 1.2 and 1.3): harden's client certificate, and a signature made
// with its key, reach only the server the policy names. (The probe's
// config skips Go's own verification so that an untrusted chain is a
// finding of its own; this puts it back where a client certificate goes.)
func (s *scanner) verifiedServer(cs tls.ConnectionState) error {
	switch c := s.verifyChain(cs.PeerCertificates); {
	case s.target.RootCAs == nil:
		return &unverifiedServer{"no CA to verify it against"}
	case len(cs.PeerCertificates) == 0:
		return &unverifiedServer{"no certificate"}
	case c.TrustErr != nil:
		return &unverifiedServer{c.TrustErr.Error()}
	}
	return nil
}

func (s *scanner) fetchHead(ctx context.Context, path string) (*HTTPHead, error) {
	cfg := s.baseConfig()
	if s.target.ClientCert != nil {
		cfg.Certificates = []tls.Certificate{*s.target.ClientCert}
	}
	// The chain is verified inside the handshake: no request, and no client
	// certificate, goes to a server that is not the one the policy names.
	cfg.VerifyConnection = s.verifiedServer
	tc, err := s.handshake(ctx, cfg)
	if err != nil {
		if u := (*unverifiedServer)(nil); errors.As(err, &u) {
			return nil, &fetchError{fmt.Errorf("%w; no request sent", u)}
		}
		if alert, ok := remoteAlert(err); ok {
			return nil, &fetchError{fmt.Errorf("handshake refused with a TLS alert: %s", alert)}
		}
		return nil, transient("TLS handshake", err)
	}
	defer s.release()
	defer tc.Close()
	st := tc.ConnectionState()
	if _, err := fmt.Fprintf(tc, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: harden-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n", path, hostHeader(s.target.ServerName, s.target.Address)); err != nil {
		if alert, ok := remoteAlert(err); ok {
			return nil, &fetchError{fmt.Errorf("request refused with a TLS alert: %s", alert)}
		}
		return nil, transient("send GET "+path, err)
	}
	raw, err := readFinalHead(tc)
	if alert, ok := remoteAlert(err); ok {
		return nil, &fetchError{fmt.Errorf("request refused with a TLS alert: %s", alert)}
	}
	h, perr := parseHTTPHead(raw)
	if perr != nil {
		if err != nil {
			return nil, transient("read the answer to GET "+path, err)
		}
		return nil, transient("answer to GET "+path, perr)
	}
	h.Address, h.Path, h.TLSVersion, h.ServerName = s.target.Address, path, st.Version, s.target.ServerName
	return h, nil
}

// hostHeader is the Host field for serverName reached at address: the
// URI's host form (RFC 9110 §7.2, RFC 3986 §3.2.2) — an IPv6 literal in
// brackets — with the port unless it is HTTPS's default.
func hostHeader(serverName, address string) string {
	if _, port, _ := net.SplitHostPort(address); port != "443" {
		return net.JoinHostPort(serverName, port)
	}
	if strings.Contains(serverName, ":") {
		return "[" + serverName + "]"
	}
	return serverName
}

// maxHeadBytes bounds what is read for the head of the final answer,
// interim responses included.
const maxHeadBytes = 64 << 10

// readFinalHead reads until the head of the final response is complete:
// interim 1xx responses (103 Early Hints, 100 Continue) before it are read
// past — a user agent applies the final response's header fields — and the
// body is not needed. What was read comes back with a read error too.
func readFinalHead(r io.Reader) (string, error) {
	var buf []byte
	chunk := make([]byte, 4096)
	for len(buf) < maxHeadBytes {
		n, err := r.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if finalHeadComplete(string(buf)) {
			return string(buf), nil
		}
		if err == io.EOF {
			return string(buf), io.ErrUnexpectedEOF
		}
		if err != nil {
			return string(buf), err
		}
	}
	return string(buf), nil
}

// finalHeadComplete: raw holds a complete head that is not an interim one.
func finalHeadComplete(raw string) bool {
	for {
		head, rest, ok := strings.Cut(raw, "\r\n\r\n")
		if !ok {
			return false
		}
		if !interimStatus(firstLine(head)) {
			return true
		}
		raw = rest
	}
}

// interimStatus: an HTTP/1.x status line with an informational code other
// than 101 (which switches protocols: no final HTTP answer follows).
func interimStatus(line string) bool {
	f := strings.Fields(line)
	return len(f) >= 2 && strings.HasPrefix(f[0], "HTTP/1.") && len(f[1]) == 3 && f[1][0] == '1' && f[1] != "101"
}

// maxInterim bounds the interim 1xx responses read past before the final
// one.
const maxInterim = 16

// parseHTTPHead parses the status line and header of the final response
// of an HTTP/1.x answer (raw may go on with the body): interim 1xx
// responses before it are skipped, as a user agent does — their header
// fields are not the answer's. A head without its terminating empty line,
// one that is not HTTP/1.x, or a 101 (a protocol switch nobody asked for)
// is an error: only a complete final head is judged.
func parseHTTPHead(raw string) (*HTTPHead, error) {
	for interim := 0; ; interim++ {
		head, rest, ok := strings.Cut(raw, "\r\n\r\n")
		if !ok {
			switch {
			case interim > 0:
				return nil, fmt.Errorf("the final response head is incomplete (after %d interim 1xx response(s))", interim)
			case !strings.HasPrefix(raw, "HTTP/"):
				return nil, fmt.Errorf("answer is not HTTP: %q", truncate(firstLine(raw), 40))
			}
			return nil, errors.New("the response head is incomplete (no empty line after the header)")
		}
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(head+"\r\n\r\n")), nil)
		if err != nil {
			return nil, fmt.Errorf("answer is not HTTP: %s (%q)", err, truncate(firstLine(head), 40))
		}
		resp.Body.Close()
		if resp.ProtoMajor != 1 {
			return nil, fmt.Errorf("answer is not HTTP/1.x: %q", truncate(firstLine(head), 40))
		}
		switch {
		case resp.StatusCode == http.StatusSwitchingProtocols:
			return nil, fmt.Errorf("answer is a protocol switch (%q) to a GET that asked for none: no HTTP answer to judge", truncate(firstLine(head), 40))
		case resp.StatusCode >= 100 && resp.StatusCode < 200:
			if interim == maxInterim {
				return nil, fmt.Errorf("more than %d interim 1xx responses and no final one", maxInterim)
			}
			raw = rest
			continue
		}
		status := strings.TrimSpace(strings.TrimPrefix(resp.Status, strconv.Itoa(resp.StatusCode)))
		return &HTTPHead{Status: strings.TrimSpace(strconv.Itoa(resp.StatusCode) + " " + status), StatusCode: resp.StatusCode, Header: resp.Header}, nil
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}

// HTTPHeaderChecks judges one answer's security headers into http.hsts and
// http.content_type_options for subject. head is what FetchHTTPHead
// returned; with err (no answer to judge) both checks are errors naming
// the reason.
func HTTPHeaderChecks(subject string, head *HTTPHead, err error) []checks.Check {
	if err == nil && head == nil {
		err = errors.New("no answer")
	}
	if err == nil && head.TLSVersion == 0 {
		// A caller-built head that did not come over TLS: HSTS over plain
		// HTTP is ignored by user agents (RFC 6797 §8.1), and an answer
		// from an unverified peer could be anyone's.
		err = errors.New("the answer was not fetched over TLS (no TLS version): headers are judged only on an answer over a verified TLS session")
	}
	if err != nil {
		why := checks.Unknown("GET over TLS", err.Error())
		return []checks.Check{checks.Reduce(CheckHSTS, subject, why), checks.Reduce(CheckContentTypeOptions, subject, why)}
	}
	where := fmt.Sprintf("the %s answer to GET %s over %s", head.Status, head.Path, tlsprofile.VersionName(head.TLSVersion))
	hsts := checks.Reduce(CheckHSTS, subject, judgeHSTS(head.Header.Values("Strict-Transport-Security"), where))
	name := head.ServerName
	if name == "" {
		name, _, _ = net.SplitHostPort(head.Address)
	}
	if ip := net.ParseIP(strings.Trim(name, "[]")); ip != nil {
		hsts = checks.NotApplicable(CheckHSTS, subject, fmt.Sprintf("the service is reached by its IP address %s: a user agent never notes an IP-literal host as an HSTS host (RFC 6797 §8.1.1), so Strict-Transport-Security has no effect there; name it by a DNS name (connection.server_name) to judge the header", ip))
	}
	return []checks.Check{hsts,
		checks.Reduce(CheckContentTypeOptions, subject, judgeNosniff(head.Header.Values("X-Content-Type-Options"), where)),
	}
}

// HSTS is a parsed Strict-Transport-Security header (RFC 6797 §6.1).
type HSTS struct {
	MaxAge            uint64
	IncludeSubDomains bool
	Preload           bool
}

// ParseHSTS parses one Strict-Transport-Security value the way a user
// agent does (RFC 6797 §6.1, §8.1): directives separated by ';' (empty
// ones allowed), optional whitespace around ';' and '=', names
// case-insensitive tokens, a value a token or a quoted string (RFC 9110
// §5.6.4: it may hold ';' and '=', and quoted-pairs), unknown directives
// ignored; the header is invalid — ignored by the user agent — when it
// does not follow that grammar, when max-age is missing or not
// delta-seconds, or when any directive appears twice. A max-age too large
// for 64 bits is capped there.
func ParseHSTS(v string) (HSTS, error) {
	var h HSTS
	seen := map[string]bool{}
	haveMaxAge := false
	i := 0
	ows := func() {
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
	}
	token := func() string {
		start := i
		for i < len(v) && tokenChar(v[i]) {
			i++
		}
		return v[start:i]
	}
	for {
		ows()
		if i == len(v) {
			break
		}
		if v[i] == ';' { // an empty directive
			i++
			continue
		}
		name := strings.ToLower(token())
		if name == "" {
			return h, fmt.Errorf("directive %q is not a token", truncate(v[i:], 40))
		}
		ows()
		val, hasVal := "", false
		if i < len(v) && v[i] == '=' {
			i++
			ows()
			hasVal = true
			if i < len(v) && v[i] == '"' {
				q, err := quotedString(v, &i)
				if err != nil {
					return h, fmt.Errorf("value of %s: %w", name, err)
				}
				val = q
			} else if val = token(); val == "" {
				return h, fmt.Errorf("value of %s is neither a token nor a quoted string: %q", name, truncate(v[i:], 40))
			}
			ows()
		}
		if i < len(v) && v[i] != ';' {
			return h, fmt.Errorf("directive %s is followed by %q, not ';'", name, truncate(v[i:], 40))
		}
		if seen[name] {
			return h, fmt.Errorf("directive %s appears twice", name)
		}
		seen[name] = true
		switch name {
		case "max-age":
			if !hasVal || val == "" || strings.Trim(val, "0123456789") != "" {
				return h, fmt.Errorf("max-age %q is not a number of seconds", truncate(val, 40))
			}
			n, err := strconv.ParseUint(val, 10, 64)
			if err != nil {
				n = 1<<64 - 1 // all digits: only too large
			}
			h.MaxAge, haveMaxAge = n, true
		case "includesubdomains":
			h.IncludeSubDomains = true
		case "preload":
			h.Preload = true
		}
	}
	if !haveMaxAge {
		return h, errors.New("no max-age directive (it is required)")
	}
	return h, nil
}

// quotedString reads the RFC 9110 quoted-string at v[*i] (the opening
// quote) and returns its content without the quoted-pair backslashes.
func quotedString(v string, i *int) (string, error) {
	var b strings.Builder
	for j := *i + 1; j < len(v); j++ {
		c := v[j]
		switch {
		case c == '"':
			*i = j + 1
			return b.String(), nil
		case c == '\\':
			if j+1 == len(v) || !quotable(v[j+1]) {
				return "", errors.New("a backslash in a quoted string escapes nothing quotable")
			}
			j++
			b.WriteByte(v[j])
		case quotable(c):
			b.WriteByte(c)
		default:
			return "", fmt.Errorf("control character %q in a quoted string", c)
		}
	}
	return "", errors.New("a quoted string is not closed")
}

// quotable: HTAB, SP, a visible character or obs-text — what a quoted
// string may hold (a '"' or '\\' only as a quoted-pair).
func quotable(c byte) bool { return c == '\t' || c == ' ' || (c >= 0x21 && c != 0x7f) }

// tokenChar: an RFC 9110 tchar.
func tokenChar(c byte) bool {
	return c > ' ' && c < 0x7f && strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) < 0
}

// judgeHSTS: a user agent processes only the first Strict-Transport-Security
// field (RFC 6797 §8.1).
func judgeHSTS(values []string, where string) checks.Observation {
	if len(values) == 0 {
		return checks.Bad("no Strict-Transport-Security header in " + where)
	}
	first := values[0]
	shown := strconv.Quote(truncate(first, 120))
	h, err := ParseHSTS(first)
	switch {
	case err != nil:
		return checks.Bad(fmt.Sprintf("Strict-Transport-Security %s in %s is invalid, so clients ignore it: %v", shown, where, err))
	case h.MaxAge == 0:
		return checks.Bad(fmt.Sprintf("Strict-Transport-Security %s in %s has max-age=0: it tells clients to forget HSTS", shown, where))
	case h.MaxAge < MinHSTSMaxAge:
		return checks.Bad(fmt.Sprintf("Strict-Transport-Security %s in %s: max-age %d s is shorter than one year (%d s)", shown, where, h.MaxAge, MinHSTSMaxAge))
	}
	ev := fmt.Sprintf("Strict-Transport-Security %s in %s: max-age %d s (at least one year)", shown, where, h.MaxAge)
	if len(values) > 1 {
		ev += fmt.Sprintf("; %d more such fields, which clients ignore", len(values)-1)
	}
	return checks.Good(ev)
}

// judgeNosniff follows the Fetch standard's "determine nosniff": the
// header list's values joined and split on commas, the first one trimmed
// of HTTP whitespace must be "nosniff" (ASCII case-insensitive).
func judgeNosniff(values []string, where string) checks.Observation {
	if len(values) == 0 {
		return checks.Bad("no X-Content-Type-Options header in " + where)
	}
	first, _, _ := strings.Cut(strings.Join(values, ","), ",")
	first = strings.Trim(first, " \t\r\n")
	if !strings.EqualFold(first, "nosniff") {
		return checks.Bad(fmt.Sprintf("X-Content-Type-Options %q in %s is not nosniff", truncate(strings.Join(values, ", "), 80), where))
	}
	return checks.Good("X-Content-Type-Options: nosniff in " + where)
}
