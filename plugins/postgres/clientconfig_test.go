package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/testenv"
)

// clientIdentityIn names a client's files in dir, as the host lays out a
// delivered bundle.
func clientIdentityIn(name, dir string) sdk.ClientIdentity {
	return sdk.ClientIdentity{Name: name, CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key"), CAFile: filepath.Join(dir, "ca.crt"),
		KeystoreFile: filepath.Join(dir, "keystore.p12"), KeystorePasswordFile: filepath.Join(dir, "keystore.password"), TruststoreFile: filepath.Join(dir, "truststore.p12")}
}

func clientArtifact(t *testing.T, r sdk.RenderResponse, path string) sdk.Artifact {
	t.Helper()
	for _, a := range r.Artifacts {
		if a.Path == path {
			return a
		}
	}
	t.Fatalf("no artifact %s among %d", path, len(r.Artifacts))
	return sdk.Artifact{}
}

// requireJDBC parses the URL with net/url and checks every part; the
// database and the values also decode as pgjdbc decodes them
// (java.net.URLDecoder, which url.QueryUnescape matches).
func requireJDBC(t *testing.T, jdbc, hostPort, db string, id sdk.ClientIdentity) {
	t.Helper()
	rest, ok := strings.CutPrefix(strings.TrimSuffix(jdbc, "\n"), "jdbc:")
	if !ok || strings.Contains(rest, "\n") {
		t.Fatalf("not one jdbc: line: %q", jdbc)
	}
	u, err := url.Parse(rest)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "postgresql" || u.Host != hostPort || u.Path != "/"+db {
		t.Errorf("scheme %q host %q path %q, want postgresql %s /%s", u.Scheme, u.Host, u.Path, hostPort, db)
	}
	if got, err := url.QueryUnescape(strings.TrimPrefix(u.EscapedPath(), "/")); err != nil || got != db {
		t.Errorf("database as URLDecoder reads it: %q %v", got, err)
	}
	want := url.Values{"sslmode": {"verify-full"}, "sslrootcert": {id.CAFile}, "sslcert": {id.CertFile}, "sslkey": {id.KeystoreFile}, "user": {id.Name}}
	got := u.Query()
	if len(got) != len(want) {
		t.Errorf("query %v, want %v", got, want)
	}
	for k, v := range want {
		if len(got[k]) != 1 || got[k][0] != v[0] {
			t.Errorf("%s = %q, want %q", k, got[k], v[0])
		}
	}
	for _, kv := range strings.Split(u.RawQuery, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if dec, err := url.QueryUnescape(v); err != nil || dec != want.Get(k) {
			t.Errorf("%s as URLDecoder reads it: %q %v", k, dec, err)
		}
	}
}

func clientRequest(conn map[string]any, id *sdk.ClientIdentity) sdk.RenderRequest {
	raw, _ := json.Marshal(conn)
	return sdk.RenderRequest{RequestContext: sdk.RequestContext{Policy: sdk.Policy{APIVersion: "harden/v1"}, Target: sdk.NewTarget("warehouse-pg", raw, []byte(`{}`), nil)}, Client: id}
}

// The artifacts say what they should, quoted for libpq and encoded for
// pgjdbc, with paths and a database that need it.
func TestRenderClientArtifacts(t *testing.T) {
	id := clientIdentityIn("spark-etl", `/etc/harden/clients/it's a \dir+x`)
	var r sdk.RenderResponse
	postgres{}.RenderClient(context.Background(), clientRequest(map[string]any{"host": "db.example.com", "port": 6432, "database": "ware house"}, &id), &r)
	if r.Diagnostics.HasError() || len(r.Diagnostics) != 0 {
		t.Fatal(r.Diagnostics)
	}
	if len(r.Artifacts) != 3 {
		t.Errorf("%d artifacts, want libpq.conf, jdbc.url and jdbc.txt", len(r.Artifacts))
	}
	libpq := string(clientArtifact(t, r, "libpq.conf").Content)
	wantLibpq := `host=db.example.com port=6432 dbname='ware house' user=spark-etl sslmode=verify-full sslrootcert='/etc/harden/clients/it\'s a \\dir+x/ca.crt' ` +
		`sslcert='/etc/harden/clients/it\'s a \\dir+x/tls.crt' sslkey='/etc/harden/clients/it\'s a \\dir+x/tls.key'` + "\n"
	if libpq != wantLibpq {
		t.Errorf("libpq.conf:\n%s\nwant\n%s", libpq, wantLibpq)
	}
	requireJDBC(t, string(clientArtifact(t, r, "jdbc.url").Content), "db.example.com:6432", "ware house", id)
	note := string(clientArtifact(t, r, "jdbc.txt").Content)
	for _, want := range []string{"sslpassword", id.KeystorePasswordFile, id.KeystoreFile} {
		if !strings.Contains(note, want) {
			t.Errorf("jdbc.txt lacks %q:\n%s", want, note)
		}
	}
	for _, a := range r.Artifacts {
		if a.Sensitive || a.Mode != 0o644 {
			t.Errorf("%s: sensitive %v mode %o; it holds no secret", a.Path, a.Sensitive, a.Mode)
		}
	}

	// The default database, an IPv6 host.
	r = sdk.RenderResponse{}
	postgres{}.RenderClient(context.Background(), clientRequest(map[string]any{"host": "::1", "port": 5432}, &id), &r)
	if r.Diagnostics.HasError() {
		t.Fatal(r.Diagnostics.Err())
	}
	requireJDBC(t, string(clientArtifact(t, r, "jdbc.url").Content), "[::1]:5432", "postgres", id)
	if !strings.HasPrefix(string(clientArtifact(t, r, "libpq.conf").Content), "host=::1 port=5432 dbname=postgres ") {
		t.Errorf("libpq.conf: %s", clientArtifact(t, r, "libpq.conf").Content)
	}
}

