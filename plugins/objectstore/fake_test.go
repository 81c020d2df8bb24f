package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3bolt"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
)

// Negative control for the at-rest proof: gofakes3 accepts SSE headers and
// stores plaintext (here in a bbolt file). The headers look right; the
// canary's bytes are found on disk and the check fails. (A PUT's 200 with
// an encryption header proves nothing.)
func TestCanaryCatchesAServerThatStoresPlaintext(t *testing.T) {
	dir := t.TempDir()
	be, err := s3bolt.NewFile(filepath.Join(dir, "fake.db"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(gofakes3.New(be).Server())
	defer srv.Close()
	if err := be.CreateBucket("lake"); err != nil {
		t.Fatal(err)
	}
	conn, _ := json.Marshal(map[string]any{"endpoint": srv.URL, "data_dir": dir})
	rc := sdk.RequestContext{Target: sdk.NewTarget("fake", conn, []byte(`{"bucket": "lake"}`), map[string][]byte{"access_key": []byte("a"), "secret_key": []byte("s")})}
	var d sdk.Diagnostics
	tg, ok := open(rc, &d)
	if !ok {
		t.Fatal(d.Err())
	}
	// Trust the test server's certificate.
	tg.cl, err = newTestClient(srv.URL, srv.Client().Transport)
	if err != nil {
		t.Fatal(err)
	}
	c := tg.canary(context.Background(), "fake")
	if c.Status != checks.Fail || !strings.Contains(c.Evidence, "plaintext bytes are on disk") {
		t.Errorf("canary on a plaintext-storing server: %s %s", c.Status, c.Evidence)
	}
}

func newTestClient(endpoint string, tr http.RoundTripper) (*minio.Client, error) {
	return minio.New(strings.TrimPrefix(endpoint, "https://"), &minio.Options{Creds: credentials.NewStaticV4("a", "s", ""), Secure: true, Transport: tr})
}
