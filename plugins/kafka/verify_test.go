package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/faultkit"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/shared/sdk/sdktest"
	"github.com/harden-dev/harden/shared/tlsprofile"
	"github.com/harden-dev/harden/testenv"
)

// testCerts issues a broker certificate from a throwaway CA.
func testCerts(t *testing.T) sdk.Certificates {
	t.Helper()
	ca, err := testenv.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue("kafka", false, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	read := func(f string) []byte { b, _ := os.ReadFile(f); return b }
	return sdk.Certificates{ChainPEM: read(cert), KeyPEM: read(key), CABundlePEM: read(ca.CertFile)}
}

func TestConformance(t *testing.T) {
	sdktest.Run(t, sdktest.Harness{
		Plugin:       kafka{},
		Name:         "kafka",
		Certificates: testCerts(t),
		Target: func(addr string) sdk.Target {
			conn, _ := json.Marshal(map[string]any{"bootstrap": []string{addr}})
			return sdk.NewTarget("events", conn, []byte(`{}`), nil)
		},
		// Plan and apply need the broker's server.properties and its
		// listeners before they contact it: a broker whose file is in a
		// temporary directory and whose listeners are all at addr.
		TargetFor: func(c sdk.Capability, addr string) (sdk.Target, bool) {
			if c != sdk.CapPlan && c != sdk.CapApply {
				return sdk.Target{}, false
			}
			file := filepath.Join(t.TempDir(), "server.properties")
			if err := os.WriteFile(file, []byte("node.id=1\nprocess.roles=broker,controller\nlisteners=PLAINTEXT://"+addr+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			conn, _ := json.Marshal(map[string]any{"bootstrap": []string{addr}, "config_file": file})
			spec, _ := json.Marshal(map[string]any{"listeners": []map[string]any{{"name": "SSL", "address": addr}}})
			return sdk.NewTarget("events", conn, spec, nil), true
		},
	})
}

// The testenv broker starts with PLAINTEXT listeners (broker and
// controller): verify fails on both, with the broker's own answer as
// evidence.
func TestVerifyPlaintextBroker(t *testing.T) {
	k := testenv.KafkaForTest(t)
	client := hostclient.InProcess(kafka{})
	defer client.Close()
	conn, _ := json.Marshal(map[string]any{"bootstrap": []string{k.Bootstrap}, "config_file": k.Properties})
	r, err := client.Verify(context.Background(), sdk.RequestContext{
		Policy: sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate()},
		Target: sdk.NewTarget("events", conn, []byte(`{}`), nil)})
	if err != nil || r.Diagnostics.HasError() {
		t.Fatalf("verify: %v %v", err, r.Diagnostics.Err())
	}
	var failed []string
	for _, c := range r.Checks {
		if c.ID == "kafka.listener.plaintext" && c.Status == checks.Fail && strings.Contains(c.Evidence, "answered a plaintext ApiVersions") {
			failed = append(failed, c.Subject)
		}
	}
	if len(failed) != 2 || !strings.Contains(strings.Join(failed, "|"), "controller CONTROLLER listener") {
		t.Errorf("plaintext listeners found: %v (checks %+v)", failed, r.Checks)
	}
	// Plaintext listeners get no TLS scan and so no endpoint description
	// (which reports would read as an endpoint that could not be scanned).
	if len(r.Endpoints) != 0 {
		t.Errorf("endpoint scans of plaintext listeners: %+v", r.Endpoints)
	}
	// Every check verify promises is there, with the status the evidence
	// supports: no TLS listener fails the canary, the running configuration
	// fails, and mTLS-only checks are not applicable (not in the scope).
	requireChecks(t, r.Checks, map[string]checks.Status{
		"kafka.client.produce_consume":  checks.Fail,
		"kafka.config.protocols":        checks.Warn, // the JVM default is right, but no TLS listener shows it
		"kafka.config.cipher_suites":    checks.Fail,
		"kafka.config.inter_broker_tls": checks.Fail,
		"kafka.config.client_auth":      checks.Skip,
		"kafka.config.authorizer":       checks.Skip,
	})
}

// requireChecks fails unless every id is present with every one of its
// checks in the wanted status.
func requireChecks(t *testing.T, cs []checks.Check, want map[string]checks.Status) {
	t.Helper()
	for id, st := range want {
		n := 0
		for _, c := range cs {
			if c.ID != id {
				continue
			}
			n++
			if c.Status != st {
				t.Errorf("%s (%s): %s, want %s: %s", id, c.Subject, c.Status, st, c.Evidence)
			}
		}
		if n == 0 {
			t.Errorf("no %s check (want %s)", id, st)
		}
	}
}

func TestListeners(t *testing.T) {
	ps, err := parseProperties("listeners=PLAINTEXT://:9092,SSL://0.0.0.0:9093,CONTROLLER://127.0.0.1:9094\nlistener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,\\\n  CONTROLLER:PLAINTEXT\ncontroller.listener.names=CONTROLLER\n")
	if err != nil {
		t.Fatal(err)
	}
	ls, err := listenersOf(propertyMap(ps))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range ls {
		got = append(got, l.Name+" "+l.Protocol+" "+l.Address)
	}
	if strings.Join(got, "|") != "PLAINTEXT PLAINTEXT 127.0.0.1:9092|SSL SSL 127.0.0.1:9093|CONTROLLER PLAINTEXT 127.0.0.1:9094" || !ls[2].Controller {
		t.Errorf("listeners %v", got)
	}
	if _, err := listenersOf(map[string]string{"listeners": "nonsense"}); err == nil {
		t.Errorf("bad listener accepted")
	}
}

// FuzzParseProperties: a broker's server.properties is untrusted input.
func FuzzParseProperties(f *testing.F) {
	f.Add("a=b\n# c\nkey: value\nk v\\\n  continued\n")
	f.Add("ssl.keystore.password=${file:/etc/kafka/pw.properties:keystore}\n")
	f.Add("\\=x\\:y = z\\\\\n")
	f.Fuzz(func(t *testing.T, text string) {
		ps, err := parseProperties(text)
		if err != nil {
			return
		}
		for _, p := range ps {
			if p.Line < 1 || p.End < p.Line {
				t.Fatalf("property %+v from %q", p, text)
			}
			// harden's writer gives back exactly what it parsed.
			back, err := parseProperties(propertyLine(p.Key, p.Value) + "\n")
			if err != nil || len(back) != 1 || back[0].Key != p.Key || back[0].Value != p.Value {
				t.Fatalf("%q=%q written back reads %+v %v", p.Key, p.Value, back, err)
			}
		}
		_, _ = listenersOf(propertyMap(ps))
	})
}

func mustRead(t testing.TB, f string) []byte {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Verify through the fault kit's standard matrix in front of the real
// broker (hardened, judged against the modern profile so that versions,
// suites and configuration fail directly): a fault never turns a check
// that does not pass into a pass, and never makes one vanish.
func TestVerifyThroughFaults(t *testing.T) {
	k := testenv.KafkaForTest(t)
	ctx := context.Background()
	rc := brokerRequest(t, k, true)
	client := hostclient.InProcess(kafka{})
	defer client.Close()
	if ar, err := client.Apply(ctx, rc, nil, false); err != nil || ar.Diagnostics.HasError() {
		t.Fatalf("apply: %v %v", err, ar.Diagnostics.Err())
	}
	probing := withProbeIdentity(t, rc, k.CA, "harden-probe")
	secret, _ := probing.Target.Secret("probe_credentials")
	verify := func(ctx context.Context, addr string) ([]checks.Check, error) {
		q := rc
		conn, _ := json.Marshal(map[string]any{"bootstrap": []string{addr}})
		q.Target = sdk.NewTarget("events", conn, []byte(`{}`), map[string][]byte{"probe_credentials": []byte(secret)})
		q.Policy.Profile = tlsprofile.Modern()
		r, err := client.Verify(ctx, q)
		if err != nil {
			return nil, err
		}
		if r.Diagnostics.HasError() {
			return nil, r.Diagnostics.Err()
		}
		return r.Checks, nil
	}
	direct := faultkit.NeverPasses(t, k.Bootstrap, verify, faultkit.Standard(true)...)
	requireChecks(t, direct, map[string]checks.Status{"kafka.listener.plaintext": checks.Pass, "tls.protocol.versions": checks.Fail,
		"kafka.config.protocols": checks.Fail, "kafka.config.authorizer": checks.Pass, "kafka.client.produce_consume": checks.Pass})
}
