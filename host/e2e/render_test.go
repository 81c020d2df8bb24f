package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// render without --out lists binary artifacts (PKCS#12 stores) with their
// size instead of dumping their bytes to the terminal, and never prints a
// private key, even one the plugin forgot to mark sensitive. Exit 0: the
// listing is what render without --out is for.
func TestRenderBinaryArtifactsOnlyWithOut(t *testing.T) {
	f := newFixture(t, "binary")
	f.lockPlugins()
	r := f.run("render", "-f", f.policy)
	if r.code != 0 {
		t.Fatalf("render: exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{
		"artifact truststore.p12 (mode 0644, 14 bytes) [binary, written only with --out]",
		"artifact careless-key.pem (mode 0644, ",
		"[sensitive, not shown; use --out]",
		"artifact echo.conf (mode 0644, ",
		"    | ciphers = ",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("render output lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, never := range []string{"\xff", "\x1b[2J", "\x00", "PRIVATE KEY", "MHcCAQEEIBkg"} {
		if strings.Contains(r.stdout+r.stderr, never) {
			t.Errorf("render printed %q:\n%q", never, r.stdout)
		}
	}
	r = f.run("render", "-f", f.policy, "--format", "json")
	var rep struct {
		Targets []struct {
			Artifacts []struct {
				Path      string
				Size      int
				Binary    bool
				Sensitive bool
				Content   *string
			}
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || len(rep.Targets) != 1 {
		t.Fatalf("json: %v\n%s", err, r.stdout)
	}
	for _, a := range rep.Targets[0].Artifacts {
		switch a.Path {
		case "truststore.p12":
			if !a.Binary || a.Size != 14 || a.Content != nil {
				t.Errorf("json truststore: %+v", a)
			}
		case "careless-key.pem":
			if !a.Sensitive || a.Content != nil {
				t.Errorf("json key: %+v", a)
			}
		}
	}
	// With --out the bytes are written as rendered, the key 0600.
	out := filepath.Join(f.dir, "out")
	if r := f.run("render", "-f", f.policy, "--out", out); r.code != 0 {
		t.Fatalf("render --out: exit %d %s", r.code, r.stderr)
	}
	p12, err := os.ReadFile(filepath.Join(out, "echo-a", "truststore.p12"))
	if err != nil || !bytes.Equal(p12, []byte{0x30, 0x82, 0x01, 0x0a, 0x02, 0x01, 0x03, 0x30, 0x00, 0x1b, '[', '2', 'J', 0xff}) {
		t.Errorf("truststore.p12: %v %x", err, p12)
	}
	if st, err := os.Stat(filepath.Join(out, "echo-a", "careless-key.pem")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("careless key file: %v %v", err, st)
	}
}
