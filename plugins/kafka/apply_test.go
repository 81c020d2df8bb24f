package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/shared/tlsprofile"
	"github.com/harden-dev/harden/testenv"
)

// brokerRequest is the request for the testenv broker as the generated
// policy describes it (its Target block), with its certificates.
func brokerRequest(t testing.TB, k *testenv.Kafka, mtls bool) sdk.RequestContext {
	t.Helper()
	tgt := k.Target()
	conn, _ := json.Marshal(tgt["connection"])
	spec, _ := json.Marshal(tgt["spec"])
	rc := sdk.RequestContext{Policy: sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate()},
		Target: sdk.NewTarget("events", conn, spec, nil),
		Certificates: sdk.Certificates{ChainPEM: mustRead(t, k.CertFile), KeyPEM: mustRead(t, k.KeyFile), CABundlePEM: mustRead(t, k.CA.CertFile),
			ClientChainPEM: mustRead(t, k.ClientCertFile), ClientKeyPEM: mustRead(t, k.ClientKeyFile)}}
	rc.Policy.Rotation.RenewBefore = 7 * 24 * time.Hour
	if mtls {
		rc.Policy.MTLSScope = []string{"events"}
	}
	return rc
}

func checkStatus(r sdk.VerifyResponse) (failed, passed []string) {
	for _, c := range r.Checks {
		if c.Status == checks.Fail || c.Status == checks.Error {
			failed = append(failed, fmt.Sprintf("%s %s (%s): %s", c.ID, c.Status, c.Subject, c.Evidence))
		} else {
			passed = append(passed, c.ID)
		}
	}
	return
}

