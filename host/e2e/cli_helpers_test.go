package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/harden-dev/harden/host/internal/cli"
)

// buildPlugins builds the named product plugins (plugins/<name>) into
// pluginDir as harden-plugin-<name>.
func buildPlugins(t testing.TB, pluginDir string, names ...string) {
	t.Helper()
	for _, p := range names {
		cmd := exec.Command("go", "build", "-o", filepath.Join(pluginDir, "harden-plugin-"+p), "./plugins/"+p)
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", p, err, out)
		}
	}
}

// cliRunner runs the CLI in process (plugins are real child processes)
// with pluginDir and lock, the environment as it is, and no terminal.
func cliRunner(t testing.TB, pluginDir, lock string) func(args ...string) result {
	return func(args ...string) result {
		t.Helper()
		var out, errb strings.Builder
		io := cli.IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, IsTerminal: func() bool { return false }, Getenv: os.LookupEnv}
		code := cli.Run(context.Background(), append(append([]string{"harden"}, args...), "--plugin-dir", pluginDir, "--lock-file", lock), io)
		return result{code, out.String(), errb.String()}
	}
}

// buildTLSFileKit builds, under dir, the vaultpki plugin and the tlsfile
// test plugin into dir/plugins and the SIGHUP-reloading TLS server it
// drives (host/testdata/tlsfileplugin); it returns the plugin dir and the
// server binary.
func buildTLSFileKit(t testing.TB, dir string) (pluginDir, serverBin string) {
	t.Helper()
	pluginDir, serverBin = filepath.Join(dir, "plugins"), filepath.Join(dir, "tlsserver")
	for _, b := range []struct{ dir, out, pkg string }{
		{"../..", filepath.Join(pluginDir, "harden-plugin-vaultpki"), "./plugins/vaultpki"},
		{"../testdata/tlsfileplugin", filepath.Join(pluginDir, "harden-plugin-tlsfile"), "."},
		{"../testdata/tlsfileplugin", serverBin, "./server"},
	} {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		cmd.Dir = b.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", b.pkg, err, out)
		}
	}
	return pluginDir, serverBin
}
