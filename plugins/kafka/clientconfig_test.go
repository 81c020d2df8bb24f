package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/shared/tlsprofile"
	"github.com/harden-dev/harden/testenv"
)

// clientIdentityIn names a client's files in dir, as the host lays out a
// delivered bundle.
func clientIdentityIn(name, dir string) sdk.ClientIdentity {
	return sdk.ClientIdentity{Name: name, CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key"), CAFile: filepath.Join(dir, "ca.crt"),
		KeystoreFile: filepath.Join(dir, "keystore.p12"), KeystorePasswordFile: filepath.Join(dir, "keystore.password"), TruststoreFile: filepath.Join(dir, "truststore.p12")}
}

// clientArtifact returns the response's artifact at path.
func clientArtifact(t *testing.T, r sdk.RenderResponse, path string) sdk.Artifact {
	t.Helper()
	for _, a := range r.Artifacts {
		if a.Path == path {
			return a
		}
	}
	t.Fatalf("no artifact %s among %d", path, len(r.Artifacts))
	return sdk.Artifact{}
}

// expectedClientSettings is what client.properties must say for id.
func expectedClientSettings(bootstrap string, id sdk.ClientIdentity) map[string]string {
	pw := "${dir:" + filepath.Dir(id.KeystorePasswordFile) + ":" + filepath.Base(id.KeystorePasswordFile) + "}"
	return map[string]string{
		"bootstrap.servers": bootstrap, "security.protocol": "SSL",
		"config.providers": "dir", "config.providers.dir.class": "org.apache.kafka.common.config.provider.DirectoryConfigProvider",
		"ssl.keystore.type": "PKCS12", "ssl.keystore.location": id.KeystoreFile, "ssl.keystore.password": pw, "ssl.key.password": pw,
		"ssl.truststore.type": "PKCS12", "ssl.truststore.location": id.TruststoreFile, "ssl.truststore.password": pw,
		"ssl.enabled.protocols": "TLSv1.2,TLSv1.3", "ssl.protocol": "TLSv1.3",
		"ssl.cipher.suites":                     strings.Join(jsseSuites(tlsprofile.Intermediate()), ","),
		"ssl.endpoint.identification.algorithm": "https",
	}
}

// requireClientArtifacts reads client.properties back with the plugin's
// properties reader (every key, nothing more), checks that the Spark
// options are the same settings kafka.-prefixed, key by key, and that
// neither file is marked or moded as a secret.
func requireClientArtifacts(t *testing.T, r sdk.RenderResponse, want map[string]string) {
	t.Helper()
	client, spark := clientArtifact(t, r, "client.properties"), clientArtifact(t, r, "spark-options.properties")
	got := propertyMapOf(t, string(client.Content))
	for k, v := range want {
		if got[k] != v {
			t.Errorf("client.properties %s = %q, want %q", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("client.properties has unexpected key %s", k)
		}
	}
	sparkGot := propertyMapOf(t, string(spark.Content))
	if len(sparkGot) != len(got) {
		t.Errorf("spark options have %d keys, client.properties %d", len(sparkGot), len(got))
	}
	for k, v := range got {
		if sparkGot["kafka."+k] != v {
			t.Errorf("spark option kafka.%s = %q, client.properties %s = %q", k, sparkGot["kafka."+k], k, v)
		}
	}
	for _, a := range []sdk.Artifact{client, spark} {
		if a.Sensitive || a.Mode != 0o644 {
			t.Errorf("%s: sensitive %v mode %o; it holds no secret", a.Path, a.Sensitive, a.Mode)
		}
	}
}

func clientRenderRequest(conn, spec map[string]any, mtls bool, id sdk.ClientIdentity) sdk.RenderRequest {
	rawConn, _ := json.Marshal(conn)
	rawSpec, _ := json.Marshal(spec)
	q := sdk.RenderRequest{RequestContext: sdk.RequestContext{Policy: sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate()},
		Target: sdk.NewTarget("events", rawConn, rawSpec, nil)}, Client: &id}
	if mtls {
		q.Policy.MTLSScope = []string{"events"}
	}
	return q
}

