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
	"time"
)

// ErrTLSRefused: the server said it does not do TLS (e.g. PostgreSQL's 'N').
var ErrTLSRefused = errors.New("server refused to start TLS")

// Refusal is an application-level refusal observed after a handshake.
type Refusal struct{ Evidence string }

func (r *Refusal) Error() string { return r.Evidence }

// Dialect adapts probing to one protocol.
type Dialect interface {
	Name() string
	// ALPN protocols to offer in the ClientHello (nil for none).
	ALPN() []string
	// StartTLS runs the protocol's pre-TLS negotiation on a fresh
	// connection; it returns ErrTLSRefused when the server declines TLS.
	StartTLS(ctx context.Context, conn net.Conn) error
	// Plaintext opens a session without TLS on a fresh connection and says
	// whether the server went along (evidence describes what it did).
	// ok=false with a nil error means the dialect cannot tell.
	Plaintext(ctx context.Context, conn net.Conn) (accepted bool, evidence string, ok bool, err error)
	// Exchange sends one application request over an established TLS
	// session. With TLS 1.3 a server that requires a client certificate
	// completes the handshake and refuses only here; a refusal is reported
	// as a *Refusal or a TLS alert error.
	Exchange(ctx context.Context, conn *tls.Conn) error
}

// TLS is a plain TLS endpoint with no application protocol knowledge.
var TLS Dialect = tlsDialect{}

// Postgres negotiates TLS with an SSLRequest (all PostgreSQL versions).
var Postgres Dialect = postgresDialect{direct: false}

// PostgresDirect is PostgreSQL 17+ direct TLS with ALPN "postgresql".
var PostgresDirect Dialect = postgresDialect{direct: true}

// HTTP is HTTPS (object stores, Vault).
var HTTP Dialect = httpDialect{}

type tlsDialect struct{}

func (tlsDialect) Name() string                             { return "tls" }
func (tlsDialect) ALPN() []string                           { return nil }
func (tlsDialect) StartTLS(context.Context, net.Conn) error { return nil }
func (tlsDialect) Plaintext(context.Context, net.Conn) (bool, string, bool, error) {
	return false, "", false, nil
}

// Exchange for plain TLS: wait briefly for an alert the server may send right
// after the handshake (TLS 1.3 certificate_required).
func (tlsDialect) Exchange(ctx context.Context, conn *tls.Conn) error {
	conn.SetReadDeadline(time.Now().Add(time.Second))
	_, err := conn.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

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
		return err
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(conn, b); err != nil {
		return fmt.Errorf("read SSLRequest answer: %w", err)
	}
	switch b[0] {
	case 'S':
		return nil
	case 'N':
		return fmt.Errorf("%w: PostgreSQL answered 'N' to SSLRequest (ssl = off)", ErrTLSRefused)
	default:
		return fmt.Errorf("unexpected answer %q to SSLRequest", b[0])
	}
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

func (d postgresDialect) Plaintext(ctx context.Context, conn net.Conn) (bool, string, bool, error) {
	if d.direct {
		return false, "", false, nil
	}
	if _, err := conn.Write(startupMessage()); err != nil {
		return false, "", true, err
	}
	typ, fields, err := readFirstMessage(conn)
	if err != nil {
		return false, "", true, fmt.Errorf("read answer to plaintext StartupMessage: %w", err)
	}
	switch typ {
	case 'R':
		return true, "server answered a plaintext StartupMessage with an authentication request (credentials would cross unencrypted)", true, nil
	case 'E':
		return false, fmt.Sprintf("server refused the plaintext session: %s (SQLSTATE %s)", fields['M'], fields['C']), true, nil
	}
	return false, "", true, fmt.Errorf("unexpected message %q to plaintext StartupMessage", typ)
}

func (d postgresDialect) Exchange(ctx context.Context, conn *tls.Conn) error {
	if _, err := conn.Write(startupMessage()); err != nil {
		return err
	}
	typ, fields, err := readFirstMessage(bufio.NewReader(conn))
	if err != nil {
		return err
	}
	if typ == 'E' && strings.Contains(strings.ToLower(fields['M']), "certificate") {
		return &Refusal{Evidence: fmt.Sprintf("server refused: %s (SQLSTATE %s)", fields['M'], fields['C'])}
	}
	return nil
}

type httpDialect struct{}

func (httpDialect) Name() string                             { return "http" }
func (httpDialect) ALPN() []string                           { return []string{"http/1.1"} }
func (httpDialect) StartTLS(context.Context, net.Conn) error { return nil }

func httpHead(rw io.ReadWriter, host string) (string, error) {
	if _, err := fmt.Fprintf(rw, "HEAD / HTTP/1.1\r\nHost: %s\r\nUser-Agent: harden-probe\r\nConnection: close\r\n\r\n", host); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(rw).ReadString('\n')
	return strings.TrimSpace(line), err
}

func (httpDialect) Plaintext(ctx context.Context, conn net.Conn) (bool, string, bool, error) {
	if _, err := fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: harden-probe\r\nConnection: close\r\n\r\n", conn.RemoteAddr()); err != nil {
		return false, "no plaintext HTTP answer: " + err.Error(), true, nil
	}
	head := make([]byte, 4096)
	n, err := io.ReadAtLeast(conn, head, 12)
	if n == 0 {
		return false, "no plaintext HTTP answer: " + fmt.Sprint(err), true, nil
	}
	resp := string(head[:n])
	line, _, _ := strings.Cut(resp, "\n")
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "HTTP/") {
		return false, "non-HTTP answer to plaintext request", true, nil
	}
	// A TLS-only server that tells a plaintext client to use HTTPS (Go's
	// net/http: "Client sent an HTTP request to an HTTPS server"; nginx:
	// "The plain HTTP request was sent to HTTPS port") refuses it.
	if strings.Contains(line, " 400") && strings.Contains(strings.ToUpper(resp), "HTTPS") {
		return false, "plaintext request refused: " + line + " (" + strings.TrimSpace(lastLine(resp)) + ")", true, nil
	}
	return true, "server answered plaintext HTTP: " + line, true, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		return s[i+1:]
	}
	return s
}

func (httpDialect) Exchange(ctx context.Context, conn *tls.Conn) error {
	_, err := httpHead(conn, conn.RemoteAddr().String())
	return err
}
