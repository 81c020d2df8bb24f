package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/harden-dev/harden/host/internal/cli"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/sdktest"
)

// These tests run the real CLI against real plugin processes (go-plugin,
// AutoMTLS, sha256 SecureConfig). The plugin is built from testdata as a
// separate module that imports only shared/sdk.

var (
	echoBin   string
	hardenBin string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "harden-e2e-")
	if err != nil {
		panic(err)
	}
	echoBin = filepath.Join(dir, "harden-plugin-echo")
	hardenBin = filepath.Join(dir, "harden")
	// The plugins' apply journals (passed on by the host), never /var/lib/harden.
	if os.Getenv("HARDEN_STATE_DIR") == "" {
		os.Setenv("HARDEN_STATE_DIR", filepath.Join(dir, "state"))
	}
	for _, b := range []struct{ dir, out, pkg string }{
		{"../testdata/echoplugin", echoBin, "."},
		{"../..", hardenBin, "./host/cmd/harden"},
	} {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		cmd.Dir = b.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b.pkg, err, out)
			os.Exit(1)
		}
	}
	// If plugins inherited the host environment, echo.env.clean would fail.
	os.Setenv("HARDEN_TEST_SECRET", "inherited-secret-value")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const secretToken = "tok-SECRET-4711"

type fixture struct {
	t         *testing.T
	dir       string
	pluginDir string
	lock      string
	policy    string
	state     string
	addr      string
	plugin    string
}

