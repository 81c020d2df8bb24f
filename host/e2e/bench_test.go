package e2e

import (
	"context"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/host/internal/cli"
	"github.com/harden-dev/harden/host/internal/plugins"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
)

// Performance targets (issue: Foundation): plugin launch + handshake +
// metadata <= 50 ms median with the largest product plugin and the sha256
// check included; `harden plugins list` with four plugins <= 300 ms.
// Each benchmark reports its median; BenchmarkReferenceExec (fork+exec+wait
// of /bin/true) is the same-run reference for ratios on a noisy machine.

func buildProductPlugin(b *testing.B, name string) string {
	b.Helper()
	out := filepath.Join(b.TempDir(), hostclient.BinaryPrefix+name)
	// Built as `make build` ships it: stripped.
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./plugins/"+name)
	cmd.Dir = "../.."
	if o, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build %s: %v\n%s", name, err, o)
	}
	return out
}

func reportMedian(b *testing.B, ds []time.Duration) {
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(ds[len(ds)*9/10].Microseconds())/1000, "p90-ms")
}

func BenchmarkReferenceExec(b *testing.B) {
	var ds []time.Duration
	for b.Loop() {
		start := time.Now()
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(start))
	}
	reportMedian(b, ds)
}

// BenchmarkPluginLaunchMetadata follows the host's run path: the checksum
// comes from the lock file, go-plugin's SecureConfig hashes the binary right
// before exec (included in the time), then the one-time mTLS channel, the
// handshake and GetMetadata.
// largestProductPlugin builds every product plugin and returns the biggest
// binary: the launch budget is measured on the worst case.
func largestProductPlugin(b *testing.B) string {
	b.Helper()
	dirs, _ := os.ReadDir("../../plugins")
	var best string
	var size int64
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		bin := buildProductPlugin(b, d.Name())
		if st, err := os.Stat(bin); err == nil && st.Size() > size {
			best, size = bin, st.Size()
		}
	}
	if best == "" {
		b.Fatal("no product plugins")
	}
	return best
}

func BenchmarkPluginLaunchMetadata(b *testing.B) {
	bin := largestProductPlugin(b)
	st, _ := os.Stat(bin)
	b.Logf("plugin binary %s: %.1f MB", filepath.Base(bin), float64(st.Size())/1e6)
	lockedHex, err := plugins.FileSHA256(bin)
	if err != nil {
		b.Fatal(err)
	}
	sum, _ := hex.DecodeString(lockedHex)
	ctx := context.Background()
	var ds []time.Duration
	for b.Loop() {
		start := time.Now()
		c, err := hostclient.Launch(ctx, hostclient.LaunchConfig{Path: bin, SHA256: sum, Env: []string{"PATH=/usr/bin:/bin"}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Metadata(ctx); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(start))
		c.Close()
	}
	reportMedian(b, ds)
}

// BenchmarkPluginsList runs `harden plugins list` over four locked plugins:
// the postgres product plugin and three copies of the test plugin under
// other names (the other product plugins do not exist yet).
func BenchmarkPluginsList(b *testing.B) {
	dir := b.TempDir()
	pg := buildProductPlugin(b, "postgres")
	data, _ := os.ReadFile(pg)
	os.WriteFile(filepath.Join(dir, filepath.Base(pg)), data, 0o755)
	for _, n := range []string{"alpha", "beta", "gamma"} {
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.pluginName="+n, "-o", filepath.Join(dir, hostclient.BinaryPrefix+n), ".")
		cmd.Dir = "../testdata/echoplugin"
		if o, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("build %s: %v\n%s", n, err, o)
		}
	}
	lock := filepath.Join(dir, "plugins.lock")
	io := cli.IO{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard, IsTerminal: func() bool { return false }, Getenv: os.LookupEnv}
	if code := cli.Run(context.Background(), []string{"harden", "plugins", "lock", "--plugin-dir", dir, "--lock-file", lock}, io); code != 0 {
		b.Fatalf("lock: %d", code)
	}
	var ds []time.Duration
	for b.Loop() {
		start := time.Now()
		if code := cli.Run(context.Background(), []string{"harden", "plugins", "list", "--plugin-dir", dir, "--lock-file", lock}, io); code != 0 {
			b.Fatalf("list: exit %d", code)
		}
		ds = append(ds, time.Since(start))
	}
	reportMedian(b, ds)
}
