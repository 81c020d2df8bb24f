package plugins

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// nobody is the second local user of the ownership tests.
const nobody = 65534

// needRoot: the ownership cases need chown. Under CI=true they must run.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the plugin ownership tests need root (chown to another user); CI runs them as root")
		}
		t.Skip("not root: cannot chown to another user")
	}
}

// trustTree is <tmp>/top/plugins/harden-plugin-echo plus top/plugins.lock.
type trustTree struct {
	top, dir, bin, lock string
}

func newTrustTree(t *testing.T) trustTree {
	t.Helper()
	top := filepath.Join(t.TempDir(), "top")
	tr := trustTree{top: top, dir: filepath.Join(top, "plugins")}
	tr.bin = filepath.Join(tr.dir, "harden-plugin-echo")
	tr.lock = filepath.Join(top, "plugins.lock")
	if err := os.MkdirAll(tr.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// MkdirAll obeys the umask; the test wants exact modes.
	for _, d := range []string{top, tr.dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(tr.bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	l := &Lock{Version: LockVersion, Plugins: map[string]LockEntry{"echo": {SHA256: strings.Repeat("0", 64)}}}
	if err := l.Write(tr.lock); err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestTrustRule(t *testing.T) {
	cases := map[string]struct {
		root    bool // needs chown
		arrange func(t *testing.T, tr trustTree)
		// binary / lock: the expected refusal (substring), "" = trusted.
		binary, lock string
	}{
		"good": {arrange: func(*testing.T, trustTree) {}},
		"binary owned by another user": {root: true, arrange: func(t *testing.T, tr trustTree) { chown(t, tr.bin) },
			binary: "plugin binary " + "%bin: %bin is owned by another user (owner uid 65534 (nobody), mode 0755)"},
		"binary group-writable": {arrange: func(t *testing.T, tr trustTree) { chmod(t, tr.bin, 0o775) },
			binary: "%bin is writable by group (owner uid 0 (root), mode 0775)"},
		"plugin dir owned by another user": {root: true, arrange: func(t *testing.T, tr trustTree) { chown(t, tr.dir) },
			binary: "directory %dir is owned by another user (owner uid 65534 (nobody), mode 0755)"},
		"plugin dir world-writable even with the sticky bit": {arrange: func(t *testing.T, tr trustTree) { chmod(t, tr.dir, 0o1777) },
			binary: "directory %dir is writable by group and others (owner uid 0 (root), mode 1777)"},
		"intermediate dir group-writable": {arrange: func(t *testing.T, tr trustTree) { chmod(t, tr.top, 0o775) },
			binary: "directory %top is writable by group (owner uid 0 (root), mode 0775)",
			lock:   "directory %top is writable by group"},
		"intermediate dir owned by another user": {root: true, arrange: func(t *testing.T, tr trustTree) { chown(t, tr.top) },
			binary: "directory %top is owned by another user", lock: "directory %top is owned by another user"},
		"sticky world-writable dir above the plugin dir (like /tmp)": {arrange: func(t *testing.T, tr trustTree) { chmod(t, tr.top, 0o1777) },
			lock: "directory %top is writable by group and others"},
		"lock file world-writable": {arrange: func(t *testing.T, tr trustTree) { chmod(t, tr.lock, 0o666) },
			lock: "plugin lock file %lock: %lock is writable by group and others (owner uid 0 (root), mode 0666)"},
		"lock file owned by another user": {root: true, arrange: func(t *testing.T, tr trustTree) { chown(t, tr.lock) },
			lock: "%lock is owned by another user (owner uid 65534 (nobody), mode 0644)"},
		"symlinked binary judged by its target": {arrange: func(t *testing.T, tr trustTree) {
			other := filepath.Join(tr.top, "elsewhere")
			if err := os.Mkdir(other, 0o777); err != nil {
				t.Fatal(err)
			}
			chmod(t, other, 0o777)
			if err := os.Rename(tr.bin, filepath.Join(other, "real")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(other, "real"), tr.bin); err != nil {
				t.Fatal(err)
			}
		}, binary: "directory %top/elsewhere is writable by group and others"},
		"symlinked lock judged by its target": {root: true, arrange: func(t *testing.T, tr trustTree) {
			real := filepath.Join(tr.top, "real.lock")
			if err := os.Rename(tr.lock, real); err != nil {
				t.Fatal(err)
			}
			chown(t, real)
			if err := os.Symlink(real, tr.lock); err != nil {
				t.Fatal(err)
			}
		}, lock: "%top/real.lock is owned by another user"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if tc.root {
				needRoot(t)
			} else if os.Geteuid() != 0 && (tc.binary != "" || tc.lock != "") {
				// The expected messages name root as the owner.
				needRoot(t)
			}
			tr := newTrustTree(t)
			tc.arrange(t, tr)
			expand := func(s string) string {
				return strings.NewReplacer("%bin", tr.bin, "%dir", tr.dir, "%top", tr.top, "%lock", tr.lock).Replace(s)
			}
			found, problems := Discover([]string{tr.dir})
			switch {
			case tc.binary == "":
				if len(found) != 1 || len(problems) != 0 {
					t.Errorf("binary refused: found %v, problems %v", found, problems)
				}
			case len(found) != 0 || len(problems) != 1 || !problems[0].Untrusted():
				t.Errorf("binary not refused as untrusted: found %v, problems %v", found, problems)
			case !strings.Contains(problems[0].Reason, expand(tc.binary)):
				t.Errorf("refusal %q\nwant it to contain %q", problems[0].Reason, expand(tc.binary))
			}
			_, err := ReadLock(tr.lock)
			switch {
			case tc.lock == "":
				if err != nil {
					t.Errorf("lock refused: %v", err)
				}
			case !errors.Is(err, ErrUntrusted):
				t.Errorf("lock not refused as untrusted: %v", err)
			case !strings.Contains(err.Error(), expand(tc.lock)):
				t.Errorf("lock refusal %q\nwant it to contain %q", err, expand(tc.lock))
			}
		})
	}
}

// plugins lock never writes a lock where it would not be trusted.
func TestLockWriteRefusesUntrustedDir(t *testing.T) {
	tr := newTrustTree(t)
	chmod(t, tr.top, 0o777)
	err := (&Lock{Version: LockVersion, Plugins: map[string]LockEntry{}}).Write(filepath.Join(tr.top, "new.lock"))
	if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "plugin lock directory "+tr.top) {
		t.Fatalf("write into a world-writable dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tr.top, "new.lock")); !os.IsNotExist(err) {
		t.Errorf("lock written anyway")
	}
}

func chown(t *testing.T, path string) {
	t.Helper()
	if err := os.Lchown(path, nobody, nobody); err != nil {
		t.Fatal(err)
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if mode&0o1000 != 0 {
		mode = mode&0o777 | os.ModeSticky
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
