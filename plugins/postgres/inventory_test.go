package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/shared/tlsprofile"
	"github.com/harden-dev/harden/testenv"
)

// leafDER is the first certificate of a PEM chain.
func leafDER(t *testing.T, chain []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(chain)
	if b == nil || b.Type != "CERTIFICATE" {
		t.Fatalf("no certificate in %q", chain)
	}
	return b.Bytes
}

// inventoryOf calls Inventory through the wire (hostclient) and requires
// exactly the one listener at the connection's address.
func inventoryOf(t *testing.T, client *hostclient.Client, rc sdk.RequestContext, n int, addr string) sdk.ServedListener {
	t.Helper()
	start := time.Now()
	inv, err := client.Inventory(context.Background(), rc, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("inventory(%d) of %s: %v", n, addr, time.Since(start).Round(time.Millisecond))
	if inv.Diagnostics.HasError() || len(inv.Stored) != 0 || len(inv.Listeners) != 1 {
		t.Fatalf("inventory: diagnostics %v, stored %d, listeners %+v", inv.Diagnostics.Err(), len(inv.Stored), inv.Listeners)
	}
	l := inv.Listeners[0]
	if l.Name != inventoryListener || l.Address != addr || l.ReloadsOn != "" || l.Error != "" || len(l.Handshakes) != n {
		t.Fatalf("listener %+v", l)
	}
	return l
}

// requireServed fails unless every handshake was accepted and saw the leaf.
func requireServed(t *testing.T, l sdk.ServedListener, leaf []byte) {
	t.Helper()
	for i, h := range l.Handshakes {
		if h.Outcome != sdk.OutcomeAccepted || h.Version == "" || len(h.ChainPEM) == 0 {
			t.Errorf("handshake %d: outcome %s, version %q, evidence %s", i, h.Outcome, h.Version, h.Evidence)
			continue
		}
		if !bytes.Equal(leafDER(t, h.ChainPEM), leaf) {
			t.Errorf("handshake %d saw another leaf than the applied one", i)
		}
	}
}

// Before apply the server refuses TLS ('N'): refused handshakes in those
// words. After apply every fresh handshake serves the applied leaf and the
// session goes through; under mTLS with harden's client certificate too,
// and a request without that identity is refused (the certificate is what
// gets harden in).
func TestInventoryLive(t *testing.T) {
	pg := testenv.PostgresForTest(t)
	ctx := context.Background()
	client := hostclient.InProcess(postgres{})
	defer client.Close()
	addr := net.JoinHostPort(pg.Host, strconv.Itoa(pg.Port))

	rc := request(t, pg, `{}`, false)
	for i, h := range inventoryOf(t, client, rc, 3, addr).Handshakes {
		if h.Outcome != sdk.OutcomeRefused || !strings.Contains(h.Evidence, "'N'") || len(h.ChainPEM) != 0 || h.Version != "" {
			t.Errorf("before apply, handshake %d: %+v", i, h)
		}
	}

	leaf := leafDER(t, rc.Certificates.ChainPEM)
	if ap, err := client.Apply(ctx, rc, nil, false); err != nil || ap.Diagnostics.HasError() {
		t.Fatalf("apply: %v %v", err, ap.Diagnostics.Err())
	}
	requireServed(t, inventoryOf(t, client, rc, 3, addr), leaf)

	mtls := request(t, pg, `{}`, true)
	if ap, err := client.Apply(ctx, mtls, nil, false); err != nil || ap.Diagnostics.HasError() {
		t.Fatalf("apply (mTLS): %v %v", err, ap.Diagnostics.Err())
	}
	requireServed(t, inventoryOf(t, client, mtls, 3, addr), leaf)
	requireServed(t, inventoryOf(t, client, mtls, 1, addr), leaf)

	anonymous := mtls
	anonymous.Certificates.ClientChainPEM, anonymous.Certificates.ClientKeyPEM = nil, nil
	for i, h := range inventoryOf(t, client, anonymous, 2, addr).Handshakes {
		if h.Outcome != sdk.OutcomeRefused || !strings.Contains(h.Evidence, "certificate") || !bytes.Equal(leafDER(t, h.ChainPEM), leaf) {
			t.Errorf("mTLS without harden's client certificate, handshake %d: %+v", i, h)
		}
	}
}

// Nothing listening: the listener is still listed, every handshake
// inconclusive with the reason, none accepted.
func TestInventoryUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	client := hostclient.InProcess(postgres{})
	defer client.Close()
	conn, _ := json.Marshal(map[string]any{"host": "127.0.0.1", "port": port})
	rc := sdk.RequestContext{Policy: sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate()},
		Target: sdk.NewTarget("pg", conn, []byte(`{}`), nil)}
	for i, h := range inventoryOf(t, client, rc, 3, addr).Handshakes {
		if h.Outcome != sdk.OutcomeInconclusive || h.Evidence == "" || len(h.ChainPEM) != 0 {
			t.Errorf("handshake %d: %+v", i, h)
		}
	}
}

// A bad connection block is a request-level error with no listener; a
// client identity that does not parse lists the listener, not probed, with
// the reason (it must not vanish from the inventory).
func TestInventoryBadRequest(t *testing.T) {
	client := hostclient.InProcess(postgres{})
	defer client.Close()
	rc := sdk.RequestContext{Policy: sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate()},
		Target: sdk.NewTarget("pg", []byte(`{"host": "127.0.0.1", "port": 5432, "bogus": 1}`), []byte(`{}`), nil)}
	inv, err := client.Inventory(context.Background(), rc, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !inv.Diagnostics.HasError() || len(inv.Listeners) != 0 {
		t.Errorf("unknown connection key: diagnostics %v, listeners %+v", inv.Diagnostics, inv.Listeners)
	}
	rc.Target = sdk.NewTarget("pg", []byte(`{"host": "127.0.0.1", "port": 5432}`), []byte(`{}`), nil)
	rc.Certificates.ClientChainPEM, rc.Certificates.ClientKeyPEM = []byte("not a certificate"), []byte("not a key")
	inv, err = client.Inventory(context.Background(), rc, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !inv.Diagnostics.HasError() || len(inv.Listeners) != 1 || inv.Listeners[0].Address != "127.0.0.1:5432" ||
		!strings.Contains(inv.Listeners[0].Error, "not probed") || len(inv.Listeners[0].Handshakes) != 0 {
		t.Errorf("bad client identity: diagnostics %v, listeners %+v", inv.Diagnostics, inv.Listeners)
	}
	if s := inv.Listeners[0].Error + inv.Diagnostics.Err().Error(); strings.Contains(s, "not a key") {
		t.Errorf("key material in the answer: %s", s)
	}
}
