package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
)

func TestServedRecordsEveryFreshHandshake(t *testing.T) {
	p := newPKI(t, 60*24*time.Hour)
	addr := serve(t, &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: p.pool})
	l := Served(context.Background(), Target{Address: addr, ClientCert: &p.client}, "front", 5, Options{})
	if l.Error != "" || len(l.Handshakes) != 5 || l.Name != "front" || l.Address != addr {
		t.Fatalf("listener %+v", l)
	}
	for i, h := range l.Handshakes {
		if h.Outcome != sdk.OutcomeAccepted || h.Version != "TLSv1.3" || len(h.ChainPEM) == 0 || !h.ClientCertRequested {
			t.Errorf("handshake %d: %+v", i, h)
		}
		if i > 0 && !bytes.Equal(h.ChainPEM, l.Handshakes[0].ChainPEM) {
			t.Errorf("handshake %d saw another chain", i)
		}
	}
	// Without a client certificate the TLS 1.3 server refuses after the
	// handshake, in its own words; the chain was still seen.
	l = Served(context.Background(), Target{Address: addr}, "front", 2, Options{})
	for i, h := range l.Handshakes {
		if h.Outcome != sdk.OutcomeRefused || !strings.Contains(h.Evidence, "certificate") || len(h.ChainPEM) == 0 {
			t.Errorf("handshake %d without a client certificate: %+v", i, h)
		}
	}
}

func TestServedNothingListeningIsInconclusive(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	l := Served(context.Background(), Target{Address: addr}, "gone", 3, Options{})
	if len(l.Handshakes) != 3 {
		t.Fatalf("handshakes %+v", l.Handshakes)
	}
	for _, h := range l.Handshakes {
		if h.Outcome != sdk.OutcomeInconclusive || len(h.ChainPEM) != 0 || h.Evidence == "" {
			t.Errorf("%+v", h)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l = Served(ctx, Target{Address: addr}, "gone", 3, Options{})
	if len(l.Handshakes) != 1 || l.Handshakes[0].Outcome != sdk.OutcomeInconclusive {
		t.Errorf("cancelled: %+v", l.Handshakes)
	}
}

func TestServedSilentServerIsInconclusive(t *testing.T) {
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
			defer c.Close()
		}
	}()
	l := Served(context.Background(), Target{Address: ln.Addr().String()}, "tarpit", 1, Options{Timeout: 300 * time.Millisecond})
	if h := l.Handshakes[0]; h.Outcome != sdk.OutcomeInconclusive || len(h.ChainPEM) != 0 {
		t.Errorf("%+v", h)
	}
}
