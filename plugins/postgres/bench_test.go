package main

import (
	"context"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/testenv"
)

// BenchmarkVerify: one full verify of a hardened PostgreSQL 15 target (probe
// scan, other-address refusals, SQL checks) through the real gRPC path.
// Target: <= 0.5 s median. Reference in the same run: sslscan
// --starttls-psql on the same server (protocols and suites only).
func BenchmarkVerify(b *testing.B) {
	pg := testenv.PostgresForTest(b)
	ctx := context.Background()
	client := sdk.InProcess(postgres{})
	defer client.Close()
	rc := request(b, pg, `{}`, false)
	if ap, err := client.Apply(ctx, rc, nil, false); err != nil || ap.Diagnostics.HasError() {
		b.Fatalf("apply: %v %v", err, ap.Diagnostics.Err())
	}
	var ours []time.Duration
	for b.Loop() {
		start := time.Now()
		r, err := client.Verify(ctx, rc)
		if err != nil || r.Diagnostics.HasError() || len(r.Checks) == 0 {
			b.Fatalf("verify: %v %v", err, r.Diagnostics.Err())
		}
		ours = append(ours, time.Since(start))
	}
	var ref []time.Duration
	if path, err := exec.LookPath("sslscan"); err == nil {
		addr := net.JoinHostPort(pg.Host, strconv.Itoa(pg.Port))
		for range 5 {
			start := time.Now()
			if err := exec.Command(path, "--no-colour", "--starttls-psql", addr).Run(); err != nil {
				b.Fatalf("sslscan: %v", err)
			}
			ref = append(ref, time.Since(start))
		}
	}
	slices.Sort(ours)
	b.ReportMetric(float64(ours[len(ours)/2].Microseconds())/1000, "verify-median-ms")
	if len(ref) > 0 {
		slices.Sort(ref)
		b.ReportMetric(float64(ref[len(ref)/2].Microseconds())/1000, "sslscan-median-ms")
	}
}
