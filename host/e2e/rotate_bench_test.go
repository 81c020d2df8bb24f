package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/testenv"
)

// BenchmarkRotatePostgres: one forced leaf rotation of a real PostgreSQL
// with Vault PKI as the source (issue, push by reload, the 8-handshake
// gate, the convergence plan) by the real binary, against the same run's
// reference — `harden plan` of the same target (the same plugin launches
// and login, nothing issued or pushed). The 3-broker Kafka rotation is
// timed by TestRotateKafkaClusterAndPostgres (its setup alone is minutes).
//
//	go test -run '^$' -bench BenchmarkRotatePostgres -benchtime 10x ./host/e2e/
func BenchmarkRotatePostgres(b *testing.B) {
	dir := b.TempDir()
	pluginDir := filepath.Join(dir, "plugins")
	os.MkdirAll(pluginDir, 0o755)
	for _, p := range []string{"postgres", "vaultpki"} {
		data, err := os.ReadFile(buildProductPlugin(b, p))
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pluginDir, "harden-plugin-"+p), data, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	state := filepath.Join(dir, "state")
	env, err := testenv.Up(context.Background(), testenv.Options{Services: []string{"postgres", "vault"}, StateDir: state})
	if err != nil {
		b.Fatalf("testenv: %v", err)
	}
	b.Cleanup(func() { _ = env.Down() })
	policy, lock := filepath.Join(state, "policy.yaml"), filepath.Join(dir, "plugins.lock")
	run := func(args ...string) (int, string) {
		cmd := exec.Command(hardenBin, append(args, "--plugin-dir", pluginDir, "--lock-file", lock)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), out.String()
		} else if err != nil {
			b.Fatal(err)
		}
		return 0, out.String()
	}
	for _, s := range [][]string{{"plugins", "lock"}, {"apply", "-f", policy, "--target", "vault", "--yes"}, {"apply", "-f", policy, "--yes"}} {
		if code, out := run(s...); code != 0 {
			b.Fatalf("%v: exit %d\n%s", s, code, out)
		}
	}
	var ds, ref []time.Duration
	for b.Loop() {
		start := time.Now()
		if code, out := run("plan", "-f", policy, "--target", "warehouse-pg"); code != 0 {
			b.Fatalf("plan: exit %d\n%s", code, out)
		}
		ref = append(ref, time.Since(start))
		start = time.Now()
		code, out := run("rotate", "-f", policy, "--target", "warehouse-pg", "--force-renew", "--yes")
		ds = append(ds, time.Since(start))
		if code != 0 || !strings.Contains(out, "gate: 8 fresh handshake(s) on 1 listener(s)") {
			b.Fatalf("rotate: exit %d\n%s", code, out)
		}
	}
	reportMedian(b, ds)
	b.ReportMetric(float64(median(ref).Microseconds())/1000, "plan-median-ms")
	b.ReportMetric(float64(median(ds))/float64(median(ref)), "x-plan")
}