// echoServer answers "OK" to every line.
func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
					c.Write([]byte("OK\n"))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func newFixture(t *testing.T, mode string) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir()}
	f.pluginDir = filepath.Join(f.dir, "plugins")
	f.lock = filepath.Join(f.dir, "plugins.lock")
	f.state = filepath.Join(f.dir, "state.json")
	f.addr = echoServer(t)
	f.plugin = filepath.Join(f.pluginDir, "harden-plugin-echo")
	if err := os.MkdirAll(f.pluginDir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(echoBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.plugin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	f.writePolicy(mode)
	return f
}

func (f *fixture) writePolicy(mode string) {
	policy := fmt.Sprintf(`apiVersion: harden/v1
profile: intermediate
targets:
  - name: echo-a
    plugin: echo
    connection: {address: "%s", state_file: "%s", token_env: ECHO_TOKEN}
    spec:
      settings: {ssl: "on", min_version: TLSv1.2}
      forbidden_env: [HARDEN_TEST_SECRET]
      mode: %s
`, f.addr, f.state, mode)
	f.policy = filepath.Join(f.dir, "policy.yaml")
	if err := os.WriteFile(f.policy, []byte(policy), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

type result struct {
	code           int
	stdout, stderr string
}

// run executes the CLI in process; plugins are real child processes.
func (f *fixture) run(args ...string) result {
	f.t.Helper()
	var out, errb bytes.Buffer
	io := cli.IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, IsTerminal: func() bool { return false },
		Getenv: func(k string) (string, bool) {
			if k == "ECHO_TOKEN" {
				return secretToken, true
			}
			return "", false
		}}
	full := append([]string{"harden"}, args...)
	full = append(full, "--plugin-dir", f.pluginDir, "--lock-file", f.lock)
	code := cli.Run(context.Background(), full, io)
	r := result{code, out.String(), errb.String()}
	if strings.Contains(r.stdout+r.stderr, secretToken) || strings.Contains(r.stdout+r.stderr, "inherited-secret-value") {
		f.t.Errorf("a secret appeared in the output of %v", args)
	}
	return r
}

func (f *fixture) lockPlugins() {
	f.t.Helper()
	if r := f.run("plugins", "lock"); r.code != 0 {
		f.t.Fatalf("plugins lock: %d %s %s", r.code, r.stdout, r.stderr)
	}
}

func TestVerifyEndToEnd(t *testing.T) {
	f := newFixture(t, "normal")
	f.lockPlugins()
	r := f.run("verify", "-f", f.policy, "--format", "json")
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	var rep struct {
		FormatVersion int `json:"format_version"`
		Targets       []struct {
			Name, Plugin string
			Checks       []struct {
				ID, Status, Severity, Evidence string
				References                     []string
			}
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("JSON report: %v\n%s", err, r.stdout)
	}
	if rep.FormatVersion != 1 || len(rep.Targets) != 1 || rep.Targets[0].Plugin != "echo" {
		t.Fatalf("report %+v", rep)
	}
	got := map[string]string{}
	for _, c := range rep.Targets[0].Checks {
		got[c.ID] = c.Status + ": " + c.Evidence
		if c.References == nil {
			t.Errorf("check %s: references must be a list, got null", c.ID)
		}
	}
	want := map[string]string{
		"echo.reachable":       "pass: server answered OK",
		"echo.env.clean":       "pass: variable HARDEN_TEST_SECRET is absent",
		"echo.secret.received": fmt.Sprintf("pass: token of %d bytes received", len(secretToken)),
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("check %s = %q, want %q", id, got[id], w)
		}
	}
	// Text output and the plugin's log line re-logged under its name.
	r = f.run("verify", "-f", f.policy, "--log-level", "info")
	if r.code != 0 || !strings.Contains(r.stdout, "PASS  high     echo.reachable") {
		t.Errorf("text verify: %d\n%s", r.code, r.stdout)
	}
	if !strings.Contains(r.stderr, "plugin.echo") || !strings.Contains(r.stderr, "verifying") {
		t.Errorf("plugin log not re-logged under its name: %s", r.stderr)
	}
}

func TestVerifyFailingTargetAndFailOn(t *testing.T) {
	f := newFixture(t, "normal")
	f.lockPlugins()
	os.Setenv("ECHO_FORBIDDEN_PRESENT", "1")
	defer os.Unsetenv("ECHO_FORBIDDEN_PRESENT")
	// Unreachable target: the check ends in status error -> exit 3.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	pol, _ := os.ReadFile(f.policy)
	os.WriteFile(f.policy, bytes.Replace(pol, []byte(f.addr), []byte(dead), 1), 0o644)
	r := f.run("verify", "-f", f.policy)
	if r.code != cli.ExitTarget || !strings.Contains(r.stdout, "ERROR high     echo.reachable") || !strings.Contains(r.stderr, "connection refused") {
		t.Errorf("unreachable target: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestPluginTrust(t *testing.T) {
	f := newFixture(t, "normal")
	// Not in the lock.
	r := f.run("verify", "-f", f.policy)
	if r.code != cli.ExitTarget || !strings.Contains(r.stderr, "plugin echo") || !strings.Contains(r.stderr, "not in the lock file") {
		t.Errorf("unlocked: exit %d: %s", r.code, r.stderr)
	}
	// Listed as unlocked without being run.
	r = f.run("plugins", "list", "--format", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"lock": "unlocked"`) {
		t.Errorf("list unlocked: %d %s %s", r.code, r.stdout, r.stderr)
	}
	f.lockPlugins()
	r = f.run("plugins", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "echo") || !strings.Contains(r.stdout, "0.1.0") || !strings.Contains(r.stdout, "render,plan,apply,verify") {
		t.Errorf("list: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// Changed binary: checksum mismatch.
	fh, _ := os.OpenFile(f.plugin, os.O_APPEND|os.O_WRONLY, 0)
	fh.Write([]byte("tampered"))
	fh.Close()
	r = f.run("verify", "-f", f.policy)
	if r.code != cli.ExitTarget || !strings.Contains(r.stderr, "does not match its sha256 in the lock file") {
		t.Errorf("mismatch: exit %d: %s", r.code, r.stderr)
	}
	r = f.run("plugins", "list", "--format", "json")
	if r.code != cli.ExitTarget || !strings.Contains(r.stdout, `"lock": "checksum-mismatch"`) {
		t.Errorf("list after tampering: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// Group-writable binary: refused as untrusted (exit 3).
	f.lockPlugins()
	os.Chmod(f.plugin, 0o775)
	r = f.run("verify", "-f", f.policy)
	if r.code != cli.ExitTarget || !strings.Contains(r.stderr, "is writable by group") {
		t.Errorf("writable: exit %d: %s", r.code, r.stderr)
	}
}

func TestUnknownPluginPointsAtPolicyLine(t *testing.T) {
	f := newFixture(t, "normal")
	f.lockPlugins()
	pol, _ := os.ReadFile(f.policy)
	os.WriteFile(f.policy, bytes.Replace(pol, []byte("plugin: echo"), []byte("plugin: nosuch"), 1), 0o644)
	r := f.run("verify", "-f", f.policy)
	if r.code != cli.ExitConfig || !strings.Contains(r.stderr, "policy.yaml:5:13: targets[0].plugin: unknown plugin \"nosuch\"") {
		t.Errorf("exit %d: %s", r.code, r.stderr)
	}
}

func TestPluginSchemaErrorsPointAtPolicyLine(t *testing.T) {
	f := newFixture(t, "normal")
	f.lockPlugins()
	pol, _ := os.ReadFile(f.policy)
	os.WriteFile(f.policy, bytes.Replace(pol, []byte("mode: normal"), []byte("mode: normal\n      colour: blue"), 1), 0o644)
	r := f.run("policy", "validate", "-f", f.policy)
	if r.code != cli.ExitConfig || !strings.Contains(r.stderr, "policy.yaml:11:7: targets[0].spec.colour: unknown key \"colour\"") {
		t.Errorf("exit %d: %s", r.code, r.stderr)
	}
	os.WriteFile(f.policy, bytes.Replace(pol, []byte("ssl: \"on\""), []byte("\"a=b\": x"), 1), 0o644)
	r = f.run("policy", "validate", "-f", f.policy)
	if r.code != cli.ExitConfig || !strings.Contains(r.stderr, "targets[0].spec.settings.a=b: setting names cannot contain '='") {
		t.Errorf("ValidateSpec diagnostic: exit %d: %s", r.code, r.stderr)
	}
	f.writePolicy("normal")
	r = f.run("policy", "validate", "-f", f.policy)
	if r.code != 0 || !strings.Contains(r.stdout, "valid") {
		t.Errorf("valid policy: %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = f.run("policy", "schema")
	if r.code != 0 || !strings.Contains(r.stdout, `"const": "echo"`) || !strings.Contains(r.stdout, "forbidden_env") {
		t.Errorf("schema: %d %.300s %s", r.code, r.stdout, r.stderr)
	}
}

func pluginProcesses(t *testing.T, exe string) []int {
	t.Helper()
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if target, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && target == exe {
			stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
			if fields := strings.Fields(string(stat)); len(fields) > 2 && fields[2] == "Z" {
				continue // zombie, already dead
			}
			pids = append(pids, pid)
		}
	}
	return pids
}

func waitNoPlugin(t *testing.T, exe string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if len(pluginProcesses(t, exe)) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("plugin process(es) %v still running %v later", pluginProcesses(t, exe), within)
}

func TestCrashingPlugin(t *testing.T) {
	f := newFixture(t, "crash")
	f.lockPlugins()
	r := f.run("verify", "-f", f.policy)
	if r.code != cli.ExitTarget || !strings.Contains(r.stderr, "plugin echo crashed during verify") {
		t.Errorf("exit %d: %s", r.code, r.stderr)
	}
	waitNoPlugin(t, f.plugin, 5*time.Second)
}

func TestHangingPluginTimesOut(t *testing.T) {
	f := newFixture(t, "hang")
	f.lockPlugins()
	start := time.Now()
	r := f.run("verify", "-f", f.policy, "--timeout", "1s")
	if r.code != cli.ExitTarget || !strings.Contains(r.stderr, "plugin echo did not finish verify in time") {
		t.Errorf("exit %d: %s", r.code, r.stderr)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("took %v", d)
	}
	waitNoPlugin(t, f.plugin, 5*time.Second)
}

func TestPlanApplyIdempotent(t *testing.T) {
	f := newFixture(t, "normal")
	f.lockPlugins()
	r := f.run("plan", "-f", f.policy, "--detailed-exitcode")
	if r.code != cli.ExitFindings || !strings.Contains(r.stdout, `+ ssl: "on"`) || !strings.Contains(r.stdout, "2 change(s) pending") {
		t.Fatalf("plan: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// Not a terminal and no --yes: refused, nothing applied.
	r = f.run("apply", "-f", f.policy)
	if r.code != cli.ExitConfig || !strings.Contains(r.stderr, "pass --yes") {
		t.Fatalf("apply without --yes: exit %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(f.state); !os.IsNotExist(err) {
		t.Fatalf("apply without --yes changed the target")
	}
	r = f.run("apply", "-f", f.policy, "--yes")
	if r.code != 0 || !strings.Contains(r.stdout, "echo-a (echo): APPLIED") {
		t.Fatalf("apply: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	state, _ := os.ReadFile(f.state)
	if !strings.Contains(string(state), `"ssl":"on"`) {
		t.Errorf("state after apply: %s", state)
	}
	r = f.run("plan", "-f", f.policy, "--detailed-exitcode")
	if r.code != 0 || !strings.Contains(r.stdout, "no changes") {
		t.Errorf("second plan: exit %d\n%s", r.code, r.stdout)
	}
	r = f.run("apply", "-f", f.policy, "--yes")
	if r.code != 0 || !strings.Contains(r.stdout, "Nothing to apply") {
		t.Errorf("second apply: exit %d\n%s", r.code, r.stdout)
	}
}

func TestRenderOut(t *testing.T) {
	f := newFixture(t, "normal")
	f.lockPlugins()
	// A certificate source so the plugin renders a key file.
	ca, cert, key := writeTestPKI(t, f.dir)
	pol, _ := os.ReadFile(f.policy)
	pol = bytes.Replace(pol, []byte("targets:\n"), []byte("certificates:\n  source: files\n  files: {ca_file: "+ca+"}\ntargets:\n"), 1)
	pol = bytes.Replace(pol, []byte("    spec:\n"), []byte("    certificate: {cert_file: "+cert+", key_file: "+key+"}\n    spec:\n"), 1)
	os.WriteFile(f.policy, pol, 0o644)
	out := filepath.Join(f.dir, "out")
	r := f.run("render", "-f", f.policy, "--out", out)
	if r.code != 0 {
		t.Fatalf("render: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "PRIVATE KEY") {
		t.Errorf("private key printed to stdout")
	}
	conf, err := os.ReadFile(filepath.Join(out, "echo-a", "echo.conf"))
	if err != nil || !strings.Contains(string(conf), "ciphers = ECDHE-ECDSA-AES128-GCM-SHA256:") {
		t.Errorf("echo.conf: %v %s", err, conf)
	}
	st, err := os.Stat(filepath.Join(out, "echo-a", "tls", "key.pem"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v", err, st)
	}
}

func TestConformance(t *testing.T) {
	sdktest.Run(t, sdktest.Harness{
		Binary: echoBin,
		Target: func(addr string) sdk.Target {
			return sdk.NewTarget("conf", []byte(`{"address":"`+addr+`"}`), []byte(`{"settings":{"a":"b"}}`), nil)
		},
		StopSkip: map[sdk.Capability]string{sdk.CapIssuer: "the echo plugin's issuer never contacts a target: it only fails as its mode says"},
	})
}

// hostProcess runs the harden binary as a child so it can be signalled.
func (f *fixture) hostProcess(args ...string) (*exec.Cmd, *bytes.Buffer) {
	full := append(args, "--plugin-dir", f.pluginDir, "--lock-file", f.lock)
	cmd := exec.Command(hardenBin, full...)
	cmd.Env = append(os.Environ(), "ECHO_TOKEN="+secretToken)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	return cmd, &out
}

func waitForPlugin(t *testing.T, exe string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(pluginProcesses(t, exe)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("plugin never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // let the request reach the plugin
}

func TestNoPluginSurvivesSIGKILLedHost(t *testing.T) {
	f := newFixture(t, "hang")
	f.lockPlugins()
	cmd, _ := f.hostProcess("verify", "-f", f.policy)
	waitForPlugin(t, f.plugin)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	waitNoPlugin(t, f.plugin, 5*time.Second)
}

func TestCtrlCDuringApplyStopsCleanly(t *testing.T) {
	f := newFixture(t, "hang")
	f.lockPlugins()
	cmd, out := f.hostProcess("apply", "-f", f.policy, "--yes")
	waitForPlugin(t, f.plugin)
	start := time.Now()
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("host took %v to stop after Ctrl-C", d)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != cli.ExitInterrupted {
		t.Errorf("exit: %v\n%s", err, out)
	}
	if !strings.Contains(out.String(), "interrupted") {
		t.Errorf("output: %s", out)
	}
	if _, err := os.Stat(f.state); !os.IsNotExist(err) {
		t.Errorf("interrupted apply wrote the target's state")
	}
	waitNoPlugin(t, f.plugin, 5*time.Second)
}

// The conformance kit must catch a plugin that writes to stdout. The kit is
// run in a child test process that is expected to fail.
func TestConformanceDetectsStdout(t *testing.T) {
	if os.Getenv("HARDEN_SDKTEST_META") == "1" {
		sdktest.Run(t, sdktest.Harness{
			Binary: echoBin,
			Target: func(addr string) sdk.Target {
				return sdk.NewTarget("conf", []byte(`{"address":"`+addr+`"}`), []byte(`{"mode":"stdout"}`), nil)
			},
		})
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestConformanceDetectsStdout$", "-test.v")
	cmd.Env = append(os.Environ(), "HARDEN_SDKTEST_META=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "plugin wrote 13 bytes to stdout") {
		t.Errorf("sdktest did not flag stdout output (err %v):\n%s", err, out)
	}
}

func TestBadPolicyExitCodes(t *testing.T) {
	f := newFixture(t, "normal")
	f.lockPlugins()
	r := f.run("verify", "-f", filepath.Join(f.dir, "missing.yaml"))
	if r.code != cli.ExitConfig || !strings.Contains(r.stderr, "missing.yaml: not found") {
		t.Errorf("missing file: %d %s", r.code, r.stderr)
	}
	os.WriteFile(f.policy, []byte("apiVersion: harden/v1\nprofile: [\n"), 0o644)
	r = f.run("apply", "-f", f.policy, "--yes")
	if r.code != cli.ExitConfig || !strings.Contains(r.stderr, "policy.yaml:2: YAML syntax error") {
		t.Errorf("syntax error: %d %s", r.code, r.stderr)
	}
	r = f.run("verify", "-f", f.policy, "--fail-on", "severe")
	if r.code != cli.ExitConfig || !strings.Contains(r.stderr, "--fail-on") {
		t.Errorf("bad --fail-on: %d %s", r.code, r.stderr)
	}
	f.writePolicy("normal")
	r = f.run("verify", "-f", f.policy, "--target", "nope")
	if r.code != cli.ExitConfig || !strings.Contains(r.stderr, `--target "nope": no such target`) {
		t.Errorf("bad --target: %d %s", r.code, r.stderr)
	}
	r = f.run("verify", "-f", f.policy, "--format", "xml")
	if r.code != cli.ExitConfig {
		t.Errorf("bad --format: %d %s", r.code, r.stderr)
	}
}