func TestRenderClientRefuses(t *testing.T) {
	good := clientIdentityIn("spark-etl", "/etc/harden/clients/spark-etl")
	conn := map[string]any{"host": "127.0.0.1", "port": 5432}
	cases := map[string]struct {
		edit func(*sdk.ClientIdentity)
		conn map[string]any
		want string
	}{
		"a relative key":         {edit: func(id *sdk.ClientIdentity) { id.KeyFile = "tls.key" }, want: "key_file cannot be used"},
		"no CA file":             {edit: func(id *sdk.ClientIdentity) { id.CAFile = "" }, want: "ca_file cannot be used"},
		"a line break in a path": {edit: func(id *sdk.ClientIdentity) { id.CertFile = "/x\nsslmode=disable" }, want: "control character"},
		"a line break in a name": {edit: func(id *sdk.ClientIdentity) { id.Name = "etl\nsslmode=disable" }, want: "control character"},
		"no name":                {edit: func(id *sdk.ClientIdentity) { id.Name = "" }, want: "without a name"},
		"a host a URL cannot carry": {edit: func(*sdk.ClientIdentity) {}, conn: map[string]any{"host": "a/b@c", "port": 5432},
			want: "not a host name or IP address"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			id := good
			tc.edit(&id)
			c := conn
			if tc.conn != nil {
				c = tc.conn
			}
			var r sdk.RenderResponse
			postgres{}.RenderClient(context.Background(), clientRequest(c, &id), &r)
			if !r.Diagnostics.HasError() || !strings.Contains(r.Diagnostics.Err().Error(), tc.want) || len(r.Artifacts) != 0 {
				t.Errorf("diagnostics %v, %d artifacts; want an error with %q", r.Diagnostics, len(r.Artifacts), tc.want)
			}
		})
	}
	var r sdk.RenderResponse
	postgres{}.RenderClient(context.Background(), clientRequest(conn, nil), &r)
	if !r.Diagnostics.HasError() {
		t.Errorf("no client identity: %v", r.Diagnostics)
	}
	// A keystore pgjdbc would not read as PKCS#12: rendered, with a warning.
	id := good
	id.KeystoreFile = "/etc/harden/clients/spark-etl/keystore"
	r = sdk.RenderResponse{}
	postgres{}.RenderClient(context.Background(), clientRequest(conn, &id), &r)
	if r.Diagnostics.HasError() || len(r.Diagnostics) != 1 || !strings.Contains(r.Diagnostics[0].Summary, ".p12") || len(r.Artifacts) != 3 {
		t.Errorf("keystore without .p12: %v, %d artifacts", r.Diagnostics, len(r.Artifacts))
	}
}

