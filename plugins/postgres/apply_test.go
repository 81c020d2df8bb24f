package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/shared/tlsprofile"
	"github.com/harden-dev/harden/testenv"
)

// request builds a request for pg with the env's certificate and CA.
func request(t testing.TB, pg *testenv.Postgres, specJSON string, mtls bool) sdk.RequestContext {
	t.Helper()
	return requestFrom(t, paramsOf(pg), specJSON, mtls)
}

// reqParams is what a request needs from a cluster; a helper process gets
// it as JSON (see TestApplyHelperProcess).
type reqParams struct {
	Host, User, Password                                 string
	Port                                                 int
	CertFile, KeyFile, CAFile, ClientCertFile, ClientKey string
}

func paramsOf(pg *testenv.Postgres) reqParams {
	return reqParams{Host: pg.Host, Port: pg.Port, User: pg.User, Password: pg.Password(), CertFile: pg.CertFile, KeyFile: pg.KeyFile,
		CAFile: pg.CAFile(), ClientCertFile: pg.ClientCertFile, ClientKey: pg.ClientKeyFile}
}

func requestFrom(t testing.TB, p reqParams, specJSON string, mtls bool) sdk.RequestContext {
	t.Helper()
	read := func(f string) []byte {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// The cluster starts without TLS: the first login is SCRAM without TLS,
	// allowed explicitly (as testenv's generated policy does).
	conn, _ := json.Marshal(map[string]any{"host": p.Host, "port": p.Port, "user": p.User, "password_env": "PGPASSWORD",
		"allow_plaintext_admin": testenv.PostgresPlaintextAdminReason})
	rc := sdk.RequestContext{
		Policy: sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate()},
		Target: sdk.NewTarget("pg", conn, []byte(specJSON), map[string][]byte{"password": []byte(p.Password)}),
		Certificates: sdk.Certificates{ChainPEM: read(p.CertFile), KeyPEM: read(p.KeyFile), CABundlePEM: read(p.CAFile),
			ClientChainPEM: read(p.ClientCertFile), ClientKeyPEM: read(p.ClientKey)},
	}
	rc.Policy.Rotation.RenewBefore = 7 * 24 * 3600 * 1e9
	if mtls {
		rc.Policy.MTLSScope = []string{"pg"}
	}
	return rc
}

func statusMap(cs []checks.Check) map[string]checks.Status {
	m := map[string]checks.Status{}
	for _, c := range cs {
		if prev, ok := m[c.ID]; !ok || c.Status == checks.Fail || prev == checks.Pass && c.Status != checks.Pass {
			m[c.ID] = c.Status
		}
	}
	return m
}

// hardenedCheckIDs are the checks a verify of a hardened target must
// report (each one present and passing).
var hardenedCheckIDs = []string{"tls.plaintext.refused", "tls.enabled", "tls.protocol.versions", "tls.cipher_suites", "tls.key_exchange.groups",
	"tls.certificate.trusted", "tls.certificate.lint", "tls.certificate.lifetime",
	"postgres.plaintext.other_addresses", "postgres.hba.network_methods", "postgres.password_encryption", "postgres.sessions.unencrypted"}

// requireAllPass fails unless every check passes and every id in ids is
// among them: a check that is missing must not look like a pass.
func requireAllPass(t *testing.T, cs []checks.Check, ids ...string) {
	t.Helper()
	seen := map[string]bool{}
	for _, c := range cs {
		seen[c.ID] = true
		if c.Status != checks.Pass {
			t.Errorf("%s = %s (%s): %s", c.ID, c.Status, c.Subject, c.Evidence)
		}
	}
	for _, id := range ids {
		if !seen[id] {
			t.Errorf("check %s missing", id)
		}
	}
}

func tlsDSN(pg *testenv.Postgres, user, password string) string {
	return fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=postgres sslmode=verify-full sslrootcert=%s connect_timeout=5",
		pg.Host, pg.Port, user, password, pg.CAFile())
}

