package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/shared/tlsprofile"
	"github.com/harden-dev/harden/testenv"
)

func leafDER(t *testing.T, chain []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(chain)
	if b == nil || b.Type != "CERTIFICATE" {
		t.Fatalf("no certificate in %q", chain)
	}
	return b.Bytes
}

// inventoryFor calls Inventory through the wire (hostclient) for an
// objectstore target with conn as its connection block.
func inventoryFor(t *testing.T, conn map[string]any, n int) sdk.InventoryResponse {
	t.Helper()
	client := hostclient.InProcess(objectStore{})
	defer client.Close()
	raw, _ := json.Marshal(conn)
	rc := sdk.RequestContext{Policy: sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate()},
		Target: sdk.NewTarget("lake", raw, []byte(`{"bucket": "lake"}`), nil)}
	start := time.Now()
	inv, err := client.Inventory(context.Background(), rc, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("inventory(%d): %v", n, time.Since(start).Round(time.Millisecond))
	return inv
}

// oneListener requires exactly one listener at addr and nothing stored.
func oneListener(t *testing.T, inv sdk.InventoryResponse, addr string) sdk.ServedListener {
	t.Helper()
	if inv.Diagnostics.HasError() || len(inv.Stored) != 0 || len(inv.Listeners) != 1 {
		t.Fatalf("inventory: diagnostics %v, stored %d, listeners %+v", inv.Diagnostics.Err(), len(inv.Stored), inv.Listeners)
	}
	l := inv.Listeners[0]
	if l.Name != inventoryListener || l.Address != addr || l.ReloadsOn != sdk.ReloadsNever {
		t.Fatalf("listener %+v", l)
	}
	return l
}

// SeaweedFS's HTTPS S3 endpoint: every fresh handshake serves the
// certificate it was started with and the session goes through, without
// credentials (none are in the request).
func TestInventoryLiveSeaweedFS(t *testing.T) {
	s := testenv.SeaweedFSForTest(t)
	cert, err := os.ReadFile(s.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf := leafDER(t, cert)
	addr := strings.TrimPrefix(s.HTTPS, "https://")
	for _, n := range []int{3, 1} {
		l := oneListener(t, inventoryFor(t, map[string]any{"endpoint": s.HTTPS, "http_endpoint": s.HTTP}, n), addr)
		if l.Error != "" || len(l.Handshakes) != n {
			t.Fatalf("listener %+v", l)
		}
		for i, h := range l.Handshakes {
			if h.Outcome != sdk.OutcomeAccepted || h.Version == "" || len(h.ChainPEM) == 0 {
				t.Errorf("handshake %d: outcome %s, version %q, evidence %s", i, h.Outcome, h.Version, h.Evidence)
				continue
			}
			if !bytes.Equal(leafDER(t, h.ChainPEM), leaf) {
				t.Errorf("handshake %d saw another leaf than %s", i, s.CertFile)
			}
		}
	}
}

// A plain-http endpoint: the connection schema refuses it before the
// plugin runs (a request-level error naming the pattern); the plugin on its
// own lists it with the error and never probes it as TLS, without the
// URL's credentials.
func TestInventoryHTTPEndpointIsAnError(t *testing.T) {
	inv := inventoryFor(t, map[string]any{"endpoint": "http://127.0.0.1:1"}, 3)
	if !inv.Diagnostics.HasError() || !strings.Contains(inv.Diagnostics.Err().Error(), "^https://") || len(inv.Listeners) != 0 {
		t.Errorf("through the schema: diagnostics %v, listeners %+v", inv.Diagnostics, inv.Listeners)
	}
	for _, endpoint := range []string{"http://127.0.0.1:1", "http://user:s3cr3t@127.0.0.1:1/lake"} {
		raw, _ := json.Marshal(map[string]any{"endpoint": endpoint})
		var r sdk.InventoryResponse
		objectStore{}.Inventory(context.Background(), sdk.InventoryRequest{Handshakes: 3,
			RequestContext: sdk.RequestContext{Target: sdk.NewTarget("lake", raw, []byte(`{"bucket": "lake"}`), nil)}}, &r)
		l := oneListener(t, r, "127.0.0.1:1")
		if !strings.Contains(l.Error, "plaintext http, no TLS") || !strings.Contains(l.Error, "127.0.0.1:1") || len(l.Handshakes) != 0 {
			t.Errorf("%s: listener %+v", endpoint, l)
		}
		if strings.Contains(l.Error, "s3cr3t") || strings.Contains(l.Error, "user") {
			t.Errorf("the URL's credentials in the error: %s", l.Error)
		}
	}
}

// Nothing listening: listed, every handshake inconclusive, none accepted.
func TestInventoryUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	l := oneListener(t, inventoryFor(t, map[string]any{"endpoint": "https://" + addr}, 3), addr)
	if len(l.Handshakes) != 3 {
		t.Fatalf("listener %+v", l)
	}
	for i, h := range l.Handshakes {
		if h.Outcome != sdk.OutcomeInconclusive || h.Evidence == "" || len(h.ChainPEM) != 0 {
			t.Errorf("handshake %d: %+v", i, h)
		}
	}
}

func TestEndpointAddress(t *testing.T) {
	for in, want := range map[string]string{
		"https://s3.example.com":           "s3.example.com:443",
		"https://s3.example.com:9443/path": "s3.example.com:9443",
		"http://127.0.0.1":                 "127.0.0.1:80",
		"https://[::1]":                    "[::1]:443",
		"https://[::1]:8333":               "[::1]:8333",
	} {
		u, err := url.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := endpointAddress(u); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

// A connection block that does not decode, or an endpoint without a host,
// is a request-level error with no listener.
func TestInventoryBadConnection(t *testing.T) {
	for _, conn := range []map[string]any{
		{"endpoint": "https://127.0.0.1:1", "bogus": true},
		{"endpoint": "https://"},
		{"endpoint": "::not a url"},
	} {
		inv := inventoryFor(t, conn, 1)
		if !inv.Diagnostics.HasError() || len(inv.Listeners) != 0 {
			t.Errorf("%v: diagnostics %v, listeners %+v", conn, inv.Diagnostics, inv.Listeners)
		}
	}
}
