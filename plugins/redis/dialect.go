package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/harden-dev/harden/shared/probe"
)

// redisDialect teaches the SDK's probe Redis's TLS port.
//
// Refusals: only the TLS layer's (a TLS alert, in the server's words).
// Acceptance (TLS 1.2): any RESP answer to PING over TLS — +PONG, or an
// error such as -NOAUTH, which is redis taking the request. Under TLS 1.3
// the probe's post-handshake verdict decides (Exchange). Anything else (a close
// without an answer, a reset, bytes that are not RESP) is a transient
// failure, retried by the probe and then inconclusive.
//
// No plaintext session is attempted on the TLS port: redis binds tls-port
// as a TLS-only listener, so a port that completes a TLS handshake (the
// probe's tls.enabled) takes no plaintext session, and to plaintext bytes
// OpenSSL answers by closing the connection without a word, which is what
// a network fault looks like too — never conclusive. The plaintext port is
// verified on its own (redis.plaintext.closed).
type redisDialect struct{}

func (redisDialect) Name() string                             { return "redis" }
func (redisDialect) ALPN() []string                           { return nil }
func (redisDialect) StartTLS(context.Context, net.Conn) error { return nil }

func (redisDialect) Plaintext(context.Context, net.Conn) (probe.Observation, error) {
	return probe.Observation{Outcome: probe.NotAttempted, Evidence: "redis's tls-port is a TLS-only listener (no plaintext mode to attempt); the plaintext port is checked by " + checkPlaintextClosed}, nil
}

func (redisDialect) Exchange(ctx context.Context, c *tls.Conn) (probe.Observation, error) {
	if c.ConnectionState().Version >= tls.VersionTLS13 {
		// Under TLS 1.3 the server judges the client's certificate after
		// the handshake. A PING sent before its verdict is unread when
		// redis refuses and closes, so the kernel answers with a reset
		// that can overtake the alert: an inconclusive attempt where the
		// server had refused. The probe's own wait (an alert refuses, a
		// session ticket — sent only after the client's certificate
		// flight was accepted — or silence accepts) reads the verdict
		// without writing first.
		return probe.Observation{Outcome: probe.NotAttempted}, nil
	}
	deadline := time.Now().Add(callTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.SetDeadline(deadline)
	_, err := c.Write(command("PING"))
	var v reply
	if err == nil {
		v, err = readReply(bufio.NewReader(c), 0)
	}
	var oe *net.OpError
	switch {
	case errors.As(err, &oe) && oe.Op == "remote error":
		return probe.Observation{Outcome: probe.Refused, Evidence: "session refused with a TLS alert: " + oe.Err.Error()}, nil
	case err != nil:
		return probe.Observation{}, fmt.Errorf("PING over TLS: %w", err)
	}
	return probe.Observation{Outcome: probe.Accepted, Evidence: "redis answered PING over TLS (" + v.describe() + ")"}, nil
}
