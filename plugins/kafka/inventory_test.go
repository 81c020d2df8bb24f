package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/testenv"
)

// tlsServer completes TLS handshakes with pair and then hangs up (no Kafka
// behind it); accepted counts the connections.
func tlsServer(t *testing.T, pair tls.Certificate) (addr string, accepted *atomic.Int64) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted = &atomic.Int64{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer c.Close()
				_ = c.(*tls.Conn).Handshake()
			}()
		}
	}()
	return ln.Addr().String(), accepted
}

// countingListener accepts and closes connections, counting them.
func countingListener(t *testing.T) (addr string, accepted *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted = &atomic.Int64{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().String(), accepted
}

// fakePlaintextKafka answers every request with a minimal cleartext
// ApiVersions response (length, the request's correlation id, an empty
// body): what a PLAINTEXT listener does.
func fakePlaintextKafka(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req := make([]byte, 12) // length, api key, version, correlation id
				if _, err := io.ReadFull(c, req); err != nil {
					return
				}
				resp := binary.BigEndian.AppendUint32(nil, 10)
				resp = append(resp, req[8:12]...)
				c.Write(append(resp, make([]byte, 6)...))
			}()
		}
	}()
	return ln.Addr().String()
}

// listenerNamed is the inventory's listener called name (fails without).
func listenerNamed(t *testing.T, inv sdk.InventoryResponse, name string) sdk.ServedListener {
	t.Helper()
	i := slices.IndexFunc(inv.Listeners, func(l sdk.ServedListener) bool { return l.Name == name })
	if i < 0 {
		var names []string
		for _, l := range inv.Listeners {
			names = append(names, l.Name)
		}
		t.Fatalf("no listener %s in the inventory (%v)", name, names)
	}
	return inv.Listeners[i]
}

// leaves are the leaf certificates (DER) each handshake saw; nil where a
// handshake saw none.
func leaves(t *testing.T, l sdk.ServedListener) [][]byte {
	t.Helper()
	var out [][]byte
	for _, h := range l.Handshakes {
		if len(h.ChainPEM) == 0 {
			out = append(out, nil)
			continue
		}
		out = append(out, mustPEMCert(t, h.ChainPEM))
	}
	return out
}

