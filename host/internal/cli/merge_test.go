package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/host/internal/policy"
	"github.com/harden-dev/harden/host/internal/report"
)

// runCLI runs harden in process with env as the whole environment.
func runCLI(t *testing.T, stdin string, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	io := IO{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, IsTerminal: func() bool { return false },
		Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	code := Run(context.Background(), append([]string{"harden"}, args...), io)
	return code, out.String(), errb.String()
}

// fleetRun is a verify run of targets a..(a+n-1) of fleet.yaml; status
// sets every check's status, sev its severity.
func fleetRun(first, n int, shard, status, sev string, at time.Time) *report.Run {
	r := &report.Run{FormatVersion: 1, Command: "verify", Policy: "fleet.yaml", Profile: "intermediate", GeneratedAt: at, Shard: shard}
	for i := first; i < first+n; i++ {
		r.Targets = append(r.Targets, report.Target{Name: fmt.Sprintf("t%02d", i), Plugin: "postgres", Line: 10 + i, Status: "ok",
			Checks: []report.Check{{ID: "tls.enabled", Status: status, Severity: sev, Subject: fmt.Sprintf("127.0.0.1:%d", 5000+i), Evidence: "e", References: []string{}}}})
	}
	r.Finish("verify")
	return r
}

func writeRun(t *testing.T, dir, name string, r *report.Run) string {
	t.Helper()
	var b bytes.Buffer
	if err := report.WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReportCommandExitCodesAndOutputs(t *testing.T) {
	dir := t.TempDir()
	writeRun(t, dir, "shard-0.json", fleetRun(0, 3, "0/2", "pass", "high", time.Now()))
	writeRun(t, dir, "shard-1.json", fleetRun(3, 2, "1/2", "fail", "medium", time.Now()))
	pattern := filepath.Join(dir, "shard-*.json")

	code, out, errb := runCLI(t, "", nil, "report", "-i", pattern, "--format", "json")
	if code != ExitFindings {
		t.Fatalf("failing checks: exit %d, want 2\n%s", code, errb)
	}
	var merged report.Run
	if err := json.Unmarshal([]byte(out), &merged); err != nil || len(merged.Targets) != 5 || merged.Shard != "" || merged.Summary["fail"] != 2 || merged.Summary["pass"] != 3 {
		t.Fatalf("merged %v: %+v", err, merged)
	}
	if code, _, errb := runCLI(t, "", nil, "report", "-i", pattern, "--fail-on", "high"); code != ExitOK {
		t.Errorf("--fail-on high over medium failures: exit %d\n%s", code, errb)
	}

	// --output-dir with several formats: harden-report.*, named on stderr.
	outDir := t.TempDir()
	code, out, errb = runCLI(t, "", nil, "report", "-i", filepath.Join(dir, "shard-0.json"), "-i", filepath.Join(dir, "shard-1.json"),
		"--format", "json", "--format", "text", "--output-dir", outDir, "--fail-on", "critical")
	if code != ExitOK || out != "" || !strings.Contains(errb, filepath.Join(outDir, "harden-report.json")) {
		t.Fatalf("--output-dir: exit %d stdout %q\n%s", code, out, errb)
	}
	text, _ := os.ReadFile(filepath.Join(outDir, "harden-report.txt"))
	if !strings.Contains(string(text), "Summary: 3 passed, 2 failed") {
		t.Errorf("text report:\n%s", text)
	}

	// A target in error: 3, as verify.
	broken := fleetRun(0, 1, "", "pass", "high", time.Now())
	broken.Targets[0].Status, broken.Targets[0].Error = "error", "target: connection refused"
	bp := writeRun(t, dir, "broken.json", broken)
	if code, _, errb := runCLI(t, "", nil, "report", "-i", bp); code != ExitTarget || !strings.Contains(errb, "connection refused") {
		t.Errorf("target error: exit %d\n%s", code, errb)
	}

	// stdin.
	data, _ := os.ReadFile(filepath.Join(dir, "shard-0.json"))
	if code, _, errb := runCLI(t, string(data), nil, "report", "-i", "-", "-i", filepath.Join(dir, "shard-1.json"), "--fail-on", "critical"); code != ExitOK {
		t.Errorf("stdin: exit %d\n%s", code, errb)
	}
}

// Inputs that cannot be merged are configuration errors (exit 1) naming
// the file; nothing is written.
func TestReportCommandBadInput(t *testing.T) {
	dir := t.TempDir()
	s0 := writeRun(t, dir, "s0.json", fleetRun(0, 2, "0/3", "pass", "high", time.Now()))
	s1 := writeRun(t, dir, "s1.json", fleetRun(2, 2, "1/3", "pass", "high", time.Now()))
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{\n \"format_version\": 1,\n \"command\": \"verify\"\n \"targets\": []}"), 0o644)
	newer := filepath.Join(dir, "newer.json")
	os.WriteFile(newer, []byte(`{"format_version": 2, "command": "verify", "targets": []}`), 0o644)
	other := fleetRun(0, 1, "", "pass", "high", time.Now())
	other.Policy = "other.yaml"
	op := writeRun(t, dir, "other.json", other)
	out := filepath.Join(dir, "out.json")
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"a shard missing": {[]string{"-i", s0, "-i", s1}, "shards missing: 2/3"},
		"malformed":       {[]string{"-i", bad}, bad + ":4:2: malformed JSON"},
		"newer":           {[]string{"-i", newer}, newer + ": format_version 2 is newer"},
		"two policies":    {[]string{"-i", s0, "-i", op}, op + ` is a run of policy "other.yaml", ` + s0},
		"missing":         {[]string{"-i", filepath.Join(dir, "nope.json")}, "nope.json: no such file or directory"},
		"no match":        {[]string{"-i", filepath.Join(dir, "x-*.json")}, "no file matches"},
		"a directory":     {[]string{"-i", dir}, "is a directory"},
		"stdin twice":     {[]string{"-i", "-", "-i", "-"}, "stdin given twice"},
		"an argument":     {[]string{"-i", s0, s1}, "give each input with -i"},
		"no input":        {[]string{}, `"input"`},
	} {
		code, stdout, errb := runCLI(t, "", nil, append([]string{"report", "-o", out}, c.args...)...)
		// (urfave/cli prints the usage on stdout for a missing flag.)
		if code != ExitConfig || !strings.Contains(errb, c.want) || stdout != "" && name != "no input" {
			t.Errorf("%s: exit %d, stderr %q, want 1 with %q", name, code, errb, c.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%s: %s written", name, out)
		}
	}
}

// Whole runs at different times are a history; the text shows the trend.
func TestReportCommandHistory(t *testing.T) {
	dir := t.TempDir()
	day := 24 * time.Hour
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	old := writeRun(t, dir, "mon.json", fleetRun(0, 2, "", "fail", "high", at))
	mid := fleetRun(0, 2, "", "fail", "high", at.Add(day))
	mid.Targets[0].Checks[0].Status = "pass"
	mid.Finish("verify")
	mp := writeRun(t, dir, "tue.json", mid)
	now := writeRun(t, dir, "wed.json", fleetRun(0, 2, "", "pass", "high", at.Add(2*day)))
	code, out, errb := runCLI(t, "", nil, "report", "-i", now, "-i", old, "-i", mp)
	if code != ExitOK {
		t.Fatalf("latest run passes: exit %d\n%s", code, errb)
	}
	if !strings.Contains(errb, "harden: treating 3 runs as a history of fleet.yaml: the report is the latest run (2026-03-03T00:00:00Z)") {
		t.Errorf("history mode not said on stderr:\n%s", errb)
	}
	for _, want := range []string{"History: 3 runs of fleet.yaml, 2026-03-01T00:00:00Z to 2026-03-03T00:00:00Z",
		"X..  high     t00 tls.enabled 127.0.0.1:5000 (fixed)", "XX.  high     t01 tls.enabled 127.0.0.1:5001 (fixed)"} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}
	if code, _, errb := runCLI(t, "", nil, "report", "--history", "-i", old, "-i", old); code != ExitFindings || !strings.Contains(errb, "treating 2 runs as a history") {
		t.Errorf("--history with the same failing run twice: exit %d\n%s", code, errb)
	}
	if _, _, errb := runCLI(t, "", nil, "report", "-i", old); strings.Contains(errb, "history") {
		t.Errorf("one run is not a history:\n%s", errb)
	}

	// Whole runs at different times over different targets: shards
	// verified without --shard, most likely. Refused (exit 1) unless
	// --history says it is a trend; then the earlier run's failure is not
	// called fixed.
	billing := fleetRun(0, 1, "", "fail", "high", at)
	billing.Targets[0].Name = "billing-pg"
	billing.Finish("verify")
	bp := writeRun(t, dir, "billing.json", billing)
	web := writeRun(t, dir, "web.json", fleetRun(1, 2, "", "pass", "high", at.Add(time.Minute)))
	code, out, errb = runCLI(t, "", nil, "report", "-i", bp, "-i", web)
	if code != ExitConfig || out != "" || !strings.Contains(errb, bp+" and "+web+" are whole runs at different times over different targets") || !strings.Contains(errb, "--history") {
		t.Errorf("whole runs over different targets: exit %d\n%s%s", code, out, errb)
	}
	code, out, errb = runCLI(t, "", nil, "report", "--history", "-i", bp, "-i", web)
	if code != ExitOK || !strings.Contains(out, "X.  high     billing-pg tls.enabled 127.0.0.1:5000 (unknown: not verified in the latest run (no such target))") ||
		!strings.Contains(errb, "treating 2 runs as a history") {
		t.Errorf("--history over different targets: exit %d\n%s%s", code, out, errb)
	}
}

