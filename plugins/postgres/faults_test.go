package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/faultkit"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/testenv"
)

// The whole verify against a real PostgreSQL 15 in a "before" state that
// fails on several checks (TLS switched on by hand with the default cipher
// list, plaintext accepted, a trust line on the network), directly and
// through every fault of the standard matrix: a fault on the old-version
// hellos, on the plaintext sessions (the probe's and the other-address
// attempts) or on one connection in four never turns a failing check into
// a pass, and never makes one vanish.
func TestVerifyNeverPassesThroughFaults(t *testing.T) {
	pg := testenv.PostgresForTest(t)
	ctx := context.Background()
	if err := pg.EnableTLS(ctx); err != nil {
		t.Fatal(err)
	}
	hba := filepath.Join(pg.DataDir, "pg_hba.conf")
	old, err := os.ReadFile(hba)
	if err != nil {
		t.Fatal(err)
	}
	writeHBA(t, pg, string(old)+"host all all 10.0.0.0/8 trust\n")
	admin, err := pgx.Connect(ctx, pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	reloadAndWait(t, pg, admin)
	admin.Close(ctx)
	t.Cleanup(probe.WithDefaultTimeout(time.Second))

	client := hostclient.InProcess(postgres{})
	defer client.Close()
	verify := func(ctx context.Context, addr string) ([]checks.Check, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		p, _ := strconv.Atoi(port)
		rc := request(t, pg, `{}`, false)
		conn, _ := json.Marshal(map[string]any{"host": host, "port": p, "user": pg.User, "password_env": "PGPASSWORD"})
		rc.Target = sdk.NewTarget("pg", conn, []byte(`{}`), map[string][]byte{"password": []byte(pg.Password())})
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		r, err := client.Verify(ctx, rc)
		if err == nil && r.Diagnostics.HasError() {
			err = r.Diagnostics.Err()
		}
		return r.Checks, err
	}
	upstream := net.JoinHostPort(pg.Host, strconv.Itoa(pg.Port))
	direct := faultkit.NeverPasses(t, upstream, verify, faultkit.Standard(true)...)
	for _, id := range []string{"tls.plaintext.refused", "tls.cipher_suites", "postgres.plaintext.other_addresses", "postgres.hba.network_methods"} {
		if c := checkByID(t, direct, id); c.Status != checks.Fail {
			t.Errorf("direct %s = %s: %s", id, c.Status, c.Evidence)
		}
	}
	for _, id := range []string{"tls.enabled", "tls.protocol.versions", "tls.certificate.trusted", "postgres.password_encryption", "postgres.sessions.unencrypted"} {
		if c := checkByID(t, direct, id); c.Status != checks.Pass {
			t.Errorf("direct %s = %s: %s", id, c.Status, c.Evidence)
		}
	}
}
