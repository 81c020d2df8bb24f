package testenv

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestPostgresSmoke(t *testing.T) {
	p := PostgresForTest(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, p.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var version, ssl string
	if err := conn.QueryRow(ctx, "select version(), current_setting('ssl')").Scan(&version, &ssl); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(version, "PostgreSQL ") {
		t.Errorf("version %q", version)
	}
	// The "before" state: TLS off.
	if ssl != "off" {
		t.Errorf("ssl = %q; testenv must start unhardened", ssl)
	}
	// The password login works only with the right password.
	bad := strings.Replace(p.DSN(), "password="+p.Password(), "password=wrong", 1)
	if c, err := pgx.Connect(ctx, bad); err == nil {
		c.Close(ctx)
		t.Errorf("wrong password accepted")
	} else if strings.Contains(err.Error(), p.Password()) {
		t.Errorf("error leaks the password")
	}
	if st, err := os.Stat(p.PasswordFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("password file: %v %v", err, st)
	}
	base := p.Base
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(base); !os.IsNotExist(err) {
		t.Errorf("cluster dir left behind: %s", base)
	}
	if c, err := pgx.Connect(ctx, p.DSN()); err == nil {
		c.Close(ctx)
		t.Errorf("server still answers after Stop")
	}
}

func TestUpWritesEnvAndPolicy(t *testing.T) {
	if _, err := FindPostgresBinDir(); err != nil {
		unavailable(t, "%v", err)
	}
	dir := t.TempDir()
	env, err := Up(context.Background(), Options{Services: []string{"postgres"}, StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Down()
	var ef EnvFile
	data, err := os.ReadFile(filepath.Join(dir, "env.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &ef); err != nil {
		t.Fatal(err)
	}
	pg, ok := ef.Services["postgres"].(map[string]any)
	if !ok || pg["port"] == nil || pg["password_file"] == nil {
		t.Fatalf("env.json: %s", data)
	}
	pw, _ := os.ReadFile(pg["password_file"].(string))
	if strings.Contains(string(data), strings.TrimSpace(string(pw))) {
		t.Errorf("env.json contains the password itself")
	}
	pol, _ := os.ReadFile(ef.Policy)
	for _, want := range []string{"apiVersion: harden/v1", "plugin: postgres", "password_file:", "ca_file:"} {
		if !strings.Contains(string(pol), want) {
			t.Errorf("policy.yaml lacks %q:\n%s", want, pol)
		}
	}
	if _, err := Up(context.Background(), Options{Services: []string{"nosuch"}, StateDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "unknown service") {
		t.Errorf("unknown service: %v", err)
	}
}
