package sdktest

import (
	"context"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
)

// BenchVerify measures one full verify of rc through client per benchmark
// round (check judges each response), then runs sslscan with sslscanArgs
// five times as the reference measured in the same run, and reports both
// medians (verify-median-ms, sslscan-median-ms): machines are shared and
// noisy, so the ratio is what an issue's performance target reads.
func BenchVerify(b *testing.B, client *hostclient.Client, rc sdk.RequestContext, check func(sdk.VerifyResponse) error, sslscanArgs ...string) {
	b.Helper()
	ctx := context.Background()
	var ours []time.Duration
	for b.Loop() {
		start := time.Now()
		r, err := client.Verify(ctx, rc)
		if err == nil && r.Diagnostics.HasError() {
			err = r.Diagnostics.Err()
		}
		if err == nil && check != nil {
			err = check(r)
		}
		if err != nil || len(r.Checks) == 0 {
			b.Fatalf("verify: %v (%d checks)", err, len(r.Checks))
		}
		ours = append(ours, time.Since(start))
	}
	b.ReportMetric(medianMS(ours), "verify-median-ms")
	path, err := exec.LookPath("sslscan")
	if err != nil {
		return
	}
	var ref []time.Duration
	for range 5 {
		start := time.Now()
		if out, err := exec.Command(path, append([]string{"--no-colour"}, sslscanArgs...)...).CombinedOutput(); err != nil {
			b.Fatalf("sslscan: %v\n%s", err, out)
		}
		ref = append(ref, time.Since(start))
	}
	b.ReportMetric(medianMS(ref), "sslscan-median-ms")
}

func medianMS(ds []time.Duration) float64 {
	slices.Sort(ds)
	return float64(ds[len(ds)/2].Microseconds()) / 1000
}
