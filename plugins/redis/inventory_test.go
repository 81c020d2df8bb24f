package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
)

// tlsRedis is a real redis serving p's server certificate on its TLS port
// with tls-auth-clients as given; it returns the directory of its files.
func tlsRedis(t *testing.T, p pki, authClients string) (*redisServer, string) {
	t.Helper()
	dir := t.TempDir()
	for name, data := range map[string][]byte{"redis.crt": p.serverPEM, "redis.key": p.serverKey, "ca.crt": p.caPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tlsPort := freePort(t)
	s := startRedis(t, "", "tls-port "+strconv.Itoa(tlsPort), "tls-cert-file "+filepath.Join(dir, "redis.crt"),
		"tls-key-file "+filepath.Join(dir, "redis.key"), "tls-ca-cert-file "+filepath.Join(dir, "ca.crt"), "tls-auth-clients "+authClients)
	s.tlsPort = tlsPort
	return s, dir
}

func inventory(t *testing.T, cl *hostclient.Client, rc sdk.RequestContext, n int) sdk.InventoryResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := cl.Inventory(ctx, rc, n)
	if err != nil {
		t.Fatal(err)
	}
	if r.Diagnostics.HasError() {
		t.Fatalf("inventory: %v", r.Diagnostics.Err())
	}
	return r
}

// leafDER is the first certificate of a PEM chain.
func leafDER(chain []byte) []byte {
	b, _ := pem.Decode(chain)
	if b == nil {
		return nil
	}
	return b.Bytes
}

// Inventory of a real redis: its one TLS port, N fresh handshakes each
// showing the leaf redis serves and whether harden's client got in (mTLS:
// refused without harden's client certificate); nothing stored; and it
// changes nothing (same settings, no file in cert_dir, no journal).
func TestInventory(t *testing.T) {
	p := newPKI(t, "inventory CA")
	for name, tc := range map[string]struct {
		authClients  string
		mtls         bool
		dropClient   bool
		wantOutcome  string
		wantEvidence string
	}{
		"tls":                       {authClients: "no", wantOutcome: sdk.OutcomeAccepted},
		"mtls":                      {authClients: "yes", mtls: true, wantOutcome: sdk.OutcomeAccepted},
		"mtls without harden's key": {authClients: "yes", mtls: true, dropClient: true, wantOutcome: sdk.OutcomeRefused},
	} {
		t.Run(name, func(t *testing.T) {
			s, _ := tlsRedis(t, p, tc.authClients)
			rc := s.request(t, p, tc.mtls, nil, nil)
			if tc.dropClient {
				rc.Certificates.ClientChainPEM, rc.Certificates.ClientKeyPEM = nil, nil
			}
			cl := hostclient.InProcess(redisTLS{})
			defer cl.Close()
			before := s.config("*tls*") + s.config("port")
			r := inventory(t, cl, rc, 3)
			if len(r.Listeners) != 1 || len(r.Stored) != 0 {
				t.Fatalf("listeners %+v, stored %+v", r.Listeners, r.Stored)
			}
			l := r.Listeners[0]
			if l.Name != listenerTLSPort || l.Address != "127.0.0.1:"+strconv.Itoa(s.tlsPort) || l.ReloadsOn != "" || l.Error != "" || len(l.Handshakes) != 3 {
				t.Fatalf("listener %+v", l)
			}
			for i, h := range l.Handshakes {
				if !bytes.Equal(leafDER(h.ChainPEM), leafDER(p.serverPEM)) || h.Version == "" || h.Outcome != tc.wantOutcome {
					t.Errorf("handshake %d: leaf matches %v, version %q, outcome %s (%s), want %s", i, bytes.Equal(leafDER(h.ChainPEM), leafDER(p.serverPEM)), h.Version, h.Outcome, h.Evidence, tc.wantOutcome)
				}
			}
			if after := s.config("*tls*") + s.config("port"); after != before {
				t.Errorf("inventory changed redis's settings: %s -> %s", before, after)
			}
			if ents, _ := os.ReadDir(filepath.Join(s.dir, "tls")); len(ents) != 0 {
				t.Errorf("inventory wrote into cert_dir: %v", ents)
			}
			tg, ok := load(rc, &sdk.Diagnostics{})
			if !ok {
				t.Fatal("load")
			}
			jp, lp, err := tg.journalPaths()
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{jp, lp} {
				if _, err := os.Stat(f); !os.IsNotExist(err) {
					t.Errorf("inventory left %s: %v", f, err)
				}
			}
		})
	}
}

// ReloadsOn "" is true of redis: after CONFIG SET tls-cert-file (what apply
// does) the next fresh handshake serves the new leaf, no restart.
func TestInventorySeesReloadWithoutRestart(t *testing.T) {
	p := newPKI(t, "reload CA")
	s, dir := tlsRedis(t, p, "no")
	rc := s.request(t, p, false, nil, nil)
	cl := hostclient.InProcess(redisTLS{})
	defer cl.Close()
	if h := inventory(t, cl, rc, 1).Listeners[0].Handshakes[0]; !bytes.Equal(leafDER(h.ChainPEM), leafDER(p.serverPEM)) {
		t.Fatalf("before: not the first leaf")
	}
	cert, key := p.issue(40, "localhost", []string{"localhost"}, true)
	for name, data := range map[string][]byte{"new.crt": cert, "new.key": key} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.cli("CONFIG", "SET", "tls-cert-file", filepath.Join(dir, "new.crt"), "tls-key-file", filepath.Join(dir, "new.key")); err != nil {
		t.Fatal(err)
	}
	for i, h := range inventory(t, cl, rc, 2).Listeners[0].Handshakes {
		if !bytes.Equal(leafDER(h.ChainPEM), leafDER(cert)) || h.Outcome != sdk.OutcomeAccepted {
			t.Errorf("handshake %d after CONFIG SET: not the new leaf, or %s: %s", i, h.Outcome, h.Evidence)
		}
	}
}

// A TLS port nothing listens on is still listed: each handshake
// inconclusive with the reason, no chain — never an empty inventory.
func TestInventoryUnreachable(t *testing.T) {
	p := newPKI(t, "CA")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	conn := map[string]any{"address": addr}
	rc := (&redisServer{dir: t.TempDir()}).request(t, p, false, conn, nil)
	cl := hostclient.InProcess(redisTLS{})
	defer cl.Close()
	r := inventory(t, cl, rc, 2)
	if len(r.Listeners) != 1 || r.Listeners[0].Address != addr || len(r.Listeners[0].Handshakes) != 2 {
		t.Fatalf("%+v", r.Listeners)
	}
	for _, h := range r.Listeners[0].Handshakes {
		if h.Outcome != sdk.OutcomeInconclusive || len(h.ChainPEM) != 0 || h.Evidence == "" {
			t.Errorf("handshake to a closed port: %+v", h)
		}
	}
}