// Every listener server.properties declares is listed under a unique
// name: the TLS ones with n fresh handshakes that each saw the served
// chain, the controller listener as reloading on restart, the PLAINTEXT
// one with the reason and never dialled. No broker needed: the TLS
// listeners hang up after the handshake (their sessions are then
// inconclusive, the chain is still what they served).
func TestInventoryListsEveryListener(t *testing.T) {
	certs := testCerts(t)
	pair, err := tls.X509KeyPair(certs.ChainPEM, certs.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	sslAddr, sslConns := tlsServer(t, pair)
	ctlAddr, ctlConns := tlsServer(t, pair)
	plainAddr, plainConns := countingListener(t)
	file := filepath.Join(t.TempDir(), "server.properties")
	props := "node.id=7\nprocess.roles=broker,controller\nlisteners=PLAINTEXT://" + plainAddr + ",SSL://" + sslAddr + ",CONTROLLER://" + ctlAddr +
		"\nlistener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:SSL\ncontroller.listener.names=CONTROLLER\n"
	if err := os.WriteFile(file, []byte(props), 0o644); err != nil {
		t.Fatal(err)
	}
	conn, _ := json.Marshal(map[string]any{"bootstrap": []string{sslAddr}, "config_file": file})
	rc := sdk.RequestContext{Policy: sdk.Policy{APIVersion: "harden/v1"}, Target: sdk.NewTarget("events", conn, []byte(`{}`), nil), Certificates: certs}
	client := hostclient.InProcess(kafka{})
	defer client.Close()

	inv, err := client.Inventory(context.Background(), rc, 3)
	if err != nil || inv.Diagnostics.HasError() {
		t.Fatalf("inventory: %v %v", err, inv.Diagnostics.Err())
	}
	if len(inv.Listeners) != 3 || len(inv.Stored) != 0 {
		t.Fatalf("want 3 listeners and nothing stored: %+v", inv)
	}
	plain := listenerNamed(t, inv, "7/PLAINTEXT")
	if plain.Error != noTLS || plain.Address != plainAddr || len(plain.Handshakes) != 0 || plainConns.Load() != 0 {
		t.Errorf("PLAINTEXT listener: %+v (%d connections)", plain, plainConns.Load())
	}
	leaf := mustPEMCert(t, certs.ChainPEM)
	for name, want := range map[string]struct {
		addr      string
		reloadsOn string
		conns     *atomic.Int64
	}{"7/SSL": {sslAddr, "", sslConns}, "7/CONTROLLER": {ctlAddr, reloadsOnRestart, ctlConns}} {
		l := listenerNamed(t, inv, name)
		if l.Address != want.addr || l.ReloadsOn != want.reloadsOn || l.Error != "" || len(l.Handshakes) != 3 {
			t.Errorf("%s: %+v", name, l)
			continue
		}
		for i, got := range leaves(t, l) {
			if !bytes.Equal(got, leaf) {
				t.Errorf("%s, handshake %d: not the served leaf (%+v)", name, i, l.Handshakes[i])
			}
			if l.Handshakes[i].Outcome == sdk.OutcomeAccepted {
				t.Errorf("%s, handshake %d: accepted by a server that hangs up after the handshake: %+v", name, i, l.Handshakes[i])
			}
		}
		if n := want.conns.Load(); n != 3 {
			t.Errorf("%s: %d connections for 3 fresh handshakes", name, n)
		}
	}
}

// Without the brokers' files the bootstrap addresses are the listeners: a
// cleartext Kafka there is listed as no TLS, a closed port with
// inconclusive handshakes (never an error-free empty entry), and harden's
// unusable client material is a request-level error.
func TestInventoryBootstrapOnly(t *testing.T) {
	k := fakePlaintextKafka(t)
	closed := closedPort(t)
	conn, _ := json.Marshal(map[string]any{"bootstrap": []string{k, closed}})
	certs := testCerts(t)
	rc := sdk.RequestContext{Policy: sdk.Policy{APIVersion: "harden/v1"}, Target: sdk.NewTarget("events", conn, []byte(`{}`), nil), Certificates: certs}
	client := hostclient.InProcess(kafka{})
	defer client.Close()
	inv, err := client.Inventory(context.Background(), rc, 2)
	if err != nil || inv.Diagnostics.HasError() || len(inv.Listeners) != 2 {
		t.Fatalf("inventory: %v %v %+v", err, inv.Diagnostics.Err(), inv.Listeners)
	}
	if l := listenerNamed(t, inv, "bootstrap/"+k); l.Error != noTLS {
		t.Errorf("cleartext bootstrap: %+v", l)
	}
	l := listenerNamed(t, inv, "bootstrap/"+closed)
	if l.Error != "" || len(l.Handshakes) != 2 {
		t.Fatalf("closed bootstrap: %+v", l)
	}
	for i, h := range l.Handshakes {
		if h.Outcome != sdk.OutcomeInconclusive || len(h.ChainPEM) != 0 || h.Evidence == "" {
			t.Errorf("closed port, handshake %d: %+v", i, h)
		}
	}

	bad := rc
	bad.Certificates.ClientChainPEM, bad.Certificates.ClientKeyPEM = certs.ChainPEM, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
	inv, err = client.Inventory(context.Background(), bad, 1)
	if err != nil || !inv.Diagnostics.HasError() || len(inv.Listeners) != 0 {
		t.Errorf("unusable client key: %v %+v", err, inv)
	} else if msg := inv.Diagnostics.Err().Error(); strings.Contains(msg, "AAAA") {
		t.Errorf("the key's bytes in the diagnostic: %s", msg)
	}
}

// servedLeaf is the leaf of a PEM certificate file.
func servedLeaf(t *testing.T, certFile string) []byte {
	t.Helper()
	return mustPEMCert(t, mustRead(t, certFile))
}

// requireInventory checks a real broker's inventory: exactly the listeners
// SSL (live reload) and CONTROLLER (reloads on restart) of node 1, n
// handshakes each, every one accepted (harden's client identity gets in)
// and serving the leaf wanted for that listener.
func requireInventory(t *testing.T, client *hostclient.Client, rc sdk.RequestContext, k *testenv.Kafka, n int, want map[string][]byte) {
	t.Helper()
	start := time.Now()
	inv, err := client.Inventory(context.Background(), rc, n)
	if err != nil || inv.Diagnostics.HasError() {
		t.Fatalf("inventory: %v %v", err, inv.Diagnostics.Err())
	}
	t.Logf("inventory(%d) of %d listeners: %v", n, len(inv.Listeners), time.Since(start).Round(time.Millisecond))
	if len(inv.Listeners) != len(want) {
		t.Fatalf("inventory lists %d listeners, want %d: %+v", len(inv.Listeners), len(want), inv.Listeners)
	}
	addrs := map[string]string{"1/SSL": k.Bootstrap, "1/CONTROLLER": k.Controller}
	for name, leaf := range want {
		l := listenerNamed(t, inv, name)
		reloads := ""
		if name == "1/CONTROLLER" {
			reloads = reloadsOnRestart
		}
		if l.Address != addrs[name] || l.ReloadsOn != reloads || l.Error != "" || len(l.Handshakes) != n {
			t.Errorf("%s: %+v", name, l)
			continue
		}
		for i, got := range leaves(t, l) {
			h := l.Handshakes[i]
			if h.Outcome != sdk.OutcomeAccepted || !bytes.Equal(got, leaf) {
				t.Errorf("%s, handshake %d: %s (%s), serves serial %s, want %s", name, i, h.Outcome, h.Evidence, serialOf(t, got), serialOf(t, leaf))
			}
		}
	}
}

// serialOf is a DER certificate's serial ("none" without one).
func serialOf(t *testing.T, der []byte) string {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return "none"
	}
	return c.SerialNumber.Text(16)
}
