package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// RESP2, the part harden needs: commands go out as arrays of bulk strings,
// replies come back as simple strings, errors, integers, bulk strings and
// arrays. A hand-written client rather than go-redis: it is about 200
// lines, adds no dependency to the module, and nothing is sent behind the
// plugin's back (go-redis sends HELLO/AUTH and CLIENT SETINFO on its own),
// so where the password travels is decided in one place (connect.go).

// Limits on what a server may send: CONFIG GET answers are a few hundred
// bytes; anything far larger is not a Redis harden should believe.
const (
	maxLine  = 64 << 10
	maxBulk  = 1 << 20
	maxArray = 4096
	maxDepth = 4
)

// reply is one RESP2 value.
type reply struct {
	// kind is the type byte: '+' simple string, '-' error, ':' integer,
	// '$' bulk string, '*' array.
	kind  byte
	str   string
	n     int64
	null  bool
	elems []reply
}

// redisError is an error reply ("-NOAUTH Authentication required.").
type redisError struct{ msg string }

func (e *redisError) Error() string { return "redis answered: " + e.msg }

// code is the error's first word (NOAUTH, WRONGPASS, ERR).
func (e *redisError) code() string { code, _, _ := strings.Cut(e.msg, " "); return code }

func errCode(err error) string {
	var re *redisError
	if errors.As(err, &re) {
		return re.code()
	}
	return ""
}

var errProtocol = errors.New("not a RESP reply")

// readReply reads one reply; depth bounds nesting.
func readReply(r *bufio.Reader, depth int) (reply, error) {
	line, err := readLine(r)
	if err != nil {
		return reply{}, err
	}
	if len(line) == 0 {
		return reply{}, fmt.Errorf("%w: empty line", errProtocol)
	}
	kind, rest := line[0], line[1:]
	switch kind {
	case '+', '-':
		return reply{kind: kind, str: rest}, nil
	case ':':
		n, err := respInt(rest)
		if err != nil {
			return reply{}, fmt.Errorf("%w: integer %q", errProtocol, rest)
		}
		return reply{kind: kind, n: n}, nil
	case '$':
		n64, err := respInt(rest)
		n := int(n64)
		switch {
		case err != nil || n < -1:
			return reply{}, fmt.Errorf("%w: bulk length %q", errProtocol, rest)
		case n == -1:
			return reply{kind: kind, null: true}, nil
		case n > maxBulk:
			return reply{}, fmt.Errorf("%w: bulk string of %d bytes", errProtocol, n)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return reply{}, err
		}
		if buf[n] != '\r' || buf[n+1] != '\n' {
			return reply{}, fmt.Errorf("%w: bulk string not terminated by CRLF", errProtocol)
		}
		return reply{kind: kind, str: string(buf[:n])}, nil
	case '*':
		n64, err := respInt(rest)
		n := int(n64)
		switch {
		case err != nil || n < -1:
			return reply{}, fmt.Errorf("%w: array length %q", errProtocol, rest)
		case n == -1:
			return reply{kind: kind, null: true}, nil
		case n > maxArray:
			return reply{}, fmt.Errorf("%w: array of %d elements", errProtocol, n)
		case depth >= maxDepth:
			return reply{}, fmt.Errorf("%w: arrays nested deeper than %d", errProtocol, maxDepth)
		}
		out := reply{kind: kind, elems: make([]reply, 0, min(n, 64))}
		for range n {
			e, err := readReply(r, depth+1)
			if err != nil {
				return reply{}, err
			}
			out.elems = append(out.elems, e)
		}
		return out, nil
	}
	return reply{}, fmt.Errorf("%w: type byte %q", errProtocol, kind)
}

// respInt parses an integer as redis writes it: an optional minus and
// digits, no sign, no leading zeros, no "-0" (so what is accepted is
// exactly what encode writes back).
func respInt(s string) (int64, error) {
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || (len(digits) > 1 && digits[0] == '0') || s == "-0" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, fmt.Errorf("not a RESP integer: %q", s)
	}
	return strconv.ParseInt(s, 10, 64)
}

// readLine reads up to CRLF (a bare LF or an overlong line is not RESP).
func readLine(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		chunk, err := r.ReadSlice('\n')
		b.Write(chunk)
		if b.Len() > maxLine {
			return "", fmt.Errorf("%w: line longer than %d bytes", errProtocol, maxLine)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if b.Len() > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		break
	}
	s := b.String()
	if len(s) < 2 || s[len(s)-2] != '\r' {
		return "", fmt.Errorf("%w: line not terminated by CRLF", errProtocol)
	}
	return s[:len(s)-2], nil
}

