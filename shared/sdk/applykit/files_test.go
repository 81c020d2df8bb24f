package applykit

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestWriteFileReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pg_hba.conf")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	owner, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("new\n"), 0o600, owner); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != "new\n" {
		t.Fatalf("content %q, %v", got, err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	assertNoTemps(t, dir)
}

func TestWriteFileLeavesNoTempOnFailure(t *testing.T) {
	dir := t.TempDir()
	// A non-empty directory where the file should go: the temp file is
	// written, the rename fails — the temp file must not stay.
	path := filepath.Join(dir, "target")
	if err := os.MkdirAll(filepath.Join(path, "child"), 0o700); err != nil {
		t.Fatal(err)
	}
	err := WriteFile(path, []byte("data"), 0o600, nil)
	if err == nil {
		t.Fatal("WriteFile over a non-empty directory succeeded")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name %s", err, path)
	}
	assertNoTemps(t, dir)
	// A directory that does not exist: nothing to create, an error naming the path.
	if err := WriteFile(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600, nil); err == nil {
		t.Fatal("WriteFile into a missing directory succeeded")
	}
}

func TestSweepTemps(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{".harden-tmp-123", "server.properties.harden-tmp", ".harden-tmp-abc", ".harden-4242", "pg_hba.conf", "pg_hba.conf.harden-backup-20260101T000000.000Z", ".harden-backup", ".harden-", ".harden-12x"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A directory with a temp-like name is not a file a write left.
	if err := os.Mkdir(filepath.Join(dir, ".harden-tmp-dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	removed, err := SweepTemps(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range removed {
		names = append(names, filepath.Base(p))
	}
	slices.Sort(names)
	want := []string{".harden-4242", ".harden-tmp-123", ".harden-tmp-abc", "server.properties.harden-tmp"}
	if !slices.Equal(names, want) {
		t.Fatalf("removed %v, want %v", names, want)
	}
	left, _ := os.ReadDir(dir)
	var leftNames []string
	for _, e := range left {
		leftNames = append(leftNames, e.Name())
	}
	slices.Sort(leftNames)
	wantLeft := []string{".harden-", ".harden-12x", ".harden-backup", ".harden-tmp-dir", "pg_hba.conf", "pg_hba.conf.harden-backup-20260101T000000.000Z"}
	if !slices.Equal(leftNames, wantLeft) {
		t.Fatalf("left %v, want %v", leftNames, wantLeft)
	}
}

func assertNoTemps(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if isTempName(e.Name()) {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}
