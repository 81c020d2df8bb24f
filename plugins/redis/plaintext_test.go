package main

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/harden-dev/harden/shared/checks"
)

// redis.plaintext.closed passes on a refused connection only when redis
// itself reports port 0. A refusal while redis reports a listening port
// (the container scenario: 6379 unpublished, so refused from harden's
// side, yet open on the container network) or while redis's report is
// unknown is inconclusive, never a pass. No redis is needed: the target
// only names where to knock, and nothing listens there.
func TestPlaintextRefusalNeedsRedisPortZero(t *testing.T) {
	closed := freePort(t) // nothing listens here (freed again at once)
	closedAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(closed))
	dir := t.TempDir()
	fake := &redisServer{t: t, dir: dir, sock: filepath.Join(dir, "redis.sock"), port: closed, tlsPort: freePort(t)}
	withAddr := rcTarget(t, fake.request(t, newPKI(t, "CA"), false, map[string]any{"plaintext_address": closedAddr}, nil))
	noAddr := rcTarget(t, fake.request(t, newPKI(t, "CA"), false, map[string]any{"plaintext_address": ""}, nil))
	other := strconv.Itoa(freePort(t))
	for name, tc := range map[string]struct {
		tg     *target
		config map[string]string
		cfgErr error
		want   checks.Status
		says   string
	}{
		"redis reports another port, plaintext_address refused": {withAddr, map[string]string{"port": other}, nil, checks.Error, "redis reports port " + other + " listening"},
		"redis reports the refused port itself":                 {noAddr, map[string]string{"port": strconv.Itoa(closed)}, nil, checks.Error, "not redis's plaintext port as seen from here"},
		"CONFIG GET failed, plaintext_address refused":          {withAddr, nil, errors.New("NOAUTH Authentication required"), checks.Error, "redis's own port setting is unknown"},
		"CONFIG GET without a port":                             {withAddr, map[string]string{}, nil, checks.Error, "no port setting"},
		"redis reports port 0, plaintext_address refused":       {withAddr, map[string]string{"port": "0"}, nil, checks.Pass, "redis reports port 0"},
	} {
		t.Run(name, func(t *testing.T) {
			c := plaintextCheck(context.Background(), tc.tg, tc.config, tc.cfgErr)
			if c.ID != checkPlaintextClosed || c.Status != tc.want || !strings.Contains(c.Evidence, tc.says) {
				t.Fatalf("%s = %s (%s), want %s saying %q", c.ID, c.Status, c.Evidence, tc.want, tc.says)
			}
			if tc.want == checks.Pass && !strings.Contains(c.Evidence, "connection refused") {
				t.Errorf("passed without the live refusal: %s", c.Evidence)
			}
		})
	}
}

// The same against a real redis listening in plaintext, with
// plaintext_address pointing at a closed port: the whole verify must not
// pass redis.plaintext.closed (it passed before: "connection refused").
func TestVerifyPlaintextAddressNotRedisPort(t *testing.T) {
	s := startRedis(t, "")
	closedAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	rc := s.request(t, newPKI(t, "CA"), false, map[string]any{"plaintext_address": closedAddr}, nil)
	tg := rcTarget(t, rc)
	config, err := liveConfig(context.Background(), rc, tg)
	if err != nil {
		t.Fatal(err)
	}
	c := plaintextCheck(context.Background(), tg, config, nil)
	if c.Status == checks.Pass || !strings.Contains(c.Evidence, "redis reports port "+strconv.Itoa(s.port)+" listening") {
		t.Fatalf("%s = %s: %s", c.ID, c.Status, c.Evidence)
	}
}

// Even with redis reporting port 0, only a refusal passes: garbage, a
// close or a reset from something listening at plaintext_address (a
// proxy, a load balancer in front of a closed port) is inconclusive.
func TestPlaintextFaultsWithPortZeroNeverPass(t *testing.T) {
	for name, answer := range map[string]func(*net.TCPConn){
		"garbage": func(c *net.TCPConn) { c.Write([]byte("\x15\x03\x01\x00\x02garbage\r\n")) },
		"close":   func(*net.TCPConn) {},
		"reset":   func(c *net.TCPConn) { c.SetLinger(0) },
	} {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					answer(c.(*net.TCPConn))
					c.Close()
				}
			}()
			dir := t.TempDir()
			fake := &redisServer{t: t, dir: dir, sock: filepath.Join(dir, "redis.sock"), tlsPort: freePort(t)}
			tg := rcTarget(t, fake.request(t, newPKI(t, "CA"), false, map[string]any{"plaintext_address": ln.Addr().String()}, nil))
			c := plaintextCheck(context.Background(), tg, map[string]string{"port": "0"}, nil)
			if c.Status != checks.Error {
				t.Fatalf("%s through %s = %s: %s", c.ID, name, c.Status, c.Evidence)
			}
		})
	}
}
