package main

import (
	"context"
	"net"
	"strconv"
	"testing"

	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/shared/sdk/sdktest"
	"github.com/harden-dev/harden/testenv"
)

// BenchmarkVerify: one full verify of a hardened PostgreSQL 15 target (probe
// scan, other-address refusals, SQL checks) through the real gRPC path.
// Target: <= 0.5 s median. Reference in the same run: sslscan
// --starttls-psql on the same server (protocols and suites only).
func BenchmarkVerify(b *testing.B) {
	pg := testenv.PostgresForTest(b)
	client := hostclient.InProcess(postgres{})
	defer client.Close()
	rc := request(b, pg, `{}`, false)
	if ap, err := client.Apply(context.Background(), rc, nil, false); err != nil || ap.Diagnostics.HasError() {
		b.Fatalf("apply: %v %v", err, ap.Diagnostics.Err())
	}
	sdktest.BenchVerify(b, client, rc, nil, "--starttls-psql", net.JoinHostPort(pg.Host, strconv.Itoa(pg.Port)))
}
