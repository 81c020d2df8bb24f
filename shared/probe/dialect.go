package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// ErrTLSRefused: the server said it does not do TLS (e.g. PostgreSQL's 'N').
var ErrTLSRefused = errors.New("server refused to start TLS")

// Dialect adapts probing to one protocol. Each dialect states, next to its
// code, which answers count as a refusal; everything else it cannot
// recognise is inconclusive.
type Dialect interface {
	Name() string
	// ALPN protocols to offer in the ClientHello (nil for none).
	ALPN() []string
	// StartTLS runs the protocol's pre-TLS negotiation on a fresh
	// connection. nil: go ahead with TLS. An error wrapping ErrTLSRefused:
	// the server declined TLS in its own words. Any other error is a
	// transient failure (retried, then inconclusive).
	StartTLS(ctx context.Context, conn net.Conn) error
	// Plaintext opens a session without TLS on a fresh connection and
	// judges the server's answer: Accepted, Refused (in the server's own
	// words), Inconclusive, or NotAttempted when the protocol has no
	// plaintext session to try. An error is a transient failure to retry.
	Plaintext(ctx context.Context, conn net.Conn) (Observation, error)
	// Exchange sends one application request over an established TLS
	// session and judges the answer the same way. With TLS 1.3 a server
	// that requires a client certificate completes the handshake and
	// refuses only here. NotAttempted: the protocol has no request to make
	// (the probe then waits for a post-handshake alert itself, only when
	// the server asked for a certificate it did not get).
	Exchange(ctx context.Context, conn *tls.Conn) (Observation, error)
}

// TLS is a plain TLS endpoint with no application protocol knowledge.
var TLS Dialect = tlsDialect{}

// Postgres negotiates TLS with an SSLRequest (all PostgreSQL versions).
var Postgres Dialect = postgresDialect{direct: false}

// PostgresDirect is PostgreSQL 17+ direct TLS with ALPN "postgresql".
var PostgresDirect Dialect = postgresDialect{direct: true}

// HTTP is HTTPS (object stores, Vault).
var HTTP Dialect = httpDialect{}

// Plain TLS. Refusals: only the TLS layer's (an alert, a ServerHello for
// another version). No plaintext session and no application request.
type tlsDialect struct{}

func (tlsDialect) Name() string                             { return "tls" }
func (tlsDialect) ALPN() []string                           { return nil }
func (tlsDialect) StartTLS(context.Context, net.Conn) error { return nil }
func (tlsDialect) Plaintext(context.Context, net.Conn) (Observation, error) {
	return Observation{NotAttempted, "plain TLS has no plaintext session to attempt"}, nil
}
func (tlsDialect) Exchange(context.Context, *tls.Conn) (Observation, error) {
	return Observation{NotAttempted, ""}, nil
}

// PostgreSQL. Refusals:
//   - TLS: 'N' to the SSLRequest (ssl = off);
//   - plaintext session: an ErrorResponse with SQLSTATE 28000 raised by
//     pg_hba's check (routine ClientAuthentication: "no pg_hba.conf entry
//     ... no encryption", "pg_hba.conf rejects connection"). Nothing else:
//     53300 too many clients, 57P03 starting up, an ident or peer failure
//     (routine auth_failed) say nothing about plaintext being refused;
//   - session without a (trusted) client certificate: a TLS alert, or
//     SQLSTATE 28000 from ClientAuthentication about the certificate.
//
// An authentication request ('R') is acceptance: the server is ready to
// take credentials over that session.
type postgresDialect struct{ direct bool }

func (d postgresDialect) Name() string {
	if d.direct {
		return "postgres-direct"
	}
	return "postgres"
}

func (d postgresDialect) ALPN() []string {
	if d.direct {
		return []string{"postgresql"}
	}
	return nil
}

const pgSSLRequestCode = 80877103

func (d postgresDialect) StartTLS(ctx context.Context, conn net.Conn) error {
	if d.direct {
		return nil
	}
	msg := make([]byte, 8)
	binary.BigEndian.PutUint32(msg[0:4], 8)
	binary.BigEndian.PutUint32(msg[4:8], pgSSLRequestCode)
	if _, err := conn.Write(msg); err != nil {
		return transient("send SSLRequest", err)
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(conn, b); err != nil {
		return transient("read the answer to SSLRequest", err)
	}
	switch b[0] {
	case 'S':
		return nil
	case 'N':
		return fmt.Errorf("%w: PostgreSQL answered 'N' to SSLRequest (ssl = off)", ErrTLSRefused)
	}
	return transient("SSLRequest", fmt.Errorf("unexpected answer %q (not 'S' or 'N')", b[0]))
}

// startupMessage is a protocol 3.0 StartupMessage for a probe user; the
// server answers with an authentication request or an error before any
// password is involved.
func startupMessage() []byte {
	var body []byte
	body = binary.BigEndian.AppendUint32(body, 3<<16)
	for _, kv := range [][2]string{{"user", "harden_probe"}, {"database", "postgres"}, {"application_name", "harden-probe"}} {
		body = append(append(append(append(body, kv[0]...), 0), kv[1]...), 0)
	}
	body = append(body, 0)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body)+4)), body...)
}

