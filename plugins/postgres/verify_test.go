package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/shared/sdk/sdktest"
	"github.com/harden-dev/harden/shared/tlsprofile"
	"github.com/harden-dev/harden/testenv"
)

func TestConformance(t *testing.T) {
	// A server certificate: plan and apply refuse a target without one
	// before connecting, and their Stop checks must catch them in flight.
	ca, err := testenv.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue("postgres", false, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	read := func(f string) []byte {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sdktest.Run(t, sdktest.Harness{
		Plugin:       postgres{},
		Name:         "postgres",
		Certificates: sdk.Certificates{ChainPEM: read(cert), KeyPEM: read(key), CABundlePEM: read(ca.CertFile)},
		Target: func(addr string) sdk.Target {
			host, port, _ := strings.Cut(addr, ":")
			conn, _ := json.Marshal(map[string]any{"host": host, "port": json.Number(port)})
			return sdk.NewTarget("pg", conn, []byte(`{}`), nil)
		},
	})
}

func statuses(cs []checks.Check) map[string]checks.Check {
	m := map[string]checks.Check{}
	for _, c := range cs {
		if _, ok := m[c.ID]; !ok {
			m[c.ID] = c
		}
	}
	return m
}

// TestVerifyLivePostgres proves the checks against a real server, before and
// after TLS is switched on by hand (as a DBA would, outside harden).
func TestVerifyLivePostgres(t *testing.T) {
	pg := testenv.PostgresForTest(t)
	ctx := context.Background()
	client := hostclient.InProcess(postgres{})
	defer client.Close()
	conn, _ := json.Marshal(map[string]any{"host": pg.Host, "port": pg.Port, "user": pg.User})
	ca, err := os.ReadFile(pg.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	rc := sdk.RequestContext{
		Policy:       sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate()},
		Target:       sdk.NewTarget("pg", conn, []byte(`{}`), nil),
		Certificates: sdk.Certificates{CABundlePEM: ca},
	}
	rc.Policy.Rotation.RenewBefore = 7 * 24 * 3600 * 1e9

	before, err := client.Verify(ctx, rc)
	if err != nil || before.Diagnostics.HasError() {
		t.Fatalf("verify: %v %v", err, before.Diagnostics)
	}
	b := statuses(before.Checks)
	if b["tls.plaintext.refused"].Status != checks.Fail || b["tls.enabled"].Status != checks.Fail ||
		!strings.Contains(b["tls.enabled"].Evidence, "answered 'N'") {
		t.Fatalf("before: %+v", before.Checks)
	}

	// Switch TLS on with PostgreSQL's default cipher list (accepts CBC suites).
	if err := pg.EnableTLS(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := client.Verify(ctx, rc)
	if err != nil || after.Diagnostics.HasError() {
		t.Fatalf("verify: %v %v", err, after.Diagnostics)
	}
	a := statuses(after.Checks)
	want := map[string]checks.Status{
		"tls.enabled": checks.Pass, "tls.protocol.versions": checks.Pass, "tls.cipher_suites": checks.Fail,
		"tls.certificate.trusted": checks.Pass, "tls.certificate.lifetime": checks.Pass, "tls.certificate.lint": checks.Pass,
		// hba still has "host ... scram-sha-256": plaintext is still accepted.
		"tls.plaintext.refused": checks.Fail,
	}
	for id, st := range want {
		if _, ok := a[id]; !ok {
			t.Errorf("after: check %s missing", id)
		}
		if a[id].Status != st {
			t.Errorf("after: %s = %s (%s), want %s", id, a[id].Status, a[id].Evidence, st)
		}
	}
	if ev := a["tls.cipher_suites"].Evidence; !strings.Contains(ev, "_CBC_") {
		t.Errorf("PostgreSQL's default ciphers accept CBC suites; evidence: %s", ev)
	}
	if ev := a["tls.protocol.versions"].Evidence; !strings.Contains(ev, "TLSv1.2 accepted") || !strings.Contains(ev, "TLSv1.3 accepted") || !strings.Contains(ev, "TLSv1.1 refused") {
		t.Errorf("versions evidence: %s", ev)
	}
}

// adminSocket is a superuser session through the cluster's local socket
// (initdb's local lines trust it), independent of TLS and pg_hba's network
// lines.
func adminSocket(t *testing.T, pg *testenv.Postgres) *pgx.Conn {
	t.Helper()
	db, err := pgx.Connect(context.Background(), fmt.Sprintf("host=%s port=%d user=%s dbname=postgres", pg.SocketDir, pg.Port, pg.User))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	return db
}

// journalOf is the cluster's apply journal (and lock) in the applying
// user's state directory, as apply names it.
func journalOf(t *testing.T, pg *testenv.Postgres) (journal, lock string) {
	t.Helper()
	db := adminSocket(t, pg)
	journal, lock, err := clusterJournal(context.Background(), db, pg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	return journal, lock
}

// reloadAndWait reloads and waits until new sessions see the new load
// time (the postmaster reloads asynchronously), after the wall clock has
// left the second the rules were written in.
func reloadAndWait(t *testing.T, pg *testenv.Postgres, db *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	waitPastModification(ctx, filepath.Join(pg.DataDir, "pg_hba.conf"))
	var before time.Time
	if err := db.QueryRow(ctx, "SELECT pg_conf_load_time()").Scan(&before); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		t.Fatal(err)
	}
	if err := waitForReload(ctx, db, before); err != nil {
		t.Fatal(err)
	}
}

func writeHBA(t *testing.T, pg *testenv.Postgres, text string) {
	t.Helper()
	if _, err := pg.InstallFile("pg_hba.conf", []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func checkByID(t *testing.T, cs []checks.Check, id string) checks.Check {
	t.Helper()
	for _, c := range cs {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("check %s missing from %d checks", id, len(cs))
	return checks.Check{}
}

func verifyCheck(t *testing.T, client *hostclient.Client, rc sdk.RequestContext, id string) checks.Check {
	t.Helper()
	vr, err := client.Verify(context.Background(), rc)
	if err != nil {
		t.Fatal(err)
	}
	return checkByID(t, vr.Checks, id)
}

// postgres.hba.network_methods judges what the server enforces: a file
// edited after the last reload is "pending reload" (not a pass), and a line
// PostgreSQL cannot parse fails naming the line — also before a reload.
func TestVerifyHBAPendingReloadAndErrorLines(t *testing.T) {
	pg := testenv.PostgresForTest(t)
	ctx := context.Background()
	client := hostclient.InProcess(postgres{})
	defer client.Close()
	rc := request(t, pg, `{}`, false)
	if ap, err := client.Apply(ctx, rc, nil, false); err != nil || ap.Diagnostics.HasError() {
		t.Fatalf("apply: %v %v", err, ap.Diagnostics.Err())
	}
	const id = "postgres.hba.network_methods"
	if c := verifyCheck(t, client, rc, id); c.Status != checks.Pass || !strings.Contains(c.Evidence, "unchanged since the last configuration load") {
		t.Fatalf("after apply: %s %s", c.Status, c.Evidence)
	}
	hardened := string(readFile(t, filepath.Join(pg.DataDir, "pg_hba.conf")))
	admin := adminSocket(t, pg)

	// A trust line is loaded: a failure.
	writeHBA(t, pg, hardened+"host all all 10.0.0.0/8 trust\n")
	reloadAndWait(t, pg, admin)
	if c := verifyCheck(t, client, rc, id); c.Status != checks.Fail || !strings.Contains(c.Evidence, "host with trust") {
		t.Errorf("trust line loaded: %s %s", c.Status, c.Evidence)
	}
	// The file is fixed but not reloaded: the server still admits the
	// trust line, so this is no pass.
	writeHBA(t, pg, hardened)
	if c := verifyCheck(t, client, rc, id); c.Status != checks.Error || !strings.Contains(c.Evidence, "pending reload") {
		t.Errorf("fixed without reload: %s %s (want error: pending reload)", c.Status, c.Evidence)
	}
	reloadAndWait(t, pg, admin)
	if c := verifyCheck(t, client, rc, id); c.Status != checks.Pass {
		t.Errorf("fixed and reloaded: %s %s", c.Status, c.Evidence)
	}
	// A deploy that keeps the source's old mtime (rsync -a, cp -p): the
	// server enforces a loaded trust line; the fixed file is written, not
	// reloaded, with its mtime set back an hour. The ctime cannot be set
	// back: still a pending reload, no pass.
	hba := filepath.Join(pg.DataDir, "pg_hba.conf")
	writeHBA(t, pg, hardened+"host all all 10.0.0.0/8 trust\n")
	reloadAndWait(t, pg, admin)
	writeHBA(t, pg, hardened)
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(hba, old, old); err != nil {
		t.Fatal(err)
	}
	if c := verifyCheck(t, client, rc, id); c.Status != checks.Error || !strings.Contains(c.Evidence, "pending reload") {
		t.Errorf("an unreloaded file with its mtime set back: %s %s (want error: pending reload)", c.Status, c.Evidence)
	}
	reloadAndWait(t, pg, admin)
	// A line PostgreSQL rejects (ldap without its arguments): its row has
	// NULL type and method; the check fails naming the line and the error.
	line := strings.Count(hardened, "\n") + 1
	writeHBA(t, pg, hardened+"hostssl all all 10.0.0.0/8 ldap\n")
	c := verifyCheck(t, client, rc, id)
	if want := fmt.Sprintf("line %d: error: ", line); c.Status != checks.Fail || !strings.Contains(c.Evidence, want) ||
		!strings.Contains(c.Evidence, "ldap") || !strings.Contains(c.Evidence, "pending reload") {
		t.Errorf("error line: %s %s (want fail naming %q, and the pending reload)", c.Status, c.Evidence, want)
	}
}

// A role without pg_read_all_stats sees other roles' sessions without
// their address or TLS state: postgres.sessions.unencrypted is then an
// error naming the grant, never "every session uses TLS".
func TestVerifySessionsHiddenFromRole(t *testing.T) {
	pg := testenv.PostgresForTest(t)
	ctx := context.Background()
	admin := adminSocket(t, pg)
	for _, q := range []string{
		"CREATE ROLE app LOGIN PASSWORD 'app-pw-123'",
		"CREATE ROLE harden_verify LOGIN PASSWORD 'verify-pw-1'",
		"GRANT pg_read_all_settings TO harden_verify",
		"GRANT SELECT ON pg_hba_file_rules TO harden_verify",
		"GRANT EXECUTE ON FUNCTION pg_hba_file_rules() TO harden_verify",
		"GRANT EXECUTE ON FUNCTION pg_stat_file(text) TO harden_verify",
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// An application session without TLS (the server has none yet).
	app, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=app password=app-pw-123 dbname=postgres sslmode=disable", pg.Host, pg.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close(ctx)
	client := hostclient.InProcess(postgres{})
	defer client.Close()
	rc := request(t, pg, `{}`, false)
	conn, _ := json.Marshal(map[string]any{"host": pg.Host, "port": pg.Port, "user": "harden_verify", "password_env": "PGPASSWORD",
		"allow_plaintext_admin": testenv.PostgresPlaintextAdminReason})
	rc.Target = sdk.NewTarget("pg", conn, []byte(`{}`), map[string][]byte{"password": []byte("verify-pw-1")})
	const id = "postgres.sessions.unencrypted"
	if c := verifyCheck(t, client, rc, id); c.Status != checks.Error || !strings.Contains(c.Evidence, `GRANT pg_read_all_stats TO "harden_verify"`) || c.Inconclusive == 0 {
		t.Errorf("without pg_read_all_stats: %s %s (want error naming the grant)", c.Status, c.Evidence)
	}
	if _, err := admin.Exec(ctx, "GRANT pg_read_all_stats TO harden_verify"); err != nil {
		t.Fatal(err)
	}
	if c := verifyCheck(t, client, rc, id); c.Status != checks.Fail || !strings.Contains(c.Evidence, "app@127.0.0.1") {
		t.Errorf("with pg_read_all_stats: %s %s (want the app's plaintext session)", c.Status, c.Evidence)
	}
}

// A target named by a DNS name (localhost): every address it resolves to,
// and the other loopback source, is attempted — a failure while plaintext
// is accepted, a pass after apply with the attempts in the evidence.
func TestVerifyOtherAddressesForAHostName(t *testing.T) {
	pg := testenv.PostgresForTest(t)
	ctx := context.Background()
	client := hostclient.InProcess(postgres{})
	defer client.Close()
	rc := request(t, pg, `{}`, false)
	byName := rc
	conn, _ := json.Marshal(map[string]any{"host": "localhost", "port": pg.Port, "user": pg.User, "password_env": "PGPASSWORD",
		"allow_plaintext_admin": testenv.PostgresPlaintextAdminReason})
	byName.Target = sdk.NewTarget("pg", conn, []byte(`{}`), map[string][]byte{"password": []byte(pg.Password())})
	const id = "postgres.plaintext.other_addresses"
	if c := verifyCheck(t, client, byName, id); c.Status != checks.Fail || !strings.Contains(c.Evidence, "127.0.0.1:") {
		t.Errorf("plaintext accepted, host localhost: %s %s", c.Status, c.Evidence)
	}
	if ap, err := client.Apply(ctx, rc, nil, false); err != nil || ap.Diagnostics.HasError() {
		t.Fatalf("apply: %v %v", err, ap.Diagnostics.Err())
	}
	c := verifyCheck(t, client, byName, id)
	if c.Status != checks.Pass || !strings.Contains(c.Evidence, "from 127.0.0.2") || !strings.Contains(c.Evidence, "SQLSTATE 28000") {
		t.Errorf("hardened, host localhost: %s %s", c.Status, c.Evidence)
	}
	t.Logf("evidence: %s", c.Evidence)
}

// A server nobody can reach still gets every postgres check, each an
// error with the reason (a missing check would look like nothing wrong).
func TestVerifyUnreachableReportsEveryCheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	client := hostclient.InProcess(postgres{})
	defer client.Close()
	conn, _ := json.Marshal(map[string]any{"host": "127.0.0.1", "port": port})
	rc := sdk.RequestContext{Policy: sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate()},
		Target: sdk.NewTarget("pg", conn, []byte(`{}`), nil)}
	vr, err := client.Verify(context.Background(), rc)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range append([]string{otherAddressesID}, sqlCheckIDs...) {
		want := checks.Error
		if d, _ := checks.Lookup(id); d.BestEffort {
			want = checks.Warn // best-effort checks warn on what they could not see
		}
		if c := checkByID(t, vr.Checks, id); c.Status != want || !strings.Contains(c.Evidence, "could not be reached") {
			t.Errorf("%s = %s (%s), want %s", id, c.Status, c.Evidence, want)
		}
	}
}
