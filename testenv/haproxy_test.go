package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// s3Through is an S3 client of the admin identity whose requests go to
// addr over TLS (trusting the env's CA).
func s3Through(t *testing.T, h *HAProxy, addr string) *minio.Client {
	t.Helper()
	ca, err := os.ReadFile(h.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	ak, _ := os.ReadFile(h.S3.AccessKeyFile)
	sk, _ := os.ReadFile(h.S3.SecretKeyFile)
	cl, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(string(ak), string(sk), ""), Secure: true,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10},
			ResponseHeaderTimeout: 20 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// The "before" state: a TLS 1.0 front that publishes weed's plaintext S3
// port, reloadable through the master CLI, and a refused reload keeps the
// old worker serving.
func TestHAProxyPublishesS3(t *testing.T) {
	h := HAProxyForTest(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A TLS 1.0 client gets through (the weak "before" front) to the bucket.
	if ok, err := s3Through(t, h, h.Front).BucketExists(ctx, h.S3.Bucket); err != nil || !ok {
		t.Fatalf("bucket %s through the front %s (TLS 1.0): %v %v", h.S3.Bucket, h.Front, ok, err)
	}
	inc, err := os.ReadFile(h.IncludeFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(inc), "server s3 "+h.BackendPlaintext+"\n") || h.BackendPlaintext == h.BackendAddress {
		t.Fatalf("the before route does not forward to weed's plaintext port %s:\n%s", h.BackendPlaintext, inc)
	}
	if tg := h.Target(); tg["connection"].(map[string]any)["master_socket"] != h.MasterSocket {
		t.Fatalf("target without the master socket: %v", tg)
	}

	before, err := h.Processes()
	if err != nil || len(before.Current) != 1 {
		t.Fatalf("show proc: %+v %v", before, err)
	}
	if err := h.Reload(); err != nil {
		t.Fatal(err)
	}
	after, err := h.Processes()
	if err != nil || after.Reloads != before.Reloads+1 || len(after.Current) != 1 || slices.Contains(before.Workers, after.Current[0]) {
		t.Fatalf("after a reload: %+v (before %+v) %v", after, before, err)
	}

	// A configuration HAProxy refuses: the reload fails, the worker stays.
	if err := os.WriteFile(h.IncludeFile, append(inc, []byte("    not-a-keyword\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("reload of a broken configuration: %v", err)
	}
	failed, err := h.Processes()
	if err != nil || failed.FailedReloads != after.FailedReloads+1 || !slices.Equal(failed.Workers, after.Workers) {
		t.Fatalf("after a refused reload: %+v (before %+v) %v", failed, after, err)
	}
	if ok, err := s3Through(t, h, h.Front).BucketExists(ctx, h.S3.Bucket); err != nil || !ok {
		t.Fatalf("the old worker no longer serves after a refused reload: %v %v", ok, err)
	}
}

func TestHAProxyNeedsS3(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	err = (&HAProxy{}).Start(context.Background(), &Env{Dir: dir, CA: ca})
	if err == nil || !strings.Contains(err.Error(), "s3") {
		t.Fatalf("haproxy without s3: %v", err)
	}
}
