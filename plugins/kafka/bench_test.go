package main

import (
	"context"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/testenv"
)

// BenchmarkVerify: one full verify of a hardened single-broker cluster with
// mTLS (cleartext ApiVersions + TLS scan of the broker and controller
// listeners, produce+consume canary, DescribeConfigs/DescribeAcls) through
// the in-process client. Target: <= 1 s median. Reference in the same run:
// sslscan on the broker's SSL listener (protocols and suites only).
func BenchmarkVerify(b *testing.B) {
	k := testenv.KafkaForTest(b)
	ctx := context.Background()
	client := sdk.InProcess(kafka{})
	defer client.Close()
	rc := brokerRequest(b, k, true)
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
		if failed, _ := checkStatus(r); len(failed) > 0 {
			b.Fatalf("verify failed: %v", failed)
		}
		ours = append(ours, time.Since(start))
	}
	var ref []time.Duration
	if path, err := exec.LookPath("sslscan"); err == nil {
		for range 5 {
			start := time.Now()
			if err := exec.Command(path, "--no-colour", k.Bootstrap).Run(); err != nil {
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

// BenchmarkBrokerStart: testenv's warm start of a single KRaft broker
// (format + JVM start + ApiVersions answer). Target: <= 20 s. Reference in
// the same run: a bare `java -version` JVM start.
func BenchmarkBrokerStart(b *testing.B) {
	var starts, ref []time.Duration
	for b.Loop() {
		start := time.Now()
		k := testenv.KafkaForTest(b)
		starts = append(starts, time.Since(start))
		_ = k.Stop()
		start = time.Now()
		if err := exec.Command("java", "-version").Run(); err != nil {
			b.Fatal(err)
		}
		ref = append(ref, time.Since(start))
	}
	slices.Sort(starts)
	slices.Sort(ref)
	b.ReportMetric(float64(starts[len(starts)/2].Milliseconds()), "start-median-ms")
	b.ReportMetric(float64(ref[len(ref)/2].Milliseconds()), "java-version-median-ms")
}
