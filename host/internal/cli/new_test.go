package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runIn(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	io := IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, IsTerminal: func() bool { return false },
		Getenv: func(string) (string, bool) { return "", false }}
	code := Run(context.Background(), append([]string{"harden"}, args...), io)
	return code, out.String(), errb.String()
}

func TestPluginsNew(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "p")
	code, out, errs := runIn(t, "plugins", "new", "--no-tidy", "--dir", dir, "--module", "example.org/p", "mine")
	if code != 0 || !strings.Contains(out, "wrote "+filepath.Join(dir, "plugin.go")) || !strings.Contains(out, "next: cd "+dir) {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	mod, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
	if !strings.HasPrefix(string(mod), "module example.org/p\n") || strings.Contains(string(mod), "replace") {
		t.Errorf("go.mod outside a checkout:\n%s", mod)
	}
	main, _ := os.ReadFile(filepath.Join(dir, "plugin.go"))
	if !strings.Contains(string(main), `name    = "mine"`) {
		t.Errorf("plugin.go:\n%s", main)
	}
	// The same again: the directory is not empty now. One clear error, exit 1.
	code, _, errs = runIn(t, "plugins", "new", "--no-tidy", "--dir", dir, "mine")
	if code != ExitConfig || !strings.Contains(errs, dir+" is not empty") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Errorf("non-empty dir: %d %q", code, errs)
	}
	code, _, errs = runIn(t, "plugins", "new", "--no-tidy", "--dir", filepath.Join(tmp, "q"), "Bad/Name")
	if code != ExitConfig || !strings.Contains(errs, `plugin name "Bad/Name"`) {
		t.Errorf("bad name: %d %q", code, errs)
	}
	if code, _, errs = runIn(t, "plugins", "new", "--no-tidy"); code != ExitConfig || !strings.Contains(errs, "want exactly one NAME") {
		t.Errorf("no name: %d %q", code, errs)
	}
	// Inside the checkout the local SDK is found by itself.
	in, err := os.MkdirTemp("../../..", ".plugins-new-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(in)
	code, out, errs = runIn(t, "plugins", "new", "--no-tidy", "--dir", filepath.Join(in, "x"), "x")
	mod, _ = os.ReadFile(filepath.Join(in, "x", "go.mod"))
	if code != 0 || !strings.Contains(string(mod), "replace github.com/harden-dev/harden/shared => ../../shared\n") {
		t.Errorf("inside the checkout: %d %s %s\n%s", code, out, errs, mod)
	}
}
