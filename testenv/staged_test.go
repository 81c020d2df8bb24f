package testenv

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStagedUpAddsVaultLater: the demo's cold start. The first stage's
// policy uses files from the enterprise root; Add brings Vault in and
// writes policy-full.yaml with Vault as the source and its intermediate
// signed outside Vault, leaving policy.yaml as it was.
func TestStagedUpAddsVaultLater(t *testing.T) {
	if _, err := VaultBinary(); err != nil {
		unavailable(t, "vault: %v", err)
	}
	dir := t.TempDir()
	env, err := Up(context.Background(), Options{Services: []string{"ingest"}, StateDir: dir, Staged: true})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Down()
	if !env.CA.cert.IsCA || env.CA.cert.MaxPathLen != 1 {
		t.Fatalf("staged CA: path length %d, want an enterprise root (1)", env.CA.cert.MaxPathLen)
	}
	first, err := os.ReadFile(filepath.Join(dir, "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(first), "source: files") || strings.Contains(string(first), "vaultpki") {
		t.Fatalf("first stage policy:\n%s", first)
	}
	if err := env.Add(context.Background(), []string{"vault"}, "policy-full.yaml"); err != nil {
		t.Fatal(err)
	}
	full, err := os.ReadFile(filepath.Join(dir, "policy-full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"source: vault-pki", "plugin: vaultpki", "external_intermediate", IntermediateCSR, "name: ingest"} {
		if !strings.Contains(string(full), want) {
			t.Errorf("policy-full.yaml lacks %q:\n%s", want, full)
		}
	}
	if err := env.Add(context.Background(), []string{"ingest"}, "policy-again.yaml"); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("adding a running service again: %v", err)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "policy.yaml")); string(again) != string(first) {
		t.Error("Add rewrote the first stage's policy.yaml")
	}
}
