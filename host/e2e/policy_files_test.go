package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/harden-dev/harden/host/internal/cli"
)

// The files a policy names are checked before any plugin sees the target:
// a missing certificate, a group-readable key and /dev/zero as the CA bundle
// are each one error at their policy line, exit 1 (before: /dev/zero ran
// out of memory and exited 2, a 0644 key was accepted silently, a missing
// file was reported without its policy line).
func TestPolicyFilesCheckedAtTheirLine(t *testing.T) {
	f := newFixture(t, "normal")
	f.lockPlugins()
	writeTestCertificate(t, filepath.Join(f.dir, "server.pem"))
	os.WriteFile(filepath.Join(f.dir, "server-key.pem"), []byte("x"), 0o644)
	doc := fmt.Sprintf(`apiVersion: harden/v1
profile: intermediate
certificates: {source: files, files: {ca_file: /dev/zero}}
targets:
  - name: echo-a
    plugin: echo
    connection: {address: "%s", state_file: "%s", token_env: ECHO_TOKEN}
    certificate: {cert_file: server.pem, key_file: server-key.pem, client_cert_file: missing.pem, client_key_file: server-key.pem}
    spec:
      mode: normal
`, f.addr, f.state)
	if err := os.WriteFile(f.policy, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	want := []string{
		f.policy + ":3:48: certificates.files.ca_file: /dev/zero: not a regular file (a character device)",
		f.policy + ":8:52: targets[0].certificate.key_file: " + filepath.Join(f.dir, "server-key.pem") + ": secret file has mode 0644: group or others may access it",
		f.policy + ":8:86: targets[0].certificate.client_cert_file: " + filepath.Join(f.dir, "missing.pem") + ": no such file",
		f.policy + ":8:116: targets[0].certificate.client_key_file: " + filepath.Join(f.dir, "server-key.pem") + ": secret file has mode 0644",
	}
	for _, args := range [][]string{{"policy", "validate"}, {"render"}, {"plan"}, {"verify"}, {"apply", "--yes"}} {
		r := f.run(append(append([]string(nil), args...), "-f", f.policy)...)
		if r.code != cli.ExitConfig {
			t.Errorf("%v: exit %d, want %d\nstdout: %s\nstderr: %s", args, r.code, cli.ExitConfig, r.stdout, r.stderr)
		}
		for _, w := range want {
			if !strings.Contains(r.stdout+r.stderr, w) {
				t.Errorf("%v: output does not contain\n  %s\nstdout: %s\nstderr: %s", args, w, r.stdout, r.stderr)
			}
		}
	}
	if _, err := os.Stat(f.state); err == nil {
		t.Errorf("the plugin applied a target whose files are bad")
	}
}
