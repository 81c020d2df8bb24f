package testenv

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/harden-dev/harden/shared/tlsprofile"
)

// SeaweedFS is an S3-compatible object store (`weed mini`: master, volume,
// filer and S3 gateway in one process) on 127.0.0.1 with an HTTP and an
// HTTPS S3 port, an admin and a bucket-limited identity, and a local KMS for
// SSE-KMS. It starts unhardened: bucket "lake" without default encryption
// or policy — the "before" state the objectstore plugin hardens.
type SeaweedFS struct {
	Binary string
	// HTTPS and HTTP are the S3 endpoints (https://…, http://…).
	HTTPS, HTTP string
	DataDir     string
	Base        string
	LogFile     string
	// AccessKeyFile/SecretKeyFile: the admin identity; UserKeyFile and
	// UserSecretFile: a user limited to the bucket.
	AccessKeyFile, SecretKeyFile string
	UserKeyFile, UserSecretFile  string
	CertFile, KeyFile            string
	Bucket                       string
	// KMSKeyID is a key of the local KMS for SSE-KMS.
	KMSKeyID string

	proc process
}

// Name implements Service.
func (s *SeaweedFS) Name() string { return "s3" }

// SeaweedFSBinary finds the cached build.
func SeaweedFSBinary() (string, error) {
	return cachedBuild(seaweedfsTool)
}

