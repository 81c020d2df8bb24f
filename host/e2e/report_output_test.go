package e2e

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// countingServer answers like echoServer and counts connections.
func countingServer(t *testing.T) (string, *atomic.Int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			go func() {
				defer c.Close()
				buf := make([]byte, 256)
				if _, err := c.Read(buf); err == nil {
					c.Write([]byte("OK\n"))
				}
			}()
		}
	}()
	return ln.Addr().String(), &n
}

// TestVerifyOutputs: --output and --output-dir write complete files only;
// a path that cannot be written is refused (exit 1) before any target is
// contacted, and a file already there is left as it was.
func TestVerifyOutputs(t *testing.T) {
	f := newFixture(t, "normal")
	addr, conns := countingServer(t)
	f.addr = addr
	f.writePolicy("normal")
	f.lockPlugins()

	old := filepath.Join(f.dir, "keep.json")
	if err := os.WriteFile(old, []byte("previous report"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"missing directory":         {"--format", "json", "--output", filepath.Join(f.dir, "no", "such", "dir", "r.json")},
		"several formats, one file": {"--format", "json", "--format", "sarif", "--output", old},
		"unknown format":            {"--format", "yaml"},
		"output dir missing":        {"--format", "json", "--output-dir", filepath.Join(f.dir, "nope")},
	} {
		r := f.run(append([]string{"verify", "-f", f.policy}, args...)...)
		if r.code != 1 || r.stderr == "" {
			t.Errorf("%s: exit %d, stderr %q", name, r.code, r.stderr)
		}
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("refused output flags still contacted the target %d time(s)", n)
	}
	if b, _ := os.ReadFile(old); string(b) != "previous report" {
		t.Fatalf("an existing file was changed by a refused run: %q", b)
	}

	out := filepath.Join(f.dir, "reports")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	r := f.run("verify", "-f", f.policy, "--format", "json", "--format", "text", "--output-dir", out)
	if r.code != 0 {
		t.Fatalf("verify --output-dir: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if conns.Load() == 0 {
		t.Fatal("verify did not contact the target")
	}
	for _, name := range []string{"harden-verify.json", "harden-verify.txt"} {
		if !strings.Contains(r.stderr, "wrote "+filepath.Join(out, name)) {
			t.Errorf("stderr does not name %s: %q", name, r.stderr)
		}
	}
	var rep struct {
		FormatVersion int    `json:"format_version"`
		Command       string `json:"command"`
		Targets       []struct {
			Name   string `json:"name"`
			Line   int    `json:"line"`
			Checks []struct{ ID, Status string }
		} `json:"targets"`
	}
	b, err := os.ReadFile(filepath.Join(out, "harden-verify.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("JSON report: %v", err)
	}
	// The target is the list item on line 4 of the policy writePolicy writes.
	if rep.FormatVersion != 1 || rep.Command != "verify" || len(rep.Targets) != 1 || rep.Targets[0].Line != 4 || len(rep.Targets[0].Checks) == 0 {
		t.Fatalf("report %+v", rep)
	}
	text, _ := os.ReadFile(filepath.Join(out, "harden-verify.txt"))
	if !strings.Contains(string(text), "PASS  high     echo.reachable") {
		t.Errorf("text report: %s", text)
	}
	if r.stdout != "" {
		t.Errorf("stdout should be empty when every format went to a file: %q", r.stdout)
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != 2 {
		t.Errorf("files in the output dir: %v", entries)
	}
}
