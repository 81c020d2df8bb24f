package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/harden-dev/harden/host/internal/cli"
)

// The trust rule end to end: a plugin binary, a directory above it, a lock
// file or the lock's directory that another local user (nobody, 65534)
// owns or that group or others can write is refused with exit 3, and the
// reason names the path, its owner and its mode.
func TestPluginTrustByOwner(t *testing.T) {
	const nobody = 65534
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the plugin ownership tests need root (chown to another user); CI runs them as root")
		}
		t.Skip("not root: cannot chown to another user")
	}
	chown := func(t *testing.T, p string) {
		if err := os.Lchown(p, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	chmod := func(t *testing.T, p string, m os.FileMode) {
		if err := os.Chmod(p, m); err != nil {
			t.Fatal(err)
		}
	}
	cases := map[string]struct {
		arrange func(t *testing.T, f *fixture)
		want    string // in stderr; "" = trusted, exit 0
	}{
		"good": {func(*testing.T, *fixture) {}, ""},
		"binary owned by another user": {func(t *testing.T, f *fixture) { chown(t, f.plugin) },
			"plugin echo refused: untrusted: plugin binary %plugin: %plugin is owned by another user (owner uid 65534 (nobody), mode 0755)"},
		"binary group-writable": {func(t *testing.T, f *fixture) { chmod(t, f.plugin, 0o775) },
			"%plugin is writable by group (owner uid 0 (root), mode 0775)"},
		"plugin dir owned by another user": {func(t *testing.T, f *fixture) { chown(t, f.pluginDir) },
			"directory %plugindir is owned by another user (owner uid 65534 (nobody), mode 0755)"},
		"intermediate dir group-writable": {func(t *testing.T, f *fixture) { chmod(t, f.dir, 0o775) },
			"directory %dir is writable by group (owner uid 0 (root), mode 0775)"},
		"lock file world-writable": {func(t *testing.T, f *fixture) { chmod(t, f.lock, 0o666) },
			"untrusted: plugin lock file %lock: %lock is writable by group and others (owner uid 0 (root), mode 0666)"},
		"lock file owned by another user": {func(t *testing.T, f *fixture) { chown(t, f.lock) },
			"untrusted: plugin lock file %lock: %lock is owned by another user (owner uid 65534 (nobody), mode 0644)"},
		"lock dir writable by others": {func(t *testing.T, f *fixture) { chmod(t, filepath.Dir(f.lock), 0o777) },
			"untrusted: plugin lock file %lock: directory %lockdir is writable by group and others (owner uid 0 (root), mode 0777)"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, "normal")
			// The lock in a directory of its own, so its directory can be
			// opened up without touching the plugin's.
			lockDir := filepath.Join(f.dir, "lockdir")
			if err := os.Mkdir(lockDir, 0o755); err != nil {
				t.Fatal(err)
			}
			chmod(t, lockDir, 0o755)
			chmod(t, f.dir, 0o755)
			f.lock = filepath.Join(lockDir, "plugins.lock")
			f.lockPlugins()
			tc.arrange(t, f)
			want := strings.NewReplacer("%plugindir", f.pluginDir, "%plugin", f.plugin, "%lockdir", lockDir, "%lock", f.lock, "%dir", f.dir).Replace(tc.want)
			r := f.run("verify", "-f", f.policy)
			if want == "" {
				if r.code != 0 {
					t.Fatalf("trusted plugin and lock: exit %d\n%s", r.code, r.stderr)
				}
				return
			}
			if r.code != cli.ExitTarget || !strings.Contains(r.stderr, want) {
				t.Errorf("verify: exit %d (want %d)\nstderr: %s\nwant: %s", r.code, cli.ExitTarget, r.stderr, want)
			}
			if strings.Contains(r.stdout, "PASS") {
				t.Errorf("an untrusted plugin ran:\n%s", r.stdout)
			}
			r = f.run("plugins", "list")
			if r.code != cli.ExitTarget || !strings.Contains(r.stdout+r.stderr, strings.TrimPrefix(want, "plugin echo refused: ")) {
				t.Errorf("plugins list: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
		})
	}
}

// plugins lock neither pins an untrusted binary nor writes a lock where it
// would not be trusted: exit 3 with the reason.
func TestLockRefusesUntrusted(t *testing.T) {
	f := newFixture(t, "normal")
	open := filepath.Join(f.dir, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	f.lock = filepath.Join(open, "plugins.lock")
	r := f.run("plugins", "lock")
	if r.code != cli.ExitTarget || !strings.Contains(r.stderr, "untrusted: plugin lock directory "+open+": directory "+open+" is writable by group and others") {
		t.Errorf("lock into a world-writable dir: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(f.lock); !os.IsNotExist(err) {
		t.Errorf("lock written anyway")
	}
	f.lock = filepath.Join(f.dir, "plugins.lock")
	if err := os.Chmod(f.plugin, 0o757); err != nil {
		t.Fatal(err)
	}
	r = f.run("plugins", "lock")
	if r.code != cli.ExitTarget || !strings.Contains(r.stderr, "not locking "+f.plugin+": refused: untrusted: plugin binary") ||
		!strings.Contains(r.stderr, "1 plugin binary(ies) refused as untrusted and not locked") {
		t.Errorf("lock an untrusted binary: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
