package envelope_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/harden-dev/harden/plugins/objectstore/envelope"
	"github.com/harden-dev/harden/testenv"
)

// BenchmarkRewrap: the rate of harden objectstore rewrap (objects/s)
// against the local SeaweedFS + Vault, for 2,000 objects of 1 KiB, and for
// 32 objects of 1 KiB vs 32 of 64 MiB (a rewrap copies metadata only, so
// the rate must not depend on size: target within 2×). Targets: >= 2,000
// objects/s. Reference in the same run: a bare HEAD per object (the floor
// any rewrap pays on this server).
func BenchmarkRewrap(b *testing.B) {
	s := testenv.SeaweedFSForTest(b)
	v := testenv.VaultForTest(b)
	vc, err := v.TransitKey("k")
	if err != nil {
		b.Fatal(err)
	}
	kek := &envelope.TransitKEK{Client: vc, Mount: "transit", Key: "k"}
	cl, err := s.Client()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	put := func(prefix string, n int, size int64) {
		sem := make(chan struct{}, 8)
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				_, err := envelope.PutObject(ctx, cl, s.Bucket, fmt.Sprintf("%s/%05d", prefix, i), io.LimitReader(rand.Reader, size), size, kek, nil, envelope.Options{})
				errs <- err
			}()
		}
		for i := 0; i < n; i++ {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
	}
	sets := []struct {
		name string
		n    int
		size int64
	}{{"2000x1KiB", 2000, 1 << 10}, {"32x1KiB", 32, 1 << 10}, {"32x64MiB", 32, 64 << 20}}
	for _, set := range sets {
		put(set.name, set.n, set.size)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := vc.Logical().Write("transit/keys/k/rotate", nil); err != nil {
			b.Fatal(err)
		}
		for _, set := range sets {
			start := time.Now()
			rep, err := envelope.Rewrap(ctx, cl, s.Bucket, kek, envelope.RewrapOptions{Prefix: set.name + "/", Concurrency: 16})
			if err != nil || rep.Rewrapped != set.n {
				b.Fatalf("%s: %v %+v", set.name, err, rep)
			}
			b.ReportMetric(float64(set.n)/time.Since(start).Seconds(), "objects/s-"+set.name)
		}
		start := time.Now()
		for obj := range cl.ListObjects(ctx, s.Bucket, minio.ListObjectsOptions{Prefix: "2000x1KiB/", Recursive: true}) {
			if _, err := cl.StatObject(ctx, s.Bucket, obj.Key, minio.StatObjectOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(2000/time.Since(start).Seconds(), "sequential-HEAD/s")
	}
}
