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