func randomKey(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Start writes the identities and starts weed mini with every port free
// and random; it waits until the HTTPS endpoint answers and the bucket
// exists.
func (s *SeaweedFS) Start(ctx context.Context, env *Env) error {
	var err error
	if s.Binary == "" {
		if s.Binary, err = SeaweedFSBinary(); err != nil {
			return err
		}
	}
	if s.Base, err = os.MkdirTemp("", "harden-seaweedfs-"); err != nil {
		return err
	}
	s.Bucket, s.KMSKeyID = "lake", "lake-sse"
	s.DataDir = filepath.Join(s.Base, "data")
	if err := os.MkdirAll(s.DataDir, 0o700); err != nil {
		return err
	}
	if s.CertFile, s.KeyFile, err = env.CA.Issue("seaweedfs", false, "127.0.0.1", "localhost"); err != nil {
		return err
	}
	adminKey, adminSecret, userKey, userSecret := "AKHARDEN"+randomKey(6), randomKey(20), "AKUSER"+randomKey(6), randomKey(20)
	for f, v := range map[*string]string{&s.AccessKeyFile: adminKey, &s.SecretKeyFile: adminSecret, &s.UserKeyFile: userKey, &s.UserSecretFile: userSecret} {
		name := map[string]string{adminKey: "s3-access-key", adminSecret: "s3-secret-key", userKey: "s3-user-access-key", userSecret: "s3-user-secret-key"}[v]
		*f = filepath.Join(env.Dir, name)
		if err := os.WriteFile(*f, []byte(v), 0o600); err != nil {
			return err
		}
	}
	conf := map[string]any{
		"identities": []any{
			map[string]any{"name": "harden-admin", "credentials": []any{map[string]any{"accessKey": adminKey, "secretKey": adminSecret}},
				"actions": []string{"Admin", "Read", "Write", "List", "Tagging"}},
			map[string]any{"name": "lake-user", "credentials": []any{map[string]any{"accessKey": userKey, "secretKey": userSecret}},
				"actions": []string{"Read:" + s.Bucket, "Write:" + s.Bucket, "List:" + s.Bucket}},
		},
		"kms": map[string]any{"default_provider": "local-dev", "providers": map[string]any{"local-dev": map[string]any{"type": "local", "enableOnDemandCreate": true}}},
	}
	confFile := filepath.Join(s.Base, "s3.json")
	b, _ := json.MarshalIndent(conf, "", "  ")
	if err := os.WriteFile(confFile, b, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(s.Base, "security.toml"), []byte(weedSecurityTOML()), 0o600); err != nil {
		return err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if lastErr = s.startOnce(ctx, confFile, adminKey, adminSecret); lastErr == nil {
			return nil
		}
		s.proc.stop(10 * time.Second)
	}
	s.Stop()
	return lastErr
}

func (s *SeaweedFS) startOnce(ctx context.Context, confFile, ak, sk string) error {
	names := []string{"master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
		"s3.port", "s3.port.grpc", "s3.port.https", "admin.port", "admin.port.grpc", "metricsPort"}
	ports := map[string]int{}
	for _, n := range names {
		p, err := FreePort()
		if err != nil {
			return err
		}
		ports[n] = p
	}
	s.HTTP = "http://127.0.0.1:" + strconv.Itoa(ports["s3.port"])
	s.HTTPS = "https://127.0.0.1:" + strconv.Itoa(ports["s3.port.https"])
	s.LogFile = filepath.Join(s.Base, "weed.log")
	args := []string{"mini", "-dir=" + s.DataDir, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-master.telemetry=false", "-webdav=false", "-admin.ui=false", "-admin.port.legacy=0", "-s3.port.iceberg=0", "-s3.port.lance=0",
		"-s3.cert.file=" + s.CertFile, "-s3.key.file=" + s.KeyFile, "-s3.config=" + confFile}
	for _, n := range names {
		args = append(args, fmt.Sprintf("-%s=%d", n, ports[n]))
	}
	logf, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(s.Binary, args...)
	// weed reads security.toml from its working directory (viper's "."
	// search path, weed/util/config.go LoadConfiguration).
	cmd.Dir = s.Base
	// weed has no TLS group setting: Go 1.26's default groups add
	// SecP256r1MLKEM768 and SecP384r1MLKEM1024, outside the profile, which
	// only this operator-level GODEBUG removes (it cannot remove secp521r1,
	// Go's last default group outside the profile).
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + s.Base, "GODEBUG=tlssecpmlkem=0"}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := s.proc.start(cmd); err != nil {
		return fmt.Errorf("start weed: %w", err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		if err := s.makeBucket(ak, sk); err == nil {
			return nil
		}
		select {
		case <-s.proc.exited:
			return fmt.Errorf("weed exited during start-up: %s", tail(s.LogFile, 15))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("weed's S3 gateway did not come up within 90 s: %s", tail(s.LogFile, 15))
		}
	}
}

// weedSecurityTOML is weed's security.toml: the [tls] settings weed applies
// to its HTTPS listeners, S3 included (weed/security/tls.go FixTlsConfig):
// TLS 1.2 and up, and the intermediate profile's TLS 1.2 suites by their
// Go names (all six are ECDHE AEAD suites Go implements; without the list
// Go also offers ECDHE CBC suites). TLS 1.3 suites are not configurable in
// Go and are the profile's already.
func weedSecurityTOML() string {
	var names []string
	for _, id := range tlsprofile.Intermediate().TLS12Suites {
		names = append(names, tls.CipherSuiteName(id))
	}
	return "# Written by testenv: weed's TLS settings (the operator's part of hardening its S3 listener).\n" +
		"[tls]\nmin_version = \"TLS 1.2\"\ncipher_suites = \"" + strings.Join(names, ",") + "\"\n"
}

// makeBucket creates the bucket over HTTPS as the admin identity.
func (s *SeaweedFS) makeBucket(ak, sk string) error {
	cl, err := s.client(ak, sk)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if ok, err := cl.BucketExists(ctx, s.Bucket); err == nil && ok {
		return nil
	}
	return cl.MakeBucket(ctx, s.Bucket, minio.MakeBucketOptions{})
}

// Stop shuts SeaweedFS down and removes its files.
func (s *SeaweedFS) Stop() error {
	s.proc.stop(10 * time.Second)
	if s.Base != "" {
		return os.RemoveAll(s.Base)
	}
	return nil
}

// Info implements Service: the s3 entry of env.json (key files, no keys).
func (s *SeaweedFS) Info() any {
	return map[string]any{"https": s.HTTPS, "http": s.HTTP, "bucket": s.Bucket, "data_dir": s.DataDir, "log_file": s.LogFile,
		"access_key_file": s.AccessKeyFile, "secret_key_file": s.SecretKeyFile, "user_access_key_file": s.UserKeyFile, "user_secret_key_file": s.UserSecretFile,
		"kms_key_id": s.KMSKeyID}
}

// Target implements Service: the objectstore target of the generated policy.
func (s *SeaweedFS) Target() map[string]any {
	return map[string]any{"name": "lake", "plugin": "objectstore",
		"connection": map[string]any{"endpoint": s.HTTPS, "http_endpoint": s.HTTP, "ca_file": filepath.Join(filepath.Dir(s.CertFile), "ca.pem"), "data_dir": s.DataDir,
			"access_key_file": s.AccessKeyFile, "secret_key_file": s.SecretKeyFile},
		"spec": map[string]any{"bucket": s.Bucket, "sse": map[string]any{"algorithm": "aws:kms", "kms_key_id": s.KMSKeyID}, "sensitive_prefixes": []string{"pii/"},
			"backup_dir": filepath.Join(s.Base, "backups")}}
}

// SeaweedFSForTest starts SeaweedFS for one test and stops it at cleanup.
func SeaweedFSForTest(t testing.TB) *SeaweedFS {
	t.Helper()
	return startForTest(t, &SeaweedFS{})
}

// Client is an S3 client of the admin identity over HTTPS.
func (s *SeaweedFS) Client() (*minio.Client, error) {
	ak, err := os.ReadFile(s.AccessKeyFile)
	if err != nil {
		return nil, err
	}
	sk, err := os.ReadFile(s.SecretKeyFile)
	if err != nil {
		return nil, err
	}
	return s.client(strings.TrimSpace(string(ak)), strings.TrimSpace(string(sk)))
}

func (s *SeaweedFS) client(ak, sk string) (*minio.Client, error) {
	ca, err := os.ReadFile(filepath.Join(filepath.Dir(s.CertFile), "ca.pem"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return minio.New(strings.TrimPrefix(s.HTTPS, "https://"), &minio.Options{Creds: credentials.NewStaticV4(ak, sk, ""), Secure: true,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ResponseHeaderTimeout: 30 * time.Second, MaxIdleConnsPerHost: 32}})
}
