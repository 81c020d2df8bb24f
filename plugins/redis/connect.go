package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"syscall"

	"github.com/harden-dev/harden/shared/sdk"
)

// tlsConfig is the client side of a verified TLS session to the target:
// the policy's CA as the only roots, the target's server name, harden's
// client certificate for mutual TLS (unless noClientCert).
func (t *target) tlsConfig(q sdk.RequestContext, noClientCert bool) (*tls.Config, error) {
	return sdk.ClientTLS(q.Certificates, sdk.ClientTLSOptions{ServerName: t.serverName(), NoClientCertificate: noClientCert})
}

// dialTLS opens a TLS session to the TLS port verified with the policy's CA.
func (t *target) dialTLS(ctx context.Context, q sdk.RequestContext) (*conn, error) {
	cfg, err := t.tlsConfig(q, false)
	if err != nil {
		return nil, err
	}
	return dial(ctx, "tcp", t.conn.Address, cfg, "TLS to "+t.conn.Address)
}

// manage opens the management connection and logs in. The password goes
// only over a TLS session verified against the policy's CA or over the
// Unix socket; plaintext TCP (allow_plaintext_admin, only while nothing
// listens on the TLS port) never carries it. The choice, in order:
//
//  1. TLS to connection.address, verified (harden's client certificate
//     when the policy gives one);
//  2. the Unix socket, when given (before TLS is on, or when the TLS port
//     serves a certificate the policy's CA does not verify: then TLS is
//     not believed, the local socket is);
//  3. plaintext TCP to the plaintext port, only when the TLS port refused
//     the connection (nothing listens: TLS is not on yet) and
//     allow_plaintext_admin says why; never with the password.
func (t *target) manage(ctx context.Context, q sdk.RequestContext) (*conn, error) {
	c, tlsErr := t.dialTLS(ctx, q)
	if tlsErr == nil {
		return t.login(ctx, c)
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("redis %s: %w", t.conn.Address, context.Cause(ctx))
	}
	if t.conn.UnixSocket != "" {
		c, err := dial(ctx, "unix", t.conn.UnixSocket, nil, "Unix socket "+t.conn.UnixSocket)
		if err != nil {
			return nil, fmt.Errorf("redis: TLS to %s: %v; Unix socket %s: %w", t.conn.Address, tlsErr, t.conn.UnixSocket, err)
		}
		return t.login(ctx, c)
	}
	if t.conn.AllowPlaintextAdmin != "" && errors.Is(tlsErr, syscall.ECONNREFUSED) {
		addr, err := t.plaintextAddress("")
		if err != nil {
			return nil, err
		}
		c, err := dial(ctx, "tcp", addr, nil, "plaintext to "+addr)
		if err != nil {
			return nil, fmt.Errorf("redis: nothing listens on the TLS port %s, and plaintext %s: %w", t.conn.Address, addr, err)
		}
		return t.login(ctx, c)
	}
	return nil, fmt.Errorf("redis: no management connection: TLS to %s verified with the policy's CA: %w (give connection.unix_socket to manage redis before TLS is on)", t.conn.Address, tlsErr)
}

// login authenticates c when a password is given and c may carry it, and
// proves the session works (PING).
func (t *target) login(ctx context.Context, c *conn) (*conn, error) {
	if t.password != "" && c.secure {
		args := []string{"AUTH", t.password}
		if t.conn.Username != "" {
			args = []string{"AUTH", t.conn.Username, t.password}
		}
		if _, err := c.do(ctx, args...); err != nil && !noPasswordSet(err) {
			c.Close()
			return nil, fmt.Errorf("redis login over %s: %w", c.via, err)
		}
	}
	if _, err := c.do(ctx, "PING"); err != nil {
		c.Close()
		if errCode(err) == "NOAUTH" && !c.secure {
			return nil, fmt.Errorf("redis over %s wants a password, which harden sends only over verified TLS or the Unix socket: give connection.unix_socket", c.via)
		}
		return nil, fmt.Errorf("redis over %s: %w", c.via, err)
	}
	return c, nil
}

// noPasswordSet: AUTH against a default user without a password (redis:
// "ERR AUTH <password> called without any password configured for the
// default user"). The session works; verify reports redis.auth.required.
func noPasswordSet(err error) bool {
	var re *redisError
	return errors.As(err, &re) && re.code() == "ERR" && containsFold(re.msg, "without any password configured")
}

// configGet reads the named settings (CONFIG GET with several patterns
// needs redis 7).
func configGet(ctx context.Context, c *conn, names ...string) (map[string]string, error) {
	v, err := c.do(ctx, append([]string{"CONFIG", "GET"}, names...)...)
	if err != nil {
		return nil, err
	}
	got, err := configPairs(v)
	if err != nil {
		return nil, fmt.Errorf("CONFIG GET over %s: %w", c.via, err)
	}
	for _, n := range names {
		if _, ok := got[n]; !ok {
			return nil, fmt.Errorf("CONFIG GET over %s: redis does not know %s (redis 6.0 or later with TLS built in is needed)", c.via, n)
		}
	}
	return got, nil
}

// configSet sets the settings in one CONFIG SET (all or nothing in redis 7).
func configSet(ctx context.Context, c *conn, ss []setting) error {
	if len(ss) == 0 {
		return nil
	}
	args := []string{"CONFIG", "SET"}
	for _, s := range ss {
		args = append(args, s.name, s.value)
	}
	_, err := c.do(ctx, args...)
	return err
}
