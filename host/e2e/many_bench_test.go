package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/harden-dev/harden/host/internal/cli"
)

// BenchmarkScanManyEndpoints: `harden scan` over 1,000 TLS listeners in five
// configurations served by a separate process (no caching across endpoints).
// Target: <= 10 s on 2 cores. Reports peak RSS and peak open descriptors of
// the harden process.
func BenchmarkScanManyEndpoints(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "listeners")
	build := exec.Command("go", "build", "-o", bin, "./host/testdata/listeners")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	srv := exec.Command(bin, "-n", "1000")
	stdin, _ := srv.StdinPipe()
	stdout, _ := srv.StdoutPipe()
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { stdin.Close(); srv.Wait() }()
	var addrs []string
	configs := map[string]bool{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "ready" {
		name, addr, _ := strings.Cut(sc.Text(), " ")
		configs[name] = true
		addrs = append(addrs, addr)
	}
	if len(addrs) != 1000 || len(configs) < 5 {
		b.Fatalf("%d listeners in %d configurations", len(addrs), len(configs))
	}
	var secs, rssMB, fds float64
	for b.Loop() {
		cmd := exec.Command(hardenBin, append([]string{"scan", "--format", "json"}, addrs...)...)
		var out strings.Builder
		cmd.Stdout = &out
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		peak := 0
		go func() {
			for {
				select {
				case <-done:
					return
				case <-time.After(20 * time.Millisecond):
					if ents, err := os.ReadDir(filepathJoin("/proc", cmd.Process.Pid, "fd")); err == nil && len(ents) > peak {
						peak = len(ents)
					}
				}
			}
		}()
		err := cmd.Wait()
		close(done)
		secs = time.Since(start).Seconds()
		if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != cli.ExitFindings) {
			b.Fatalf("scan: %v", err)
		}
		var doc struct{ Endpoints []struct{ Error string } }
		if err := json.Unmarshal([]byte(out.String()), &doc); err != nil || len(doc.Endpoints) != 1000 {
			b.Fatalf("report: %v, %d endpoints", err, len(doc.Endpoints))
		}
		rssMB = float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) / 1024
		fds = float64(peak)
	}
	b.ReportMetric(secs, "scan-s")
	b.ReportMetric(rssMB, "peak-rss-MB")
	b.ReportMetric(fds, "peak-fds")
}

func filepathJoin(a string, pid int, c string) string {
	return filepath.Join(a, strconv.Itoa(pid), c)
}
