package testenv

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A real Vault server: initialised and unsealed with its secrets in 0600
// files (never in its log), kv-v2 at secret/ as dev mode had, TLS from the
// testenv CA; the restart hook restarts the process, which comes back
// SEALED with its data; Unseal brings it back.
func TestVaultRealServer(t *testing.T) {
	start := time.Now()
	v := VaultForTest(t)
	t.Logf("vault %s up (initialised, unsealed, kv-v2 mounted) in %s", v.Version, time.Since(start).Round(time.Millisecond))
	ctx := context.Background()
	for _, f := range []string{v.TokenFile, v.UnsealKeyFile} {
		st, err := os.Stat(f)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v mode %v, want 0600", f, err, st.Mode())
		}
	}
	key, _ := os.ReadFile(v.UnsealKeyFile)
	token, _ := os.ReadFile(v.TokenFile)
	if log, _ := os.ReadFile(v.LogFile); strings.Contains(string(log), strings.TrimSpace(string(key))) || strings.Contains(string(log), strings.TrimSpace(string(token))) {
		t.Fatal("the unseal key or the root token is in Vault's log")
	}
	if lf, _ := os.ReadFile(v.ListenerFile); !strings.Contains(string(lf), v.CertFile) || strings.Contains(string(lf), "tls_min_version") {
		t.Fatalf("listener file before hardening: %s", lf)
	}
	cl, err := v.Client()
	if err != nil {
		t.Fatal(err)
	}
	mounts, err := cl.Sys().ListMountsWithContext(ctx)
	if err != nil || mounts["secret/"] == nil || mounts["secret/"].Options["version"] != "2" {
		t.Fatalf("secret/ is not kv-v2: %v %+v", err, mounts["secret/"])
	}
	if _, err := cl.Logical().WriteWithContext(ctx, "secret/data/probe", map[string]any{"data": map[string]any{"x": "kept"}}); err != nil {
		t.Fatal(err)
	}

	// The operator's restart command: a new process, sealed, data kept.
	pid := v.PID()
	t0 := time.Now()
	out, err := exec.Command(v.RestartCommand()[0], v.RestartCommand()[1:]...).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("restart command: %v %s", err, out)
	}
	t.Logf("restart (until the listener answers) took %s", time.Since(t0).Round(time.Millisecond))
	if v.PID() == pid {
		t.Fatal("the restart command did not restart Vault")
	}
	if sealed, err := v.Sealed(ctx); err != nil || !sealed {
		t.Fatalf("after a restart Vault must be sealed: sealed=%v %v", sealed, err)
	}
	t0 = time.Now()
	if err := v.Unseal(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("unseal (until active) took %s", time.Since(t0).Round(time.Millisecond))
	s, err := cl.Logical().ReadWithContext(ctx, "secret/data/probe")
	if err != nil || s == nil || s.Data["data"].(map[string]any)["x"] != "kept" {
		t.Fatalf("data after the restart: %v %+v", err, s)
	}

	// A listener file Vault cannot load: the restart hook says so.
	good, _ := os.ReadFile(v.ListenerFile)
	if err := os.WriteFile(v.ListenerFile, []byte(strings.ReplaceAll(string(good), v.CertFile, v.CertFile+".missing")), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(v.RestartCommand()[0], v.RestartCommand()[1:]...).CombinedOutput()
	if err == nil || !strings.HasPrefix(string(out), "error: vault exited") {
		t.Fatalf("restart with a broken listener file: %v %s", err, out)
	}
	if strings.Contains(string(out), strings.TrimSpace(string(key))) {
		t.Fatal("the unseal key is in the restart hook's answer")
	}
	os.WriteFile(v.ListenerFile, good, 0o600)
	if out, err := exec.Command(v.RestartCommand()[0], v.RestartCommand()[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("restart with the file put back: %v %s", err, out)
	}
	if err := v.Unseal(ctx); err != nil {
		t.Fatal(err)
	}
}
