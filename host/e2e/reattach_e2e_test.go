package e2e

import (
	"bufio"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/harden-dev/harden/shared/sdk/hostclient"
)

// A plugin started by hand in debug mode serves a real `harden verify`
// through HARDEN_REATTACH_PLUGINS and --debug-plugins: the checks run in
// that process, harden warns that no pin applies, that it stands in for the
// locked binary and that secrets go to it, `plugins list` says reattached,
// and the plugin is still serving when harden has exited. The variable
// without the flag is a usage error (exit 1) naming both, and nothing is
// attached.
func TestReattachVerifyThroughDebugPlugin(t *testing.T) {
	f := newFixture(t, "normal")
	f.lockPlugins()
	cmd := exec.Command(echoBin)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HARDEN_PLUGIN_DEBUG=1", "TMPDIR=" + t.TempDir()}
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGINT); cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, hostclient.ReattachEnv+`='{"echo":`) {
		t.Fatalf("reattach line %q: %v", line, err)
	}
	t.Setenv(hostclient.ReattachEnv, strings.TrimSpace(line))
	for _, args := range [][]string{{"verify", "-f", f.policy}, {"plugins", "list"}} {
		r := f.run(args...)
		if r.code != 1 || !strings.Contains(r.stderr, hostclient.ReattachEnv+" is set") || !strings.Contains(r.stderr, "--debug-plugins") ||
			strings.Contains(r.stderr, "warning: plugin") || r.stdout != "" {
			t.Fatalf("%v without --debug-plugins: exit %d\n%s\n%s", args, r.code, r.stdout, r.stderr)
		}
	}
	// The flag counts after the command and before it (global).
	for _, args := range [][]string{{"verify", "-f", f.policy, "--debug-plugins"}, {"--debug-plugins", "verify", "-f", f.policy}} {
		r := f.run(args...)
		if r.code != 0 || !strings.Contains(r.stdout, "PASS  high     echo.reachable") {
			t.Fatalf("verify through the debug plugin (%v): exit %d\n%s\n%s", args, r.code, r.stdout, r.stderr)
		}
		for _, want := range []string{"warning: plugin echo: attaching to the process", "do not apply", "instead of the installed " + f.pluginDir,
			"secrets and private keys will be sent to that process"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("warning lacks %q: %s", want, r.stderr)
			}
		}
	}
	r := f.run("plugins", "list", "--debug-plugins")
	if r.code != 0 || !strings.Contains(r.stdout, "reattached") || !strings.Contains(r.stdout, "reattached: unix ") {
		t.Errorf("plugins list: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
