package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A directory delivery switches the whole bundle at once: dir is a link to
// a version directory (0700, files 0600); the version before stays, older
// ones go; a real directory with content is refused; a path leaving the
// version is refused with nothing switched.
func TestDeliverDir(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "loader")
	one := map[string][]byte{"tls.crt": []byte("cert 1"), "tls.key": []byte("key 1"), "pg/libpq.conf": []byte("host=x")}
	two := map[string][]byte{"tls.crt": []byte("cert 2"), "tls.key": []byte("key 2")}
	three := map[string][]byte{"tls.crt": []byte("cert 3"), "tls.key": []byte("key 3")}
	for i, b := range []map[string][]byte{one, two, three} {
		if err := deliverDir(dir, b, "aa:bb"); err != nil {
			t.Fatalf("delivery %d: %v", i+1, err)
		}
		for name, want := range b {
			got, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil || string(got) != string(want) {
				t.Errorf("delivery %d: %s = %q, %v", i+1, name, got, err)
			}
			if fi, _ := os.Stat(filepath.Join(dir, name)); fi.Mode().Perm() != 0o600 {
				t.Errorf("%s mode %v", name, fi.Mode())
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "pg/libpq.conf")); !os.IsNotExist(err) {
		t.Error("a file of an older bundle is visible through the link")
	}
	if fi, err := os.Lstat(dir); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("dir is not a link: %v %v", fi, err)
	}
	versions, _ := os.ReadDir(filepath.Join(parent, ".loader.bundles"))
	if len(versions) != 2 {
		t.Errorf("%d versions kept, want the current and the one before", len(versions))
	}
	target, _ := os.Readlink(dir)
	if fi, _ := os.Stat(target); fi.Mode().Perm() != 0o700 {
		t.Errorf("version dir mode %v", fi.Mode())
	}
	// A path that leaves the version: refused, the link unchanged.
	if err := deliverDir(dir, map[string][]byte{"../escape": []byte("x"), "tls.crt": []byte("cert 4")}, "cc"); err == nil || !strings.Contains(err.Error(), "leaves") {
		t.Errorf("escape: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "tls.crt")); string(got) != "cert 3" {
		t.Errorf("a refused delivery switched the link: %q", got)
	}
	// An operator's real directory with content is not replaced.
	other := filepath.Join(parent, "ops")
	os.MkdirAll(other, 0o755)
	os.WriteFile(filepath.Join(other, "notes"), []byte("mine"), 0o644)
	if err := deliverDir(other, one, "dd"); err == nil || !strings.Contains(err.Error(), "not harden's delivery link") {
		t.Errorf("a real directory: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(other, "notes")); string(got) != "mine" {
		t.Error("the operator's directory changed")
	}
	// An empty one is taken over.
	empty := filepath.Join(parent, "empty")
	os.MkdirAll(empty, 0o700)
	if err := deliverDir(empty, one, "ee"); err != nil {
		t.Errorf("an empty directory: %v", err)
	}
}
