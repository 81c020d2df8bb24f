package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
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
	// TLSVersion is the session's protocol version.
	TLSVersion uint16
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

func (s *scanner) fetchHead(ctx context.Context, path string) (*HTTPHead, error) {
	cfg := s.baseConfig()
	if s.target.ClientCert != nil {
		cfg.Certificates = []tls.Certificate{*s.target.ClientCert}
	}
	tc, err := s.handshake(ctx, cfg)
	if err != nil {
		if alert, ok := remoteAlert(err); ok {
			return nil, &fetchError{fmt.Errorf("handshake refused with a TLS alert: %s", alert)}
		}
		return nil, transient("TLS handshake", err)
	}
	defer s.release()
	defer tc.Close()
	st := tc.ConnectionState()
	if c := s.verifyChain(st.PeerCertificates); c.TrustErr != nil || len(st.PeerCertificates) == 0 {
		why := "no certificate"
		if c.TrustErr != nil {
			why = c.TrustErr.Error()
		}
		return nil, &fetchError{fmt.Errorf("the server's certificate does not verify (%s): no request sent", why)}
	}
	host := s.target.ServerName
	if _, port, _ := net.SplitHostPort(s.target.Address); port != "443" {
		host = net.JoinHostPort(host, port)
	}
	if _, err := fmt.Fprintf(tc, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: harden-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n", path, host); err != nil {
		if alert, ok := remoteAlert(err); ok {
			return nil, &fetchError{fmt.Errorf("request refused with a TLS alert: %s", alert)}
		}
		return nil, transient("send GET "+path, err)
	}
	raw, err := readHTTPResponse(tc)
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
	h.Address, h.Path, h.TLSVersion = s.target.Address, path, st.Version
	return h, nil
}

// parseHTTPHead parses the status line and header of an HTTP/1.x answer
// (raw may go on with the body). A head without its terminating empty
// line, or that is not HTTP/1.x, is an error: only a complete head is
// judged.
func parseHTTPHead(raw string) (*HTTPHead, error) {
	head, _, ok := strings.Cut(raw, "\r\n\r\n")
	if !ok {
		if !strings.HasPrefix(raw, "HTTP/") {
			return nil, fmt.Errorf("answer is not HTTP: %q", truncate(firstLine(raw), 40))
		}
		return nil, errors.New("the response head is incomplete (no empty line after the header)")
	}
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(head+"\r\n\r\n")), nil)
	if err != nil {
		return nil, fmt.Errorf("answer is not HTTP: %s (%q)", err, truncate(firstLine(raw), 40))
	}
	resp.Body.Close()
	if resp.ProtoMajor != 1 {
		return nil, fmt.Errorf("answer is not HTTP/1.x: %q", truncate(firstLine(raw), 40))
	}
	status := strings.TrimSpace(strings.TrimPrefix(resp.Status, strconv.Itoa(resp.StatusCode)))
	return &HTTPHead{Status: strings.TrimSpace(strconv.Itoa(resp.StatusCode) + " " + status), StatusCode: resp.StatusCode, Header: resp.Header}, nil
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
	if err != nil {
		why := checks.Unknown("GET over TLS", err.Error())
		return []checks.Check{checks.Reduce(CheckHSTS, subject, why), checks.Reduce(CheckContentTypeOptions, subject, why)}
	}
	where := fmt.Sprintf("the %s answer to GET %s over %s", head.Status, head.Path, tlsprofile.VersionName(head.TLSVersion))
	return []checks.Check{
		checks.Reduce(CheckHSTS, subject, judgeHSTS(head.Header.Values("Strict-Transport-Security"), where)),
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
// agent does (RFC 6797 §6.1, §8.1): directive names are case-insensitive,
// a value is a token or a quoted string, unknown directives are ignored,
// and the header is invalid — ignored by the user agent — when max-age is
// missing or not delta-seconds, or when any directive appears twice. A
// max-age too large for 64 bits is capped there.
func ParseHSTS(v string) (HSTS, error) {
	var h HSTS
	seen := map[string]bool{}
	haveMaxAge := false
	for _, d := range strings.Split(v, ";") {
		d = strings.Trim(d, " \t")
		if d == "" {
			continue
		}
		name, val, hasVal := strings.Cut(d, "=")
		name = strings.ToLower(strings.Trim(name, " \t"))
		val = strings.Trim(val, " \t")
		if !isToken(name) {
			return h, fmt.Errorf("directive %q is not a token", truncate(name, 40))
		}
		if seen[name] {
			return h, fmt.Errorf("directive %s appears twice", name)
		}
		seen[name] = true
		if hasVal {
			if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
				val = unquote(val[1 : len(val)-1])
			} else if !isToken(val) {
				return h, fmt.Errorf("value of %s is neither a token nor a quoted string: %q", name, truncate(val, 40))
			}
		}
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

// isToken: RFC 9110 token characters, at least one.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// unquote removes quoted-pair backslashes.
func unquote(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
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
