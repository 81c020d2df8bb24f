package hostclient

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/harden-dev/harden/shared/sdk/internal/targetv1"
	"github.com/harden-dev/harden/shared/sdk/internal/wire"
)

func buildMini(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "harden-plugin-mini")
	cmd := exec.Command("go", "build", "-o", bin, "./testdata/mini")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// The plugin's gRPC endpoint accepts only the host of this launch: not a
// plaintext client, not a TLS client without the one-time client certificate.
func TestPluginChannelIsMutualTLS(t *testing.T) {
	bin := buildMini(t)
	data, _ := os.ReadFile(bin)
	sum := sha256.Sum256(data)
	ctx := context.Background()
	c, err := Launch(ctx, LaunchConfig{Path: bin, SHA256: sum[:], Env: []string{"PATH=/usr/bin:/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if m, err := c.Metadata(ctx); err != nil || m.Name != "mini" {
		t.Fatalf("metadata through the channel: %v %+v", err, m)
	}
	addr := c.gp.ReattachConfig().Addr
	dial := func(creds credentials.TransportCredentials) error {
		conn, err := grpc.NewClient("passthrough:///x", grpc.WithTransportCredentials(creds),
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, addr.Network(), addr.String())
			}))
		if err != nil {
			return err
		}
		defer conn.Close()
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		_, err = pb.NewTargetServiceClient(conn).GetMetadata(cctx, &pb.GetMetadataRequest{})
		return err
	}
	if err := dial(insecure.NewCredentials()); err == nil {
		t.Errorf("plaintext gRPC client was served")
	}
	if err := dial(credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})); err == nil {
		t.Errorf("TLS client without the one-time client certificate was served")
	}
	// The one-time key never appears in the plugin's environment.
	env, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(c.PID()), "environ"))
	if err != nil || !strings.Contains(string(env), wire.EnvTLSFD+"=3") {
		t.Fatalf("plugin environment: %v %q", err, env)
	}
	if strings.Contains(string(env), "PRIVATE KEY") {
		t.Errorf("private key in the plugin environment")
	}
}

func TestLaunchRefusesChecksumMismatch(t *testing.T) {
	bin := buildMini(t)
	_, err := Launch(context.Background(), LaunchConfig{Path: bin, SHA256: make([]byte, 32)})
	if err == nil || !errors.Is(err, ErrChecksumMismatch) {
		t.Errorf("got %v", err)
	}
}
