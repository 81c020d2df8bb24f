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
// through HARDEN_REATTACH_PLUGINS: the checks run in that process, harden
// warns that no pin applies, `plugins list` says reattached, and the plugin
// is still serving when harden has exited.
func TestVerifyAttachesToDebugPlugin(t *testing.T) {
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
	for range 2 {
		r := f.run("verify", "-f", f.policy)
		if r.code != 0 || !strings.Contains(r.stdout, "PASS  high     echo.reachable") {
			t.Fatalf("verify through the debug plugin: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stderr, "warning: plugin echo: attaching to the process") || !strings.Contains(r.stderr, "do not apply") {
			t.Errorf("no warning that the pin does not apply: %s", r.stderr)
		}
	}
	r := f.run("plugins", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "reattached") || !strings.Contains(r.stdout, "reattached: unix ") {
		t.Errorf("plugins list: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
