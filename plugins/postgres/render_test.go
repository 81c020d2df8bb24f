package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/testenv"
)

// The rendered postgresql.harden.conf, included from postgresql.conf as its
// header says, with the rendered certificate files in the data directory:
// a real PostgreSQL (re)starts with it and serves TLS with those files.
func TestRenderedConfStartsPostgres(t *testing.T) {
	pg := testenv.PostgresForTest(t)
	ctx := context.Background()
	var r sdk.RenderResponse
	postgres{}.Render(ctx, sdk.RenderRequest{RequestContext: request(t, pg, `{}`, false)}, &r)
	if r.Diagnostics.HasError() {
		t.Fatal(r.Diagnostics.Err())
	}
	for _, a := range r.Artifacts {
		if a.Path == "pg_hba.conf" || a.Path == "pg_ident.conf" {
			continue // the cluster keeps its rules: this test is about the settings
		}
		if _, err := pg.InstallFile(a.Path, a.Content, os.FileMode(a.Mode)); err != nil {
			t.Fatal(err)
		}
		if a.Path == "postgresql.harden.conf" && strings.Contains(string(a.Content), "$PGDATA") {
			t.Errorf("rendered settings name $PGDATA, which PostgreSQL does not expand:\n%s", a.Content)
		}
	}
	conf := filepath.Join(pg.DataDir, "postgresql.conf")
	old, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pg.InstallFile("postgresql.conf", append(old, []byte("\ninclude_if_exists = 'postgresql.harden.conf'\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	restartPostgres(t, pg)
	db, err := pgx.Connect(ctx, tlsDSN(pg, pg.User, pg.Password()))
	if err != nil {
		t.Fatalf("TLS login to the restarted server: %v", err)
	}
	defer db.Close(ctx)
	var certFile string
	if err := db.QueryRow(ctx, "SHOW ssl_cert_file").Scan(&certFile); err != nil || certFile != "harden/server.crt" {
		t.Errorf("ssl_cert_file = %q, %v", certFile, err)
	}
}

// restartPostgres stops testenv's server (fast shutdown) and starts the same
// cluster again on the same port, as its OS user; it fails with the
// server's log when the server refuses to start.
func restartPostgres(t *testing.T, pg *testenv.Postgres) {
	t.Helper()
	pidText, err := os.ReadFile(filepath.Join(pg.DataDir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.SplitN(string(pidText), "\n", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	syscall.Kill(pid, syscall.SIGINT)
	for i := 0; syscall.Kill(pid, 0) == nil; i++ {
		if i > 300 {
			t.Fatal("postgres did not stop within 15 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	logPath := filepath.Join(t.TempDir(), "restart.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(pg.BinDir, "postgres"), "-D", pg.DataDir, "-c", "port="+strconv.Itoa(pg.Port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+pg.SocketDir, "-c", "logging_collector=off")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		db, err := pgx.Connect(context.Background(), tlsDSN(pg, pg.User, pg.Password()))
		if err == nil {
			db.Close(context.Background())
			return
		}
		select {
		case werr := <-exited:
			out, _ := os.ReadFile(logPath)
			t.Fatalf("postgres refused to start (%v):\n%s", werr, out)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logPath)
			t.Fatalf("postgres did not serve TLS within 30 s: %v\n%s", errors.Unwrap(err), out)
		}
	}
}
