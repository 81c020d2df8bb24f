package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/harden-dev/harden/host/internal/cli"
	"github.com/harden-dev/harden/testenv"
)

type scheduleJSON struct {
	FormatVersion int    `json:"format_version"`
	Now           string `json:"now"`
	NextRun       string `json:"next_run"`
	InSeconds     int64  `json:"in_seconds"`
	DueNow        bool   `json:"due_now"`
	Jitter        float64
	Reason        string          `json:"reason"`
	DecidedBy     scheduledJSON   `json:"decided_by"`
	Certificates  []scheduledJSON `json:"certificates"`
	NotIssued     []string        `json:"not_issued"`
	Warnings      []string        `json:"warnings"`
}

type scheduledJSON struct {
	Target   string    `json:"target"`
	Client   string    `json:"client"`
	Kind     string    `json:"kind"`
	Source   string    `json:"source"`
	File     string    `json:"file"`
	Serial   string    `json:"serial"`
	NotAfter time.Time `json:"not_after"`
	Due      time.Time `json:"due"`
	Rule     string    `json:"rule"`
}

func buildSchedulePlugins(t *testing.T, pluginDir string, withServer string) {
	t.Helper()
	builds := []struct{ dir, out, pkg string }{
		{"../..", filepath.Join(pluginDir, "harden-plugin-vaultpki"), "./plugins/vaultpki"},
		{"../testdata/tlsfileplugin", filepath.Join(pluginDir, "harden-plugin-tlsfile"), "."},
	}
	if withServer != "" {
		builds = append(builds, struct{ dir, out, pkg string }{"../testdata/tlsfileplugin", withServer, "./server"})
	}
	for _, b := range builds {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		cmd.Dir = b.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", b.pkg, err, out)
		}
	}
}

