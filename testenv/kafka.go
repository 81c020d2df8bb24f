package testenv

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Kafka is a single-node Apache Kafka 4.x broker in KRaft mode (combined
// broker and controller) on 127.0.0.1, started with a PLAINTEXT listener —
// the "before" state the Kafka plugin hardens.
type Kafka struct {
	// Libs is the broker's classpath dir (scripts/kafka-maven.sh).
	Libs string
	// Version of the Kafka artifacts.
	Version string
	// Bootstrap is the PLAINTEXT listener, host:port.
	Bootstrap  string
	Controller string
	Base       string
	Properties string
	LogFile    string
	// CertFile/KeyFile: a broker certificate from the env's CA for the
	// policy (the broker starts without TLS); ClientCertFile/ClientKeyFile:
	// harden's admin client identity.
	CertFile, KeyFile             string
	ClientCertFile, ClientKeyFile string
	// CA issued them (tests issue rotated or foreign certificates from it).
	CA *CA
	// NodeID is the node's id in a cluster (KafkaClusterForTest); 1 alone.
	NodeID int

	proc process
	// restart: a loopback port that restarts the broker on request, the
	// operator's restart command of the generated policy.
	restartLn net.Listener
	restartMu sync.Mutex
}

// JVMArgsFile is the Java @argfile the broker is started with when it
// exists, as an operator's KAFKA_OPTS="@/etc/kafka/harden/jvm.args" would:
// harden apply writes the JVM-wide TLS settings (key-exchange groups) there.
func (k *Kafka) JVMArgsFile() string { return filepath.Join(k.Base, "harden", "jvm.args") }

// launch starts the broker process from server.properties as it is now.
func (k *Kafka) launch(java string, jvmArgs ...string) error {
	logf, err := os.OpenFile(k.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	args := append([]string{"-Xms256m", "-Xmx512m", "-XX:+UseSerialGC"}, jvmArgs...)
	if _, err := os.Stat(k.JVMArgsFile()); err == nil {
		args = append(args, "@"+k.JVMArgsFile())
	}
	args = append(args, "-cp", filepath.Join(k.Libs, "*"), "kafka.Kafka", k.Properties)
	cmd := exec.Command(java, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := k.proc.start(cmd); err != nil {
		return fmt.Errorf("start broker: %w", err)
	}
	return nil
}

// serveRestarts answers "restart" lines on a loopback port with "ok" once
// the restarted broker answers, or "error: ..." (the broker's log tail).
func (k *Kafka) serveRestarts() error {
	ln, err := serveRestarts(func(ctx context.Context) error { return k.Restart(ctx) })
	if err != nil {
		return err
	}
	k.restartLn = ln
	return nil
}

// RestartCommand is an operator's restart command for this broker (argv):
// it asks testenv to restart the broker and succeeds once it answers again.
func (k *Kafka) RestartCommand() []string { return restartCommand(k.restartLn) }

// Name implements Service.
func (k *Kafka) Name() string { return "kafka" }

var kafkaVersionRE = regexp.MustCompile(`<kafka.version>([^<]+)</kafka.version>`)

// KafkaLibs finds the cached broker classpath.
func KafkaLibs() (string, string, error) {
	m := kafkaVersionRE.FindSubmatch(kafkaPOM)
	if m == nil {
		return "", "", fmt.Errorf("testenv/kafka/pom.xml names no kafka.version")
	}
	version := string(m[1])
	dir := filepath.Join(CacheDir(), "testenv", "kafka-"+version)
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		return "", "", fmt.Errorf("the Apache Kafka %s broker jars are not installed; run scripts/kafka-maven.sh (make setup does)", version)
	}
	return filepath.Join(dir, "libs"), version, nil
}

// Start formats the KRaft storage and starts the broker; it blocks until
// the broker answers an ApiVersions request.
func (k *Kafka) Start(ctx context.Context, env *Env) error {
	var err error
	if k.Libs == "" {
		if k.Libs, k.Version, err = KafkaLibs(); err != nil {
			return err
		}
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return fmt.Errorf("java not found (Java 17 runs the broker): %w", err)
	}
	if k.Base, err = os.MkdirTemp("", "harden-kafka-"); err != nil {
		return err
	}
	k.CA = env.CA
	// The broker is a client of its own listeners (inter-broker,
	// controller): its certificate serves both ways, for mTLS.
	if k.CertFile, k.KeyFile, err = env.CA.IssuePeer("kafka", "127.0.0.1", "localhost"); err != nil {
		return err
	}
	if k.ClientCertFile, k.ClientKeyFile, err = env.CA.Issue("harden-admin", true); err != nil {
		return err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if lastErr = k.startOnce(ctx, java); lastErr == nil {
			return k.serveRestarts()
		}
		k.stopProcess()
		if !strings.Contains(lastErr.Error(), "Address already in use") {
			break
		}
	}
	k.Stop()
	return lastErr
}

func (k *Kafka) startOnce(ctx context.Context, java string) error {
	port, err := FreePort()
	if err != nil {
		return err
	}
	cport, err := FreePort()
	if err != nil {
		return err
	}
	k.Bootstrap, k.Controller = net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), net.JoinHostPort("127.0.0.1", strconv.Itoa(cport))
	id := make([]byte, 16)
	rand.Read(id)
	if err := k.writeAndFormat(ctx, java, base64.RawURLEncoding.EncodeToString(id), nil); err != nil {
		return err
	}
	if err := k.launch(java); err != nil {
		return err
	}
	return k.waitAnswer(ctx)
}

// quorum describes a multi-node KRaft cluster with static voters.
type quorum struct {
	voters string // controller.quorum.voters
	size   int
}

// writeAndFormat writes the node's PLAINTEXT server.properties and formats
// its KRaft storage (single node: standalone dynamic quorum; cluster:
// static voters).
func (k *Kafka) writeAndFormat(ctx context.Context, java, clusterID string, q *quorum) error {
	data := filepath.Join(k.Base, "data")
	os.RemoveAll(data)
	k.Properties, k.LogFile = filepath.Join(k.Base, "server.properties"), filepath.Join(k.Base, "kafka.log")
	node, quorumLine, rf, minISR := 1, "controller.quorum.bootstrap.servers="+k.Controller, 1, 1
	formatArgs := []string{"--standalone"}
	what := "single-node KRaft"
	if q != nil {
		node, quorumLine, rf, minISR = k.NodeID, "controller.quorum.voters="+q.voters, q.size, 2
		formatArgs = nil
		what = fmt.Sprintf("node %d of a %d-node KRaft cluster", k.NodeID, q.size)
	}
	props := fmt.Sprintf(`# Written by harden testenv: %[4]s, PLAINTEXT only (unhardened).
process.roles=broker,controller
node.id=%[5]d
%[6]s
listeners=PLAINTEXT://%[1]s,CONTROLLER://%[2]s
advertised.listeners=PLAINTEXT://%[1]s
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=%[3]s
offsets.topic.replication.factor=%[7]d
default.replication.factor=%[7]d
min.insync.replicas=%[8]d
transaction.state.log.replication.factor=%[7]d
transaction.state.log.min.isr=%[8]d
group.initial.rebalance.delay.ms=0
`, k.Bootstrap, k.Controller, data, what, node, quorumLine, rf, minISR)
	if err := os.WriteFile(k.Properties, []byte(props), 0o600); err != nil {
		return err
	}
	args := append([]string{"-cp", filepath.Join(k.Libs, "*"), "kafka.tools.StorageTool", "format"}, formatArgs...)
	// "--cluster-id=": a random id may start with "-", which argparse would
	// read as an option.
	format := exec.CommandContext(ctx, java, append(args, "--cluster-id="+clusterID, "-c", k.Properties)...)
	if out, err := format.CombinedOutput(); err != nil {
		return fmt.Errorf("format KRaft storage: %w\n%s", err, out)
	}
	return nil
}

// waitAnswer waits until the PLAINTEXT listener answers ApiVersions.
func (k *Kafka) waitAnswer(ctx context.Context) error {
	deadline := time.Now().Add(90 * time.Second)
	for {
		if kafkaAnswers(k.Bootstrap) {
			return nil
		}
		select {
		case <-k.proc.exited:
			return fmt.Errorf("broker exited during start-up: %s", tail(k.LogFile, 15))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("broker did not answer within 90 s: %s", tail(k.LogFile, 15))
		}
	}
}

// Restart stops the broker and starts it again from its server.properties
// as it is now (an apply may have changed it), without formatting storage.
// It is ready when a broker listener answers ApiVersions, in cleartext or
// over TLS.
func (k *Kafka) Restart(ctx context.Context, jvmArgs ...string) error {
	k.restartMu.Lock()
	defer k.restartMu.Unlock()
	k.stopProcess()
	java, err := exec.LookPath("java")
	if err != nil {
		return err
	}
	if err := k.launch(java, jvmArgs...); err != nil {
		return err
	}
	props, _ := os.ReadFile(k.Properties)
	var addrs []string
	for _, line := range strings.Split(string(props), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "advertised.listeners="); ok {
			for _, l := range strings.Split(v, ",") {
				if _, hp, ok := strings.Cut(l, "://"); ok {
					addrs = append(addrs, hp)
				}
			}
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		for _, a := range addrs {
			if kafkaAnswers(a) || k.kafkaAnswersTLS(a) {
				return nil
			}
		}
		select {
		case <-k.proc.exited:
			return fmt.Errorf("broker exited after restart: %s", tail(k.LogFile, 20))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("broker did not answer within 90 s of the restart: %s", tail(k.LogFile, 20))
		}
	}
}

// kafkaAnswersTLS: ApiVersions over TLS, presenting harden's client
// certificate so a broker that requires one (mTLS) answers too.
func (k *Kafka) kafkaAnswersTLS(addr string) bool {
	cfg := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // readiness only
	if pair, err := tls.LoadX509KeyPair(k.ClientCertFile, k.ClientKeyFile); err == nil {
		cfg.Certificates = []tls.Certificate{pair}
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, cfg)
	if err != nil {
		return false
	}
	if kafkaExchange(c) {
		return true
	}
	// A broker whose truststore does not hold testenv's CA (certificates
	// from Vault) refuses testenv's client certificate after the TLS 1.3
	// handshake: it is up and enforcing mTLS, which is ready.
	c2, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, cfg)
	if err != nil {
		return false
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(2 * time.Second))
	c2.Write([]byte{0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 7, 0, 0})
	_, err = c2.Read(make([]byte, 8))
	var alert tls.AlertError
	return errors.As(err, &alert) || strings.Contains(fmt.Sprint(err), "certificate")
}