// readFirstMessage returns the type and error fields of the server's first
// message after a StartupMessage.
func readFirstMessage(r io.Reader) (byte, map[byte]string, error) {
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[1:5])) - 4
	if n < 0 || n > 1<<16 {
		return 0, nil, fmt.Errorf("bad message length %d", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	fields := map[byte]string{}
	if hdr[0] == 'E' {
		for len(body) > 1 {
			code := body[0]
			end := strings.IndexByte(string(body[1:]), 0)
			if end < 0 {
				break
			}
			fields[code] = string(body[1 : 1+end])
			body = body[2+end:]
		}
	}
	return hdr[0], fields, nil
}

// pgTransientStates are SQLSTATEs of a server that cannot take the session
// right now: too many connections, starting up, shutting down, recovery.
var pgTransientStates = map[string]bool{"53300": true, "57P03": true, "57P01": true, "57P02": true, "08006": true}

// pgHBARejection: SQLSTATE 28000 raised by pg_hba's own check.
func pgHBARejection(f map[byte]string) bool {
	if f['C'] != "28000" {
		return false
	}
	if r, ok := f['R']; ok {
		return r == "ClientAuthentication"
	}
	// Servers that omit the routine field: fall back on the (English)
	// message; a translated one stays inconclusive.
	return strings.Contains(f['M'], "pg_hba.conf")
}

func pgErrorText(f map[byte]string) string {
	return fmt.Sprintf("%s (SQLSTATE %s)", f['M'], f['C'])
}

// pgAnswer reads the first answer to a StartupMessage and judges it.
func pgAnswer(r io.Reader, isRefusal func(map[byte]string) bool, session string) (Observation, error) {
	typ, fields, err := readFirstMessage(r)
	if err != nil {
		if alert, ok := remoteAlert(err); ok {
			return refused("%s refused with a TLS alert: %s", session, alert), nil
		}
		return Observation{}, transient("read the answer to the StartupMessage", err)
	}
	switch {
	case typ == 'R':
		return accepted("server answered the %s StartupMessage with an authentication request", session), nil
	case typ == 'E' && pgTransientStates[fields['C']]:
		return Observation{}, transient("StartupMessage", fmt.Errorf("server cannot take sessions now: %s", pgErrorText(fields)))
	case typ == 'E' && isRefusal(fields):
		return refused("server refused the %s session: %s", session, pgErrorText(fields)), nil
	case typ == 'E':
		return inconclusive("server answered the %s StartupMessage with an error that is not a pg_hba rejection: %s", session, pgErrorText(fields)), nil
	}
	return inconclusive("unexpected message %q to the %s StartupMessage", typ, session), nil
}

func (d postgresDialect) Plaintext(ctx context.Context, conn net.Conn) (Observation, error) {
	if d.direct {
		return Observation{NotAttempted, "direct TLS has no plaintext session (the SSLRequest dialect tests it)"}, nil
	}
	if _, err := conn.Write(startupMessage()); err != nil {
		return Observation{}, transient("send a plaintext StartupMessage", err)
	}
	o, err := pgAnswer(conn, pgHBARejection, "plaintext")
	if o.Outcome == Accepted {
		o.Evidence += " (credentials would cross unencrypted)"
	}
	return o, err
}

func (d postgresDialect) Exchange(ctx context.Context, conn *tls.Conn) (Observation, error) {
	if _, err := conn.Write(startupMessage()); err != nil {
		if alert, ok := remoteAlert(err); ok {
			return refused("session refused with a TLS alert: %s", alert), nil
		}
		return Observation{}, transient("send a StartupMessage over TLS", err)
	}
	return pgAnswer(bufio.NewReader(conn), pgCertificateRejection, "TLS")
}

// pgCertificateRejection: pg_hba refused the session for its (missing or
// untrusted) client certificate.
func pgCertificateRejection(f map[byte]string) bool {
	return pgHBARejection(f) && strings.Contains(strings.ToLower(f['M']), "certificate")
}

// HTTP(S). Refusals:
//   - plaintext request: an HTTP 400 telling the client to use HTTPS (Go's
//     net/http "Client sent an HTTP request to an HTTPS server", nginx "The
//     plain HTTP request was sent to HTTPS port" — those phrases, not any
//     mention of https), or a complete TLS alert record (the port speaks only
//     TLS);
//   - session without a (trusted) client certificate: a TLS alert, or
//     nginx's 400 "No required SSL certificate was sent" / "The SSL
//     certificate error".
//
// Any HTTP answer over TLS is acceptance of the session, whatever its
// status.
type httpDialect struct{}

func (httpDialect) Name() string                             { return "http" }
func (httpDialect) singleProtocolPort() bool                 { return true }
func (httpDialect) ALPN() []string                           { return []string{"http/1.1"} }
func (httpDialect) StartTLS(context.Context, net.Conn) error { return nil }

// tlsRecordAnswer reports whether b is a complete TLS alert record or starts
// a plausible TLS handshake record: a TLS-only port answering plaintext.
func tlsRecordAnswer[T string | []byte](b T) bool {
	if len(b) < 5 || b[1] != 3 || b[2] > 4 {
		return false
	}
	n := int(b[3])<<8 | int(b[4])
	switch b[0] {
	case 21:
		return n == 2 && len(b) >= 7
	case 22:
		return n >= 4 && n <= 1<<14+2048
	}
	return false
}

// httpsOnlyPhrases are what TLS-only HTTP servers answer a plaintext request
// with (Go's net/http — Vault, SeaweedFS, MinIO —, nginx).
var httpsOnlyPhrases = []string{"Client sent an HTTP request to an HTTPS server", "The plain HTTP request was sent to HTTPS port"}

// httpsCertPhrases are what nginx answers over TLS when it requires a client
// certificate (ssl_verify_client on) and got none or an untrusted one.
var httpsCertPhrases = []string{"No required SSL certificate was sent", "The SSL certificate error"}

func containsAny(s string, phrases []string) bool {
	for _, p := range phrases {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

func (httpDialect) Plaintext(ctx context.Context, conn net.Conn) (Observation, error) {
	if _, err := fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: harden-probe\r\nConnection: close\r\n\r\n", conn.RemoteAddr()); err != nil {
		return Observation{}, transient("send a plaintext HTTP request", err)
	}
	resp, err := readHTTPResponse(conn)
	if tlsRecordAnswer(resp) {
		return refused("plaintext request answered with a TLS record (the port speaks TLS only)"), nil
	}
	if err != nil {
		return Observation{}, transient("read the answer to a plaintext HTTP request", err)
	}
	line, _, _ := strings.Cut(resp, "\n")
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "HTTP/") {
		return Observation{}, transient("plaintext HTTP request", fmt.Errorf("answer is neither HTTP nor TLS: %q", truncate(line, 40)))
	}
	if strings.Contains(line, " 400") && containsAny(resp, httpsOnlyPhrases) {
		return refused("plaintext request refused: %s (%s)", line, strings.TrimSpace(lastLine(resp))), nil
	}
	return accepted("server answered plaintext HTTP: %s", line), nil
}

// readHTTPResponse reads a response head and its body (up to 4 KiB of a
// Content-Length body, else until the close the request asked for): only a
// complete answer is judged. An answer that starts like a TLS record is
// returned at once.
func readHTTPResponse(r io.Reader) (string, error) {
	var buf []byte
	chunk := make([]byte, 4096)
	for len(buf) < 8192 {
		n, err := r.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if tlsRecordAnswer(buf) {
			return string(buf), nil
		}
		if head, body, ok := strings.Cut(string(buf), "\r\n\r\n"); ok {
			want := -1
			for _, h := range strings.Split(head, "\r\n")[1:] {
				if k, v, ok := strings.Cut(h, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "content-length") {
					fmt.Sscan(strings.TrimSpace(v), &want)
				}
			}
			if want >= 0 && len(body) >= min(want, 4096) {
				return string(buf), nil
			}
			if want < 0 && err == io.EOF {
				return string(buf), nil // no length: the body ends at the close
			}
		}
		if err == io.EOF && len(buf) > 0 {
			return string(buf), io.ErrUnexpectedEOF
		}
		if err != nil {
			return string(buf), err
		}
	}
	return string(buf), nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		return s[i+1:]
	}
	return s
}

func (httpDialect) Exchange(ctx context.Context, conn *tls.Conn) (Observation, error) {
	_, err := fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: harden-probe\r\nConnection: close\r\n\r\n", conn.RemoteAddr())
	var resp string
	if err == nil {
		resp, err = readHTTPResponse(conn)
	}
	if alert, ok := remoteAlert(err); ok {
		return refused("session refused with a TLS alert: %s", alert), nil
	}
	line, _, _ := strings.Cut(resp, "\n")
	if line = strings.TrimSpace(line); !strings.HasPrefix(line, "HTTP/") {
		if err == nil {
			err = fmt.Errorf("answer is not HTTP: %q", truncate(line, 40))
		}
		return Observation{}, transient("HTTP request over TLS", err)
	}
	if strings.Contains(line, " 400") && containsAny(resp, httpsCertPhrases) {
		return refused("session refused: %s (%s)", line, strings.TrimSpace(lastLine(resp))), nil
	}
	return accepted("server answered over TLS: %s", line), nil
}