// The full flow on PostgreSQL 15 and 17: TLS switched on by hand with default
// ciphers (the "before"), verify fails on specific checks, apply, verify
// passes, a second apply changes nothing.
func TestApplyFlow(t *testing.T) {
	for _, tc := range []struct {
		major string
		tlsOn bool
	}{{"15", false}, {"15", true}, {"17", true}, {"18", true}} {
		t.Run(fmt.Sprintf("postgres-%s-tls-before-%v", tc.major, tc.tlsOn), func(t *testing.T) {
			pg := testenv.PostgresVersionForTest(t, tc.major)
			ctx := context.Background()
			if tc.tlsOn {
				if err := pg.EnableTLS(ctx); err != nil {
					t.Fatal(err)
				}
				// initdb's default is trust; a DBA's file often still has a
				// trust line on the network.
				hba := filepath.Join(pg.DataDir, "pg_hba.conf")
				old, _ := os.ReadFile(hba)
				if err := os.WriteFile(hba, append(old, []byte("host all all 10.0.0.0/8 trust\n")...), 0o600); err != nil {
					t.Fatal(err)
				}
				db, err := pgx.Connect(ctx, pg.DSN())
				if err != nil {
					t.Fatal(err)
				}
				db.Exec(ctx, "SELECT pg_reload_conf()")
				db.Close(ctx)
			}
			client := hostclient.InProcess(postgres{})
			defer client.Close()
			rc := request(t, pg, `{}`, false)

			before, err := client.Verify(ctx, rc)
			if err != nil {
				t.Fatal(err)
			}
			b := statusMap(before.Checks)
			if b["tls.plaintext.refused"] != checks.Fail || (tc.tlsOn && (b["tls.cipher_suites"] != checks.Fail || b["postgres.hba.network_methods"] != checks.Fail)) ||
				(!tc.tlsOn && b["tls.enabled"] != checks.Fail) {
				t.Fatalf("before: %v", b)
			}
			plan, err := client.Plan(ctx, rc)
			if err != nil || plan.Diagnostics.HasError() || len(plan.Changes) == 0 {
				t.Fatalf("plan: %v %v %d", err, plan.Diagnostics.Err(), len(plan.Changes))
			}
			ap, err := client.Apply(ctx, rc, plan.PlanToken, false)
			if err != nil || ap.Diagnostics.HasError() {
				t.Fatalf("apply: %v %v", err, ap.Diagnostics.Err())
			}
			after, err := client.Verify(ctx, rc)
			if err != nil {
				t.Fatal(err)
			}
			direct := 0
			requireAllPass(t, after.Checks, hardenedCheckIDs...)
			for _, c := range after.Checks {
				if strings.Contains(c.Subject, "direct TLS") {
					direct++
				}
			}
			if (tc.major != "15") != (direct > 0) {
				t.Errorf("direct-TLS checks: %d on PostgreSQL %s", direct, tc.major)
			}
			requireEndpointScans(t, before, after, tc.major != "15")
			// Plaintext logins are refused by the server itself; TLS ones work.
			if c, err := pgx.Connect(ctx, pg.DSN()); err == nil {
				c.Close(ctx)
				t.Errorf("plaintext login still accepted")
			} else if !strings.Contains(err.Error(), "no encryption") {
				t.Errorf("plaintext refusal: %v", err)
			}
			c, err := pgx.Connect(ctx, tlsDSN(pg, pg.User, pg.Password()))
			if err != nil {
				t.Fatalf("TLS login after apply: %v", err)
			}
			c.Close(ctx)
			// Idempotent.
			again, err := client.Plan(ctx, rc)
			if err != nil || len(again.Changes) != 0 {
				t.Errorf("second plan: %v %+v", err, again.Changes)
			}
			ap2, err := client.Apply(ctx, rc, again.PlanToken, false)
			if err != nil || ap2.Diagnostics.HasError() || len(ap2.Applied) != 0 {
				t.Errorf("second apply: %v %v %+v", err, ap2.Diagnostics, ap2.Applied)
			}
			if backups, _ := filepath.Glob(filepath.Join(pg.DataDir, "pg_hba.conf.harden-backup-*")); len(backups) != 1 {
				t.Errorf("backups of pg_hba.conf: %v", backups)
			}
			if st, err := os.Stat(filepath.Join(pg.DataDir, "harden", "server.key")); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("key file: %v %v", err, st)
			}
		})
	}
}