// Shards of another run or another policy version are refused, naming
// the files; verify's --run-id (or $HARDEN_RUN_ID) is checked before any
// policy is read.
func TestReportCommandRunAndPolicyVersion(t *testing.T) {
	dir := t.TempDir()
	sha := strings.Repeat("0a", 32)
	s0, s1 := fleetRun(0, 2, "0/2", "pass", "high", time.Now()), fleetRun(2, 2, "1/2", "pass", "high", time.Now())
	s0.RunID, s0.PolicySHA256, s1.RunID, s1.PolicySHA256 = "job-1", sha, "job-1", sha
	p0, p1 := writeRun(t, dir, "shard-0.json", s0), writeRun(t, dir, "shard-1.json", s1)
	code, out, errb := runCLI(t, "", nil, "report", "-i", p0, "-i", p1, "--format", "json")
	if code != ExitOK || !strings.Contains(out, `"run_id": "job-1"`) || !strings.Contains(out, `"policy_sha256": "`+sha+`"`) {
		t.Fatalf("one run: exit %d\n%s%s", code, out, errb)
	}
	s1.RunID = "job-0"
	stale := writeRun(t, dir, "stale-1.json", s1)
	if code, _, errb := runCLI(t, "", nil, "report", "-i", p0, "-i", stale); code != ExitConfig || !strings.Contains(errb, stale+` is of run "job-0", `+p0+` of run "job-1"`) {
		t.Errorf("a shard of another run: exit %d\n%s", code, errb)
	}
	s1.RunID, s1.PolicySHA256 = "job-1", strings.Repeat("0b", 32)
	updated := writeRun(t, dir, "updated-1.json", s1)
	if code, _, errb := runCLI(t, "", nil, "report", "-i", p0, "-i", updated); code != ExitConfig || !strings.Contains(errb, updated+" was verified against policy version") {
		t.Errorf("a shard of another policy version: exit %d\n%s", code, errb)
	}
	missing := filepath.Join(dir, "policy.yaml")
	for name, c := range map[string]struct {
		env  map[string]string
		args []string
		want string
	}{
		"a space":   {nil, []string{"--run-id", "job 1"}, `--run-id: run id "job 1": only printable ASCII without spaces`},
		"too long":  {nil, []string{"--run-id", strings.Repeat("x", 201)}, "--run-id: run id longer than 200 characters"},
		"env":       {map[string]string{"HARDEN_RUN_ID": "a\tb"}, nil, `$HARDEN_RUN_ID: run id "a\tb"`},
		"valid":     {nil, []string{"--run-id", "harden-verify/dispatch-1767225600-0a1b2c3d"}, missing + ": not found"},
		"valid env": {map[string]string{"HARDEN_RUN_ID": "20260301T120000Z/6f1c0e2a"}, nil, missing + ": not found"},
	} {
		code, _, errb := runCLI(t, "", c.env, append([]string{"verify", "-f", missing}, c.args...)...)
		if code != ExitConfig || !strings.Contains(errb, c.want) {
			t.Errorf("%s: exit %d, want 1 with %q\n%s", name, code, c.want, errb)
		}
	}
}

