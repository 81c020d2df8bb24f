package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sampleRun() *Run {
	r := &Run{FormatVersion: FormatVersion, Policy: "policy.yaml", Profile: "intermediate", Targets: []Target{{Name: "pg", Plugin: "postgres", Status: "ok", Line: 7,
		Checks: []Check{{ID: "tls.enabled", Status: "pass", Severity: "high", Subject: "127.0.0.1:5432", Evidence: "TLS handshake completed", References: []string{}}}}}}
	r.Finish("verify")
	return r
}

func TestOutputsStdoutByDefault(t *testing.T) {
	o, err := Open(nil, "", "", "verify", nil)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	written, err := o.Commit(sampleRun(), &out)
	if err != nil || len(written) != 0 {
		t.Fatalf("written %v, err %v", written, err)
	}
	if !strings.Contains(out.String(), "tls.enabled") || !strings.Contains(out.String(), "Summary: 1 passed") {
		t.Fatalf("text report: %q", out.String())
	}
}

func TestOutputsOneFileAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run.json")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := Open([]string{"json"}, path, "", "verify", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Until Commit, the old file is untouched and a temporary sibling exists.
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Fatalf("replaced before Commit: %q", b)
	}
	var stdout bytes.Buffer
	written, err := o.Commit(sampleRun(), &stdout)
	if err != nil || len(written) != 1 || written[0] != path {
		t.Fatalf("written %v, err %v", written, err)
	}
	if stdout.Len() != 0 {
		t.Fatalf("stdout got %q with --output", stdout.String())
	}
	var back Run
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &back); err != nil || back.Targets[0].Line != 7 || back.FormatVersion != 1 {
		t.Fatalf("read back %+v: %v", back, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("leftover files: %v", entries)
	}
}

func TestOutputsSeveralFormatsInADirectory(t *testing.T) {
	dir := t.TempDir()
	o, err := Open([]string{"json", "text"}, "", dir, "verify", nil)
	if err != nil {
		t.Fatal(err)
	}
	written, err := o.Commit(sampleRun(), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "harden-verify.json"), filepath.Join(dir, "harden-verify.txt")}
	if strings.Join(written, ",") != strings.Join(want, ",") {
		t.Fatalf("written %v, want %v", written, want)
	}
}

func TestOutputsBadFlags(t *testing.T) {
	dir := t.TempDir()
	for name, c := range map[string]struct {
		formats     []string
		output, dir string
		want        string
	}{
		"unknown format":                {[]string{"yaml"}, "", "", `--format "yaml"`},
		"twice":                         {[]string{"json", "json"}, "", dir, "given twice"},
		"several without a dir":         {[]string{"json", "html"}, "", "", "--output-dir"},
		"both outputs":                  {[]string{"json"}, filepath.Join(dir, "x"), dir, "give one"},
		"dir missing":                   {[]string{"json"}, "", filepath.Join(dir, "nope"), "nope"},
		"output in a missing directory": {[]string{"json"}, filepath.Join(dir, "nope", "x.json"), "", "cannot write " + filepath.Join(dir, "nope", "x.json")},
		"output is a directory":         {[]string{"json"}, dir, "", "is a directory"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Open(c.formats, c.output, c.dir, "verify", nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want it to mention %q", err, c.want)
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a refused Open left files: %v", entries)
	}
}

// TestOutputsUnwritableDirectory: an output directory the process cannot
// write into fails at Open, before any target is contacted.
func TestOutputsUnwritableDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		// root writes anywhere; a read-only bind is not available to a
		// test, so use a path under a regular file instead.
		f := filepath.Join(t.TempDir(), "file")
		os.WriteFile(f, nil, 0o644)
		if _, err := Open([]string{"json"}, filepath.Join(f, "x.json"), "", "verify", nil); err == nil {
			t.Fatal("a path under a regular file was accepted")
		}
		return
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	if _, err := Open([]string{"json"}, filepath.Join(dir, "x.json"), "", "verify", nil); err == nil {
		t.Fatal("an unwritable directory was accepted")
	}
}

// TestOutputsRenderFailureReplacesNothing: when one format cannot render,
// no file of the set is replaced and the temporaries are gone.
func TestOutputsRenderFailureReplacesNothing(t *testing.T) {
	dir := t.TempDir()
	o, err := Open([]string{"json", "text"}, "", dir, "verify", nil)
	if err != nil {
		t.Fatal(err)
	}
	o.Custom = map[string]func(io.Writer) error{"text": func(io.Writer) error { return errors.New("boom") }}
	if _, err := o.Commit(sampleRun(), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a failed render left files: %v", entries)
	}
}
