package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/shared/tlsprofile"
	"github.com/harden-dev/harden/testenv"
)

// authKind is the authentication request the fake server sends.
type authKind int

const (
	authCleartext authKind = iota
	authMD5
	authSCRAM
)

// fakePG looks like PostgreSQL up to authentication: it answers the
// SSLRequest with 'N' (tlsConfig nil) or 'S' and a TLS handshake, then asks
// every startup for a password the way auth says, and records every
// PasswordMessage-type ('p') message and whether the secret's bytes ever
// arrived, in the clear or inside TLS.
type fakePG struct {
	ln        net.Listener
	tlsConfig *tls.Config
	auth      authKind
	secret    []byte

	mu        sync.Mutex
	conns     int
	startups  int
	passwords [][]byte
	sawSecret bool
	wg        sync.WaitGroup
}

func newFakePG(t *testing.T, tlsConfig *tls.Config, auth authKind, secret string) *fakePG {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakePG{ln: ln, tlsConfig: tlsConfig, auth: auth, secret: []byte(secret)}
	go f.serve()
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

func (f *fakePG) port() int { return f.ln.Addr().(*net.TCPAddr).Port }

func (f *fakePG) serve() {
	for {
		conn, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns++
		f.mu.Unlock()
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer conn.Close()
			f.handle(conn)
		}()
	}
}

// recorder keeps everything read, to search it for the secret.
type recorder struct {
	r   io.Reader
	buf *bytes.Buffer
}

func (r *recorder) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.buf.Write(b[:n])
	return n, err
}

func (f *fakePG) handle(conn net.Conn) {
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var rw io.ReadWriter = conn
	rec := &recorder{r: conn, buf: &bytes.Buffer{}}
	defer func() {
		if len(f.secret) > 0 && bytes.Contains(rec.buf.Bytes(), f.secret) {
			f.mu.Lock()
			f.sawSecret = true
			f.mu.Unlock()
		}
	}()
	for {
		hdr := make([]byte, 8)
		if _, err := io.ReadFull(rec, hdr); err != nil {
			return
		}
		n, code := binary.BigEndian.Uint32(hdr[:4]), binary.BigEndian.Uint32(hdr[4:])
		if n < 8 || n > 10000 {
			return
		}
		switch code {
		case 80877103, 80877104: // SSLRequest, GSSENCRequest
			if code == 80877104 || f.tlsConfig == nil {
				rw.Write([]byte{'N'})
				continue
			}
			rw.Write([]byte{'S'})
			tc := tls.Server(conn, f.tlsConfig)
			if err := tc.Handshake(); err != nil {
				return
			}
			rw = tc
			rec = &recorder{r: tc, buf: rec.buf} // from here on: the bytes inside TLS
			continue
		case 196608: // protocol 3.0 StartupMessage
			if _, err := io.ReadFull(rec, make([]byte, n-8)); err != nil {
				return
			}
		default:
			return
		}
		break
	}
	f.mu.Lock()
	f.startups++
	f.mu.Unlock()
	switch f.auth {
	case authCleartext:
		rw.Write(backendMessage('R', binary.BigEndian.AppendUint32(nil, 3)))
	case authMD5:
		rw.Write(backendMessage('R', append(binary.BigEndian.AppendUint32(nil, 5), 1, 2, 3, 4)))
	case authSCRAM:
		rw.Write(backendMessage('R', append(binary.BigEndian.AppendUint32(nil, 10), "SCRAM-SHA-256\x00\x00"...)))
	}
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(rec, hdr); err != nil {
		return
	}
	body := make([]byte, int(binary.BigEndian.Uint32(hdr[1:]))-4)
	if _, err := io.ReadFull(rec, body); err != nil {
		return
	}
	f.mu.Lock()
	if hdr[0] == 'p' {
		f.passwords = append(f.passwords, body)
	}
	// Recorded before the answer: the client returns as soon as it reads
	// it, and the test looks right then (the deferred check came too late
	// on a loaded machine).
	if len(f.secret) > 0 && bytes.Contains(rec.buf.Bytes(), f.secret) {
		f.sawSecret = true
	}
	f.mu.Unlock()
	rw.Write(backendMessage('E', []byte("SFATAL\x00VFATAL\x00C28P01\x00Mpassword authentication failed (fake server)\x00\x00")))
}