// A pg_hba.conf PostgreSQL rejects (ldap without ldapserver) is rolled back:
// the old rules keep working and the old file is back.
func TestApplyRollsBackRejectedHBA(t *testing.T) {
	pg := testenv.PostgresForTest(t)
	ctx := context.Background()
	old, _ := os.ReadFile(filepath.Join(pg.DataDir, "pg_hba.conf"))
	client := hostclient.InProcess(postgres{})
	defer client.Close()
	rc := request(t, pg, `{"hba":[{"database":"all","user":"all","address":"127.0.0.1/32","method":"scram-sha-256"},{"database":"all","user":"nobody","address":"10.0.0.0/8","method":"ldap"}]}`, false)
	ap, err := client.Apply(ctx, rc, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if !ap.Diagnostics.HasError() || !strings.Contains(ap.Diagnostics.Err().Error(), "rolled back") || !strings.Contains(ap.Diagnostics.Err().Error(), "ldap") {
		t.Fatalf("diagnostics: %v", ap.Diagnostics)
	}
	now, _ := os.ReadFile(filepath.Join(pg.DataDir, "pg_hba.conf"))
	if string(now) != string(old) {
		t.Errorf("pg_hba.conf not restored")
	}
	c, err := pgx.Connect(ctx, pg.DSN())
	if err != nil {
		t.Fatalf("old rules no longer work: %v", err)
	}
	defer c.Close(ctx)
	var ssl string
	c.QueryRow(ctx, "SHOW ssl").Scan(&ssl)
	if ssl != "off" {
		t.Errorf("settings not rolled back: ssl = %s", ssl)
	}
}

// The lockout guard refuses rules that would cut off a live application
// session (plaintext from 127.0.0.1 as another role), unless forced.
func TestApplyLockoutGuard(t *testing.T) {
	pg := testenv.PostgresForTest(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE ROLE app LOGIN PASSWORD 'app-pw-123'"); err != nil {
		t.Fatal(err)
	}
	app, err := pgx.Connect(ctx, strings.Replace(strings.Replace(pg.DSN(), "user="+pg.User, "user=app", 1), "password="+pg.Password(), "password=app-pw-123", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close(ctx)
	client := hostclient.InProcess(postgres{})
	defer client.Close()
	rc := request(t, pg, `{"hba":[{"database":"all","user":"`+pg.User+`","address":"127.0.0.1/32","method":"scram-sha-256"}]}`, false)
	// verify sees the application's plaintext session.
	vr, err := client.Verify(ctx, rc)
	if err != nil {
		t.Fatal(err)
	}
	var sess checks.Check
	for _, c := range vr.Checks {
		if c.ID == "postgres.sessions.unencrypted" {
			sess = c
		}
	}
	if sess.Status != checks.Fail || !strings.Contains(sess.Evidence, "app@127.0.0.1") {
		t.Errorf("unencrypted session inventory: %s %s", sess.Status, sess.Evidence)
	}
	ap, err := client.Apply(ctx, rc, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	msg := ap.Diagnostics.Err()
	if msg == nil || !strings.Contains(msg.Error(), "lock out") || !strings.Contains(msg.Error(), "app@127.0.0.1") {
		t.Fatalf("guard: %v", msg)
	}
	var ssl string
	admin.QueryRow(ctx, "SHOW ssl").Scan(&ssl)
	if ssl != "off" {
		t.Errorf("guard refused but something changed: ssl = %s", ssl)
	}
	// Forced: it applies.
	ap, err = client.Apply(ctx, rc, nil, true)
	if err != nil || ap.Diagnostics.HasError() {
		t.Fatalf("forced apply: %v %v", err, ap.Diagnostics.Err())
	}
}

// mTLS scope: after apply, a client without a certificate and one with a
// certificate from another CA are refused at authentication, harden's own
// certificate (CN = its role) gets in.
func TestApplyMTLS(t *testing.T) {
	pg := testenv.PostgresForTest(t)
	ctx := context.Background()
	client := hostclient.InProcess(postgres{})
	defer client.Close()
	rc := request(t, pg, `{}`, true)
	ap, err := client.Apply(ctx, rc, nil, false)
	if err != nil || ap.Diagnostics.HasError() {
		t.Fatalf("apply: %v %v", err, ap.Diagnostics.Err())
	}
	vr, err := client.Verify(ctx, rc)
	if err != nil {
		t.Fatal(err)
	}
	var ca checks.Check
	requireAllPass(t, vr.Checks, append([]string{"tls.client_auth.required"}, hardenedCheckIDs...)...)
	for _, c := range vr.Checks {
		if c.ID == "tls.client_auth.required" {
			ca = c
		}
	}
	for _, want := range []string{"without a client certificate refused", "unrelated CA refused", "trusted certificate accepted"} {
		if !strings.Contains(ca.Evidence, want) {
			t.Errorf("client auth evidence lacks %q: %s", want, ca.Evidence)
		}
	}
	// Password alone is not enough any more.
	if c, err := pgx.Connect(ctx, tlsDSN(pg, pg.User, pg.Password())); err == nil {
		c.Close(ctx)
		t.Errorf("TLS login without a client certificate accepted under mTLS")
	}
}

// verify as a least-privilege role with the grants README documents: the
// SQL checks run (no permission errors); the md5-hash check says it needs a
// superuser instead of passing.
func TestVerifyLeastPrivilege(t *testing.T) {
	pg := testenv.PostgresForTest(t)
	ctx := context.Background()
	client := hostclient.InProcess(postgres{})
	defer client.Close()
	rc := request(t, pg, `{}`, false)
	if ap, err := client.Apply(ctx, rc, nil, false); err != nil || ap.Diagnostics.HasError() {
		t.Fatalf("apply: %v %v", err, ap.Diagnostics.Err())
	}
	admin, err := pgx.Connect(ctx, tlsDSN(pg, pg.User, pg.Password()))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	for _, q := range []string{
		"CREATE ROLE harden_verify LOGIN PASSWORD 'verify-pw-1'",
		"GRANT pg_read_all_settings, pg_read_all_stats TO harden_verify",
		"GRANT SELECT ON pg_hba_file_rules TO harden_verify",
		"GRANT EXECUTE ON FUNCTION pg_hba_file_rules() TO harden_verify",
		"GRANT EXECUTE ON FUNCTION pg_stat_file(text) TO harden_verify",
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	conn, _ := json.Marshal(map[string]any{"host": pg.Host, "port": pg.Port, "user": "harden_verify", "password_env": "PGPASSWORD"})
	rc.Target = sdk.NewTarget("pg", conn, []byte(`{}`), map[string][]byte{"password": []byte("verify-pw-1")})
	vr, err := client.Verify(ctx, rc)
	if err != nil {
		t.Fatal(err)
	}
	st := statusMap(vr.Checks)
	for _, id := range []string{"postgres.hba.network_methods", "postgres.sessions.unencrypted", "postgres.plaintext.other_addresses", "tls.cipher_suites", "tls.plaintext.refused"} {
		if st[id] != checks.Pass {
			t.Errorf("%s = %s as least-privilege role", id, st[id])
		}
	}
	// The md5 hashes cannot be read without a superuser: that part is
	// inconclusive — an error, or a warning if the check is defined as
	// best-effort — and never a pass.
	want := checks.Error
	if d, ok := checks.Lookup("postgres.password_encryption"); ok && d.BestEffort {
		want = checks.Warn
	}
	for _, c := range vr.Checks {
		if c.ID == "postgres.password_encryption" && (c.Status != want || !strings.Contains(c.Evidence, "needs a superuser") || c.Inconclusive != 1) {
			t.Errorf("md5 check without superuser: %s (%s), want %s with the reason", c.Status, c.Evidence, want)
		}
	}
	if _, ok := st["postgres.password_encryption"]; !ok {
		t.Errorf("postgres.password_encryption missing")
	}
}

// cert authentication through a pg_ident map: harden's client certificate
// (CN harden_admin) logs in as that role; the rendered map is live.
func TestApplyCertAuthWithIdentMap(t *testing.T) {
	pg := testenv.PostgresForTest(t)
	ctx := context.Background()
	client := hostclient.InProcess(postgres{})
	defer client.Close()
	spec := `{"hba":[{"database":"all","user":"all","address":"127.0.0.1/32","method":"cert","options":{"map":"certmap"}}],
		"ident_maps":[{"map":"certmap","system_user":"` + pg.User + `","pg_user":"` + pg.User + `"},{"map":"certmap","system_user":"reporting client","pg_user":"app"}]}`
	rc := request(t, pg, spec, true)
	ap, err := client.Apply(ctx, rc, nil, false)
	if err != nil || ap.Diagnostics.HasError() {
		t.Fatalf("apply: %v %v", err, ap.Diagnostics.Err())
	}
	ident, _ := os.ReadFile(filepath.Join(pg.DataDir, "pg_ident.conf"))
	if !strings.Contains(string(ident), `certmap "reporting client" app`) {
		t.Errorf("pg_ident.conf:\n%s", ident)
	}
	dsn := fmt.Sprintf("host=%s port=%d user=%s dbname=postgres sslmode=verify-full sslrootcert=%s sslcert=%s sslkey=%s", pg.Host, pg.Port, pg.User, pg.CAFile(), pg.ClientCertFile, pg.ClientKeyFile)
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("certificate login through the map: %v", err)
	}
	c.Close(ctx)
	again, err := client.Plan(ctx, rc)
	if err != nil || len(again.Changes) != 0 {
		t.Errorf("second plan: %v %+v", err, again.Changes)
	}
	// A map the spec does not define is a config error before anything runs.
	bad := request(t, pg, `{"hba":[{"database":"all","user":"all","address":"127.0.0.1/32","method":"cert","options":{"map":"nomap"}}]}`, true)
	vr, err := client.ValidateSpec(ctx, bad)
	if err != nil || !vr.Diagnostics.HasError() || !strings.Contains(vr.Diagnostics.Err().Error(), `map "nomap" is not defined`) {
		t.Errorf("undefined map: %v %v", err, vr.Diagnostics)
	}
}

// A CRL from the policy: ssl_crl_file is set, and a revoked client
// certificate is refused while harden's own still gets in.
func TestApplyCRL(t *testing.T) {
	pg := testenv.PostgresForTest(t)
	ctx := context.Background()
	dir := filepath.Dir(pg.CAFile())
	ca, err := testenv.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	revokedCert, revokedKey, err := ca.Issue("revoked-client", true)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := ca.CRL(revokedCert)
	if err != nil {
		t.Fatal(err)
	}
	client := hostclient.InProcess(postgres{})
	defer client.Close()
	rc := request(t, pg, `{}`, true)
	rc.Certificates.CRLPEM, _ = os.ReadFile(crl)
	ap, err := client.Apply(ctx, rc, nil, false)
	if err != nil || ap.Diagnostics.HasError() {
		t.Fatalf("apply: %v %v", err, ap.Diagnostics.Err())
	}
	admin, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=postgres sslmode=verify-full sslrootcert=%s sslcert=%s sslkey=%s",
		pg.Host, pg.Port, pg.User, pg.Password(), pg.CAFile(), pg.ClientCertFile, pg.ClientKeyFile))
	if err != nil {
		t.Fatalf("harden's own certificate: %v", err)
	}
	defer admin.Close(ctx)
	var crlFile string
	admin.QueryRow(ctx, "SHOW ssl_crl_file").Scan(&crlFile)
	if !strings.HasSuffix(crlFile, "root.crl") {
		t.Errorf("ssl_crl_file = %q", crlFile)
	}
	_, err = pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=revoked-client dbname=postgres sslmode=verify-full sslrootcert=%s sslcert=%s sslkey=%s",
		pg.Host, pg.Port, pg.CAFile(), revokedCert, revokedKey))
	if err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("revoked client certificate: %v", err)
	}
}

