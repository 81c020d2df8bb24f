// Command testrun is `make test`'s runner: it runs `go test -json` with its
// arguments, prints what a plain `go test` prints (a line per package, the
// output of failing tests) and ends with every skipped test and its reason,
// so a run that skipped tests can never pass silently.
//
//	go run ./scripts/testrun [-module DIR]... -count=1 -timeout 20m ./...
//
// Each -module DIR runs the same go test in that module's directory too (the
// SDK module shared/, out-of-tree plugins), after the current one.
//
// The exit code is go test's (1 if any test failed even if go test said 0).
// `make test` runs it with CI=true unless HARDEN_ALLOW_SKIP=1: under CI=true a
// test whose real server cannot start fails instead of skipping.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
)

func main() {
	goBin := os.Getenv("GO")
	if goBin == "" {
		goBin = "go"
	}
	dirs, args := splitModules(os.Args[1:])
	total := &summary{}
	code := 0
	for _, dir := range dirs {
		c, s := runIn(goBin, dir, args)
		total.skips = append(total.skips, s.skips...)
		total.failed += s.failed
		if c != 0 && code == 0 {
			code = c
		}
	}
	total.report(os.Stdout, os.Getenv("CI") == "true")
	if code == 0 && total.failed > 0 {
		code = 1
	}
	os.Exit(code)
}

// splitModules takes the -module DIR arguments out of args; "." comes first.
func splitModules(in []string) (dirs, args []string) {
	dirs = []string{"."}
	for i := 0; i < len(in); i++ {
		switch {
		case in[i] == "-module" && i+1 < len(in):
			dirs = append(dirs, in[i+1])
			i++
		case strings.HasPrefix(in[i], "-module="):
			dirs = append(dirs, strings.TrimPrefix(in[i], "-module="))
		default:
			args = append(args, in[i])
		}
	}
	return dirs, args
}

func runIn(goBin, dir string, args []string) (int, *summary) {
	cmd := exec.Command(goBin, append([]string{"test", "-json"}, args...)...)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testrun:", err)
		return 1, &summary{}
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "testrun:", err)
		return 1, &summary{}
	}
	s := summarize(out, os.Stdout)
	err = cmd.Wait()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), s
	case err != nil:
		fmt.Fprintln(os.Stderr, "testrun:", err)
		return 1, s
	}
	return 0, s
}

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string // build-output, build-fail
}

type skipped struct{ pkg, test, reason string }

type summary struct {
	skips  []skipped
	failed int
}

// summarize streams the events of r, writing a plain go test's output to w.
func summarize(r io.Reader, w io.Writer) *summary {
	s := &summary{}
	outputs := map[string][]string{} // package + "\x00" + test -> its output lines
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			fmt.Fprintln(w, sc.Text()) // not an event: pass it through
			continue
		}
		key := e.Package + "\x00" + e.Test
		switch e.Action {
		case "build-output":
			fmt.Fprint(w, e.Output)
		case "output":
			outputs[key] = append(outputs[key], e.Output)
		case "fail":
			s.failed++
			if e.Test != "" || !strings.Contains(strings.Join(outputs[key], ""), "--- FAIL") {
				// A failing test's output; a package failing for a reason of
				// its own (a panic, a build error, a timeout) in full.
				for _, l := range outputs[key] {
					if !strings.HasPrefix(l, "=== ") {
						fmt.Fprint(w, l)
					}
				}
			} else {
				printSummaryLines(w, outputs[key])
			}
			delete(outputs, key)
		case "skip":
			if e.Test != "" {
				s.skips = append(s.skips, skipped{e.Package, e.Test, skipReason(outputs[key])})
			} else {
				printSummaryLines(w, outputs[key])
			}
			delete(outputs, key)
		case "pass":
			if e.Test == "" {
				printSummaryLines(w, outputs[key])
			}
			delete(outputs, key)
		}
	}
	return s
}

// printSummaryLines prints a package's result lines ("ok  pkg 1.2s",
// "?   pkg [no test files]", "FAIL pkg 3.4s").
func printSummaryLines(w io.Writer, lines []string) {
	for _, l := range lines {
		if strings.HasPrefix(l, "ok  ") || strings.HasPrefix(l, "?   ") || strings.HasPrefix(l, "FAIL\t") {
			fmt.Fprint(w, l)
		}
	}
}

// skipReason is what the test logged with t.Skip.
func skipReason(lines []string) string {
	var reason []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		reason = append(reason, t)
	}
	if len(reason) == 0 {
		return "no reason given"
	}
	return strings.Join(reason, " ")
}

// report lists every skipped test; without CI=true it says loudly that the
// run did not exercise what those tests cover.
func (s *summary) report(w io.Writer, ci bool) {
	if len(s.skips) == 0 {
		fmt.Fprintln(w, "testrun: no test skipped")
		return
	}
	sort.Slice(s.skips, func(i, j int) bool {
		if s.skips[i].pkg != s.skips[j].pkg {
			return s.skips[i].pkg < s.skips[j].pkg
		}
		return s.skips[i].test < s.skips[j].test
	})
	bar := strings.Repeat("=", 78)
	fmt.Fprintln(w, bar)
	if ci {
		fmt.Fprintf(w, "testrun: %d test(s) SKIPPED (CI=true: no real-server test may skip; these skipped for other reasons):\n", len(s.skips))
	} else {
		fmt.Fprintf(w, "testrun: %d test(s) SKIPPED — what they cover was NOT verified by this run\n", len(s.skips))
		fmt.Fprintln(w, "(CI is not true, so tests whose real servers could not start skipped; `make test` without HARDEN_ALLOW_SKIP=1 fails instead):")
	}
	for _, sk := range s.skips {
		fmt.Fprintf(w, "  SKIP %s %s: %s\n", sk.pkg, sk.test, sk.reason)
	}
	fmt.Fprintln(w, bar)
}
