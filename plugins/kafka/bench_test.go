package main

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/shared/sdk/sdktest"
	"github.com/harden-dev/harden/testenv"
)

// BenchmarkVerify: one full verify of a hardened single-broker cluster with
// mTLS (cleartext ApiVersions + TLS scan of the broker and controller
// listeners, produce+consume canary, DescribeConfigs/DescribeAcls) through
// the in-process client. Target: <= 1 s median. Reference in the same run:
// sslscan on the broker's SSL listener (protocols and suites only).
func BenchmarkVerify(b *testing.B) {
	k := testenv.KafkaForTest(b)
	client := hostclient.InProcess(kafka{})
	defer client.Close()
	rc := brokerRequest(b, k, true)
	if ap, err := client.Apply(context.Background(), rc, nil, false); err != nil || ap.Diagnostics.HasError() {
		b.Fatalf("apply: %v %v", err, ap.Diagnostics.Err())
	}
	sdktest.BenchVerify(b, client, rc, func(r sdk.VerifyResponse) error {
		if failed, _ := checkStatus(r); len(failed) > 0 {
			return fmt.Errorf("verify failed: %v", failed)
		}
		return nil
	}, k.Bootstrap)
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