func backendMessage(typ byte, body []byte) []byte {
	return append(binary.BigEndian.AppendUint32([]byte{typ}, uint32(len(body)+4)), body...)
}

type fakeRecord struct {
	conns, startups int
	passwords       [][]byte
	sawSecret       bool
}

func (f *fakePG) record() fakeRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fakeRecord{conns: f.conns, startups: f.startups, passwords: append([][]byte(nil), f.passwords...), sawSecret: f.sawSecret}
}

func (f *fakePG) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conns, f.startups, f.passwords, f.sawSecret = 0, 0, nil, false
}

func readFile(t *testing.T, f string) []byte {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The management connection never gives the admin password (nor an MD5
// hash of it) to a server that refused TLS or presented a certificate the
// policy's CA does not vouch for — not from connect, plan, apply or
// verify; with allow_plaintext_admin it goes without TLS only into a
// SCRAM exchange. Positive controls prove the fake records what arrives.
func TestManagementConnectionSendsNoCredentialsWithoutVerifiedTLS(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"policy", "other"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	policyCA, err := testenv.NewCA(filepath.Join(dir, "policy"))
	if err != nil {
		t.Fatal(err)
	}
	otherCA, err := testenv.NewCA(filepath.Join(dir, "other"))
	if err != nil {
		t.Fatal(err)
	}
	serverCert := func(ca *testenv.CA, name string, hosts ...string) *tls.Config {
		certFile, keyFile, err := ca.Issue(name, false, hosts...)
		if err != nil {
			t.Fatal(err)
		}
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		return &tls.Config{Certificates: []tls.Certificate{pair}}
	}
	trusted := serverCert(policyCA, "trusted", "127.0.0.1")
	untrusted := serverCert(otherCA, "untrusted", "127.0.0.1")
	wrongName := serverCert(policyCA, "wrong-name", "db.example.internal")
	// The target's own certificate (plan and apply require one).
	targetCert, targetKey, err := policyCA.Issue("target", false, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	const secret = "admin-secret-3f9c1d"

	tests := map[string]struct {
		tls   *tls.Config
		auth  authKind
		allow bool
		// wantErr: a phrase of the error every entry point must show.
		wantErr string
		// wantSCRAM: a SCRAM exchange starts (a 'p' message naming the
		// mechanism, without the password); wantSecret: the control —
		// over verified TLS the password is sent.
		wantSCRAM, wantSecret bool
		// oneConnection: the management login made no second (plaintext)
		// connection after the first failed.
		oneConnection bool
	}{
		"refuses TLS, asks for a cleartext password":           {auth: authCleartext, wantErr: "allow_plaintext_admin", oneConnection: true},
		"refuses TLS, asks for an MD5 password":                {auth: authMD5, wantErr: "allow_plaintext_admin", oneConnection: true},
		"refuses TLS, allowed, asks for a cleartext password":  {auth: authCleartext, allow: true, wantErr: "server requested password authentication"},
		"refuses TLS, allowed, asks for an MD5 password":       {auth: authMD5, allow: true, wantErr: "server requested md5 authentication"},
		"refuses TLS, allowed, asks for SCRAM":                 {auth: authSCRAM, allow: true, wantErr: "password authentication failed", wantSCRAM: true},
		"untrusted certificate, asks for a cleartext password": {tls: untrusted, auth: authCleartext, wantErr: "never falls back", oneConnection: true},
		"untrusted certificate, allowed, asks for cleartext":   {tls: untrusted, auth: authCleartext, allow: true, wantErr: "never falls back", oneConnection: true},
		"certificate for another name, asks for cleartext":     {tls: wrongName, auth: authCleartext, allow: true, wantErr: "never falls back", oneConnection: true},
		"control: verified TLS, asks for a cleartext password": {tls: trusted, auth: authCleartext, wantErr: "password authentication failed", wantSecret: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fake := newFakePG(t, tc.tls, tc.auth, secret)
			c := map[string]any{"host": "127.0.0.1", "port": fake.port(), "user": "harden_admin", "password_env": "PGPASSWORD"}
			if tc.allow {
				c["allow_plaintext_admin"] = "test: a server without TLS"
			}
			conn, _ := json.Marshal(c)
			rc := sdk.RequestContext{
				Policy: sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate()},
				Target: sdk.NewTarget("pg", conn, []byte(`{}`), map[string][]byte{"password": []byte(secret)}),
				Certificates: sdk.Certificates{ChainPEM: readFile(t, targetCert), KeyPEM: readFile(t, targetKey),
					CABundlePEM: readFile(t, policyCA.CertFile)},
			}
			rc.Policy.Rotation.RenewBefore = 7 * 24 * time.Hour
			client := hostclient.InProcess(postgres{})
			defer client.Close()
			ctx := context.Background()
			entries := map[string]func() string{
				"connect": func() string {
					var cn connection
					if err := rc.Target.DecodeConnection(&cn); err != nil {
						t.Fatal(err)
					}
					db, err := connect(ctx, cn, rc)
					if err == nil {
						db.Close(ctx)
						return ""
					}
					return err.Error()
				},
				"plan": func() string {
					r, err := client.Plan(ctx, rc)
					if err != nil {
						t.Fatal(err)
					}
					return errText(r.Diagnostics.Err())
				},
				"apply": func() string {
					r, err := client.Apply(ctx, rc, nil, false)
					if err != nil {
						t.Fatal(err)
					}
					return errText(r.Diagnostics.Err())
				},
				"verify": func() string {
					r, err := client.Verify(ctx, rc)
					if err != nil {
						t.Fatal(err)
					}
					for _, ch := range r.Checks {
						if ch.ID == "postgres.hba.network_methods" {
							if ch.Status != checks.Error {
								t.Errorf("verify: %s = %s without a session", ch.ID, ch.Status)
							}
							return ch.Evidence
						}
					}
					t.Errorf("verify: no postgres.hba.network_methods check")
					return ""
				},
			}
			for _, entry := range []string{"connect", "plan", "apply", "verify"} {
				fake.reset()
				msg := entries[entry]()
				got := fake.record()
				if !strings.Contains(msg, tc.wantErr) {
					t.Errorf("%s: error %q, want it to say %q", entry, msg, tc.wantErr)
				}
				if got.sawSecret != tc.wantSecret {
					t.Errorf("%s: the password's bytes arrived at the server: %v, want %v", entry, got.sawSecret, tc.wantSecret)
				}
				switch {
				case tc.wantSecret:
				case tc.wantSCRAM:
					if len(got.passwords) == 0 || !bytes.Contains(got.passwords[0], []byte("SCRAM-SHA-256")) {
						t.Errorf("%s: no SCRAM exchange started: %q", entry, got.passwords)
					}
				case len(got.passwords) > 0:
					t.Errorf("%s: PasswordMessage bytes arrived: %q", entry, got.passwords)
				}
				if tc.oneConnection && entry == "connect" && (got.conns != 1 || got.startups != 0) {
					t.Errorf("connect: %d connections and %d startup messages after the first TLS attempt failed, want 1 and 0 (no fallback)", got.conns, got.startups)
				}
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// The connection block is decoded strictly and validated: the new key is
// a reason (not a boolean), and a relative socket_dir — which pgx would
// take for a TCP host name — is refused before anything is dialed.
func TestConnectionValidation(t *testing.T) {
	tests := map[string]struct {
		conn    string
		wantErr string
	}{
		"unknown key":             {`{"host":"127.0.0.1","port":5432,"allow_plaintext":true}`, `unknown key "allow_plaintext"`},
		"reason must be a string": {`{"host":"127.0.0.1","port":5432,"allow_plaintext_admin":true}`, "allow_plaintext_admin"},
		"blank reason":            {`{"host":"127.0.0.1","port":5432,"allow_plaintext_admin":"  "}`, "reason"},
		"relative socket_dir":     {`{"host":"127.0.0.1","port":5432,"socket_dir":"run/postgresql"}`, "absolute"},
		"valid":                   {`{"host":"127.0.0.1","port":5432,"allow_plaintext_admin":"bootstrap before TLS","socket_dir":"/run/postgresql"}`, ""},
	}
	client := hostclient.InProcess(postgres{})
	defer client.Close()
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rc := sdk.RequestContext{Target: sdk.NewTarget("pg", []byte(tc.conn), []byte(`{}`), nil)}
			r, err := client.ValidateSpec(context.Background(), rc)
			if err != nil {
				t.Fatal(err)
			}
			got := errText(r.Diagnostics.Err())
			if (tc.wantErr == "") != (got == "") || !strings.Contains(got, tc.wantErr) {
				t.Errorf("diagnostics %q, want %q", got, tc.wantErr)
			}
		})
	}
	// connect refuses a relative socket_dir itself (a request that skipped
	// ValidateSpec must not log in over TCP without TLS either).
	_, err := connect(context.Background(), connection{Host: "127.0.0.1", Port: 1, SocketDir: "relative"}, sdk.RequestContext{})
	if err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("connect with a relative socket_dir: %v", err)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		t.Errorf("connect dialed: %v", err)
	}
}

// The same rules against a real PostgreSQL 15 before hardening: without
// the key or the socket harden does not log in; through the local socket
// and with allow_plaintext_admin (SCRAM) it does; a network line asking
// for a cleartext password is refused even with the key; once TLS is on,
// a certificate the policy's CA did not issue stops harden, key or not.
func TestManagementConnectionRealServer(t *testing.T) {
	pg := testenv.PostgresForTest(t)
	ctx := context.Background()
	client := hostclient.InProcess(postgres{})
	defer client.Close()
	base := request(t, pg, `{}`, false)
	with := func(conn map[string]any, secret bool) sdk.RequestContext {
		rc := base
		j, _ := json.Marshal(conn)
		var secrets map[string][]byte
		if secret {
			secrets = map[string][]byte{"password": []byte(pg.Password())}
		}
		rc.Target = sdk.NewTarget("pg", j, []byte(`{}`), secrets)
		return rc
	}
	plan := func(rc sdk.RequestContext) (int, string) {
		t.Helper()
		r, err := client.Plan(ctx, rc)
		if err != nil {
			t.Fatal(err)
		}
		return len(r.Changes), errText(r.Diagnostics.Err())
	}
	tcp := map[string]any{"host": pg.Host, "port": pg.Port, "user": pg.User, "password_env": "PGPASSWORD"}
	if n, msg := plan(with(tcp, true)); n != 0 || !strings.Contains(msg, "allow_plaintext_admin") || !strings.Contains(msg, "socket_dir") {
		t.Errorf("no TLS, no key: %d changes, %q", n, msg)
	}
	socket := map[string]any{"host": pg.Host, "port": pg.Port, "user": pg.User, "socket_dir": pg.SocketDir}
	if n, msg := plan(with(socket, false)); n == 0 || msg != "" {
		t.Errorf("local socket: %d changes, %q", n, msg)
	}
	allowed := map[string]any{"host": pg.Host, "port": pg.Port, "user": pg.User, "password_env": "PGPASSWORD", "allow_plaintext_admin": "test"}
	if n, msg := plan(with(allowed, true)); n == 0 || msg != "" {
		t.Errorf("allow_plaintext_admin, SCRAM: %d changes, %q", n, msg)
	}
	// The network lines ask for a cleartext password.
	hbaFile := filepath.Join(pg.DataDir, "pg_hba.conf")
	scram := string(readFile(t, hbaFile))
	writeHBA(t, pg, strings.ReplaceAll(scram, "scram-sha-256", "password"))
	admin := adminSocket(t, pg)
	reloadAndWait(t, pg, admin)
	if n, msg := plan(with(allowed, true)); n != 0 || !strings.Contains(msg, "server requested password authentication") {
		t.Errorf("allow_plaintext_admin, cleartext request: %d changes, %q", n, msg)
	}
	writeHBA(t, pg, scram)
	reloadAndWait(t, pg, admin)
	// TLS on, but the policy trusts another CA.
	if err := pg.EnableTLS(ctx); err != nil {
		t.Fatal(err)
	}
	otherDir := t.TempDir()
	other, err := testenv.NewCA(otherDir)
	if err != nil {
		t.Fatal(err)
	}
	untrusting := with(allowed, true)
	untrusting.Certificates.CABundlePEM = readFile(t, other.CertFile)
	if n, msg := plan(untrusting); n != 0 || !strings.Contains(msg, "never falls back") || !strings.Contains(msg, "certificate") {
		t.Errorf("untrusted certificate: %d changes, %q", n, msg)
	}
	if n, msg := plan(with(allowed, true)); n == 0 || msg != "" {
		t.Errorf("TLS verified: %d changes, %q", n, msg)
	}
}
