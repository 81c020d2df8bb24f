package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/sdktest"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// TestMain keeps this package's apply journals in a temporary state
// directory.
func TestMain(m *testing.M) { sdktest.MainWithStateDir(m) }

// redisServer is a redis-server this test started: 127.0.0.1 on a free
// port, a Unix socket and its redis.conf in a temporary directory. The
// module must not import harden's testenv, so the helper is here.
type redisServer struct {
	t        *testing.T
	dir      string
	conf     string
	sock     string
	port     int
	tlsPort  int
	password string
	cmd      *exec.Cmd
	env      []string
}

// startRedis starts redis-server in its "before" state: plaintext only
// (extra lines go into redis.conf). Under CI=true a missing redis-server
// fails the test; elsewhere it skips.
func startRedis(t *testing.T, password string, extra ...string) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server not found (make setup installs it): %v", err)
		}
		t.Skipf("redis-server not found: %v", err)
	}
	dir := t.TempDir()
	s := &redisServer{t: t, dir: dir, conf: filepath.Join(dir, "redis.conf"), sock: filepath.Join(dir, "redis.sock"),
		port: freePort(t), tlsPort: freePort(t), password: password}
	lines := []string{"bind 127.0.0.1", "port " + strconv.Itoa(s.port), "unixsocket " + s.sock, "unixsocketperm 700",
		`save ""`, "appendonly no", "dir " + dir, "logfile " + filepath.Join(dir, "redis.log"), "daemonize no", "protected-mode yes"}
	if password != "" {
		lines = append(lines, "requirepass "+password)
	}
	lines = append(lines, extra...)
	if err := os.WriteFile(s.conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start(bin)
	t.Cleanup(s.stop)
	return s
}

func (s *redisServer) start(bin string) {
	s.t.Helper()
	s.cmd = exec.Command(bin, s.conf)
	s.cmd.Env = append(os.Environ(), s.env...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("unix", s.sock); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			s.t.Fatalf("redis-server did not come up on %s:\n%s", s.sock, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *redisServer) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
	os.Remove(s.sock)
}

// restart stops redis and starts it again from its (rewritten) redis.conf
// with env (e.g. OPENSSL_CONF).
func (s *redisServer) restart(env ...string) {
	s.t.Helper()
	s.stop()
	s.env = env
	bin, _ := exec.LookPath("redis-server")
	s.start(bin)
}

// cli runs one command over the Unix socket (logged in) and returns the
// reply.
func (s *redisServer) cli(args ...string) (reply, error) {
	s.t.Helper()
	nc, err := net.Dial("unix", s.sock)
	if err != nil {
		s.t.Fatal(err)
	}
	c := &conn{nc: nc, r: bufio.NewReader(nc), via: "test socket", secure: true}
	defer c.Close()
	ctx := context.Background()
	if s.password != "" {
		if _, err := c.do(ctx, "AUTH", s.password); err != nil {
			s.t.Fatal(err)
		}
	}
	return c.do(ctx, args...)
}

func (s *redisServer) config(name string) string {
	s.t.Helper()
	v, err := s.cli("CONFIG", "GET", name)
	if err != nil {
		s.t.Fatal(err)
	}
	m, err := configPairs(v)
	if err != nil {
		s.t.Fatal(err)
	}
	return m[name]
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// pki is a test CA with a server certificate for 127.0.0.1/localhost and a
// client certificate for harden.
type pki struct {
	caPEM, serverPEM, serverKey, clientPEM, clientKey []byte
	// issue makes another certificate from the same CA (serial, names:
	// DNS names; a server certificate when server is set).
	issue func(serial int64, cn string, dns []string, server bool) (certPEM, keyPEM []byte)
}

func newPKI(t *testing.T, cn string) pki {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(30 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, name string, dns []string, server bool) ([]byte, []byte) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		usage := x509.ExtKeyUsageClientAuth
		if server {
			usage = x509.ExtKeyUsageServerAuth
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
			NotAfter: time.Now().Add(20 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, DNSNames: dns}
		pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
		ski := sha256.Sum256(pub)
		tmpl.SubjectKeyId = ski[:20]
		if server && len(dns) == 1 && dns[0] == "localhost" {
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kd, _ := x509.MarshalPKCS8PrivateKey(key)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
	}
	p := pki{caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), issue: issue}
	p.serverPEM, p.serverKey = issue(2, "localhost", []string{"localhost"}, true)
	p.clientPEM, p.clientKey = issue(3, "harden", nil, false)
	return p
}

// request is a request for s with the intermediate profile; mtls puts the
// target in the policy's mTLS scope (harden's client certificate given).
func (s *redisServer) request(t *testing.T, p pki, mtls bool, connExtra, specExtra map[string]any) sdk.RequestContext {
	t.Helper()
	certDir := filepath.Join(s.dir, "tls")
	if err := os.MkdirAll(certDir, 0o750); err != nil {
		t.Fatal(err)
	}
	conn := map[string]any{"address": net.JoinHostPort("127.0.0.1", strconv.Itoa(s.tlsPort)),
		"plaintext_address": net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)), "unix_socket": s.sock}
	if s.password != "" {
		conn["password_env"] = "REDIS_PASSWORD"
	}
	spec := map[string]any{"cert_dir": certDir, "config_file": s.conf}
	for k, v := range connExtra {
		conn[k] = v
	}
	for k, v := range specExtra {
		spec[k] = v
	}
	cj, _ := json.Marshal(conn)
	sj, _ := json.Marshal(spec)
	var secrets map[string][]byte
	if s.password != "" {
		secrets = map[string][]byte{"password": []byte(s.password)}
	}
	policy := sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate(), CertificateSource: "files",
		Rotation: sdk.Rotation{RenewBefore: 7 * 24 * time.Hour},
		Targets:  []sdk.TargetRef{{Name: "cache", Plugin: "redis", MTLS: mtls}}}
	certs := sdk.Certificates{ChainPEM: p.serverPEM, KeyPEM: p.serverKey, CABundlePEM: p.caPEM}
	if mtls {
		policy.MTLSScope = []string{"cache"}
		certs.ClientChainPEM, certs.ClientKeyPEM = p.clientPEM, p.clientKey
	}
	return sdk.RequestContext{Policy: policy, Target: sdk.NewTarget("cache", cj, sj, secrets), Certificates: certs}
}

func byID(cs []sdk.Check) map[string]sdk.Check {
	out := map[string]sdk.Check{}
	for _, c := range cs {
		if _, ok := out[c.ID]; !ok {
			out[c.ID] = c
		}
	}
	return out
}

func summarize(cs []sdk.Check) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "  %s %s [%s]: %s\n", c.Status, c.ID, c.Subject, c.Evidence)
	}
	return b.String()
}
