package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
)

// Verify observes the live redis: the probe's TLS scan of the TLS port
// (tls.*: versions, suites, groups, certificate, client certificates
// refused under mTLS), the plaintext port (redis.plaintext.closed),
// whether an unauthenticated session is refused (redis.auth.required),
// and what redis reports of its TLS settings (redis.config.tls:
// configuration only, never a pass of a high-severity check by itself).
func (redisTLS) Verify(ctx context.Context, q sdk.VerifyRequest, r *sdk.VerifyResponse) {
	t, ok := load(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	t.notices().Verify(&r.Diagnostics)
	subj := t.conn.Address
	pt, exp, err := probe.ForRequest(q.RequestContext, redisDialect{})
	if err != nil {
		r.Checks = append(r.Checks, checks.Errored("tls.enabled", subj, fmt.Errorf("the policy's certificates: %w", err)))
	} else {
		pt.Address, pt.ServerName = t.conn.Address, t.serverName()
		res, err := probe.Scan(ctx, pt, probe.Options{})
		if err != nil {
			r.Checks = append(r.Checks, checks.Errored("tls.enabled", subj, err))
		} else {
			r.Checks = append(r.Checks, res.Checks(exp)...)
			r.Endpoints = append(r.Endpoints, res.Describe("redis"))
		}
	}
	r.Checks = append(r.Checks, authCheck(ctx, q.RequestContext, t))
	config, cfgErr := liveConfig(ctx, q.RequestContext, t)
	r.Checks = append(r.Checks, configCheck(q.RequestContext, t, config, cfgErr), plaintextCheck(ctx, t, config, cfgErr))
}

// liveConfig reads the managed settings over the management connection.
func liveConfig(ctx context.Context, q sdk.RequestContext, t *target) (map[string]string, error) {
	c, err := t.manage(ctx, q)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return configGet(ctx, c, managed...)
}

// configCheck compares what redis reports with what harden renders.
func configCheck(q sdk.RequestContext, t *target, config map[string]string, err error) checks.Check {
	if err != nil {
		return checks.Reduce(checkConfigTLS, t.conn.Address, checks.Unknown("CONFIG GET tls-*", err.Error()))
	}
	var bad []string
	for _, s := range append(t.tlsSettings(q), t.portSettings()...) {
		if config[s.name] != s.value {
			bad = append(bad, fmt.Sprintf("%s is %q, want %q", s.name, config[s.name], s.value))
		}
	}
	if len(bad) > 0 {
		return checks.Configured(checkConfigTLS, t.conn.Address, "CONFIG GET: "+strings.Join(bad, "; "), false)
	}
	return checks.Configured(checkConfigTLS, t.conn.Address, "CONFIG GET: every tls-* setting, tls-port and port as rendered", true)
}

// authCheck sends PING without logging in: redis's -NOAUTH is the refusal
// (conclusive), +PONG is an open default user. Tried over TLS verified
// with the policy's CA, else the Unix socket, else the plaintext address
// given — no password goes anywhere here.
func authCheck(ctx context.Context, q sdk.RequestContext, t *target) checks.Check {
	var tried []string
	try := func(c *conn, err error, what string) (checks.Check, bool) {
		if err != nil {
			tried = append(tried, what+": "+err.Error())
			return checks.Check{}, false
		}
		defer c.Close()
		_, err = c.do(ctx, "PING")
		switch code := errCode(err); {
		case err == nil:
			return checks.Reduce(checkAuthRequired, t.conn.Address, checks.Bad("an unauthenticated PING over "+c.via+" was answered +PONG: the default user has no password")), true
		case code == "NOAUTH":
			return checks.Reduce(checkAuthRequired, t.conn.Address, checks.Good("an unauthenticated PING over "+c.via+" was refused: "+truncate(err.(*redisError).msg, 80))), true
		default:
			tried = append(tried, what+": "+err.Error())
			return checks.Check{}, false
		}
	}
	cfg, err := t.tlsConfig(q, false)
	var c *conn
	if err == nil {
		c, err = dial(ctx, "tcp", t.conn.Address, cfg, "TLS to "+t.conn.Address)
	}
	if ch, ok := try(c, err, "TLS to "+t.conn.Address); ok {
		return ch
	}
	if t.conn.UnixSocket != "" {
		c, err := dial(ctx, "unix", t.conn.UnixSocket, nil, "Unix socket "+t.conn.UnixSocket)
		if ch, ok := try(c, err, "Unix socket "+t.conn.UnixSocket); ok {
			return ch
		}
	}
	if a := t.conn.PlaintextAddress; a != "" {
		c, err := dial(ctx, "tcp", a, nil, "plaintext to "+a)
		if ch, ok := try(c, err, "plaintext to "+a); ok {
			return ch
		}
	}
	return checks.Reduce(checkAuthRequired, t.conn.Address, checks.Unknown("unauthenticated PING", strings.Join(tried, "; ")))
}

// plaintextCheck proves the plaintext port closed. A RESP answer to a
// plaintext PING is conclusive: bad. "Connection refused" is conclusive —
// good — only together with redis's own report of port 0: a refusal seen
// from harden's side while redis says it listens on a port (a container
// that publishes only the TLS port, a bind to another interface, a
// plaintext_address that is not redis's port) proves nothing about the
// port redis has open, so it is inconclusive. When CONFIG GET fails the
// refusal is all there is, and it cannot tell whether the address is
// redis's plaintext port at all: inconclusive too. A timeout, a reset, a
// close or bytes that are not RESP prove nothing. Without an address to
// try (port 0 reported and no plaintext_address), only redis's own report
// is left: configuration evidence, which cannot pass this high-severity
// check.
func plaintextCheck(ctx context.Context, t *target, config map[string]string, cfgErr error) checks.Check {
	port := config["port"]
	addr, err := t.plaintextAddress(port)
	if err != nil {
		if cfgErr != nil {
			return checks.Reduce(checkPlaintextClosed, t.conn.Address, checks.Unknown("plaintext port", "no plaintext_address and no CONFIG GET port: "+cfgErr.Error()))
		}
		return checks.Configured(checkPlaintextClosed, t.conn.Address, "CONFIG GET port = 0 (set connection.plaintext_address for live evidence)", true)
	}
	obs := plaintextAttempt(ctx, addr)
	if obs.Conclusive() && !obs.Bad {
		// A refusal: it counts only when redis itself says no plaintext port.
		switch {
		case cfgErr != nil:
			obs = checks.Unknown("plaintext PING to "+addr, addr+" refused, but redis's own port setting is unknown (CONFIG GET: "+cfgErr.Error()+"): cannot tell whether that is redis's plaintext port")
		case port == "":
			obs = checks.Unknown("plaintext PING to "+addr, addr+" refused, but CONFIG GET returned no port setting: cannot tell whether that is redis's plaintext port")
		case port != "0":
			obs = checks.Unknown("plaintext PING to "+addr, fmt.Sprintf("redis reports port %s listening; %s refused: not redis's plaintext port as seen from here", quoteConf(port), addr))
		default:
			obs = checks.Good(obs.Evidence + "; redis reports port 0")
		}
	}
	return checks.Reduce(checkPlaintextClosed, addr, obs)
}

// plaintextAttempt is one plaintext PING to addr: Bad when redis answers
// in RESP, Good when the connection is refused (nothing listens at addr —
// plaintextCheck decides what that proves), else inconclusive.
func plaintextAttempt(ctx context.Context, addr string) checks.Observation {
	what := "plaintext PING to " + addr
	c, err := dial(ctx, "tcp", addr, nil, "plaintext to "+addr)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return checks.Good(addr + ": nothing listens there (TCP connection refused), no plaintext session possible")
		}
		return checks.Unknown(what, "cannot connect: "+err.Error())
	}
	defer c.Close()
	v, err := c.do(ctx, "PING")
	var re *redisError
	switch {
	case err == nil:
		return checks.Bad(addr + " answered a plaintext PING (" + v.describe() + ")")
	case errors.As(err, &re):
		return checks.Bad(addr + " answered a plaintext PING with " + truncate(re.msg, 80) + " (redis takes plaintext sessions there)")
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return checks.Unknown(what, "timed out")
	}
	return checks.Unknown(what, err.Error())
}
