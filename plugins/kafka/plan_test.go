package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
)

// silentBroker accepts connections and never answers (a hung broker, a
// black-holed port): only the request's cancellation can end a call to it.
func silentBroker(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// planRequest is a plan request for one broker whose server.properties is
// in a temporary directory and whose listeners are all at addr.
func planRequest(t *testing.T, addr string) sdk.RequestContext {
	t.Helper()
	rc := renderRequest(t, map[string]any{"listeners": []map[string]any{{"name": "SSL", "address": addr}}})
	file := filepath.Join(t.TempDir(), "server.properties")
	if err := os.WriteFile(file, []byte("node.id=1\nprocess.roles=broker,controller\nlisteners=PLAINTEXT://"+addr+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	conn, _ := json.Marshal(map[string]any{"bootstrap": []string{addr}, "config_file": file})
	rc.Target = sdk.NewTarget("events", conn, rc.Target.Spec, nil)
	return rc
}

// The host's Stop cancels a plan whose broker never answers: Plan returns
// within about a second (sarama takes no context; its clients are closed
// and the call abandoned), not after sarama's 10 s timeouts.
func TestPlanEndsWhenCancelled(t *testing.T) {
	rc := planRequest(t, silentBroker(t))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	var r sdk.PlanResponse
	kafka{}.Plan(ctx, sdk.PlanRequest{RequestContext: rc}, &r)
	took := time.Since(start)
	if took > 1300*time.Millisecond {
		t.Fatalf("a cancelled plan took %s", took)
	}
	if !r.Diagnostics.HasError() || !strings.Contains(r.Diagnostics.Err().Error(), "context canceled") || r.Diagnostics[len(r.Diagnostics)-1].Code != "kafka.describe_configs" {
		t.Fatalf("a cancelled plan does not fail with the cancellation: %v (%+v)", r.Diagnostics.Err(), r.Changes)
	}
	if len(r.PlanToken) != 0 {
		t.Fatal("a cancelled plan has a plan token")
	}
}

// harden's client key not matching its certificate is a diagnostic, not a
// TLS client silently without its identity.
func TestPlanReportsABadClientKey(t *testing.T) {
	rc := planRequest(t, silentBroker(t))
	other := renderRequest(t, map[string]any{"listeners": sslListeners()})
	rc.Certificates.ClientKeyPEM = other.Certificates.ClientKeyPEM // another key
	var r sdk.PlanResponse
	kafka{}.Plan(t.Context(), sdk.PlanRequest{RequestContext: rc}, &r)
	if len(r.Diagnostics) != 1 || r.Diagnostics[0].Severity != sdk.Error || r.Diagnostics[0].Attribute.String() != "certificate" ||
		!strings.Contains(r.Diagnostics[0].Detail, "client certificate") {
		t.Fatalf("a mismatched client key: %+v", r.Diagnostics)
	}
	if strings.Contains(r.Diagnostics.Err().Error(), "PRIVATE KEY") {
		t.Fatal("the diagnostic echoes key material")
	}
}