// An inventory alone exits as harden inventory does (its summary's code).
func TestReportCommandInventoryOnly(t *testing.T) {
	dir := t.TempDir()
	doc := `{"format_version": 1, "generated_at": "2026-03-01T00:00:00Z", "policy": "fleet.yaml", "renew_before": "30d", "alert_at": ["30d", "14d", "7d"],
	  "targets": ["a"], "items": [{"kind": "served", "target": "a", "where": "127.0.0.1:1", "tier": "7d"}], "notes": [], "summary": {"exit_code": 0}}`
	p := filepath.Join(dir, "inv.json")
	os.WriteFile(p, []byte(doc), 0o644)
	code, out, errb := runCLI(t, "", nil, "report", "-i", p)
	if code != ExitInventoryNarrowest || !strings.Contains(out, "target a") {
		t.Errorf("exit %d, want %d (recomputed, not the input's 0)\n%s\n%s", code, ExitInventoryNarrowest, out, errb)
	}
}

// shardTargets keeps shard I of N of the selected targets: the shards of
// N partition them, whatever N, and a bad value is an error.
func TestShardTargets(t *testing.T) {
	var all []policy.Target
	for i := range 30 {
		all = append(all, policy.Target{Index: i, Name: fmt.Sprintf("target-%d", i)})
	}
	for _, n := range []int{1, 3, 7} {
		var got []string
		for i := range n {
			s := &session{targets: slices.Clone(all), io: IO{Getenv: func(string) (string, bool) { return "", false }}}
			shard, err := shardTargets(s, fmt.Sprintf("%d/%d", i, n))
			if err != nil || shard != fmt.Sprintf("%d/%d", i, n) {
				t.Fatalf("%d/%d: %q %v", i, n, shard, err)
			}
			for j, tg := range s.targets {
				if j > 0 && tg.Index < s.targets[j-1].Index {
					t.Errorf("%d/%d: the policy order is lost", i, n)
				}
				if report.ShardOf(report.TargetUnit(tg.Name), n) != i {
					t.Errorf("%d/%d has %s", i, n, tg.Name)
				}
				got = append(got, tg.Name)
			}
		}
		slices.Sort(got)
		var want []string
		for _, tg := range all {
			want = append(want, tg.Name)
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("N=%d: the shards hold %d targets, want each of the %d once", n, len(got), len(all))
		}
	}
	s := &session{targets: all, io: IO{Getenv: func(k string) (string, bool) {
		return map[string]string{"JOB_COMPLETION_INDEX": "2"}[k], k == "JOB_COMPLETION_INDEX"
	}}}
	if shard, err := shardTargets(s, "auto/3"); err != nil || shard != "2/3" {
		t.Errorf("auto/3: %q %v", shard, err)
	}
	if shard, err := shardTargets(&session{targets: all}, ""); err != nil || shard != "" {
		t.Errorf("no --shard: %q %v", shard, err)
	}
	if _, err := shardTargets(&session{targets: all, io: IO{Getenv: func(string) (string, bool) { return "", false }}}, "auto/3"); err == nil {
		t.Error("auto/3 without JOB_COMPLETION_INDEX")
	}
}