// encode writes a reply back in RESP2 (the fuzz test's round trip).
func (v reply) encode(b *strings.Builder) {
	switch v.kind {
	case '+', '-':
		b.WriteString(string(v.kind) + v.str + "\r\n")
	case ':':
		b.WriteString(":" + strconv.FormatInt(v.n, 10) + "\r\n")
	case '$':
		if v.null {
			b.WriteString("$-1\r\n")
			return
		}
		b.WriteString("$" + strconv.Itoa(len(v.str)) + "\r\n" + v.str + "\r\n")
	case '*':
		if v.null {
			b.WriteString("*-1\r\n")
			return
		}
		b.WriteString("*" + strconv.Itoa(len(v.elems)) + "\r\n")
		for _, e := range v.elems {
			e.encode(b)
		}
	}
}

// command encodes argv as a RESP array of bulk strings.
func command(args ...string) []byte {
	var b strings.Builder
	b.WriteString("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b.WriteString("$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n")
	}
	return []byte(b.String())
}

// configPairs reads CONFIG GET's answer: an array of name, value bulk
// strings (RESP2). Anything else is an error.
func configPairs(v reply) (map[string]string, error) {
	if v.kind != '*' || v.null || len(v.elems)%2 != 0 {
		return nil, fmt.Errorf("%w: CONFIG GET answered %s, not an array of name/value pairs", errProtocol, v.describe())
	}
	out := make(map[string]string, len(v.elems)/2)
	for i := 0; i < len(v.elems); i += 2 {
		k, val := v.elems[i], v.elems[i+1]
		if k.kind != '$' || k.null || val.kind != '$' || val.null {
			return nil, fmt.Errorf("%w: CONFIG GET pair %d is not two bulk strings", errProtocol, i/2+1)
		}
		out[k.str] = val.str
	}
	return out, nil
}

func (v reply) describe() string {
	switch v.kind {
	case '*':
		return fmt.Sprintf("an array of %d", len(v.elems))
	case '$':
		return "a bulk string"
	case '+':
		return "+" + truncate(v.str, 40)
	case '-':
		return "-" + truncate(v.str, 80)
	case ':':
		return "an integer"
	}
	return "nothing"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// conn is one connection to redis-server.
type conn struct {
	nc net.Conn
	r  *bufio.Reader
	// via says how it is connected, for messages: "TLS to 127.0.0.1:6380"
	// (verified with the policy's CA), "Unix socket /run/redis.sock",
	// "plaintext to 127.0.0.1:6379".
	via string
	// secure: the password may be sent here (verified TLS or Unix socket).
	secure bool
}

// callTimeout bounds one command (the request's context may end sooner).
const callTimeout = 10 * time.Second

// do sends one command and reads its reply; an error reply is a
// *redisError. The request's context cancels the exchange at once.
func (c *conn) do(ctx context.Context, args ...string) (reply, error) {
	deadline := time.Now().Add(callTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := c.nc.Write(command(args...)); err != nil {
		return reply{}, c.wrap(ctx, args[0], err)
	}
	v, err := readReply(c.r, 0)
	if err != nil {
		return reply{}, c.wrap(ctx, args[0], err)
	}
	if v.kind == '-' {
		return v, &redisError{msg: v.str}
	}
	return v, nil
}

// wrap names the command (never its arguments: AUTH carries the password)
// and prefers the context's cause to the deadline it set.
func (c *conn) wrap(ctx context.Context, cmd string, err error) error {
	if cerr := context.Cause(ctx); cerr != nil {
		err = cerr
	}
	return fmt.Errorf("%s over %s: %w", strings.ToUpper(cmd), c.via, err)
}

func (c *conn) Close() error { return c.nc.Close() }

// dial opens a connection: TLS when cfg is set (the handshake completes
// before dial returns), else plain TCP or, for network "unix", a socket.
func dial(ctx context.Context, network, addr string, cfg *tls.Config, via string) (*conn, error) {
	d := net.Dialer{Timeout: callTimeout}
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		tc := tls.Client(nc, cfg)
		hctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		if err := tc.HandshakeContext(hctx); err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	return &conn{nc: nc, r: bufio.NewReader(nc), via: via, secure: cfg != nil || network == "unix"}, nil
}
