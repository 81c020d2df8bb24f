package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A real `go test -json` stream of a module with a passing, a skipping and a
// failing test: the summary prints the failure and the package lines and
// lists the skip with its reason.
func TestSummarizeRealStream(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/m\n\ngo 1.22\n",
		"a/a_test.go": `package a

import "testing"

func TestPass(t *testing.T) {}
func TestSkip(t *testing.T) { t.Skip("testenv: kafka not installed") }
func TestFail(t *testing.T) { t.Log("looked at the broker"); t.Fatal("broker said no") }
func TestSub(t *testing.T) {
	t.Run("inner", func(t *testing.T) { t.Skipf("inner skipped %d", 7) })
}
`,
		"b/b_test.go": "package b\n\nimport \"testing\"\n\nfunc TestOK(t *testing.T) {}\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "test", "-json", "-count=1", "./...")
	cmd.Dir = dir
	stream, _ := cmd.Output() // exits 1: TestFail
	var out bytes.Buffer
	s := summarize(bytes.NewReader(stream), &out)
	s.report(&out, false)
	got := out.String()
	for _, want := range []string{
		"--- FAIL: TestFail", "broker said no", "looked at the broker",
		"FAIL\texample.com/m/a", "ok  \texample.com/m/b",
		"testrun: 2 test(s) SKIPPED — what they cover was NOT verified",
		"SKIP example.com/m/a TestSkip: a_test.go:6: testenv: kafka not installed",
		"SKIP example.com/m/a TestSub/inner: a_test.go:9: inner skipped 7",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "TestPass") || strings.Contains(got, "=== RUN") {
		t.Errorf("passing tests' output printed:\n%s", got)
	}
	if s.failed == 0 {
		t.Errorf("failure not counted")
	}
}

func TestReportWithoutSkips(t *testing.T) {
	var out bytes.Buffer
	(&summary{}).report(&out, true)
	if out.String() != "testrun: no test skipped\n" {
		t.Errorf("%q", out.String())
	}
}
