package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	vault "github.com/hashicorp/vault/api"
	"github.com/jackc/pgx/v5"

	"github.com/harden-dev/harden/testenv"
)

// Client identities end to end: harden issues spark-etl's certificate from
// Vault (key made here), renders its Kafka and PostgreSQL configuration and
// delivers the bundle to Vault KV v2; the client, with a token that has
// only its own harden-client-spark-etl policy, reads the bundle and
// connects to PostgreSQL (cert auth as spark-etl, verify-full, through the
// rendered libpq string) and to Kafka (mTLS); it cannot read another
// client's bundle. A forced renewal writes a new version with the new
// certificate; a second run renews nothing. A directory delivery gets
// 0600 files.
func TestClientIdentitiesDeliveredAndRenewed(t *testing.T) {
	dir := t.TempDir()
	pluginDir := filepath.Join(dir, "plugins")
	buildPlugins(t, pluginDir, "kafka", "postgres", "vaultpki")
	v := testenv.VaultForTest(t)
	pg := testenv.PostgresForTest(t)
	k := testenv.KafkaForTest(t)
	vc := v.Target()["connection"].(map[string]any)
	pgc, _ := json.Marshal(pg.Target()["connection"])
	kt := k.Target()
	kc, _ := json.Marshal(kt["connection"])
	ks, _ := json.Marshal(kt["spec"])
	install := filepath.Join(dir, "client-files")
	loaderDir := filepath.Join(dir, "delivered", "loader")
	policy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, []byte(fmt.Sprintf(`apiVersion: harden/v1
profile: intermediate
certificates:
  source: vault-pki
  vault: {target: vault, store_dir: %q}
mtls: {scope: [events]}
targets:
  - name: vault
    plugin: vaultpki
    connection: {address: %q, ca_file: %q, token_file: %q}
    spec: {pki: {client_names: [harden-admin]}}
  - name: warehouse-pg
    plugin: postgres
    certificate_names: [localhost]
    connection: %s
    spec: {hba: [{database: all, user: spark-etl, address: 127.0.0.1/32, method: cert}, {database: all, user: all, address: 127.0.0.1/32, method: scram-sha-256}]}
  - name: events
    plugin: kafka
    certificate_names: [localhost]
    connection: %s
    spec: %s
clients:
  - name: spark-etl
    targets: [events, warehouse-pg]
    deliver: {vault_kv: secret/data/clients/spark-etl}
    install_dir: %q
  - name: loader
    targets: [warehouse-pg]
    deliver: {dir: %q}
`, filepath.Join(dir, "certs"), vc["address"], vc["ca_file"], vc["token_file"], pgc, kc, ks, install, loaderDir)), 0o600)
	lock := filepath.Join(dir, "plugins.lock")
	run := cliRunner(t, pluginDir, lock)
	// The client's PostgreSQL role (cert auth maps the CN to it).
	admin, err := pgx.Connect(context.Background(), pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(context.Background(), `CREATE ROLE "spark-etl" LOGIN`); err != nil {
		t.Fatal(err)
	}
	admin.Close(context.Background())
	for _, args := range [][]string{{"plugins", "lock"}, {"apply", "-f", policy, "--target", "vault", "--yes"}, {"apply", "-f", policy, "--yes"}} {
		if r := run(args...); r.code != 0 {
			t.Fatalf("%v: %d\n%s\n%s", args, r.code, r.stdout, r.stderr)
		}
	}
	r := run("rotate", "-f", policy, "--yes", "--format", "json")
	var rep rotateJSON
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 0 {
		t.Fatalf("rotate (first delivery): %d %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	status := map[string]string{}
	for _, tr := range rep.Targets {
		status[tr.Name] = tr.Status
	}
	if status["spark-etl"] != "renewed" || status["loader"] != "renewed" || status["warehouse-pg"] != "not_due" || status["events"] != "not_due" {
		t.Fatalf("first rotate: %v\n%s", status, r.stdout)
	}

	// The client's own token: only its policy.
	root, err := v.Client()
	if err != nil {
		t.Fatal(err)
	}
	sec, err := root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"harden-client-spark-etl"}, NoDefaultPolicy: true, TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	own, _ := root.Clone()
	own.SetToken(sec.Auth.ClientToken)
	bundle := readBundle(t, own, "secret/data/clients/spark-etl")
	if _, err := own.Logical().Read("secret/data/clients/loader"); err == nil {
		// loader is delivered to a directory: nothing there, but the read
		// must be refused, not merely empty.
		t.Error("the spark-etl token may read another path")
	}
	if _, err := own.Logical().Write("secret/data/clients/spark-etl", map[string]any{"data": map[string]any{"x": "y"}}); err == nil {
		t.Error("the client's token may write its bundle")
	}
	os.MkdirAll(install, 0o700)
	for name, content := range bundle.files {
		p := filepath.Join(install, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"tls.crt", "tls.key", "ca.crt", "keystore.p12", "truststore.p12", "keystore.password", "warehouse-pg/libpq.conf", "events/client.properties"} {
		if _, ok := bundle.files[f]; !ok {
			t.Errorf("bundle lacks %s (has %v)", f, keys(bundle.files))
		}
	}
	firstSerial := bundle.meta["serial"]
	if firstSerial == "" || bundle.meta["not_after"] == "" || bundle.meta["renew_at"] == "" || bundle.meta["issuer"] == "" {
		t.Errorf("custom_metadata %v", bundle.meta)
	}
	// PostgreSQL: cert auth as spark-etl through the rendered libpq string.
	conn, err := pgx.Connect(context.Background(), strings.TrimSpace(string(bundle.files["warehouse-pg/libpq.conf"])))
	if err != nil {
		t.Fatalf("PostgreSQL with the delivered bundle: %v", err)
	}
	var user string
	conn.QueryRow(context.Background(), "SELECT current_user").Scan(&user)
	conn.Close(context.Background())
	if user != "spark-etl" {
		t.Errorf("logged in as %q", user)
	}
	// Kafka: an mTLS session with the delivered certificate and CA.
	pair, err := tls.X509KeyPair(bundle.files["tls.crt"], bundle.files["tls.key"])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(bundle.files["ca.crt"])
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V4_0_0_0
	cfg.Net.TLS.Enable, cfg.Net.TLS.Config = true, &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}
	kcl, err := sarama.NewClient([]string{k.Bootstrap}, cfg)
	if err != nil {
		t.Fatalf("Kafka with the delivered bundle: %v", err)
	}
	if len(kcl.Brokers()) == 0 {
		t.Error("Kafka: no broker in the metadata answer")
	}
	kcl.Close()
	// Directory delivery.
	for _, f := range []string{"tls.crt", "tls.key", "keystore.p12", "warehouse-pg/libpq.conf"} {
		fi, err := os.Stat(filepath.Join(loaderDir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("delivered %s: %v %v", f, err, fi)
		}
	}
	if fi, err := os.Stat(loaderDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("delivery dir: %v %v", err, fi)
	}
	// The inventory lists both identities as harden holds them, and what
	// Vault stores for spark-etl.
	inv := run("inventory", "-f", policy, "--format", "json")
	var ir struct {
		Items []struct {
			Kind, Target, Name, Tier string
			Certificate              *struct{ Serial string } `json:"certificate"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(inv.stdout), &ir); err != nil {
		t.Fatalf("inventory: %v\n%s\n%s", err, inv.stdout, inv.stderr)
	}
	seen := map[string]bool{}
	for _, it := range ir.Items {
		if it.Kind == "client_identity" && it.Tier == "ok" && it.Certificate != nil {
			seen["held "+it.Target] = true
		}
		if it.Kind == "stored_certificate" && it.Name == "client/spark-etl" && it.Tier == "ok" {
			seen["stored spark-etl"] = true
		}
	}
	if !seen["held spark-etl"] || !seen["held loader"] || !seen["stored spark-etl"] {
		t.Errorf("inventory lacks the client identities (%v):\n%s", seen, inv.stdout)
	}
	// Nothing due: nothing renewed, no new version.
	if r := run("rotate", "-f", policy, "--yes", "--client", "spark-etl"); r.code != 0 || !strings.Contains(r.stdout, "spark-etl (client): not due") {
		t.Errorf("second rotate: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if again := readBundle(t, own, "secret/data/clients/spark-etl"); again.version != bundle.version {
		t.Errorf("a rotate with nothing due wrote version %d", again.version)
	}
	// Forced renewal: a new version with the new certificate replaces it.
	if r := run("rotate", "-f", policy, "--yes", "--client", "spark-etl", "--force-renew"); r.code != 0 || !strings.Contains(r.stdout, "spark-etl (client): renewed") {
		t.Fatalf("forced client renewal: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	renewed := readBundle(t, own, "secret/data/clients/spark-etl")
	if renewed.version != bundle.version+1 || renewed.meta["serial"] == firstSerial || string(renewed.files["tls.crt"]) == string(bundle.files["tls.crt"]) {
		t.Errorf("renewed bundle: version %d (was %d), serial %s (was %s)", renewed.version, bundle.version, renewed.meta["serial"], firstSerial)
	}
	if token, _ := os.ReadFile(vc["token_file"].(string)); strings.Contains(r.stdout+r.stderr, strings.TrimSpace(string(token))) || strings.Contains(r.stdout+r.stderr, "PRIVATE KEY") {
		t.Error("rotate's output holds the Vault token or a key")
	}
}

type kvBundle struct {
	files   map[string][]byte
	meta    map[string]string
	version int
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// readBundle reads a client bundle as the client would: KV v2 data (values
// ending in .base64 are binary files) and custom_metadata.
func readBundle(t *testing.T, cl *vault.Client, path string) kvBundle {
	t.Helper()
	var sec *vault.Secret
	var err error
	for range 20 {
		if sec, err = cl.Logical().Read(path); err == nil && sec != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || sec == nil {
		t.Fatalf("read %s with the client's token: %v", path, err)
	}
	b := kvBundle{files: map[string][]byte{}, meta: map[string]string{}}
	data, _ := sec.Data["data"].(map[string]any)
	for k, v := range data {
		s, _ := v.(string)
		if name, ok := strings.CutSuffix(k, ".base64"); ok {
			raw, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			b.files[name] = raw
			continue
		}
		b.files[k] = []byte(s)
	}
	md, _ := sec.Data["metadata"].(map[string]any)
	if cm, ok := md["custom_metadata"].(map[string]any); ok {
		for k, v := range cm {
			b.meta[k], _ = v.(string)
		}
	}
	if n, ok := md["version"].(json.Number); ok {
		i, _ := n.Int64()
		b.version = int(i)
	}
	return b
}