// kafkaAnswers sends ApiVersions v0 and checks the correlation id.
func kafkaAnswers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	return kafkaExchange(c)
}

func kafkaExchange(c net.Conn) bool {
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	req := []byte{0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 7, 0, 0}
	if _, err := c.Write(req); err != nil {
		return false
	}
	hdr := make([]byte, 8)
	if _, err := c.Read(hdr); err != nil {
		return false
	}
	return hdr[4] == 0 && hdr[5] == 0 && hdr[6] == 0 && hdr[7] == 7
}

func tail(file string, n int) string {
	data, _ := os.ReadFile(file)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (k *Kafka) stopProcess() { k.proc.stop(20 * time.Second) }

// Stop shuts the broker down and removes its files.
func (k *Kafka) Stop() error {
	if k.restartLn != nil {
		k.restartLn.Close()
	}
	k.restartMu.Lock()
	defer k.restartMu.Unlock()
	k.stopProcess()
	if k.Base != "" {
		return os.RemoveAll(k.Base)
	}
	return nil
}

// Info implements Service: the kafka entry of env.json.
func (k *Kafka) Info() any {
	return map[string]any{"bootstrap": k.Bootstrap, "controller": k.Controller, "config_file": k.Properties, "log_file": k.LogFile,
		"version": k.Version, "cert_file": k.CertFile, "key_file": k.KeyFile}
}

// Target implements Service: the kafka target of the generated policy.
func (k *Kafka) Target() map[string]any {
	// mtls: the generated policy puts the broker in the mTLS scope (clients
	// need a certificate from the policy CA; the authorizer denies by default).
	return map[string]any{"name": "events", "plugin": "kafka", "mtls": true,
		"connection": map[string]any{"bootstrap": []string{k.Bootstrap}, "config_file": k.Properties, "restart_command": k.RestartCommand()},
		// After hardening the PLAINTEXT port serves SSL and the controller
		// port SSL too.
		"spec":        map[string]any{"listeners": []map[string]any{{"name": "SSL", "address": k.Bootstrap}, {"name": "CONTROLLER", "address": k.Controller, "controller": true}}},
		"certificate": map[string]any{"cert_file": k.CertFile, "key_file": k.KeyFile, "client_cert_file": k.ClientCertFile, "client_key_file": k.ClientKeyFile}}
}

// KafkaForTest starts a broker for one test and stops it at cleanup.
func KafkaForTest(t testing.TB) *Kafka {
	t.Helper()
	exclusiveKafka(t)
	return startForTest(t, &Kafka{})
}

// PID is the running broker's process id (tests tell a restart from a
// reload by it).
func (k *Kafka) PID() int {
	k.restartMu.Lock()
	defer k.restartMu.Unlock()
	return k.proc.pid()
}
