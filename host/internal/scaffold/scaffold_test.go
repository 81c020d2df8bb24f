package scaffold

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// goIn runs the go command in dir without the network: every module the
// SDK needs is in the module cache already (this checkout builds).
func goIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

// The scaffolded plugin is its own module, builds, and passes its own
// conformance test (sdktest) as written; inside a checkout it uses the
// local SDK through a relative replace.
func TestScaffoldBuildsAndPassesConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a plugin module")
	}
	sdk := FindSDK(".")
	if sdk == "" {
		t.Fatal("FindSDK: this test runs inside the harden checkout")
	}
	dir := filepath.Join(t.TempDir(), "harden-plugin-redis_x")
	files, err := Write(Options{Name: "redis_x", Dir: dir, Module: "example.com/acme/harden-plugin-redis_x", SDK: sdk})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	if strings.Join(names, " ") != "README.md go.mod main.go plugin.go plugin_test.go verify.go" {
		t.Errorf("files %v", names)
	}
	mod, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
	if !strings.HasPrefix(string(mod), "module example.com/acme/harden-plugin-redis_x\n") ||
		!strings.Contains(string(mod), "replace github.com/harden-dev/harden/shared => "+sdk+"\n") {
		t.Errorf("go.mod (outside the checkout: absolute replace):\n%s", mod)
	}
	goIn(t, dir, "mod", "tidy")
	goIn(t, dir, "vet", ".")
	goIn(t, dir, "build", "-o", "harden-plugin-redis_x", ".")
	out := goIn(t, dir, "test", "-count=1", "-v", ".")
	for _, want := range []string{"--- PASS: TestConformance/metadata_name_matches_binary", "--- PASS: TestConformance/unknown_keys_rejected",
		"--- PASS: TestConformance/stop_cancels_in_flight/verify", "--- PASS: TestConformance/nothing_on_stdout"} {
		if !strings.Contains(out, want) {
			t.Errorf("generated test output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "SKIP") {
		t.Errorf("a conformance check was skipped:\n%s", out)
	}
	for _, f := range []string{"plugin.go", "verify.go", "main.go", "plugin_test.go"} {
		src, _ := os.ReadFile(filepath.Join(dir, f))
		if o, err := exec.Command("gofmt", "-l", filepath.Join(dir, f)).CombinedOutput(); err != nil || len(o) != 0 {
			t.Errorf("%s is not gofmt-clean: %s %v\n%s", f, o, err, src)
		}
	}
}

// Inside the checkout the replace is relative, so the tree can move.
func TestScaffoldInsideCheckoutRelative(t *testing.T) {
	sdk := FindSDK(".")
	root := filepath.Dir(sdk)
	dir, err := os.MkdirTemp(root, ".scaffold-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if FindSDK(dir) != sdk {
		t.Fatalf("FindSDK(%s) = %q", dir, FindSDK(dir))
	}
	if _, err := Write(Options{Name: "x", Dir: filepath.Join(dir, "p"), SDK: sdk}); err != nil {
		t.Fatal(err)
	}
	mod, _ := os.ReadFile(filepath.Join(dir, "p", "go.mod"))
	if !strings.Contains(string(mod), "replace github.com/harden-dev/harden/shared => ../../shared\n") ||
		!strings.HasPrefix(string(mod), "module example.com/harden-plugin-x\n") {
		t.Errorf("go.mod:\n%s", mod)
	}
	// Without an SDK: no replace, no require (go mod tidy resolves it).
	if _, err := Write(Options{Name: "y", Dir: filepath.Join(dir, "q")}); err != nil {
		t.Fatal(err)
	}
	mod, _ = os.ReadFile(filepath.Join(dir, "q", "go.mod"))
	if strings.Contains(string(mod), "replace") || strings.Contains(string(mod), "require") {
		t.Errorf("go.mod without an SDK:\n%s", mod)
	}
}

func TestScaffoldRefuses(t *testing.T) {
	tmp := t.TempDir()
	for _, name := range []string{"", "Redis", "-x", "a b", "../evil", "x/y", "ä", strings.Repeat("a", 41)} {
		_, err := Write(Options{Name: name, Dir: filepath.Join(tmp, "n")})
		if err == nil || !strings.Contains(err.Error(), "plugin name") {
			t.Errorf("name %q: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(tmp, "n")); !os.IsNotExist(err) {
		t.Errorf("a refused name left a directory: %v", err)
	}
	full := filepath.Join(tmp, "full")
	os.Mkdir(full, 0o755)
	os.WriteFile(filepath.Join(full, "notes.txt"), []byte("mine"), 0o644)
	_, err := Write(Options{Name: "ok", Dir: full})
	if err == nil || !strings.Contains(err.Error(), full+" is not empty") {
		t.Errorf("non-empty dir: %v", err)
	}
	if ents, _ := os.ReadDir(full); len(ents) != 1 {
		t.Errorf("wrote into a non-empty dir: %v", ents)
	}
	// An empty existing directory is fine.
	empty := filepath.Join(tmp, "empty")
	os.Mkdir(empty, 0o755)
	if _, err := Write(Options{Name: "ok", Dir: empty}); err != nil {
		t.Errorf("empty dir: %v", err)
	}
	if _, err := Write(Options{Name: "ok", Dir: filepath.Join(tmp, "m"), SDK: tmp}); err == nil || !strings.Contains(err.Error(), "not the plugin SDK module") {
		t.Errorf("bad --sdk: %v", err)
	}
}