// PostgreSQL 16+ include directives are followed: compliant included files
// are kept (and their rules live), a non-compliant one stops apply.
func TestApplyFollowsIncludes(t *testing.T) {
	pg := testenv.PostgresVersionForTest(t, "17")
	ctx := context.Background()
	if _, err := pg.InstallFile("conf.d/app.conf", []byte("hostssl all app 127.0.0.1/32 scram-sha-256\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hba := filepath.Join(pg.DataDir, "pg_hba.conf")
	old, _ := os.ReadFile(hba)
	os.WriteFile(hba, append(old, []byte("include_dir conf.d\n")...), 0o600)
	client := hostclient.InProcess(postgres{})
	defer client.Close()
	rc := request(t, pg, `{}`, false)
	ap, err := client.Apply(ctx, rc, nil, false)
	if err != nil || ap.Diagnostics.HasError() {
		t.Fatalf("apply: %v %v", err, ap.Diagnostics.Err())
	}
	now, _ := os.ReadFile(hba)
	if !strings.Contains(string(now), "include_dir conf.d") {
		t.Errorf("include directive dropped:\n%s", now)
	}
	db, err := pgx.Connect(ctx, tlsDSN(pg, pg.User, pg.Password()))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	var n int
	db.QueryRow(ctx, "SELECT count(*) FROM pg_hba_file_rules WHERE file_name LIKE '%conf.d/app.conf' AND error IS NULL").Scan(&n)
	if n != 1 {
		t.Errorf("included rule not live: %d", n)
	}
	if again, err := client.Plan(ctx, rc); err != nil || len(again.Changes) != 0 {
		t.Errorf("second plan: %v %+v", err, again.Changes)
	}
	if _, err := pg.InstallFile("conf.d/bad.conf", []byte("host all all 10.0.0.0/8 trust\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rc = request(t, pg, `{"hba":[{"database":"all","user":"all","address":"127.0.0.1/32","method":"scram-sha-256"}]}`, false)
	ap, err = client.Apply(ctx, rc, nil, false)
	if err != nil || !ap.Diagnostics.HasError() || !strings.Contains(ap.Diagnostics.Err().Error(), "bad.conf") {
		t.Errorf("non-compliant include: %v %v", err, ap.Diagnostics)
	}
}

// apply's confirmation that the old TLS version and a CBC suite are
// refused needs the server's refusal (a TLS alert): a server that just
// drops those handshakes proves nothing, and apply must not call that
// confirmed.
func TestConfirmHandshakeNeedsTheServersRefusal(t *testing.T) {
	dir := t.TempDir()
	ca, err := testenv.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := ca.Issue("server", false, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	gcmOnly := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}
	tests := map[string]struct {
		min  uint16 // the server's minimum (below it: an alert)
		drop func(*tls.ClientHelloInfo) bool
	}{
		// CBC is refused with an alert; TLS 1.1 hellos are dropped.
		"TLS 1.1 dropped": {min: tls.VersionTLS10, drop: func(h *tls.ClientHelloInfo) bool { return !slices.Contains(h.SupportedVersions, tls.VersionTLS12) }},
		// TLS 1.1 is refused with an alert; CBC-only hellos are dropped.
		"CBC dropped": {min: tls.VersionTLS12, drop: func(h *tls.ClientHelloInfo) bool {
			return !slices.Contains(h.CipherSuites, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256) && !slices.Contains(h.SupportedVersions, tls.VersionTLS13)
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tc.min, CipherSuites: gcmOnly,
				GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
					if tc.drop(h) {
						h.Conn.Close() // no alert: the connection just ends
						return nil, errors.New("dropped")
					}
					return nil, nil
				}}
			fake := newFakePG(t, cfg, authSCRAM, "")
			rc := sdk.RequestContext{Policy: sdk.Policy{Profile: tlsprofile.Intermediate()},
				Certificates: sdk.Certificates{ChainPEM: readFile(t, certFile), CABundlePEM: readFile(t, ca.CertFile)}}
			err := confirmHandshake(context.Background(), connection{Host: "127.0.0.1", Port: fake.port()}, rc)
			if err == nil || !strings.Contains(err.Error(), "cannot confirm") {
				t.Errorf("confirmHandshake: %v (want: cannot confirm)", err)
			}
		})
	}
}

// requireEndpointScans: verify describes what the probe saw for reports —
// before apply the server refused TLS (plaintext accepted); after it, TLS
// 1.2/1.3 accepted with suites, groups and the chain the server presents,
// and the direct-TLS door as its own endpoint on PostgreSQL 17+.
func requireEndpointScans(t *testing.T, before, after sdk.VerifyResponse, direct bool) {
	t.Helper()
	if len(before.Endpoints) == 0 || before.Endpoints[0].Plaintext != "accepted" {
		t.Errorf("before apply: endpoints %+v", before.Endpoints)
	}
	want := 1
	if direct {
		want = 2
	}
	if len(after.Endpoints) != want {
		t.Fatalf("after apply: %d endpoint scans, want %d: %+v", len(after.Endpoints), want, after.Endpoints)
	}
	for _, e := range after.Endpoints {
		accepted := map[string]bool{}
		for _, v := range e.Versions {
			accepted[v.Version] = v.Outcome == "accepted"
		}
		if !accepted["TLSv1.2"] || !accepted["TLSv1.3"] || accepted["TLSv1.1"] || len(e.Suites) == 0 || len(e.Groups) == 0 || len(e.ChainDER) == 0 || !e.TrustChecked || e.TrustError != "" {
			t.Errorf("after apply, endpoint %s: versions %v, %d suites, groups %v, %d certificates, trust %v %q", e.Name, accepted, len(e.Suites), e.Groups, len(e.ChainDER), e.TrustChecked, e.TrustError)
		}
	}
	if after.Endpoints[0].Plaintext != "refused" {
		t.Errorf("after apply, plaintext %q", after.Endpoints[0].Plaintext)
	}
}
