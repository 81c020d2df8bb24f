package main

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/probe/probetest"
	"github.com/harden-dev/harden/testenv"
)

func sslscanPairs(t *testing.T, addr string) []string {
	pairs, _ := probetest.SSLScan(t, addr, "--starttls-psql")
	return pairs
}

// PostgreSQL 15 (Debian, OpenSSL 3) and 17 (npm, OpenSSL 1.1.1) with TLS
// switched on and their default ssl_ciphers, scanned through the SSLRequest
// dialect, against sslscan --starttls-psql. PostgreSQL 17 also speaks direct
// TLS (ALPN "postgresql"): the direct dialect must find the same suites.
func TestAccuracyPostgres(t *testing.T) {
	probetest.NeedTool(t, "sslscan")
	for _, major := range []string{"15", "17"} {
		t.Run("postgres-"+major, func(t *testing.T) {
			pg := testenv.PostgresVersionForTest(t, major)
			if err := pg.EnableTLS(context.Background()); err != nil {
				t.Fatal(err)
			}
			addr := net.JoinHostPort(pg.Host, strconv.Itoa(pg.Port))
			res, err := probe.Scan(context.Background(), probe.Target{Address: addr, Dialect: probe.Postgres}, probe.Options{Concurrency: 3})
			if err != nil {
				t.Fatal(err)
			}
			got, want := probetest.Pairs(res), sslscanPairs(t, addr)
			if onlyHarden, onlySSLScan := probetest.Diff(got, want); len(onlyHarden)+len(onlySSLScan) > 0 || len(want) == 0 {
				t.Errorf("harden only: %v\nsslscan only: %v", onlyHarden, onlySSLScan)
			}
			var families []string
			for _, c := range res.Ciphers {
				for _, f := range []string{"_CBC_", "_CCM", "ARIA", "CAMELLIA"} {
					if strings.Contains(c.Name, f) && !slices.Contains(families, f) {
						families = append(families, f)
					}
				}
			}
			slices.Sort(families)
			if strings.Join(families, ",") != "ARIA,CAMELLIA,_CBC_,_CCM" {
				t.Errorf("PostgreSQL's default ciphers should show CBC, CCM, ARIA and CAMELLIA suites; found %v", families)
			}
			t.Logf("%s: %d pairs agree with sslscan --starttls-psql; %d connections (cap 3), %v", pg.Version, len(got), res.Connections, res.Duration.Round(time.Millisecond))
			probetest.RequireConclusive(t, res)
			if major == "17" {
				direct, err := probe.Scan(context.Background(), probe.Target{Address: addr, Dialect: probe.PostgresDirect}, probe.Options{Concurrency: 3})
				if err != nil {
					t.Fatal(err)
				}
				if d := probetest.Pairs(direct); strings.Join(d, ",") != strings.Join(got, ",") {
					t.Errorf("direct TLS (ALPN postgresql) found %v, SSLRequest %v", d, got)
				}
			}
		})
	}
}
