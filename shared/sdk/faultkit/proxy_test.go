package faultkit

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// captureHello returns the ClientHello record Go's TLS client sends for cfg.
func captureHello(t testing.TB, cfg *tls.Config) []byte {
	client, server := net.Pipe()
	go func() {
		tls.Client(client, cfg).Handshake()
		client.Close()
	}()
	server.SetDeadline(time.Now().Add(2 * time.Second))
	rec, err := readRecord(server, nil)
	server.Close()
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestParseHello(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg  *tls.Config
		want uint16
	}{
		"tls13": {&tls.Config{InsecureSkipVerify: true}, 0x0304},
		"tls12": {&tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}, 0x0303},
		"tls10": {&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}, 0x0301},
	} {
		h := parseHello(captureHello(t, tc.cfg))
		if h == nil || h.Version != tc.want || len(h.Suites) == 0 {
			t.Errorf("%s: %+v", name, h)
		}
	}
	if parseHello([]byte("GET / HTTP/1.1\r\n")) != nil {
		t.Error("HTTP parsed as a hello")
	}
}

// The proxy parses untrusted client bytes: it never panics, and what it
// reports is bounded by what it read.
func FuzzParseHello(f *testing.F) {
	f.Add(captureHello(f, &tls.Config{InsecureSkipVerify: true}))
	f.Add([]byte{22, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h := parseHello(b)
		if h == nil {
			return
		}
		if len(h.Suites)*2 > len(b) {
			t.Fatalf("%d suites from %d bytes", len(h.Suites), len(b))
		}
		if h.Version > 0x0304 && h.Version != 0x0000 && len(b) > 10 && h.Version != uint16(b[9])<<8|uint16(b[10]) {
			t.Fatalf("version %x neither the legacy version nor a known one", h.Version)
		}
	})
}

// Each fault does what it says, seen from a client of an echo server.
func TestFaults(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	for _, f := range []Fault{Pass, Garbage, Reset, Stall, Close, Truncate, Delay, HangUp} {
		p, err := Start(ln.Addr().String(), Rule{Fault: f, Delay: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := net.Dial("tcp", p.Addr)
		c.SetDeadline(time.Now().Add(300 * time.Millisecond))
		c.Write([]byte("ping-ping-ping"))
		got, err := io.ReadAll(c)
		c.Close()
		p.Close()
		switch f {
		case Pass, Delay:
			// The echo server answers and waits: the deadline ends the read.
			if string(got) != "ping-ping-ping" {
				t.Errorf("%s: nothing forwarded (%v)", f, err)
			}
		case Garbage:
			if len(got) == 0 || string(got) == "ping-ping-ping" {
				t.Errorf("garbage: %q", got)
			}
		case Reset:
			if !errors.Is(err, syscall.ECONNRESET) || len(got) > 0 {
				t.Errorf("reset: %q %v", got, err)
			}
		case Stall:
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() || len(got) > 0 {
				t.Errorf("stall: %q %v", got, err)
			}
		case Close:
			if err != nil || len(got) > 0 {
				t.Errorf("close: %q %v", got, err)
			}
		case Truncate:
			// Half of the server's first answer (how much the echo server
			// had echoed by then varies): a non-empty strict prefix.
			if len(got) == 0 || len(got) >= len("ping-ping-ping") || !strings.HasPrefix("ping-ping-ping", string(got)) {
				t.Errorf("truncate: %q %v", got, err)
			}
		case HangUp:
			if len(got) == 0 || !strings.HasPrefix("ping-ping-ping", string(got)) || err != nil {
				t.Errorf("hangup: %q %v (want the first answer, then a clean close)", got, err)
			}
		}
		if f != Pass && p.Faulted() != 1 {
			t.Errorf("%s: faulted %d", f, p.Faulted())
		}
	}
}