func TestRenderClientSettings(t *testing.T) {
	id := clientIdentityIn("spark-etl", "/etc/harden/clients/spark etl")
	cases := map[string]struct {
		conn, spec map[string]any
		mtls       bool
		bootstrap  string
		warning    bool
	}{
		"spec SSL listeners, controller left out": {
			conn: map[string]any{"bootstrap": []string{"127.0.0.1:9092"}},
			spec: map[string]any{"listeners": []map[string]any{{"name": "SSL", "address": "kafka-1.example:9093"}, {"name": "CONTROLLER", "address": "kafka-1.example:9094", "controller": true}}},
			mtls: true, bootstrap: "kafka-1.example:9093"},
		"a cluster: every broker's SSL listener once": {
			conn: map[string]any{"bootstrap": []string{"127.0.0.1:9092"}},
			spec: map[string]any{"brokers": []map[string]any{
				{"node_id": 1, "listeners": []map[string]any{{"name": "SSL", "address": "k1:9093"}, {"name": "INTERNAL", "address": "k1:9095"}}},
				{"node_id": 2, "listeners": []map[string]any{{"name": "SSL", "address": "k2:9093"}, {"name": "INTERNAL", "address": "k1:9095"}}}}},
			mtls: true, bootstrap: "k1:9093,k1:9095,k2:9093"},
		"no spec listeners: connection.bootstrap": {
			conn: map[string]any{"bootstrap": []string{"[::1]:9093", "127.0.0.1:9093"}}, spec: map[string]any{},
			mtls: true, bootstrap: "[::1]:9093,127.0.0.1:9093"},
		"a wildcard bind is no client address": {
			conn: map[string]any{"bootstrap": []string{"127.0.0.1:9093"}},
			spec: map[string]any{"listeners": []map[string]any{{"name": "SSL", "address": "0.0.0.0:9093"}}},
			mtls: true, bootstrap: "127.0.0.1:9093"},
		"outside the mTLS scope: rendered, with a warning": {
			conn: map[string]any{"bootstrap": []string{"127.0.0.1:9093"}}, spec: map[string]any{},
			bootstrap: "127.0.0.1:9093", warning: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var r sdk.RenderResponse
			kafka{}.RenderClient(context.Background(), clientRenderRequest(tc.conn, tc.spec, tc.mtls, id), &r)
			if r.Diagnostics.HasError() {
				t.Fatal(r.Diagnostics.Err())
			}
			if warned := len(r.Diagnostics) > 0; warned != tc.warning {
				t.Errorf("diagnostics %v, want a warning: %v", r.Diagnostics, tc.warning)
			}
			if len(r.Artifacts) != 2 {
				t.Errorf("%d artifacts, want client.properties and spark-options.properties", len(r.Artifacts))
			}
			requireClientArtifacts(t, r, expectedClientSettings(tc.bootstrap, id))
		})
	}
}

// Values that would not mean in client.properties what they say are
// refused, naming the client and the field.
func TestRenderClientRefuses(t *testing.T) {
	good := clientIdentityIn("spark-etl", "/etc/harden/clients/spark-etl")
	conn := map[string]any{"bootstrap": []string{"127.0.0.1:9093"}}
	cases := map[string]struct {
		edit func(*sdk.ClientIdentity)
		conn map[string]any
		want string
	}{
		"a relative keystore":           {edit: func(id *sdk.ClientIdentity) { id.KeystoreFile = "keystore.p12" }, want: "keystore_file is not an absolute path"},
		"no truststore":                 {edit: func(id *sdk.ClientIdentity) { id.TruststoreFile = "" }, want: "truststore_file is not set"},
		"a colon in the password path":  {edit: func(id *sdk.ClientIdentity) { id.KeystorePasswordFile = "/etc/a:b/keystore.password" }, want: "keystore_password_file cannot hold"},
		"a brace in the password name":  {edit: func(id *sdk.ClientIdentity) { id.KeystorePasswordFile = "/etc/x/pw}" }, want: "keystore_password_file cannot hold"},
		"a line break in a path":        {edit: func(id *sdk.ClientIdentity) { id.TruststoreFile = "/etc/x\nssl.truststore.type=JKS" }, want: "control character"},
		"a name with a comma":           {edit: func(id *sdk.ClientIdentity) { id.Name = "spark,O=evil" }, want: "cannot be a Kafka principal"},
		"a bootstrap list in one entry": {edit: func(*sdk.ClientIdentity) {}, conn: map[string]any{"bootstrap": []string{"a:1,b:2"}}, want: "connection.bootstrap"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			id := good
			tc.edit(&id)
			c := conn
			if tc.conn != nil {
				c = tc.conn
			}
			var r sdk.RenderResponse
			kafka{}.RenderClient(context.Background(), clientRenderRequest(c, map[string]any{}, true, id), &r)
			if !r.Diagnostics.HasError() || !strings.Contains(r.Diagnostics.Err().Error(), tc.want) || len(r.Artifacts) != 0 {
				t.Errorf("diagnostics %v, %d artifacts; want an error with %q", r.Diagnostics, len(r.Artifacts), tc.want)
			}
		})
	}
	var r sdk.RenderResponse
	q := clientRenderRequest(conn, map[string]any{}, true, good)
	q.Client = nil
	kafka{}.RenderClient(context.Background(), q, &r)
	if !r.Diagnostics.HasError() {
		t.Errorf("no client identity: %v", r.Diagnostics)
	}
}

