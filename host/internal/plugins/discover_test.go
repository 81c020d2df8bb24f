package plugins

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func mkPluginDir(t *testing.T) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "p")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(d, 0o755)
	return d
}

func put(t *testing.T, dir, name string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func names(bs []Binary) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Name)
	}
	return out
}

// Only executable regular files named harden-plugin-<valid name> are
// plugins; the rest is ignored without a word (a plugin dir may hold other
// things), and the result is sorted by name.
func TestDiscoverWhatCounts(t *testing.T) {
	d := mkPluginDir(t)
	put(t, d, "harden-plugin-zeta", 0o755)
	put(t, d, "harden-plugin-alpha_1", 0o700)
	put(t, d, "harden-plugin-noexec", 0o644)
	put(t, d, "harden-plugin-Upper", 0o755)
	put(t, d, "harden-plugin--dash", 0o755)
	put(t, d, "harden-plugin-", 0o755)
	put(t, d, "other-tool", 0o755)
	put(t, d, "harden-plugins-x", 0o755)
	os.Mkdir(filepath.Join(d, "harden-plugin-dir"), 0o755)
	os.Symlink(filepath.Join(d, "missing"), filepath.Join(d, "harden-plugin-dangling"))
	found, problems := Discover([]string{d, filepath.Join(d, "does-not-exist")})
	if got := names(found); !slices.Equal(got, []string{"alpha_1", "zeta"}) {
		t.Errorf("found %v, want [alpha_1 zeta]", got)
	}
	if len(problems) != 0 {
		t.Errorf("problems %v (a missing dir is skipped)", problems)
	}
}

// Earlier dirs win; a later binary of the same name is listed as shadowed.
// The search path is explicit dirs, then HARDEN_PLUGIN_PATH, then the data
// dir.
func TestDiscoverOrderAndShadowing(t *testing.T) {
	a, b, c := mkPluginDir(t), mkPluginDir(t), mkPluginDir(t)
	data := t.TempDir()
	t.Setenv("XDG_DATA_HOME", data)
	t.Setenv("HARDEN_PLUGIN_PATH", b+string(os.PathListSeparator)+string(os.PathListSeparator)+c)
	dirs := Dirs([]string{a})
	if want := []string{a, b, c, filepath.Join(data, "harden", "plugins")}; !slices.Equal(dirs, want) {
		t.Fatalf("dirs %v, want %v", dirs, want)
	}
	first := put(t, a, "harden-plugin-pg", 0o755)
	second := put(t, c, "harden-plugin-pg", 0o755)
	put(t, b, "harden-plugin-kafka", 0o755)
	found, _ := Discover(dirs)
	if len(found) != 2 || found[1].Name != "pg" || found[1].Path != first || !slices.Equal(found[1].Shadowed, []string{second}) {
		t.Errorf("found %+v", found)
	}
}

// A binary others could replace is refused and reported as untrusted, by
// name, so the CLI can say why a plugin it needs is missing.
func TestDiscoverRefusesChangeableBinaries(t *testing.T) {
	d := mkPluginDir(t)
	gw := put(t, d, "harden-plugin-gw", 0o775)
	ow := put(t, d, "harden-plugin-ow", 0o757)
	put(t, d, "harden-plugin-ok", 0o755)
	found, problems := Discover([]string{d})
	if got := names(found); !slices.Equal(got, []string{"ok"}) {
		t.Errorf("found %v", got)
	}
	for name, path := range map[string]string{"gw": gw, "ow": ow} {
		p, ok := UntrustedProblem(problems, name)
		if !ok || p.Path != path || !strings.Contains(p.Reason, "refused: ") {
			t.Errorf("%s: problem %+v %v (all: %v)", name, p, ok, problems)
		}
	}
	if _, ok := UntrustedProblem(problems, "ok"); ok {
		t.Error("trusted binary reported")
	}
	// A whole plugin dir writable by group: every binary in it refused.
	os.Chmod(d, 0o775)
	if found, problems := Discover([]string{d}); len(found) != 0 || len(problems) != 3 {
		t.Errorf("group-writable dir: found %v problems %v", found, problems)
	}
}

func TestDiscoverRefusesOtherOwner(t *testing.T) {
	needRoot(t)
	d := mkPluginDir(t)
	p := put(t, d, "harden-plugin-theirs", 0o755)
	if err := os.Chown(p, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	found, problems := Discover([]string{d})
	if len(found) != 0 {
		t.Errorf("found %v", found)
	}
	if pr, ok := UntrustedProblem(problems, "theirs"); !ok || !strings.Contains(pr.Reason, "owned by") {
		t.Errorf("problems %v", problems)
	}
}

// A plugin dir that exists but cannot be read is a problem, not silence.
func TestDiscoverUnreadableDir(t *testing.T) {
	d := mkPluginDir(t)
	f := put(t, d, "not-a-dir", 0o644)
	_, problems := Discover([]string{f})
	if len(problems) != 1 || problems[0].Path != f {
		t.Errorf("problems %v", problems)
	}
}