// snapshot is every file under dir with its mode, mtime and content: the
// schedule must leave the store exactly as it was.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %s %d", p, fi.Mode(), fi.ModTime().UnixNano())
		if !d.IsDir() {
			data, _ := os.ReadFile(p)
			fmt.Fprintf(&b, " %x", data)
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func serialOfFile(t *testing.T, file string) string {
	t.Helper()
	b, _ := pem.Decode(mustRead(t, file))
	if b == nil {
		t.Fatalf("%s: no PEM", file)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	parts := make([]string, 0, len(c.SerialNumber.Bytes()))
	for _, x := range c.SerialNumber.Bytes() {
		parts = append(parts, fmt.Sprintf("%02x", x))
	}
	return strings.Join(parts, ":")
}

// inWindow: next is due minus at most 10 % of the time from the run's
// start to due (plus a second of rounding), and never after due.
func inWindow(t *testing.T, next string, due, start time.Time) {
	t.Helper()
	n, err := time.Parse(time.RFC3339, next)
	if err != nil {
		t.Fatalf("next_run %q: %v", next, err)
	}
	earliest := due.Add(-due.Sub(start) / 10).Add(-time.Second)
	if n.Before(earliest) || n.After(due) {
		t.Errorf("next_run %s outside [%s, %s]", n, earliest, due)
	}
}

// harden rotate --schedule on a store populated with certificates of a
// test CA (and a files-source target, and a client identity), while the
// certificate source's address answers nothing: the schedule comes from
// what is held alone — 2/3 of the remaining lifetime or the start of
// renew_before, whichever is earlier, over every certificate, with a
// jitter of at most 10 % — and the store is left byte for byte as it was.
// Due certificates give "now", nothing issued and unreadable files exit 3.
func TestRotateScheduleFromStore(t *testing.T) {
	dir := t.TempDir()
	pluginDir := filepath.Join(dir, "plugins")
	buildSchedulePlugins(t, pluginDir, "")
	ca := newInventoryCA(t)
	caFile := filepath.Join(dir, "vault-ca.pem")
	os.WriteFile(caFile, ca.pem, 0o644)
	os.WriteFile(filepath.Join(dir, "vault-token"), []byte("not-a-real-token"), 0o600)
	certs := filepath.Join(dir, "certs")
	now := time.Now()
	put := func(sub, name string, serial int64, left time.Duration) {
		d := filepath.Join(certs, sub)
		os.MkdirAll(d, 0o700)
		ca.leaf(t, d, name, serial, now.Add(-10*24*time.Hour), now.Add(left))
	}
	const day = 24 * time.Hour
	put("svc-a", "server", 0x0a, 80*day)
	put("svc-b", "server", 0x0b, 50*day)
	put("svc-b", "client", 0x0c, 75*day) // svc-b is in the mTLS scope
	put(filepath.Join("clients", "spark-etl"), "client", 0x0d, 70*day)
	legacyCert, legacyKey := ca.leaf(t, dir, "legacy", 0x0e, now.Add(-day), now.Add(100*day))
	writePolicy := func(renewBefore string) string {
		p := filepath.Join(dir, "policy.yaml")
		svc := func(name string) string {
			return fmt.Sprintf("    connection: {address: \"127.0.0.1:%d\", cert_file: %q, key_file: %q, reload_command: [\"true\"]}\n",
				freeTCPPort(t), filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem"))
		}
		os.WriteFile(p, []byte(fmt.Sprintf(`apiVersion: harden/v1
profile: intermediate
certificates:
  source: vault-pki
  vault: {target: vault, store_dir: %q}
  rotation: {max_lifetime: 90d, renew_before: %s, alert_at: [30d, 14d, 7d]}
mtls: {scope: [svc-b]}
targets:
  - name: vault
    plugin: vaultpki
    connection: {address: "https://127.0.0.1:%d", ca_file: %q, token_file: %q}
    spec: {pki: {client_names: [harden-admin]}}
  - name: svc-a
    plugin: tlsfile
%s  - name: svc-b
    plugin: tlsfile
%s  - name: legacy
    plugin: tlsfile
%s    certificate: {cert_file: %q, key_file: %q}
clients:
  - name: spark-etl
    targets: [svc-a]
    deliver: {dir: %q}
`, certs, renewBefore, freeTCPPort(t), caFile, filepath.Join(dir, "vault-token"), svc("svc-a-live"), svc("svc-b-live"), svc("legacy-live"),
			legacyCert, legacyKey, filepath.Join(dir, "delivered"))), 0o600)
		return p
	}
	policy := writePolicy("30d")
	lock := filepath.Join(dir, "plugins.lock")
	run := func(args ...string) result {
		t.Helper()
		var out, errb strings.Builder
		io := cli.IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, IsTerminal: func() bool { return false }, Getenv: os.LookupEnv}
		code := cli.Run(context.Background(), append(append([]string{"harden"}, args...), "--plugin-dir", pluginDir, "--lock-file", lock), io)
		return result{code, out.String(), errb.String()}
	}
	schedule := func(args ...string) (scheduleJSON, result) {
		t.Helper()
		r := run(append([]string{"rotate", "-f", policy, "--schedule", "--format", "json"}, args...)...)
		var s scheduleJSON
		if r.code == 0 {
			if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
				t.Fatalf("%v\n%s\n%s", err, r.stdout, r.stderr)
			}
		}
		return s, r
	}
	if r := run("plugins", "lock"); r.code != 0 {
		t.Fatalf("plugins lock: %s %s", r.stdout, r.stderr)
	}
	before := snapshot(t, certs)

	// renew_before 30d: svc-b's window opens 20 days from now (its 2/3
	// point is at 33 days), before every other certificate's.
	start := time.Now()
	s, r := schedule()
	if r.code != 0 {
		t.Fatalf("schedule: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("renew_before 30d: next_run %s in %ds: %s", s.NextRun, s.InSeconds, s.Reason)
	if s.FormatVersion != 1 || s.DueNow || s.DecidedBy.Target != "svc-b" || s.DecidedBy.Kind != "server" || s.DecidedBy.Serial != "0b" ||
		s.DecidedBy.Rule != "renew_before" || s.DecidedBy.Source != "store" || !s.DecidedBy.NotAfter.Equal(now.Add(50*day).Truncate(time.Second)) {
		t.Errorf("decided by %+v", s.DecidedBy)
	}
	inWindow(t, s.NextRun, now.Add(20*day), start)
	if !strings.Contains(s.Reason, "target svc-b server certificate serial 0b enters renew_before (30d)") {
		t.Errorf("reason %q", s.Reason)
	}
	var got []string
	for _, c := range s.Certificates {
		got = append(got, fmt.Sprintf("%s%s/%s/%s/%s/%s", c.Target, c.Client, c.Kind, c.Source, c.Serial, c.Rule))
		if c.Due.IsZero() {
			t.Errorf("no due time: %+v", c)
		}
	}
	want := "svc-a/server/store/0a/renew_before svc-b/server/store/0b/renew_before svc-b/client/store/0c/renew_before legacy/server/files/0e/two_thirds spark-etl/client/store/0d/renew_before"
	if strings.Join(got, " ") != want {
		t.Errorf("certificates\n%s\nwant\n%s", strings.Join(got, " "), want)
	}
	if snapshot(t, certs) != before {
		t.Fatal("--schedule changed the certificate store")
	}

	// renew_before 7d: the 2/3 rule decides (svc-b at 33.3 days, its
	// window at 43); the text form says so in one line.
	policy = writePolicy("7d")
	start = time.Now()
	r = run("rotate", "-f", policy, "--schedule")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 1 || !strings.HasPrefix(r.stdout, "next rotate run: ") ||
		!strings.Contains(r.stdout, "target svc-b server certificate serial 0b reaches 2/3 of its remaining lifetime") {
		t.Fatalf("text schedule: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("renew_before 7d: %s", strings.TrimSpace(r.stdout))
	next := strings.Fields(strings.TrimPrefix(r.stdout, "next rotate run: "))[0]
	inWindow(t, next, now.Add(50*day-50*day/3), start)
	if !regexp.MustCompile(`\(in (29|3[0-3])d[0-9hm]*\)`).MatchString(r.stdout) {
		t.Errorf("text schedule without a readable duration: %s", r.stdout)
	}
	// --client narrows it like rotate does.
	s, r = schedule("--client", "spark-etl")
	if r.code != 0 || s.DecidedBy.Client != "spark-etl" || len(s.Certificates) != 1 {
		t.Errorf("--client: %d %+v\n%s", r.code, s.DecidedBy, r.stderr)
	}

	// A certificate within renew_before: now, no jitter, exit 0.
	policy = writePolicy("30d")
	put("svc-a", "server", 0x1a, 20*day)
	s, r = schedule()
	if r.code != 0 || !s.DueNow || s.InSeconds != 0 || s.DecidedBy.Serial != "1a" || !strings.HasPrefix(s.Reason, "due now: target svc-a server certificate serial 1a is within renew_before (30d)") {
		t.Errorf("due now: %d %+v\n%s", r.code, s, r.stderr)
	}
	if n, _ := time.Parse(time.RFC3339, s.NextRun); time.Since(n) > time.Minute || time.Until(n) > 0 {
		t.Errorf("due now but next_run %s", s.NextRun)
	}

	// A target not issued yet is left out, with a warning; nothing issued
	// for anything selected is exit 3.
	os.RemoveAll(filepath.Join(certs, "svc-a"))
	s, r = schedule()
	if r.code != 0 || len(s.NotIssued) != 1 || !strings.Contains(r.stderr, "warning: not in the schedule, nothing issued yet: target svc-a server certificate") || s.DecidedBy.Target != "svc-b" {
		t.Errorf("svc-a not issued: %d %+v\n%s", r.code, s, r.stderr)
	}
	r = run("rotate", "-f", policy, "--schedule", "--target", "svc-a")
	if r.code != 3 || r.stdout != "" || !strings.Contains(r.stderr, "nothing to schedule") || !strings.Contains(r.stderr, "not issued yet: target svc-a server certificate") {
		t.Errorf("nothing issued: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// A key others may read: exit 3 naming the file, not a schedule without it.
	os.Chmod(filepath.Join(certs, "svc-b", "client-key.pem"), 0o644)
	r = run("rotate", "-f", policy, "--schedule")
	if r.code != 3 || r.stdout != "" || !strings.Contains(r.stderr, filepath.Join(certs, "svc-b", "client-key.pem")) {
		t.Errorf("unreadable key: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	os.Chmod(filepath.Join(certs, "svc-b", "client-key.pem"), 0o600)

	// The real binary: the JSON on stdout alone, exit 0.
	cmd := exec.Command(hardenBin, "rotate", "-f", policy, "--schedule", "--format", "json", "--plugin-dir", pluginDir, "--lock-file", lock)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || json.Unmarshal(out, &s) != nil || s.DecidedBy.Target != "svc-b" {
		t.Errorf("harden binary: %v\n%s\n%s", err, out, stderr.String())
	}

	// deploy/systemd/harden-rotate-next on this real schedule (systemctl
	// and systemd-run stubbed): one timer, within the schedule's window.
	script := nextScript(t)
	wrapper := filepath.Join(dir, "harden-wrapper")
	os.WriteFile(wrapper, []byte(fmt.Sprintf("#!/bin/sh\nexec %q \"$@\" --plugin-dir %q --lock-file %q\n", hardenBin, pluginDir, lock)), 0o755)
	start = time.Now()
	log, err := runNextScript(t, script, nil, wrapper, policy)
	if err != nil || strings.Contains(log, "systemctl") || !strings.Contains(log, "systemd-run ") {
		t.Fatalf("harden-rotate-next with the real schedule: %v\n%s", err, log)
	}
	due := now.Add(20 * day)
	if when := calendarOf(t, log); when.Before(due.Add(-due.Sub(start)/10).Add(-2*time.Second)) || when.After(due) {
		t.Errorf("harden-rotate-next scheduled %s, want within 10 %% before %s", when, due)
	}
}

// After a real apply with Vault PKI as the certificate source, the
// schedule names the certificate harden holds for the service (serial and
// not_after from the store) and puts the next run at the start of its
// renew_before window (Vault issued it for max_lifetime 90d, renew_before
// 30d: both rules agree) minus the jitter; after a forced rotation it
// follows the new certificate.
func TestRotateScheduleAfterApply(t *testing.T) {
	dir := t.TempDir()
	pluginDir := filepath.Join(dir, "plugins")
	serverBin := filepath.Join(dir, "tlsserver")
	buildSchedulePlugins(t, pluginDir, serverBin)
	v := testenv.VaultForTest(t)
	os.MkdirAll(filepath.Join(dir, "boot"), 0o700)
	boot, err := testenv.NewCA(filepath.Join(dir, "boot"))
	if err != nil {
		t.Fatal(err)
	}
	bc, bk, err := boot.Issue("svc", false, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, pidFile := filepath.Join(dir, "svc.pem"), filepath.Join(dir, "svc-key.pem"), filepath.Join(dir, "svc.pid")
	for _, f := range [][2]string{{bc, certFile}, {bk, keyFile}} {
		os.WriteFile(f[1], mustRead(t, f[0]), 0o600)
	}
	srv := exec.Command(serverBin, "-cert", certFile, "-key", keyFile, "-pidfile", pidFile)
	stdout, _ := srv.StdoutPipe()
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	vc := v.Target()["connection"].(map[string]any)
	policy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, []byte(fmt.Sprintf(`apiVersion: harden/v1
profile: intermediate
certificates:
  source: vault-pki
  vault: {target: vault, store_dir: %q}
  rotation: {max_lifetime: 90d, renew_before: 30d, alert_at: [30d, 14d, 7d]}
targets:
  - name: vault
    plugin: vaultpki
    connection: {address: %q, ca_file: %q, token_file: %q}
    spec: {pki: {client_names: [harden-admin]}}
  - name: svc
    plugin: tlsfile
    connection: {address: %q, cert_file: %q, key_file: %q, reload_command: ["sh", "-c", "kill -HUP $(cat %s)"]}
`, filepath.Join(dir, "certs"), vc["address"], vc["ca_file"], vc["token_file"], strings.TrimSpace(addr), certFile, keyFile, pidFile)), 0o600)
	lock := filepath.Join(dir, "plugins.lock")
	run := func(args ...string) result {
		t.Helper()
		var out, errb strings.Builder
		io := cli.IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, IsTerminal: func() bool { return false }, Getenv: os.LookupEnv}
		code := cli.Run(context.Background(), append(append([]string{"harden"}, args...), "--plugin-dir", pluginDir, "--lock-file", lock), io)
		return result{code, out.String(), errb.String()}
	}
	// Before apply: nothing issued, exit 3.
	if r := run("plugins", "lock"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r := run("rotate", "-f", policy, "--schedule"); r.code != 3 || !strings.Contains(r.stderr, "nothing to schedule") {
		t.Fatalf("before apply: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, args := range [][]string{{"apply", "-f", policy, "--target", "vault", "--yes"}, {"apply", "-f", policy, "--target", "svc", "--yes"}} {
		if r := run(args...); r.code != 0 {
			t.Fatalf("%v: %d\n%s\n%s", args, r.code, r.stdout, r.stderr)
		}
	}
	stored := filepath.Join(dir, "certs", "svc", "server.pem")
	check := func(label string) {
		t.Helper()
		start := time.Now()
		r := run("rotate", "-f", policy, "--schedule", "--format", "json")
		var s scheduleJSON
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &s) != nil {
			t.Fatalf("%s: %d\n%s\n%s", label, r.code, r.stdout, r.stderr)
		}
		b, _ := pem.Decode(mustRead(t, stored))
		leaf, _ := x509.ParseCertificate(b.Bytes)
		t.Logf("%s: next_run %s (%s): %s", label, s.NextRun, time.Duration(s.InSeconds)*time.Second, s.Reason)
		if s.DecidedBy.Target != "svc" || s.DecidedBy.Serial != serialOfFile(t, stored) || !s.DecidedBy.NotAfter.Equal(leaf.NotAfter) ||
			s.DecidedBy.File != stored || len(s.Certificates) != 1 {
			t.Errorf("%s: decided by %+v, want the stored certificate %s", label, s.DecidedBy, serialOfFile(t, stored))
		}
		// Vault issues for 90 days: the window (not_after - 30d) and the
		// 2/3 point agree to within the seconds since issuance.
		due := leaf.NotAfter.Add(-30 * 24 * time.Hour)
		if d := s.DecidedBy.Due.Sub(due); d < -time.Minute || d > time.Minute {
			t.Errorf("%s: due %s, want about %s", label, s.DecidedBy.Due, due)
		}
		inWindow(t, s.NextRun, s.DecidedBy.Due, start)
	}
	check("after apply")
	first := serialOfFile(t, stored)
	if r := run("rotate", "-f", policy, "--target", "svc", "--yes", "--force-renew", "--gate-handshakes", "3"); r.code != 0 {
		t.Fatalf("forced rotation: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if serialOfFile(t, stored) == first {
		t.Fatal("the forced rotation kept the serial")
	}
	check("after a forced rotation")
}

// The shipped deploy files (deploy/): what the units and the CronJob run,
// checked against the CLI, and systemd's own verifier where it exists.

const deployDir = "../../deploy"

// unitFile is a systemd unit file: section -> key -> values (keys repeat).
type unitFile map[string]map[string][]string

// parseUnit reads systemd's INI dialect: [Section], Key=Value, '#' and ';'
// comments, blank lines; no continuation lines (the shipped files use none).
func parseUnit(t *testing.T, file string) unitFile {
	t.Helper()
	u := unitFile{}
	section := ""
	for i, line := range strings.Split(string(mustRead(t, file)), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		case strings.HasSuffix(line, "\\"):
			t.Fatalf("%s:%d: continuation line", file, i+1)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.TrimSpace(k) == "" {
				t.Fatalf("%s:%d: not Key=Value in a section: %q", file, i+1, line)
			}
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return u
}

func (u unitFile) one(t *testing.T, section, key string) string {
	t.Helper()
	v := u[section][key]
	if len(v) != 1 {
		t.Fatalf("[%s] %s: %q, want one value", section, key, v)
	}
	return v[0]
}

// rotateArgsParse runs the CLI with a unit's or the CronJob's arguments
// (the policy swapped for one that does not exist): the flags must be
// harden rotate's, so the run ends at the missing policy, exit 1.
func rotateArgsParse(t *testing.T, what string, args []string) {
	t.Helper()
	if len(args) < 4 || args[0] != "rotate" || args[1] != "-f" || args[len(args)-1] != "--yes" {
		t.Fatalf("%s runs %q, want harden rotate -f <policy> ... --yes", what, args)
	}
	missing := filepath.Join(t.TempDir(), "policy.yaml")
	argv := append([]string{"harden", "rotate", "-f", missing}, args[3:]...)
	var out, errb strings.Builder
	code := cli.Run(context.Background(), argv, cli.IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, IsTerminal: func() bool { return false }, Getenv: os.LookupEnv})
	if code != cli.ExitConfig || !strings.Contains(errb.String(), missing) || strings.Contains(errb.String(), "flag provided but not defined") {
		t.Errorf("%s: %q: %d\n%s", what, argv, code, errb.String())
	}
}

func TestDeploySystemdUnits(t *testing.T) {
	svcFile, timerFile := filepath.Join(deployDir, "systemd", "harden-rotate.service"), filepath.Join(deployDir, "systemd", "harden-rotate.timer")
	svc, timer := parseUnit(t, svcFile), parseUnit(t, timerFile)
	exec0 := svc.one(t, "Service", "ExecStart")
	if exec0 != "/usr/local/bin/harden rotate -f /etc/harden/policy.yaml --yes" {
		t.Errorf("ExecStart=%s", exec0)
	}
	rotateArgsParse(t, "harden-rotate.service", strings.Fields(exec0)[1:])
	for k, want := range map[string]string{"Type": "oneshot", "ProtectSystem": "strict", "NoNewPrivileges": "yes", "PrivateTmp": "yes",
		"ProtectHome": "yes", "StateDirectory": "harden", "StateDirectoryMode": "0700", "UMask": "0077"} {
		if got := svc.one(t, "Service", k); got != want {
			t.Errorf("[Service] %s=%s, want %s", k, got, want)
		}
	}
	if rw := strings.Join(svc["Service"]["ReadWritePaths"], " "); !slicesContains(strings.Fields(rw), "/var/lib/harden") {
		t.Errorf("ReadWritePaths=%s: the state directory is not writable", rw)
	}
	env := strings.Join(svc["Service"]["Environment"], " ")
	for _, want := range []string{"HARDEN_STATE_DIR=/var/lib/harden", "HARDEN_PLUGIN_PATH=", "HARDEN_PLUGIN_LOCK="} {
		if !strings.Contains(env, want) {
			t.Errorf("Environment lacks %s: %s", want, env)
		}
	}
	for k, want := range map[string]string{"OnCalendar": "daily", "RandomizedDelaySec": "4h", "Persistent": "true", "Unit": "harden-rotate.service"} {
		if got := timer.one(t, "Timer", k); got != want {
			t.Errorf("[Timer] %s=%s, want %s", k, got, want)
		}
	}
	if got := timer.one(t, "Install", "WantedBy"); got != "timers.target" {
		t.Errorf("timer WantedBy=%s", got)
	}

	// systemd's own verifier, on copies whose ExecStart names an
	// executable that exists here (it checks that too).
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze not found (Debian package systemd)")
		}
		t.Skip("systemd-analyze not found: only the INI checks ran")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "harden-rotate.service"), bytes.ReplaceAll(mustRead(t, svcFile), []byte("/usr/local/bin/harden"), []byte(self)), 0o644)
	os.WriteFile(filepath.Join(dir, "harden-rotate.timer"), mustRead(t, timerFile), 0o644)
	cmd := exec.Command(analyze, "verify", filepath.Join(dir, "harden-rotate.service"), filepath.Join(dir, "harden-rotate.timer"))
	out, err := cmd.CombinedOutput()
	// Any output is a warning (an unknown or misspelt key is only logged).
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// The CronJob, decoded with unknown fields refused into the subset of the
// Kubernetes types it uses (a key at the wrong level fails here).
type k8sDoc struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec yaml.Node `yaml:"spec"`
}

type cronJobSpec struct {
	Schedule                   string `yaml:"schedule"`
	TimeZone                   string `yaml:"timeZone"`
	ConcurrencyPolicy          string `yaml:"concurrencyPolicy"`
	StartingDeadlineSeconds    *int   `yaml:"startingDeadlineSeconds"`
	SuccessfulJobsHistoryLimit *int   `yaml:"successfulJobsHistoryLimit"`
	FailedJobsHistoryLimit     *int   `yaml:"failedJobsHistoryLimit"`
	JobTemplate                struct {
		Spec struct {
			BackoffLimit          *int `yaml:"backoffLimit"`
			ActiveDeadlineSeconds *int `yaml:"activeDeadlineSeconds"`
			Template              struct {
				Metadata struct {
					Labels map[string]string `yaml:"labels"`
				} `yaml:"metadata"`
				Spec podSpec `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	} `yaml:"jobTemplate"`
}

type podSpec struct {
	RestartPolicy                string `yaml:"restartPolicy"`
	AutomountServiceAccountToken *bool  `yaml:"automountServiceAccountToken"`
	SecurityContext              struct {
		RunAsNonRoot   *bool `yaml:"runAsNonRoot"`
		RunAsUser      *int  `yaml:"runAsUser"`
		RunAsGroup     *int  `yaml:"runAsGroup"`
		FSGroup        *int  `yaml:"fsGroup"`
		SeccompProfile struct {
			Type string `yaml:"type"`
		} `yaml:"seccompProfile"`
	} `yaml:"securityContext"`
	Containers []struct {
		Name            string   `yaml:"name"`
		Image           string   `yaml:"image"`
		ImagePullPolicy string   `yaml:"imagePullPolicy"`
		Command         []string `yaml:"command"`
		Env             []struct {
			Name  string `yaml:"name"`
			Value string `yaml:"value"`
		} `yaml:"env"`
		SecurityContext struct {
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
			Capabilities             struct {
				Drop []string `yaml:"drop"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		Resources struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
	} `yaml:"containers"`
	Volumes []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
		Secret *struct {
			SecretName  string `yaml:"secretName"`
			DefaultMode int    `yaml:"defaultMode"`
		} `yaml:"secret"`
		PersistentVolumeClaim *struct {
			ClaimName string `yaml:"claimName"`
		} `yaml:"persistentVolumeClaim"`
		EmptyDir *struct {
			Medium    string `yaml:"medium"`
			SizeLimit string `yaml:"sizeLimit"`
		} `yaml:"emptyDir"`
	} `yaml:"volumes"`
}

type pvcSpec struct {
	AccessModes []string `yaml:"accessModes"`
	Resources   struct {
		Requests map[string]string `yaml:"requests"`
	} `yaml:"resources"`
}

func decodeStrict(t *testing.T, n *yaml.Node, v any) {
	t.Helper()
	data, err := yaml.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%T: %v", v, err)
	}
}

func TestDeployCronJob(t *testing.T) {
	file := filepath.Join(deployDir, "kubernetes", "harden-rotate-cronjob.yaml")
	dec := yaml.NewDecoder(bytes.NewReader(mustRead(t, file)))
	dec.KnownFields(true)
	var cron *cronJobSpec
	pvcs := map[string]pvcSpec{}
	for {
		var d k8sDoc
		err := dec.Decode(&d)
		if err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("%s: %v", file, err)
		}
		switch {
		case d.APIVersion == "batch/v1" && d.Kind == "CronJob":
			if cron != nil {
				t.Fatal("two CronJobs")
			}
			cron = new(cronJobSpec)
			decodeStrict(t, &d.Spec, cron)
		case d.APIVersion == "v1" && d.Kind == "PersistentVolumeClaim":
			var p pvcSpec
			decodeStrict(t, &d.Spec, &p)
			pvcs[d.Metadata.Name] = p
		default:
			t.Fatalf("unexpected document %s %s", d.APIVersion, d.Kind)
		}
	}
	if cron == nil {
		t.Fatal("no batch/v1 CronJob in " + file)
	}
	if cron.ConcurrencyPolicy != "Forbid" || cron.Schedule == "" || len(strings.Fields(cron.Schedule)) != 5 {
		t.Errorf("concurrencyPolicy %q schedule %q", cron.ConcurrencyPolicy, cron.Schedule)
	}
	js := cron.JobTemplate.Spec
	if js.BackoffLimit == nil || *js.BackoffLimit < 0 || js.ActiveDeadlineSeconds == nil {
		t.Errorf("backoffLimit %v activeDeadlineSeconds %v", js.BackoffLimit, js.ActiveDeadlineSeconds)
	}
	pod := js.Template.Spec
	if pod.RestartPolicy != "Never" || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot ||
		pod.SecurityContext.RunAsUser == nil || *pod.SecurityContext.RunAsUser == 0 || pod.SecurityContext.FSGroup == nil {
		t.Errorf("pod %+v", pod.SecurityContext)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		!slicesContains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("container securityContext %+v", sc)
	}
	if len(c.Command) < 2 || filepath.Base(c.Command[0]) != "harden" {
		t.Fatalf("command %q", c.Command)
	}
	rotateArgsParse(t, "the CronJob", c.Command[1:])
	policy := c.Command[3]
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	volumes := map[string]int{}
	for i, v := range pod.Volumes {
		volumes[v.Name] = i
	}
	mountOf := func(path string) (string, bool) {
		best, ro := "", false
		for _, m := range c.VolumeMounts {
			if (path == m.MountPath || strings.HasPrefix(path, m.MountPath+"/")) && len(m.MountPath) > len(best) {
				best, ro = m.Name, m.ReadOnly
			}
		}
		return best, ro
	}
	// The policy comes from a ConfigMap, read-only.
	if name, ro := mountOf(policy); name == "" || pod.Volumes[volumes[name]].ConfigMap == nil || !ro {
		t.Errorf("the policy %s is not on a read-only ConfigMap volume (%q)", policy, name)
	}
	// The state (journals; the store under it) on the PVC this file declares.
	state := env["HARDEN_STATE_DIR"]
	name, ro := mountOf(state)
	if state == "" || name == "" || ro || pod.Volumes[volumes[name]].PersistentVolumeClaim == nil {
		t.Fatalf("HARDEN_STATE_DIR %q is not on a writable PVC (%q)", state, name)
	}
	if claim := pod.Volumes[volumes[name]].PersistentVolumeClaim.ClaimName; len(pvcs[claim].AccessModes) == 0 {
		t.Errorf("claim %s is not declared in %s", claim, file)
	}
	// Secrets from a Secret, readable by the owner (root) and its group only.
	var secret bool
	for _, v := range pod.Volumes {
		if v.Secret != nil {
			secret = true
			if v.Secret.DefaultMode&^0o740 != 0 || v.Secret.DefaultMode == 0 {
				t.Errorf("secret defaultMode %o: harden refuses secrets others may read", v.Secret.DefaultMode)
			}
		}
	}
	if !secret {
		t.Error("no Secret volume")
	}
	// With a read-only root, the plugins' sockets need a writable TMPDIR.
	if name, ro := mountOf(env["TMPDIR"]); env["TMPDIR"] == "" || name == "" || ro || pod.Volumes[volumes[name]].EmptyDir == nil {
		t.Errorf("TMPDIR %q is not a writable emptyDir", env["TMPDIR"])
	}
	if env["HARDEN_PLUGIN_PATH"] == "" || env["HARDEN_PLUGIN_LOCK"] == "" {
		t.Errorf("plugin path or lock not set: %v", env)
	}
}

// deploy/systemd/harden-rotate-next with systemctl and systemd-run
// replaced by stubs that record their arguments (jq and date are the
// real ones): it schedules one transient timer at the next run, starts the
// service first when something is due, never reschedules sooner than the
// minimum gap, and stops (no timer) when harden fails.
func TestDeployRotateNextScript(t *testing.T) {
	script := nextScript(t)
	const policy = "/etc/harden/policy.yaml"
	sched := func(in int64, dueNow bool) string {
		return fmt.Sprintf(`{"format_version":1,"next_run":"x","in_seconds":%d,"due_now":%v,"reason":"because"}`, in, dueNow)
	}
	t.Run("not due", func(t *testing.T) {
		start := time.Now()
		log, err := runNextScript(t, script, []string{sched(20*86400, false)}, "", policy)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(log, "systemctl") || strings.Count(log, "harden rotate -f /etc/harden/policy.yaml --schedule --format json") != 1 ||
			!strings.Contains(log, "systemd-run --quiet --collect --unit=harden-rotate-next-") || !strings.HasSuffix(strings.TrimSpace(log), script) {
			t.Errorf("log:\n%s", log)
		}
		if when := calendarOf(t, log); when.Before(start.Add(20*86400*time.Second).Add(-time.Second)) || when.After(time.Now().Add(20*86400*time.Second)) {
			t.Errorf("calendar %s, want 20 days from %s", when, start)
		}
	})
	t.Run("due now, still due after the run: the service, then the minimum gap", func(t *testing.T) {
		start := time.Now()
		log, err := runNextScript(t, script, []string{sched(0, true), sched(0, true)}, "", policy)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(log), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[0], "harden ") || lines[1] != "systemctl start harden-rotate.service" ||
			!strings.HasPrefix(lines[2], "harden ") || !strings.HasPrefix(lines[3], "systemd-run ") {
			t.Fatalf("log:\n%s", log)
		}
		if when := calendarOf(t, log); when.Before(start.Add(time.Hour).Add(-time.Second)) || when.After(time.Now().Add(time.Hour)) {
			t.Errorf("calendar %s, want an hour from %s", when, start)
		}
	})
	t.Run("harden fails: no timer", func(t *testing.T) {
		log, err := runNextScript(t, script, nil, "", policy)
		if err == nil || strings.Contains(log, "systemd-run") {
			t.Errorf("err %v log:\n%s", err, log)
		}
	})
}

// runNextScript runs deploy/systemd/harden-rotate-next with systemctl and
// systemd-run replaced by stubs that log their arguments, and harden by
// one answering schedules in turn (exit 3 after the last) unless harden
// names a real one. It returns the log of every call.
func runNextScript(t *testing.T, script string, schedules []string, harden, policy string) (log string, err error) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	logFile := filepath.Join(dir, "log")
	stub := "#!/bin/sh\necho \"$(basename \"$0\") $*\" >> " + logFile + "\n"
	os.WriteFile(filepath.Join(bin, "systemctl"), []byte(stub), 0o755)
	os.WriteFile(filepath.Join(bin, "systemd-run"), []byte(stub), 0o755)
	if harden == "" {
		for i, s := range schedules {
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("s%d", i)), []byte(s), 0o644)
		}
		harden = filepath.Join(bin, "harden")
		os.WriteFile(harden, []byte(fmt.Sprintf(`#!/bin/sh
echo "harden $*" >> %[1]s
n=$(grep -c '^harden ' %[1]s)
f=%[2]s/s$((n-1))
[ -f "$f" ] || { echo "harden: exit 3" >&2; exit 3; }
cat "$f"
`, logFile, dir)), 0o755)
	}
	cmd := exec.Command("sh", script)
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "HARDEN="+harden, "HARDEN_POLICY="+policy)
	out, err := cmd.CombinedOutput()
	t.Logf("script output: %s", out)
	data, _ := os.ReadFile(logFile)
	return string(data), err
}

// calendarOf is the --on-calendar time the script gave systemd-run.
func calendarOf(t *testing.T, log string) time.Time {
	t.Helper()
	i := strings.Index(log, "--on-calendar=")
	if i < 0 {
		t.Fatalf("no --on-calendar in\n%s", log)
	}
	rest := log[i+len("--on-calendar="):]
	when, err := time.Parse("2006-01-02 15:04:05 MST", rest[:min(len(rest), len("2006-01-02 15:04:05 UTC"))])
	if err != nil {
		t.Fatalf("--on-calendar %q: %v", rest, err)
	}
	return when
}

// nextScript is the script's absolute path; it must be executable, and
// jq, date and sh must exist (under CI=true their absence fails).
func nextScript(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"jq", "date", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found", tool)
			}
			t.Skipf("%s not found", tool)
		}
	}
	script, err := filepath.Abs(filepath.Join(deployDir, "systemd", "harden-rotate-next"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(script); err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Fatalf("%s is not executable: %v", script, err)
	}
	return script
}
