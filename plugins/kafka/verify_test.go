package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
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
	})
}

// The testenv broker starts with PLAINTEXT listeners (broker and
// controller): verify fails on both, with the broker's own answer as
// evidence.
func TestVerifyPlaintextBroker(t *testing.T) {
	k := testenv.KafkaForTest(t)
	client := sdk.InProcess(kafka{})
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
			if p.Key == "" || p.Line < 1 {
				t.Fatalf("property %+v from %q", p, text)
			}
		}
		_, _ = listenersOf(propertyMap(ps))
	})
}

// The rendered settings and stores, merged into the testenv broker's
// server.properties by hand (apply is not built yet), make a broker that
// verify passes: every listener TLS-only, profile versions and suites. The
// truststore is checked with keytool: a Java truststore without the
// trusted-certificate attribute looks empty to the JVM.
func TestRenderedConfigWorksOnBroker(t *testing.T) {
	for _, mtls := range []bool{false, true} {
		t.Run(fmt.Sprintf("mtls-%v", mtls), func(t *testing.T) { renderedConfigOnBroker(t, mtls) })
	}
}

func renderedConfigOnBroker(t *testing.T, mtls bool) {
	k := testenv.KafkaForTest(t)
	ctx := context.Background()
	certs := sdk.Certificates{ChainPEM: mustRead(t, k.CertFile), KeyPEM: mustRead(t, k.KeyFile), CABundlePEM: mustRead(t, filepath.Join(filepath.Dir(k.CertFile), "ca.pem")),
		ClientChainPEM: mustRead(t, k.ClientCertFile), ClientKeyPEM: mustRead(t, k.ClientKeyFile)}
	host, _, _ := strings.Cut(k.Bootstrap, ":")
	sslAddr, ctlAddr := k.Bootstrap, k.Controller
	conn, _ := json.Marshal(map[string]any{"bootstrap": []string{sslAddr}, "config_file": k.Properties})
	specJSON, _ := json.Marshal(map[string]any{"listeners": []map[string]any{{"name": "SSL", "address": sslAddr}, {"name": "CONTROLLER", "address": ctlAddr, "controller": true}}})
	rc := sdk.RequestContext{Policy: sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate()},
		Target: sdk.NewTarget("events", conn, specJSON, nil), Certificates: certs}
	rc.Policy.Rotation.RenewBefore = 7 * 24 * 3600 * 1e9
	if mtls {
		rc.Policy.MTLSScope = []string{"events"}
	}
	client := sdk.InProcess(kafka{})
	defer client.Close()
	rr, err := client.Render(ctx, rc)
	if err != nil || rr.Diagnostics.HasError() {
		t.Fatalf("render: %v %v", err, rr.Diagnostics.Err())
	}
	dir := filepath.Join(filepath.Dir(k.Properties))
	var fragment, jvm string
	for _, a := range rr.Artifacts {
		if a.Path == "kafka-jvm-options.txt" {
			jvm = strings.TrimSpace(string(a.Content))
		}
		if strings.HasPrefix(a.Path, "harden/") {
			os.MkdirAll(filepath.Join(dir, "harden"), 0o700)
			if err := os.WriteFile(filepath.Join(dir, a.Path), a.Content, os.FileMode(a.Mode)); err != nil {
				t.Fatal(err)
			}
		}
		if a.Path == "server-harden.properties" {
			fragment = string(a.Content)
		}
	}
	if strings.Contains(fragment, "password=") && !strings.Contains(fragment, "${file:") {
		t.Errorf("a password in server.properties:\n%s", fragment)
	}
	// keytool sees a trusted CA entry.
	pw := strings.TrimPrefix(strings.Split(string(mustRead(t, filepath.Join(dir, "harden", "secrets.properties"))), "\n")[1], "truststore.password=")
	out, err := exec.Command("keytool", "-list", "-keystore", filepath.Join(dir, "harden", "truststore.p12"), "-storetype", "PKCS12", "-storepass", pw).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "trustedCertEntry") {
		t.Errorf("keytool -list: %v\n%s", err, out)
	}
	// Plan on the PLAINTEXT broker: settings and stores to change, and the
	// running broker read through DescribeConfigs.
	before, err := client.Plan(ctx, rc)
	if err != nil || before.Diagnostics.HasError() || len(before.Changes) == 0 {
		t.Fatalf("plan before: %v %v %d changes", err, before.Diagnostics.Err(), len(before.Changes))
	}
	// Merge: managed keys replaced, the rest (log.dirs, node.id, ...) kept.
	managed := map[string]string{}
	for _, line := range strings.Split(fragment, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			managed[k] = v
		}
	}
	var merged []string
	for _, line := range strings.Split(string(mustRead(t, k.Properties)), "\n") {
		if key, _, ok := strings.Cut(line, "="); ok {
			if _, m := managed[key]; m {
				continue
			}
		}
		merged = append(merged, line)
	}
	merged = append(merged, fragment)
	if err := os.WriteFile(k.Properties, []byte(strings.Join(merged, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := k.Restart(ctx, jvm); err != nil {
		t.Fatal(err)
	}
	vr, err := client.Verify(ctx, rc)
	if err != nil || vr.Diagnostics.HasError() {
		t.Fatalf("verify: %v %v", err, vr.Diagnostics.Err())
	}
	// Plan after: nothing left, and DescribeConfigs over TLS (with harden's
	// client certificate under mTLS) agrees with the file.
	after, err := client.Plan(ctx, rc)
	if err != nil || after.Diagnostics.HasError() || len(after.Changes) != 0 || len(after.Diagnostics) != 0 {
		t.Errorf("plan after: %v %v %+v", err, after.Diagnostics, after.Changes)
	}
	clientAuth := 0
	for _, c := range vr.Checks {
		if c.Status != checks.Pass {
			t.Errorf("%s %s: %s: %s", c.ID, c.Status, c.Subject, c.Evidence)
		}
		if c.ID == "tls.client_auth.required" {
			clientAuth++
			for _, want := range []string{"without a client certificate refused", "unrelated CA refused", "trusted certificate accepted"} {
				if !strings.Contains(c.Evidence, want) {
					t.Errorf("%s: client auth evidence lacks %q: %s", c.Subject, want, c.Evidence)
				}
			}
		}
	}
	if mtls && clientAuth != 2 {
		t.Errorf("client-auth checks on %d listeners, want 2", clientAuth)
	}
	_ = host
}

func mustRead(t *testing.T, f string) []byte {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
