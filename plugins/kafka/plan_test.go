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

// staleStores names each TLS listener without its own store override that
// runs a store server.properties no longer names — after a KIP-226
// rotation, the controller listener — and nothing else: no overrides (the
// pending keys' matter), an override on every listener, the same store, a
// PLAINTEXT listener.
func TestStaleStores(t *testing.T) {
	props := map[string]string{"node.id": "3", "listeners": "SSL://127.0.0.1:9093,CONTROLLER://127.0.0.1:9094,PLAINTEXT://127.0.0.1:9092",
		"listener.security.protocol.map": "SSL:SSL,CONTROLLER:SSL,PLAINTEXT:PLAINTEXT", "controller.listener.names": "CONTROLLER",
		"ssl.keystore.location": "/s/broker-new.p12", "ssl.truststore.location": "/s/truststore-new.p12"}
	tests := map[string]struct {
		values, dynamic map[string]string
		want            []string
	}{
		"renewed leaf, controller not reloaded": {
			values:  map[string]string{"ssl.keystore.location": "/s/broker-old.p12", "ssl.truststore.location": "/s/truststore-new.p12"},
			dynamic: map[string]string{"listener.name.ssl.ssl.keystore.location": "/s/broker-new.p12"},
			want:    []string{"broker 3 controller listener CONTROLLER:ssl.keystore.location"}},
		"new CA bundle, controller not reloaded": {
			values:  map[string]string{"ssl.keystore.location": "/s/broker-new.p12", "ssl.truststore.location": "/s/truststore-old.p12"},
			dynamic: map[string]string{"listener.name.ssl.ssl.truststore.location": "/s/truststore-new.p12"},
			want:    []string{"broker 3 controller listener CONTROLLER:ssl.truststore.location"}},
		"both": {
			values: map[string]string{"ssl.keystore.location": "/s/broker-old.p12", "ssl.truststore.location": "/s/truststore-old.p12"},
			dynamic: map[string]string{"listener.name.ssl.ssl.keystore.location": "/s/broker-new.p12",
				"listener.name.ssl.ssl.truststore.location": "/s/truststore-new.p12"},
			want: []string{"broker 3 controller listener CONTROLLER:ssl.keystore.location", "broker 3 controller listener CONTROLLER:ssl.truststore.location"}},
		"no override: a file the broker was not restarted on": {
			values: map[string]string{"ssl.keystore.location": "/s/broker-old.p12"}},
		"every TLS listener overridden": {
			values: map[string]string{"ssl.keystore.location": "/s/broker-old.p12"},
			dynamic: map[string]string{"listener.name.ssl.ssl.keystore.location": "/s/broker-new.p12",
				"listener.name.controller.ssl.keystore.location": "/s/broker-new.p12"}},
		"restarted since the rotation": {
			values:  map[string]string{"ssl.keystore.location": "/s/broker-new.p12"},
			dynamic: map[string]string{"listener.name.ssl.ssl.keystore.location": "/s/broker-new.p12"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got []string
			for _, ch := range staleStores(liveConfig{values: tc.values, dynamic: tc.dynamic}, props) {
				got = append(got, ch.Resource)
				if !ch.RequiresRestart || ch.Action != sdk.Update || ch.After != props[ch.Resource[strings.LastIndex(ch.Resource, ":")+1:]] ||
					ch.Before == ch.After || !strings.Contains(ch.Description, "after the next broker restart") {
					t.Errorf("change %+v", ch)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
