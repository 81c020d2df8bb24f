package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5"

	"github.com/harden-dev/harden/testenv"
)

// Leaf rotation of PostgreSQL and a 3-broker Kafka cluster with Vault PKI
// as the source, through the real binary's code path (cli.Run), while a
// producer (acks=all) and a consumer run over mTLS: the brokers take the
// new certificate through KIP-226 on their SSL listeners, the gate sees it
// in fresh handshakes on every listener (the controller listeners keep the
// old one until their restart, which rotate reports), nothing is sent in
// vain and nothing is lost; then apply performs the pending restarts and
// every listener serves the new certificate.
func TestRotateKafkaClusterAndPostgres(t *testing.T) {
	dir := t.TempDir()
	pluginDir := filepath.Join(dir, "plugins")
	buildPlugins(t, pluginDir, "kafka", "postgres", "vaultpki")
	v := testenv.VaultForTest(t)
	pg := testenv.PostgresForTest(t)
	c := testenv.KafkaClusterForTest(t, 3)
	var brokers, specs, sslAddrs []string
	for _, k := range c.Nodes {
		p1, _ := testenv.FreePort()
		p2, _ := testenv.FreePort()
		ssl, ctl := net.JoinHostPort("127.0.0.1", strconv.Itoa(p1)), net.JoinHostPort("127.0.0.1", strconv.Itoa(p2))
		sslAddrs = append(sslAddrs, ssl)
		rc, _ := json.Marshal(k.RestartCommand())
		brokers = append(brokers, fmt.Sprintf("{node_id: %d, config_file: %q, restart_command: %s}", k.NodeID, k.Properties, rc))
		specs = append(specs, fmt.Sprintf("{node_id: %d, listeners: [{name: SSL, address: %q}, {name: CONTROLLER_SSL, address: %q, controller: true}]}", k.NodeID, ssl, ctl))
	}
	vc := v.Target()["connection"].(map[string]any)
	pgc, _ := json.Marshal(pg.Target()["connection"])
	store := filepath.Join(dir, "certs")
	policy := filepath.Join(dir, "policy.yaml")
	writePolicy := func(phase string, bootstrap []string) {
		bs, _ := json.Marshal(bootstrap)
		os.WriteFile(policy, []byte(fmt.Sprintf(`apiVersion: harden/v1
profile: intermediate
certificates:
  source: vault-pki
  vault: {target: vault, store_dir: %q}
  rotation: {max_lifetime: 90d, renew_before: 30d, alert_at: [30d, 14d, 7d]}
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
  - name: events
    plugin: kafka
    certificate_names: [localhost]
    connection: {bootstrap: %s, brokers: [%s]}
    spec: {brokers: [%s], migration: {phase: %s}}
`, store, vc["address"], vc["ca_file"], vc["token_file"], pgc, bs, strings.Join(brokers, ", "), strings.Join(specs, ", "), phase)), 0o600)
	}
	lock := filepath.Join(dir, "plugins.lock")
	run := cliRunner(t, pluginDir, lock)
	writePolicy("add-tls", c.Bootstrap)
	mustRun := func(args ...string) result {
		t.Helper()
		r := run(args...)
		if r.code != 0 {
			t.Fatalf("%v: %d\n%s\n%s", args, r.code, r.stdout, r.stderr)
		}
		return r
	}
	mustRun("plugins", "lock")
	mustRun("apply", "-f", policy, "--target", "vault", "--yes")
	mustRun("apply", "-f", policy, "--target", "warehouse-pg", "--yes")
	for _, phase := range []string{"add-tls", "switch", "tls-only"} {
		start := time.Now()
		writePolicy(phase, c.Bootstrap)
		if phase == "tls-only" {
			writePolicy(phase, sslAddrs)
		}
		mustRun("apply", "-f", policy, "--target", "events", "--yes")
		t.Logf("phase %s applied in %v", phase, time.Since(start).Round(time.Millisecond))
	}
	writePolicy("tls-only", sslAddrs)

	// Clients over mTLS with harden's admin identity, trusting the Vault root.
	vcl, err := v.Client()
	if err != nil {
		t.Fatal(err)
	}
	root, err := vcl.Logical().Read("pki/cert/ca")
	if err != nil || root == nil {
		t.Fatalf("Vault root: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(root.Data["certificate"].(string)))
	pair, err := tls.LoadX509KeyPair(filepath.Join(store, "events", "client.pem"), filepath.Join(store, "events", "client-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V4_0_0_0
	cfg.Net.TLS.Enable, cfg.Net.TLS.Config = true, &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	admin, err := sarama.NewClusterAdmin(sslAddrs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateTopic("rotation", &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 3}, false); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	var next atomic.Int64
	load := testenv.StartKafkaLoad(t, sslAddrs, cfg, "rotation", &next, []int64{sarama.OffsetOldest, sarama.OffsetOldest, sarama.OffsetOldest})
	time.Sleep(time.Second)

	start := time.Now()
	r := run("rotate", "-f", policy, "--target", "warehouse-pg", "--target", "events", "--yes", "--force-renew", "--format", "json")
	took := time.Since(start)
	time.Sleep(2 * time.Second)
	offsets := load.Finish()
	acked, missing := load.Counts()
	t.Logf("leaf rotation of PostgreSQL + 3 brokers: %v; during it %d messages acknowledged, %d failed sends, %d lost", took.Round(time.Millisecond), acked, load.Failed.Load(), missing)
	if r.code != 0 {
		t.Fatalf("rotate: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var rep struct {
		Targets []struct {
			Name, Status, Gate string
			Pending            []string `json:"restart_pending"`
			Duration           float64  `json:"duration_ms"`
			Steps              []struct {
				Step     string  `json:"step"`
				Duration float64 `json:"duration_ms"`
			} `json:"steps"`
		} `json:"targets"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	for _, tr := range rep.Targets {
		t.Logf("%s: %s in %.0f ms; gate: %s; restart pending: %v; steps: %+v", tr.Name, tr.Status, tr.Duration, tr.Gate, tr.Pending, tr.Steps)
		if tr.Status != "renewed" {
			t.Errorf("%s: %s\n%s", tr.Name, tr.Status, r.stdout)
		}
	}
	if len(rep.Targets) != 2 || !strings.Contains(rep.Targets[1].Gate, "on 6 listener(s)") || len(rep.Targets[1].Pending) != 3 {
		t.Errorf("kafka gate: want 6 listeners seen, the 3 controller listeners pending a restart:\n%s", r.stdout)
	}
	if load.Failed.Load() != 0 || missing != 0 || acked == 0 {
		t.Errorf("clients during the rotation: %d acknowledged, %d failed sends, %d lost", acked, load.Failed.Load(), missing)
	}
	// The target is 30 s on 2 cores (issue 14); measured 10.8 s idle and
	// 29.4 s with other test packages running, so this is reported, and
	// the benchmark measures it.
	if took > 30*time.Second {
		t.Logf("NOTE: leaf rotation took %v, above the 30 s target", took)
	}
	// The restarts the controller listeners wait for: apply does them, then
	// nothing is left and verify passes.
	mustRun("apply", "-f", policy, "--target", "events", "--yes")
	if r := run("plan", "-f", policy, "--target", "events", "--detailed-exitcode"); r.code != 0 {
		t.Errorf("plan after the restarts: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := run("rotate", "-f", policy, "--target", "events", "--target", "warehouse-pg", "--yes"); r.code != 0 || strings.Count(r.stdout, "not due") != 2 {
		t.Errorf("second rotate: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// The staged CA rotation of the same cluster and PostgreSQL, with the
	// clients running: they take the new bundle between phase trust and
	// the rest (--stop-after trust), as clients outside harden's delivery
	// would, and load harden's client certificate from the store at every
	// handshake (it is re-issued from the new CA in phase reissue).
	var roots atomic.Pointer[x509.CertPool]
	roots.Store(pool)
	clientCert := func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		for range 5 {
			c, err := tls.LoadX509KeyPair(filepath.Join(store, "events", "client.pem"), filepath.Join(store, "events", "client-key.pem"))
			if err == nil {
				return &c, nil
			}
			time.Sleep(10 * time.Millisecond)
		}
		return nil, fmt.Errorf("no client pair")
	}
	caCfg := sarama.NewConfig()
	caCfg.Version = sarama.V4_0_0_0
	caCfg.Net.TLS.Enable = true
	caCfg.Net.TLS.Config = &tls.Config{MinVersion: tls.VersionTLS12, GetClientCertificate: clientCert,
		// The truststore this client holds now (verified in full below:
		// chain, name, time — only the pool is swapped).
		InsecureSkipVerify: true, //nolint:gosec // VerifyConnection verifies
		VerifyConnection: func(cs tls.ConnectionState) error {
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots.Load(), Intermediates: inter, DNSName: "127.0.0.1"})
			return err
		}}
	// PostgreSQL clients: verify-full against the root file they re-read.
	rootFile := filepath.Join(dir, "pg-roots.pem")
	os.WriteFile(rootFile, []byte(root.Data["certificate"].(string)+"\n"), 0o644)
	var pgOK, pgFailed atomic.Int64
	stopPG := make(chan struct{})
	pgDone := make(chan struct{})
	pgPass, _ := os.ReadFile(pg.PasswordFile)
	go func() {
		defer close(pgDone)
		dsn := fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=postgres sslmode=verify-full sslrootcert=%s connect_timeout=5", pg.Host, pg.Port, pg.User, strings.TrimSpace(string(pgPass)), rootFile)
		for {
			select {
			case <-stopPG:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			conn, err := pgx.Connect(ctx, dsn)
			if err == nil {
				err = conn.Ping(ctx)
				conn.Close(ctx)
			}
			cancel()
			if err != nil {
				pgFailed.Add(1)
				t.Logf("psql client: %v", err)
			} else {
				pgOK.Add(1)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	caLoad := testenv.StartKafkaLoad(t, sslAddrs, caCfg, "rotation", &next, offsets)
	caStart := time.Now()
	caRun := func(args ...string) string {
		t.Helper()
		r := run(append([]string{"rotate", "-f", policy, "--ca", "--yes", "--format", "json"}, args...)...)
		var rep caJSON
		json.Unmarshal([]byte(r.stdout), &rep)
		for _, tr := range rep.Targets {
			t.Logf("rotate --ca %v: %s %s: %s; gate: %s", args, tr.Name, tr.Status, tr.Message, tr.Gate)
		}
		if r.code != 0 {
			t.Fatalf("rotate --ca %v: %d: %s\n%s", args, r.code, rep.CA.Message, r.stderr)
		}
		return r.stdout
	}
	// The live proofs on every listener of the three brokers (6): a client
	// certificate of the next CA let in during trust, one of the old CA
	// refused after retire.
	if out := caRun("--stop-after", "trust"); !strings.Contains(out, "a client certificate from the next CA was accepted in 12 handshake(s)") {
		t.Errorf("phase trust without the live proof on all 6 Kafka listeners:\n%s", out)
	}
	var st struct {
		Next string `json:"next_root_pem"`
	}
	json.Unmarshal(mustRead(t, filepath.Join(store, "ca-rotation.json")), &st)
	both := pool.Clone()
	both.AppendCertsFromPEM([]byte(st.Next))
	roots.Store(both)
	os.WriteFile(rootFile, []byte(root.Data["certificate"].(string)+"\n"+st.Next+"\n"), 0o644)
	if out := caRun(); !strings.Contains(out, "a client certificate from the current CA was refused in 12 handshake(s)") {
		t.Errorf("phase retire without the live refusal on all 6 Kafka listeners:\n%s", out)
	}
	caTook := time.Since(caStart)
	time.Sleep(2 * time.Second)
	close(stopPG)
	<-pgDone
	caLoad.Finish()
	acked, missing = caLoad.Counts()
	t.Logf("staged CA rotation of PostgreSQL + 3 brokers: %v; Kafka: %d acknowledged, %d failed sends, %d lost; PostgreSQL: %d connections, %d failed",
		caTook.Round(time.Millisecond), acked, caLoad.Failed.Load(), missing, pgOK.Load(), pgFailed.Load())
	if caLoad.Failed.Load() != 0 || missing != 0 || acked == 0 || pgFailed.Load() != 0 || pgOK.Load() == 0 {
		t.Errorf("clients during the CA rotation: Kafka %d acknowledged, %d failed sends, %d lost; PostgreSQL %d ok, %d failed", acked, caLoad.Failed.Load(), missing, pgOK.Load(), pgFailed.Load())
	}
	if r := run("plan", "-f", policy, "--detailed-exitcode"); r.code != 0 {
		t.Errorf("plan after the CA rotation: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