// The whole static flow on a real broker: PLAINTEXT broker → verify fails
// with specific IDs → apply (merge, stores, restart through the operator's
// command, verify) → verify passes, mTLS enforced, authorizer denies a
// same-CA client without ACLs → second apply changes nothing. Then a
// certificate rotation goes through KIP-226 without a restart while a
// producer keeps producing.
func TestApplyFlow(t *testing.T) {
	k := testenv.KafkaForTest(t)
	ctx := context.Background()
	rc := brokerRequest(t, k, true)
	client := hostclient.InProcess(kafka{})
	defer client.Close()

	before, err := client.Verify(ctx, rc)
	if err != nil || before.Diagnostics.HasError() {
		t.Fatalf("verify before: %v %v", err, before.Diagnostics.Err())
	}
	failed, _ := checkStatus(before)
	got := strings.Join(failed, "\n")
	if inv, err := client.Inventory(ctx, rc, 1); err != nil || inv.Diagnostics.HasError() || len(inv.Listeners) != 2 ||
		listenerNamed(t, inv, "1/PLAINTEXT").Error != noTLS || listenerNamed(t, inv, "1/CONTROLLER").Error != noTLS {
		t.Errorf("inventory of the PLAINTEXT broker: %v %+v", err, inv)
	}
	if strings.Count(got, "kafka.listener.plaintext fail") != 2 {
		t.Errorf("verify before should fail kafka.listener.plaintext on both listeners:\n%s", got)
	}
	// The running configuration, read through DescribeConfigs, fails too.
	for _, want := range []string{"kafka.config.client_auth fail", "kafka.config.inter_broker_tls fail", "kafka.config.cipher_suites fail", "kafka.config.authorizer fail", "kafka.client.produce_consume fail"} {
		if !strings.Contains(got, want) {
			t.Errorf("verify before lacks %q:\n%s", want, got)
		}
	}
	propsBefore := mustRead(t, k.Properties)
	if !bytes.Contains(propsBefore, []byte("log.dirs=")) {
		t.Fatalf("unexpected testenv file:\n%s", propsBefore)
	}

	plan, err := client.Plan(ctx, rc)
	if err != nil || plan.Diagnostics.HasError() || len(plan.Changes) == 0 {
		t.Fatalf("plan: %v %v %d changes", err, plan.Diagnostics.Err(), len(plan.Changes))
	}
	for _, ch := range plan.Changes {
		if strings.HasPrefix(ch.Resource, "server.properties:") && !ch.RequiresRestart {
			t.Errorf("%s planned without restart", ch.Resource)
		}
	}
	pid := k.PID()
	ar, err := client.Apply(ctx, rc, plan.PlanToken, false)
	if err != nil || ar.Diagnostics.HasError() {
		t.Fatalf("apply: %v %v\n%s", err, ar.Diagnostics.Err(), testenvTail(k))
	}
	if k.PID() == pid {
		t.Errorf("apply did not restart the broker")
	}
	// verify with a probe identity (same CA, no ACLs): every check passes,
	// the authorizer on the broker's own refusals.
	probing := withProbeIdentity(t, rc, k.CA, "harden-probe")
	after, err := client.Verify(ctx, probing)
	if err != nil || after.Diagnostics.HasError() {
		t.Fatalf("verify after: %v %v", err, after.Diagnostics.Err())
	}
	failed, passed := checkStatus(after)
	if len(failed) > 0 {
		t.Errorf("verify after apply:\n%s", strings.Join(failed, "\n"))
	}
	for _, id := range []string{"kafka.listener.plaintext", "tls.protocol.versions", "tls.cipher_suites", "tls.key_exchange.groups", "tls.certificate.trusted", "tls.client_auth.required", "kafka.client.produce_consume", "kafka.config.client_auth",
		"kafka.config.protocols", "kafka.config.cipher_suites", "kafka.config.inter_broker_tls", "kafka.config.authorizer"} {
		if !strings.Contains(strings.Join(passed, " "), id) {
			t.Errorf("verify after apply has no passing %s (passed: %v)", id, passed)
		}
	}
	requireChecks(t, after.Checks, map[string]checks.Status{"kafka.config.authorizer": checks.Pass, "kafka.config.protocols": checks.Pass,
		"kafka.config.client_auth": checks.Pass, "kafka.config.inter_broker_tls": checks.Pass, "kafka.client.produce_consume": checks.Pass})
	for _, c := range after.Checks {
		if c.ID == "kafka.config.authorizer" && (!strings.Contains(c.Evidence, "TOPIC_AUTHORIZATION_FAILED") || !strings.Contains(c.Evidence, "CLUSTER_AUTHORIZATION_FAILED")) {
			t.Errorf("authorizer passed without the probe identity's refusals: %s", c.Evidence)
		}
		if strings.HasPrefix(c.ID, "kafka.config.") {
			t.Logf("%s %s: %s", c.ID, c.Status, c.Evidence)
		}
		if strings.HasPrefix(c.ID, "kafka.config.") && c.Status == checks.Pass && c.ConfigurationOnly {
			t.Errorf("%s passed on configuration alone: %s", c.ID, c.Evidence)
		}
	}
	t.Run("without a probe identity the authorizer is configuration only", func(t *testing.T) {
		r, err := client.Verify(ctx, rc)
		if err != nil || r.Diagnostics.HasError() {
			t.Fatalf("verify: %v %v", err, r.Diagnostics.Err())
		}
		requireChecks(t, r.Checks, map[string]checks.Status{"kafka.config.authorizer": checks.Warn, "kafka.client.produce_consume": checks.Pass})
		for _, c := range r.Checks {
			if c.ID == "kafka.config.authorizer" && (!c.ConfigurationOnly || !strings.Contains(c.Evidence, "deny-by-default not observed")) {
				t.Errorf("authorizer without a probe: %+v", c)
			}
		}
	})
	t.Run("an unusable probe identity is an error, never configuration only", func(t *testing.T) {
		other, err := testenv.NewCA(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		own := rc
		own.Target = sdk.NewTarget(rc.Target.Name, rc.Target.Connection, rc.Target.Spec,
			map[string][]byte{"probe_credentials": append(mustRead(t, k.ClientCertFile), mustRead(t, k.ClientKeyFile)...)})
		for name, q := range map[string]sdk.RequestContext{"another CA": withProbeIdentity(t, rc, other, "stranger"), "harden's own identity": own} {
			r, err := client.Verify(ctx, q)
			if err != nil || r.Diagnostics.HasError() {
				t.Fatalf("%s: verify: %v %v", name, err, r.Diagnostics.Err())
			}
			requireChecks(t, r.Checks, map[string]checks.Status{"kafka.config.authorizer": checks.Error})
		}
	})
	t.Run("no CA: produce_consume is reported, an error in the mTLS scope", func(t *testing.T) {
		noCA := rc
		noCA.Certificates.CABundlePEM = nil
		r, err := client.Verify(ctx, noCA)
		if err != nil {
			t.Fatal(err)
		}
		requireChecks(t, r.Checks, map[string]checks.Status{"kafka.client.produce_consume": checks.Error})
		noCA.Policy.MTLSScope = nil
		r, err = client.Verify(ctx, noCA)
		if err != nil {
			t.Fatal(err)
		}
		requireChecks(t, r.Checks, map[string]checks.Status{"kafka.client.produce_consume": checks.Skip})
	})
	// An independent peer (kcat, librdkafka): metadata with harden's client
	// certificate, refused without one.
	kcat := func(withCert bool) error {
		args := []string{"-b", k.Bootstrap, "-L", "-m", "5", "-X", "security.protocol=SSL", "-X", "ssl.ca.location=" + k.CA.CertFile}
		if withCert {
			args = append(args, "-X", "ssl.certificate.location="+k.ClientCertFile, "-X", "ssl.key.location="+k.ClientKeyFile)
		}
		out, err := exec.Command("kcat", args...).CombinedOutput()
		if err == nil && !strings.Contains(string(out), "1 brokers") {
			err = fmt.Errorf("unexpected metadata: %s", out)
		}
		return err
	}
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Errorf("kcat (Debian) is needed as the independent peer: %v", err)
	} else {
		if err := kcat(true); err != nil {
			t.Errorf("kcat with harden's client certificate: %v", err)
		}
		if err := kcat(false); err == nil {
			t.Errorf("kcat without a client certificate got metadata from an mTLS broker")
		}
		// The rendered admin identity (PKCS#12) works with another client.
		rr, err := client.Render(ctx, rc)
		if err != nil || rr.Diagnostics.HasError() {
			t.Fatalf("render: %v %v", err, rr.Diagnostics.Err())
		}
		adminDir := t.TempDir()
		var adminPass string
		for _, a := range rr.Artifacts {
			if a.Path == "admin.p12" {
				os.WriteFile(filepath.Join(adminDir, "admin.p12"), a.Content, 0o600)
			}
			if a.Path == "admin.properties" {
				adminPass = propertyMapOf(t, string(a.Content))["ssl.keystore.password"]
			}
		}
		out, err := exec.Command("kcat", "-b", k.Bootstrap, "-L", "-m", "5", "-X", "security.protocol=SSL", "-X", "ssl.ca.location="+k.CA.CertFile,
			"-X", "ssl.keystore.location="+filepath.Join(adminDir, "admin.p12"), "-X", "ssl.keystore.password="+adminPass).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "1 brokers") {
			t.Errorf("kcat with the rendered admin.p12: %v\n%s", err, out)
		}
	}
	// Unrelated keys and comments kept; no password in server.properties.
	props := string(mustRead(t, k.Properties))
	for _, want := range []string{"# Written by harden testenv", "log.dirs=", "node.id=1", "offsets.topic.replication.factor=1", "ssl.client.auth=required", "${file:"} {
		if !strings.Contains(props, want) {
			t.Errorf("server.properties lacks %q:\n%s", want, props)
		}
	}
	if m := propertyMapOf(t, props); strings.Contains(m["listeners"]+m["listener.security.protocol.map"]+m["inter.broker.listener.name"], "PLAINTEXT") {
		t.Errorf("PLAINTEXT left in server.properties:\n%s", props)
	}
	dir := filepath.Join(filepath.Dir(k.Properties), "harden")
	secrets := livePasswords(filepath.Join(dir, "secrets.properties"))
	if secrets == nil || strings.Contains(props, secrets.keystore) {
		t.Errorf("password file missing, or its password in server.properties")
	}
	for _, f := range []string{"secrets.properties", filepath.Base(settingOfFile(t, props, "ssl.keystore.location"))} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v mode %v, want 0600", f, err, fi.Mode())
		}
	}
	// keytool sees a trusted CA entry: a Java truststore without the
	// trusted-certificate attribute looks empty to the JVM.
	out, err := exec.Command("keytool", "-list", "-keystore", settingOfFile(t, props, "ssl.truststore.location"), "-storetype", "PKCS12", "-storepass", secrets.truststore).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "trustedCertEntry") {
		t.Errorf("keytool -list: %v\n%s", err, out)
	}
	// A client with a certificate from the same CA but no ACLs is refused:
	// a valid certificate is not a skeleton key.
	intruderCert, intruderKey, err := k.CA.Issue("intruder", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := produceAs(k.Bootstrap, rc, intruderCert, intruderKey); err == nil || !strings.Contains(err.Error(), "uthoriz") {
		t.Errorf("a same-CA client without ACLs was not refused by the authorizer: %v", err)
	}

	// Second apply: nothing to change, no restart.
	pid = k.PID()
	again, err := client.Apply(ctx, rc, nil, false)
	if err != nil || again.Diagnostics.HasError() || len(again.Applied) != 0 || k.PID() != pid {
		t.Errorf("second apply: %v %v %+v (restarted: %v)", err, again.Diagnostics.Err(), again.Applied, k.PID() != pid)
	}
	t.Run("inventory serves the applied leaf; harden's renewed client certificate changes nothing", func(t *testing.T) {
		leaf := servedLeaf(t, k.CertFile)
		requireInventory(t, client, rc, k, 1, map[string][]byte{"1/SSL": leaf, "1/CONTROLLER": leaf})
		cert, key, err := k.CA.Issue("harden-admin", true) // harden's own identity renewed: same CN, new key
		if err != nil {
			t.Fatal(err)
		}
		renewed := rc
		renewed.Certificates.ClientChainPEM, renewed.Certificates.ClientKeyPEM = mustRead(t, cert), mustRead(t, key)
		if bytes.Equal(renewed.Certificates.ClientKeyPEM, rc.Certificates.ClientKeyPEM) {
			t.Fatal("the renewed client key is the old one")
		}
		p, err := client.Plan(ctx, renewed)
		if err != nil || p.Diagnostics.HasError() || len(p.Changes) != 0 {
			t.Errorf("plan with harden's renewed client certificate: %v %v %+v", err, p.Diagnostics.Err(), p.Changes)
		}
		requireInventory(t, client, renewed, k, 2, map[string][]byte{"1/SSL": leaf, "1/CONTROLLER": leaf})
	})

	t.Run("rotation without restart", func(t *testing.T) { rotation(t, k, rc, client) })
	t.Run("dropped SAN: plan routes to a restart, Kafka refuses it dynamically", func(t *testing.T) {
		cert, key, err := k.CA.IssuePeer("kafka", "127.0.0.1") // "localhost" dropped
		if err != nil {
			t.Fatal(err)
		}
		rc2 := rc
		rc2.Certificates.ChainPEM, rc2.Certificates.KeyPEM = mustRead(t, cert), mustRead(t, key)
		p, err := client.Plan(ctx, rc2)
		if err != nil || p.Diagnostics.HasError() || len(p.Changes) == 0 {
			t.Fatalf("plan: %v %v", err, p.Diagnostics.Err())
		}
		for _, ch := range p.Changes {
			if !ch.RequiresRestart || !strings.Contains(ch.Description, "drops the name localhost") {
				t.Errorf("dropped SAN planned as %+v", ch)
			}
		}
		// Kafka's own refusal: the keystore handed to the broker directly.
		dir := filepath.Join(filepath.Dir(k.Properties), "harden")
		c2, s2, _ := sdk.Decode[connection, spec](rc2.Target, &sdk.Diagnostics{})
		rd, ok := renderTarget(rc2, c2, s2, brokerTarget{ConfigFile: k.Properties, Listeners: []listenerSpec{{Name: "SSL", Address: k.Bootstrap}}}, nil, nil, livePasswords(filepath.Join(dir, "secrets.properties")), &sdk.Diagnostics{})
		if !ok {
			t.Fatal("render")
		}
		var store string
		for _, a := range rd.artifacts {
			if strings.HasPrefix(a.Path, "harden/broker-") {
				store = filepath.Join(dir, strings.TrimPrefix(a.Path, "harden/"))
				if err := os.WriteFile(store, a.Content, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
		var conn connection
		_ = json.Unmarshal(rc.Target.Connection, &conn)
		err = alterDynamic(conn, rc, []brokerTarget{{Listeners: []listenerSpec{{Name: "SSL", Address: k.Bootstrap}}}}, "1", nil, map[string]string{"listener.name.ssl.ssl.keystore.location": store})
		if err == nil || !strings.Contains(err.Error(), "SubjectAltNames do not match") {
			t.Errorf("Kafka accepted a keystore that drops a SAN: %v", err)
		} else {
			t.Logf("Kafka refused: %v", err)
		}
		os.Remove(store)
	})
	t.Run("allow by default is caught live, without config_file too", func(t *testing.T) { allowByDefault(t, k, rc, client) })
	t.Run("subject change needs a restart", func(t *testing.T) {
		cert, key, err := k.CA.IssuePeer("kafka-renamed", "127.0.0.1", "localhost")
		if err != nil {
			t.Fatal(err)
		}
		rc2 := rc
		rc2.Certificates.ChainPEM, rc2.Certificates.KeyPEM = mustRead(t, cert), mustRead(t, key)
		p, err := client.Plan(ctx, rc2)
		if err != nil || p.Diagnostics.HasError() {
			t.Fatalf("plan: %v %v", err, p.Diagnostics.Err())
		}
		for _, ch := range p.Changes {
			if !ch.RequiresRestart || !strings.Contains(ch.Description, "differs from the served") {
				t.Errorf("DN change planned as %+v", ch)
			}
		}
	})
}

// withProbeIdentity returns rc carrying a probe identity (a client
// certificate with CN cn from ca, no ACLs) as the host would hand over
// connection.probe_credentials_file.
func withProbeIdentity(t *testing.T, rc sdk.RequestContext, ca *testenv.CA, cn string) sdk.RequestContext {
	t.Helper()
	cert, key, err := ca.Issue(cn, true)
	if err != nil {
		t.Fatal(err)
	}
	var conn map[string]any
	_ = json.Unmarshal(rc.Target.Connection, &conn)
	conn["probe_credentials_file"] = cert + ".with-key.pem"
	raw, _ := json.Marshal(conn)
	rc.Target = sdk.NewTarget(rc.Target.Name, raw, rc.Target.Spec, map[string][]byte{"probe_credentials": append(mustRead(t, cert), mustRead(t, key)...)})
	return rc
}

// allowByDefault: a broker whose authorizer allows what no ACL covers
// (allow.everyone.if.no.acl.found=true) fails kafka.config.authorizer on
// the probe identity's accepted requests — also without config_file, where
// the setting cannot be read from a file — and never passes without a
// probe identity.
func allowByDefault(t *testing.T, k *testenv.Kafka, rc sdk.RequestContext, client *hostclient.Client) {
	ctx := context.Background()
	orig := mustRead(t, k.Properties)
	open := bytes.Replace(orig, []byte("allow.everyone.if.no.acl.found=false"), []byte("allow.everyone.if.no.acl.found=true"), 1)
	if bytes.Equal(open, orig) {
		t.Fatalf("no allow.everyone.if.no.acl.found=false in server.properties")
	}
	restart := func(content []byte) {
		t.Helper()
		if err := os.WriteFile(k.Properties, content, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(k.RestartCommand()[0], k.RestartCommand()[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("restart: %v %s\n%s", err, out, testenvTail(k))
		}
	}
	restart(open)
	defer restart(orig)
	var conn map[string]any
	_ = json.Unmarshal(rc.Target.Connection, &conn)
	delete(conn, "config_file")
	raw, _ := json.Marshal(conn)
	noFile := rc
	noFile.Target = sdk.NewTarget(rc.Target.Name, raw, rc.Target.Spec, nil)
	r, err := client.Verify(ctx, withProbeIdentity(t, noFile, k.CA, "harden-probe"))
	if err != nil || r.Diagnostics.HasError() {
		t.Fatalf("verify: %v %v", err, r.Diagnostics.Err())
	}
	requireChecks(t, r.Checks, map[string]checks.Status{"kafka.config.authorizer": checks.Fail})
	for _, c := range r.Checks {
		if c.ID == "kafka.config.authorizer" && !strings.Contains(c.Evidence, "allow by default") {
			t.Errorf("authorizer fail without the observed acceptance: %s", c.Evidence)
		}
		if c.ID == "kafka.config.authorizer" {
			t.Logf("allow by default, with a probe identity: %s %s", c.Status, c.Evidence)
		}
	}
	r, err = client.Verify(ctx, noFile)
	if err != nil || r.Diagnostics.HasError() {
		t.Fatalf("verify: %v %v", err, r.Diagnostics.Err())
	}
	if !slices.ContainsFunc(r.Checks, func(c checks.Check) bool { return c.ID == "kafka.config.authorizer" }) {
		t.Errorf("kafka.config.authorizer missing without a probe identity")
	}
	for _, c := range r.Checks {
		if c.ID == "kafka.config.authorizer" && c.Status == checks.Pass {
			t.Errorf("allow-by-default broker passed kafka.config.authorizer without a probe identity: %s", c.Evidence)
		}
		if c.ID == "kafka.config.authorizer" {
			t.Logf("allow by default, no probe identity, no config_file: %s %s", c.Status, c.Evidence)
		}
	}
	requireChecks(t, r.Checks, map[string]checks.Status{"kafka.client.produce_consume": checks.Pass})
}

func settingOfFile(t *testing.T, props, key string) string {
	t.Helper()
	return propertyMapOf(t, props)[key]
}

func propertyMapOf(t *testing.T, props string) map[string]string {
	t.Helper()
	ps, err := parseProperties(props)
	if err != nil {
		t.Fatal(err)
	}
	return propertyMap(ps)
}

func testenvTail(k *testenv.Kafka) string {
	b, _ := os.ReadFile(k.LogFile)
	lines := strings.Split(string(b), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

// produceAs sends one message to a new topic as the given client identity.
func produceAs(addr string, rc sdk.RequestContext, certFile, keyFile string) error {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return err
	}
	cfg := saramaConfig(rc, true)
	cfg.Net.TLS.Config.Certificates = []tls.Certificate{pair}
	cfg.Producer.Return.Successes = true
	cfg.Producer.Retry.Max = 0
	p, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: "intruder-topic", Value: sarama.StringEncoder("x")})
	return err
}

// rotation: a renewed certificate (same subject and names) goes through
// KIP-226 while a producer sends every 10 ms: no failed send, every
// message consumed, the new certificate served, the broker not restarted.
func rotation(t *testing.T, k *testenv.Kafka, rc sdk.RequestContext, client *hostclient.Client) {
	ctx := context.Background()
	cfg := saramaConfig(rc, true)
	admin, err := sarama.NewClusterAdmin([]string{k.Bootstrap}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateTopic("rotation", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	cfg = saramaConfig(rc, true)
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Metadata.Retry.Max = 5
	prod, err := sarama.NewSyncProducer([]string{k.Bootstrap}, cfg)
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	var sent, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "rotation", Value: sarama.StringEncoder(fmt.Sprint(i))}); err != nil {
				failed.Add(1)
				t.Logf("send %d: %v", i, err)
			} else {
				sent.Add(1)
			}
		}
	}()
	time.Sleep(time.Second)
	oldCert := rc.Certificates.ChainPEM                                 // IssuePeer rewrites k.CertFile
	cert, key, err := k.CA.IssuePeer("kafka", "127.0.0.1", "localhost") // renewal: same subject and names
	if err != nil {
		t.Fatal(err)
	}
	rc.Certificates.ChainPEM, rc.Certificates.KeyPEM = mustRead(t, cert), mustRead(t, key)
	pid := k.PID()
	p, err := client.Plan(ctx, rc)
	if err != nil || p.Diagnostics.HasError() || len(p.Changes) == 0 {
		t.Fatalf("plan: %v %v %+v", err, p.Diagnostics.Err(), p.Changes)
	}
	for _, ch := range p.Changes {
		if ch.RequiresRestart {
			t.Errorf("rotation planned with restart: %+v", ch)
		}
	}
	ar, err := client.Apply(ctx, rc, p.PlanToken, false)
	if err != nil || ar.Diagnostics.HasError() {
		t.Fatalf("apply rotation: %v %v", err, ar.Diagnostics.Err())
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	prod.Close()
	if k.PID() != pid {
		t.Errorf("the rotation restarted the broker")
	}
	if failed.Load() != 0 || sent.Load() < 50 {
		t.Errorf("during rotation: %d sent, %d failed", sent.Load(), failed.Load())
	}
	// Every message arrives.
	consumer, err := sarama.NewConsumer([]string{k.Bootstrap}, saramaConfig(rc, true))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition("rotation", 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	got := int64(0)
	timeout := time.After(20 * time.Second)
	for got < sent.Load() {
		select {
		case <-pc.Messages():
			got++
		case <-timeout:
			t.Fatalf("consumed %d of %d", got, sent.Load())
		}
	}
	// New certificate served on a fresh handshake.
	served, err := servedCertificate(context.Background(), rc, rendered{broker: brokerTarget{Listeners: []listenerSpec{{Name: "SSL", Address: k.Bootstrap}}}})
	if err != nil || !bytes.Equal(served.Raw, mustPEMCert(t, rc.Certificates.ChainPEM)) {
		t.Errorf("new certificate not served: %v", err)
	}
	t.Logf("rotation: %d messages sent and consumed while rotating, 0 failed", sent.Load())
	renewedConverges(t, k, rc, client, oldCert)
}

// renewedConverges: right after a KIP-226 renewal, 8 fresh handshakes
// on the broker listener serve the new leaf and the controller listener
// (ReloadsOn restart) still the old one; plan with the same renewed
// material then reports exactly that listener's pending restart, apart
// from anything else (resource "broker 1 controller listener
// CONTROLLER:ssl.keystore.location"), and apply does that restart: the
// controller listener serves the new leaf too and plan is empty.
func renewedConverges(t *testing.T, k *testenv.Kafka, rc sdk.RequestContext, client *hostclient.Client, oldCert []byte) {
	ctx := context.Background()
	renewed, old := mustPEMCert(t, rc.Certificates.ChainPEM), mustPEMCert(t, oldCert)
	requireInventory(t, client, rc, k, 8, map[string][]byte{"1/SSL": renewed, "1/CONTROLLER": old})
	p, err := client.Plan(ctx, rc)
	if err != nil || p.Diagnostics.HasError() {
		t.Fatalf("plan after rotation: %v %v", err, p.Diagnostics.Err())
	}
	props := propertyMapOf(t, string(mustRead(t, k.Properties)))
	if len(p.Changes) != 1 {
		t.Fatalf("plan after rotation: want the controller listener's pending restart alone, got %+v", p.Changes)
	}
	ch := p.Changes[0]
	if ch.Resource != "broker 1 controller listener CONTROLLER:ssl.keystore.location" || ch.Action != sdk.Update || !ch.RequiresRestart ||
		ch.After != props["ssl.keystore.location"] || ch.Before == ch.After || ch.Before == "" ||
		!strings.Contains(ch.Description, "the new certificate is served there after the next broker restart") {
		t.Errorf("the controller listener's pending restart: %+v", ch)
	}
	t.Logf("plan after the renewal: %s %s (restart: %v): %s", ch.Action, ch.Resource, ch.RequiresRestart, ch.Description)
	pid := k.PID()
	ar, err := client.Apply(ctx, rc, p.PlanToken, false)
	if err != nil || ar.Diagnostics.HasError() || len(ar.Applied) != 1 || ar.Applied[0].Resource != ch.Resource {
		t.Fatalf("apply of the pending restart: %v %v %+v\n%s", err, ar.Diagnostics.Err(), ar.Applied, testenvTail(k))
	}
	if k.PID() == pid {
		t.Errorf("the controller listener's pending restart was applied without a restart")
	}
	requireInventory(t, client, rc, k, 2, map[string][]byte{"1/SSL": renewed, "1/CONTROLLER": renewed})
	if again, err := client.Plan(ctx, rc); err != nil || again.Diagnostics.HasError() || len(again.Changes) != 0 {
		t.Errorf("plan after the restart: %v %v %+v", err, again.Diagnostics.Err(), again.Changes)
	}
}

func mustPEMCert(t *testing.T, pemData []byte) []byte {
	cs, err := sdk.ParseCertificatesPEM(pemData)
	if err != nil {
		t.Fatal(err)
	}
	return cs[0].Raw
}

// A restart that fails puts every file back byte for byte and restarts the
// broker with them: it still answers on its PLAINTEXT listener.
func TestApplyRollsBackOnFailedRestart(t *testing.T) {
	k := testenv.KafkaForTest(t)
	ctx := context.Background()
	rc := brokerRequest(t, k, false)
	var conn map[string]any
	_ = json.Unmarshal(rc.Target.Connection, &conn)
	good := conn["restart_command"]
	// The first restart "fails" (the command restarts the broker with the new
	// files, then exits 1); the second (rollback) runs the real command.
	marker := filepath.Join(t.TempDir(), "failed-once")
	real := k.RestartCommand()
	conn["restart_command"] = []string{"/bin/bash", "-c", fmt.Sprintf(`if [ ! -e %q ]; then touch %q; %s >/dev/null; echo "restart failed (test)"; exit 1; fi; %s`,
		marker, marker, shellJoin(real), shellJoin(real))}
	raw, _ := json.Marshal(conn)
	rc.Target = sdk.NewTarget("events", raw, rc.Target.Spec, nil)
	_ = good
	before := mustRead(t, k.Properties)
	client := hostclient.InProcess(kafka{})
	defer client.Close()
	ar, err := client.Apply(ctx, rc, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	msg := fmt.Sprint(ar.Diagnostics.Err())
	if !ar.Diagnostics.HasError() || !strings.Contains(msg, "restart failed (test)") || !strings.Contains(msg, "previous files are restored and the broker(s) restarted") {
		t.Fatalf("apply with a failing restart: %s", msg)
	}
	if after := mustRead(t, k.Properties); !bytes.Equal(before, after) {
		t.Errorf("server.properties not restored:\n%s", after)
	}
	entries, _ := os.ReadDir(filepath.Join(filepath.Dir(k.Properties), "harden"))
	for _, e := range entries {
		if !strings.Contains(e.Name(), ".harden-") {
			t.Errorf("file left behind by the failed apply: %s", e.Name())
		}
	}
	if !brokerAnswers(ctx, k.Bootstrap, nil) {
		t.Errorf("the broker does not answer on its PLAINTEXT listener after the rollback")
	}
}

func shellJoin(argv []string) string {
	var out []string
	for _, a := range argv {
		out = append(out, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
	}
	return strings.Join(out, " ")
}

// Lockout guard: under mTLS without harden's client certificate apply
// refuses and changes nothing.
func TestApplyLockoutGuard(t *testing.T) {
	k := testenv.KafkaForTest(t)
	rc := brokerRequest(t, k, true)
	rc.Certificates.ClientChainPEM, rc.Certificates.ClientKeyPEM = nil, nil
	before := mustRead(t, k.Properties)
	client := hostclient.InProcess(kafka{})
	defer client.Close()
	ar, err := client.Apply(context.Background(), rc, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if !ar.Diagnostics.HasError() || !strings.Contains(fmt.Sprint(ar.Diagnostics.Err()), "no client certificate") {
		t.Errorf("apply without harden's client identity under mTLS: %v", ar.Diagnostics.Err())
	}
	if after := mustRead(t, k.Properties); !bytes.Equal(before, after) {
		t.Errorf("server.properties changed")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(k.Properties), "harden")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("store dir created: %v", err)
	}
}