// writeClientBundle writes what the host delivers for a client (the files
// RenderClient's artifacts name): a certificate from ca with CN name, the
// PKCS#12 keystore and truststore, and their password file.
func writeClientBundle(t *testing.T, ca *testenv.CA, id sdk.ClientIdentity, password string) {
	t.Helper()
	certFile, keyFile, err := ca.Issue(id.Name, true)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	caCerts, err := sdk.ParseCertificatesPEM(mustRead(t, ca.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := sdk.ParseCertificatesPEM(mustRead(t, certFile))
	ks, err := pkcs12.Modern.Encode(pair.PrivateKey, leaf[0], nil, password)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := pkcs12.Modern.EncodeTrustStore(caCerts, password)
	if err != nil {
		t.Fatal(err)
	}
	for f, b := range map[string][]byte{id.KeystoreFile: ks, id.TruststoreFile: ts, id.KeystorePasswordFile: []byte(password)} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// kafkaTool runs one of Kafka's own Java command-line tools from the
// testenv broker's classpath (kafka-configs.sh is kafka.admin.ConfigCommand).
func kafkaTool(t *testing.T, k *testenv.Kafka, class string, args ...string) (string, error) {
	t.Helper()
	java, err := exec.LookPath("java")
	if err != nil {
		t.Fatalf("java runs Kafka's tools: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, java, append([]string{"-Xmx256m", "-XX:+UseSerialGC", "-cp", filepath.Join(k.Libs, "*"), class}, args...)...).CombinedOutput()
	return string(out), err
}

// A client identity's rendered client.properties, used as it is by Kafka's
// own admin tool against the hardened broker (SSL, mTLS, the authorizer):
// the store password comes from the password file through the
// DirectoryConfigProvider; the broker knows the client as User:<CN> — denied
// without an ACL, answered once an ACL for that principal allows it.
func TestRenderClientLiveBroker(t *testing.T) {
	k := testenv.KafkaForTest(t)
	ctx := context.Background()
	rc := brokerRequest(t, k, true)
	client := hostclient.InProcess(kafka{})
	defer client.Close()
	plan, err := client.Plan(ctx, rc)
	if err != nil || plan.Diagnostics.HasError() {
		t.Fatalf("plan: %v %v", err, plan.Diagnostics.Err())
	}
	if ar, err := client.Apply(ctx, rc, plan.PlanToken, false); err != nil || ar.Diagnostics.HasError() {
		t.Fatalf("apply: %v %v\n%s", err, ar.Diagnostics.Err(), testenvTail(k))
	}

	const name, password = "spark-etl", "client-store-pw-1"
	dir := t.TempDir()
	id := clientIdentityIn(name, dir)
	writeClientBundle(t, k.CA, id, password)
	r, err := client.RenderClient(ctx, rc, id)
	if err != nil || r.Diagnostics.HasError() || len(r.Diagnostics) != 0 {
		t.Fatalf("render client: %v %v", err, r.Diagnostics)
	}
	requireClientArtifacts(t, r, expectedClientSettings(k.Bootstrap, id))
	for _, a := range r.Artifacts {
		if strings.Contains(string(a.Content), password) {
			t.Errorf("%s holds the store password", a.Path)
		}
		if err := os.WriteFile(filepath.Join(dir, a.Path), a.Content, os.FileMode(a.Mode)); err != nil {
			t.Fatal(err)
		}
	}
	describe := func() (string, error) {
		defer func(start time.Time) {
			t.Logf("kafka-configs.sh --describe: %v", time.Since(start).Round(time.Millisecond))
		}(time.Now())
		return kafkaTool(t, k, "kafka.admin.ConfigCommand", "--bootstrap-server", k.Bootstrap, "--command-config", filepath.Join(dir, "client.properties"),
			"--describe", "--entity-type", "brokers", "--entity-name", "1")
	}
	// No ACL yet: the session is up (mutual TLS with the client's keystore),
	// and the authorizer, not the handshake, refuses.
	out, err := describe()
	if err == nil || !strings.Contains(out, "Cluster authorization failed") {
		t.Fatalf("describe without an ACL: %v\n%s", err, out)
	}

	admin, err := sarama.NewClusterAdmin([]string{k.Bootstrap}, saramaConfig(rc, true))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.CreateACLs([]*sarama.ResourceAcls{{Resource: sarama.Resource{ResourceType: sarama.AclResourceCluster, ResourceName: "kafka-cluster", ResourcePatternType: sarama.AclPatternLiteral},
		Acls: []*sarama.Acl{{Principal: "User:" + name, Host: "*", Operation: sarama.AclOperationDescribeConfigs, PermissionType: sarama.AclPermissionAllow}}}}); err != nil {
		t.Fatal(err)
	}
	// The authorizer learns the ACL from the metadata log: a moment later.
	for attempt := 0; ; attempt++ {
		out, err = describe()
		if err == nil || attempt == 4 {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil || !strings.Contains(out, "configs for broker 1 are") {
		t.Fatalf("describe as User:%s with its ACL: %v\n%s", name, err, out)
	}
}
