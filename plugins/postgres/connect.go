package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/harden-dev/harden/shared/sdk"
)

// The management connection (plan, apply, and verify's SQL checks) carries
// the admin password. It goes only where nobody on the path can read it or
// anything equivalent to it:
//
//   - through the local socket (connection.socket_dir, an absolute path);
//   - over TCP with TLS that was established AND verified against the
//     policy's CA, host name included (libpq's verify-full);
//   - over TCP without TLS only when the operator says why in
//     connection.allow_plaintext_admin AND the server itself refuses TLS
//     (answers 'N' to the SSLRequest, the state before the first apply) —
//     and then only with SCRAM-SHA-256 (pgx require_auth), which never
//     puts the password or a password equivalent on the wire. A cleartext
//     or MD5 password request is refused before anything is sent.
//
// A TLS failure — an untrusted certificate, a wrong name, a handshake error,
// a timeout — never falls back to plaintext: provoking that fallback is
// exactly what a man in the middle would do.

// scramOnly is pgx's require_auth value for the plaintext admin path.
const scramOnly = "scram-sha-256"

// connect opens the management connection (see above).
func connect(ctx context.Context, c connection, q sdk.RequestContext) (*pgx.Conn, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	cfg, err := managementConfig(c, q)
	if err != nil {
		return nil, err
	}
	if c.SocketDir != "" {
		cfg.Host = c.SocketDir
		return pgx.ConnectConfig(ctx, cfg)
	}
	if cfg.TLSConfig, err = verifiedTLS(c, q); err != nil {
		return nil, err
	}
	answers := &sslAnswers{}
	plainDial := cfg.DialFunc
	cfg.DialFunc = answers.wrap(plainDial)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		if err := requireVerifiedTLS(conn); err != nil {
			conn.Close(context.Background())
			return nil, err
		}
		return conn, nil
	}
	if !answers.refusedOnly() {
		return nil, fmt.Errorf("TLS to %s failed, and harden never falls back to plaintext after a TLS failure (no credentials were sent): %w", c.address(), err)
	}
	if c.AllowPlaintextAdmin == "" {
		return nil, fmt.Errorf("%s refuses TLS (it answered 'N' to the SSLRequest), so harden sent no credentials: "+
			"connect through the local socket (connection.socket_dir), or set connection.allow_plaintext_admin to the reason "+
			"a SCRAM-SHA-256 login without TLS is acceptable until apply switches TLS on", c.address())
	}
	cfg.DialFunc = plainDial
	return connectPlaintextSCRAM(ctx, c, cfg)
}

// managementConfig is the pgx configuration without any transport choice
// made yet. pgx.ParseConfig reads PG* environment variables and ~/.pgpass:
// everything that decides where credentials go is set explicitly here.
func managementConfig(c connection, q sdk.RequestContext) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig("sslmode=disable target_session_attrs=any")
	if err != nil {
		return nil, fmt.Errorf("pgx configuration: %w", err)
	}
	cfg.Host, cfg.Port, cfg.User, cfg.Database = c.Host, uint16(c.Port), c.User, c.Database
	if cfg.Database == "" {
		cfg.Database = "postgres"
	}
	if cfg.User == "" {
		cfg.User = "postgres"
	}
	cfg.Password = "" // never one from PGPASSWORD or a passfile
	if pw, ok := q.Target.Secret("password"); ok {
		cfg.Password = pw
	}
	cfg.ConnectTimeout = 10 * time.Second
	cfg.RuntimeParams = map[string]string{"application_name": "harden"}
	cfg.TLSConfig, cfg.Fallbacks = nil, nil
	cfg.SSLNegotiation, cfg.RequireAuth, cfg.ChannelBinding = "", "", "prefer"
	cfg.ValidateConnect, cfg.AfterNetConnect, cfg.OAuthTokenProvider = nil, nil, nil
	return cfg, nil
}

// verifiedTLS is the TLS configuration of the management connection: the
// policy's CA and the connection's host name, nothing skipped (libpq's
// verify-full). A CA bundle or client pair that does not parse is an error,
// never a weaker connection.
func verifiedTLS(c connection, q sdk.RequestContext) (*tls.Config, error) {
	cfg, err := sdk.ClientTLS(q.Certificates, sdk.ClientTLSOptions{ServerName: c.Host})
	switch {
	case errors.Is(err, sdk.ErrNoCA):
		return nil, errors.New("no CA bundle to verify the server with (certificates.files.ca_file, or the vault-pki source before its CA exists): " +
			"harden logs in over TCP only through TLS it can verify, and sent no credentials")
	case err != nil:
		return nil, fmt.Errorf("%w: harden cannot verify %s and sent no credentials", err, c.address())
	}
	return cfg, nil
}

// requireVerifiedTLS double-checks what pgx established: a completed TLS
// session with a chain verified against the policy's CA.
func requireVerifiedTLS(conn *pgx.Conn) error {
	tc, ok := conn.PgConn().Conn().(*tls.Conn)
	if !ok {
		return errors.New("the management connection is not TLS (refusing to use it)")
	}
	st := tc.ConnectionState()
	if !st.HandshakeComplete || len(st.VerifiedChains) == 0 {
		return errors.New("the management connection's TLS session has no verified chain (refusing to use it)")
	}
	return nil
}

// connectPlaintextSCRAM is the operator-allowed path for a server that
// refuses TLS: SCRAM-SHA-256 only, then a check that the server really has
// TLS off (if it says ssl = on, the 'N' came from something in between).
func connectPlaintextSCRAM(ctx context.Context, c connection, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	cfg.TLSConfig = nil
	cfg.RequireAuth = scramOnly
	cfg.ChannelBinding = "disable" // no TLS session to bind to
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s refuses TLS; connection.allow_plaintext_admin allows a login without TLS with SCRAM-SHA-256 only "+
			"(a cleartext or MD5 password request is refused before anything is sent): %w", c.address(), err)
	}
	var ssl string
	if err := conn.QueryRow(ctx, "SHOW ssl").Scan(&ssl); err != nil || ssl != "off" {
		conn.Close(context.Background())
		if err != nil {
			return nil, fmt.Errorf("cannot confirm that %s has TLS off (SHOW ssl), refusing to manage it without TLS: %w", c.address(), err)
		}
		return nil, fmt.Errorf("%s reports ssl = %s but its SSLRequest answer was 'N': something between harden and the server refused TLS; refusing to manage it without TLS", c.address(), ssl)
	}
	sdk.Log().Warn("management connection without TLS (SCRAM-SHA-256 only), allowed by connection.allow_plaintext_admin",
		"address", c.address(), "reason", c.AllowPlaintextAdmin)
	return conn, nil
}

// sslAnswers records how the server answered the SSLRequest on every
// connection pgx dialed (a name may resolve to several addresses): the
// first byte the server sends is that answer.
type sslAnswers struct {
	mu             sync.Mutex
	refused, other int
}

func (a *sslAnswers) note(b byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if b == 'N' {
		a.refused++
	} else {
		a.other++
	}
}

// refusedOnly: at least one server answered, and every answer was 'N'.
func (a *sslAnswers) refusedOnly() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.refused > 0 && a.other == 0
}

func (a *sslAnswers) wrap(dial pgconn.DialFunc) pgconn.DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &firstByteConn{Conn: conn, note: a.note}, nil
	}
}

// firstByteConn reports the first byte read from the server.
type firstByteConn struct {
	net.Conn
	once sync.Once
	note func(byte)
}

func (c *firstByteConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.once.Do(func() { c.note(b[0]) })
	}
	return n, err
}