// Whatever the values, the connection string the writer produces reads
// back, through pgx's libpq-compatible parser, as exactly those values; it
// refuses only control characters and empty values. The JDBC URL's
// database and values read back the same through net/url and URLDecoder's
// rules.
func FuzzConninfo(f *testing.F) {
	for _, s := range [][2]string{{"postgres", "spark-etl"}, {"ware house", `it's`}, {`a\`, ""}, {"'", "=x y"}, {"é漢", "+%20"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, db, user string) {
		s, err := conninfo([][2]string{{"host", "127.0.0.1"}, {"port", "5432"}, {"dbname", db}, {"user", user}, {"sslmode", "disable"}})
		refusable := strings.ContainsFunc(db+user, unicode.IsControl) || db == "" || user == ""
		if err != nil {
			if !refusable {
				t.Fatalf("refused %q %q: %v", db, user, err)
			}
			return
		}
		if refusable || strings.ContainsAny(s, "\n\r") {
			t.Fatalf("wrote %q for %q %q", s, db, user)
		}
		cfg, err := pgconn.ParseConfig(s)
		if err != nil {
			t.Fatalf("%q does not parse: %v", s, err)
		}
		if cfg.Database != db || cfg.User != user || cfg.Host != "127.0.0.1" || cfg.Port != 5432 || cfg.TLSConfig != nil {
			t.Fatalf("%q reads back as db %q user %q host %q port %d", s, cfg.Database, cfg.User, cfg.Host, cfg.Port)
		}
		jdbc, err := jdbcURL("127.0.0.1", "5432", db, [][2]string{{"user", user}})
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(strings.TrimPrefix(jdbc, "jdbc:"))
		if err != nil || u.Path != "/"+db || u.Query().Get("user") != user {
			t.Fatalf("%q reads back as %+v %v", jdbc, u, err)
		}
		if got, err := url.QueryUnescape(strings.TrimPrefix(u.EscapedPath(), "/")); err != nil || got != db {
			t.Fatalf("%q: database as URLDecoder reads it: %q %v", jdbc, got, err)
		}
	})
}

// The rendered libpq string logs in as the client's role on a real server
// hardened with a hostssl cert rule for it: verify-full, the client
// certificate from the test CA (CN = role) presented and checked, no
// password anywhere. The JDBC URL of the same render parses.
func TestRenderClientLiveServer(t *testing.T) {
	pg := testenv.PostgresForTest(t)
	ctx := context.Background()
	const name = "spark-etl"
	ca, err := testenv.LoadCA(filepath.Dir(pg.CAFile()))
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := ca.Issue(name, true)
	if err != nil {
		t.Fatal(err)
	}
	// A directory with a blank and a quote: the string must quote them.
	dir := filepath.Join(t.TempDir(), "client's files")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	id := clientIdentityIn(name, dir)
	for f, src := range map[string]string{id.CertFile: certFile, id.KeyFile: keyFile, id.CAFile: pg.CAFile()} {
		if err := os.WriteFile(f, readFile(t, src), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	spec := `{"hba":[{"database":"all","user":"` + name + `","address":"127.0.0.1/32","method":"cert"},
		{"database":"all","user":"all","address":"127.0.0.1/32","method":"scram-sha-256"}]}`
	rc := request(t, pg, spec, true)
	client := hostclient.InProcess(postgres{})
	defer client.Close()
	if ap, err := client.Apply(ctx, rc, nil, false); err != nil || ap.Diagnostics.HasError() {
		t.Fatalf("apply: %v %v", err, ap.Diagnostics.Err())
	}
	admin, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=postgres sslmode=verify-full sslrootcert=%s sslcert=%s sslkey=%s",
		pg.Host, pg.Port, pg.User, pg.Password(), pg.CAFile(), pg.ClientCertFile, pg.ClientKeyFile))
	if err != nil {
		t.Fatalf("harden's own certificate: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `CREATE ROLE "`+name+`" LOGIN`); err != nil {
		t.Fatal(err)
	}

	r, err := client.RenderClient(ctx, rc, id)
	if err != nil || r.Diagnostics.HasError() || len(r.Diagnostics) != 0 {
		t.Fatalf("render client: %v %v", err, r.Diagnostics)
	}
	libpq := string(clientArtifact(t, r, "libpq.conf").Content)
	if strings.Count(libpq, "\n") != 1 || !strings.HasSuffix(libpq, "\n") || strings.Contains(libpq, "password") {
		t.Errorf("libpq.conf is not one line without a password: %q", libpq)
	}
	conn, err := pgx.Connect(ctx, strings.TrimSuffix(libpq, "\n"))
	if err != nil {
		t.Fatalf("connect with libpq.conf: %v", err)
	}
	defer conn.Close(ctx)
	var user, dn string
	var ssl bool
	if err := conn.QueryRow(ctx, "SELECT current_user, ssl, client_dn FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE pid = pg_backend_pid()").Scan(&user, &ssl, &dn); err != nil {
		t.Fatal(err)
	}
	if user != name || !ssl || dn != "/CN="+name {
		t.Errorf("logged in as %q, ssl %v, client certificate %q; want %s over TLS with /CN=%s", user, ssl, dn, name, name)
	}
	if cfg := conn.Config(); cfg.TLSConfig == nil || cfg.TLSConfig.InsecureSkipVerify || cfg.TLSConfig.ServerName != pg.Host {
		t.Errorf("the connection does not verify the server's certificate and name")
	}
	// libpq itself (psql) reads the string the same way.
	psql := filepath.Join(pg.BinDir, "psql")
	out, err := exec.CommandContext(ctx, psql, "-X", "-At", "-c", "SELECT current_user || ' ' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", strings.TrimSuffix(libpq, "\n")).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != name+" true" {
		t.Errorf("psql with libpq.conf: %v %s", err, out)
	}
	// Without the client certificate the same string is refused: the
	// cert rule, not a password, let the client in.
	noCert := strings.Split(strings.TrimSuffix(libpq, "\n"), " sslcert=")[0]
	if c, err := pgx.Connect(ctx, noCert); err == nil {
		c.Close(ctx)
		t.Errorf("%s logged in without its certificate", name)
	}
	requireJDBC(t, string(clientArtifact(t, r, "jdbc.url").Content), fmt.Sprintf("%s:%d", pg.Host, pg.Port), "postgres", id)
	key := readFile(t, keyFile)
	for _, a := range r.Artifacts {
		if strings.Contains(string(a.Content), "PRIVATE KEY") || strings.Contains(string(a.Content), string(key)) || strings.Contains(string(a.Content), pg.Password()) {
			t.Errorf("%s holds a key or a password", a.Path)
		}
	}
}
