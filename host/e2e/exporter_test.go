package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/harden-dev/harden/testenv"
)

// lockedBuffer is a process's stderr read while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// shutdownRedis stops a redis-server through its Unix socket (SHUTDOWN
// NOSAVE): the target's server goes away, as in an outage.
func shutdownRedis(t *testing.T, sock string) {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("connect to redis at %s: %v", sock, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("SHUTDOWN NOSAVE\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	c.Read(buf) // redis closes the connection as it exits
}

// The real harden binary runs `harden exporter` over two real redis
// servers, one serving a certificate 10 days from expiry and one an
// expired certificate, and a real Prometheus scrapes it with the shipped
// rules loaded: the 14d (and 30d) renewal alert fires for the first, the
// expired alert for the second and keeps firing over further evaluations;
// every check is a series with its ID. Scrapes (every second) never start
// a run (every 3 s). When a redis server stops, the run says so
// (harden_run_ok 0, target down, data stale) and the certificate it served
// is still exported from the last good run, its alert still firing; when
// the server whose trust check failed stops, the check is still exported
// as failed (stale) and HardenVerifyFailing keeps firing.
// SIGTERM stops the exporter gracefully (exit 0). A port already in use
// and a non-positive interval are refused before any run.
func TestExporterWithPrometheus(t *testing.T) {
	dir := t.TempDir()
	pluginDir := filepath.Join(dir, "plugins")
	buildRedisPlugin(t, pluginDir)
	ca := newInventoryCA(t)
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.pem, 0o644); err != nil {
		t.Fatal(err)
	}
	now, day := time.Now(), 24*time.Hour
	certs := []struct {
		name                string
		notBefore, notAfter time.Time
	}{
		{"d10", now.Add(-80 * day), now.Add(10*day + time.Hour)},
		{"expired", now.Add(-91 * day), now.Add(-day)},
	}
	socks := map[string]string{}
	var targets strings.Builder
	for i, c := range certs {
		certFile, keyFile := ca.leaf(t, dir, c.name, int64(300+i), c.notBefore, c.notAfter)
		addr, sock := startTLSRedis(t, certFile, keyFile, caFile)
		socks[c.name] = sock
		fmt.Fprintf(&targets, "  - name: %s\n    plugin: redis\n    connection: {address: %q, unix_socket: %q}\n    certificate: {cert_file: %s, key_file: %s}\n    spec: {cert_dir: %q}\n",
			c.name, addr, sock, filepath.Base(certFile), filepath.Base(keyFile), filepath.Join(dir, "certdir-"+c.name))
	}
	policy := filepath.Join(dir, "policy.yaml")
	doc := "apiVersion: harden/v1\nprofile: intermediate\ncertificates:\n  source: files\n  files: {ca_file: ca.pem}\ntargets:\n" + targets.String()
	if err := os.WriteFile(policy, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(dir, "plugins.lock")
	harden := func(args ...string) *exec.Cmd {
		return exec.Command(hardenBin, append(args, "--plugin-dir", pluginDir, "--lock-file", lock)...)
	}
	if out, err := harden("plugins", "lock").CombinedOutput(); err != nil {
		t.Fatalf("lock: %v\n%s", err, out)
	}

	// Refused before any run: the address in use, a non-positive interval.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", busy.Addr().String()}, "--listen " + busy.Addr().String() + ": the address is already in use"},
		{[]string{"--listen", "127.0.0.1:0", "--interval", "0s"}, "--interval 0s: want a positive duration"},
		{[]string{"--listen", "127.0.0.1:0", "--interval", "-5m"}, "--interval -5m0s: want a positive duration"},
	} {
		start := time.Now()
		cmd := harden(append([]string{"exporter", "-f", policy}, c.args...)...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), c.want) || strings.Contains(string(out), "run 1") {
			t.Errorf("exporter %v: %v (want exit 1 saying %q before any run)\n%s", c.args, err, c.want, out)
		}
		t.Logf("exporter %v: refused in %v: %s", c.args, time.Since(start).Round(time.Millisecond), strings.TrimSpace(string(out)))
	}

	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	listen := "127.0.0.1:" + strconv.Itoa(port)
	const interval = 3 * time.Second
	exp := harden("exporter", "-f", policy, "--listen", listen, "--interval", interval.String())
	var stderr lockedBuffer
	exp.Stdout, exp.Stderr = &stderr, &stderr
	exp.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := exp.Start(); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	exited := make(chan error, 1)
	go func() { exited <- exp.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			syscall.Kill(-exp.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("exporter log:\n%s", stderr.String())
		}
		if strings.Contains(stderr.String(), "PRIVATE KEY") {
			t.Error("key material in the exporter's log")
		}
	}()

	prom := testenv.PrometheusForTest(t, []string{listen}, "../../deploy/prometheus/harden-rules.yml")
	alerts := func(name string) map[string]testenv.Alert { // by target/kind, firing only
		t.Helper()
		as, err := prom.Alerts()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]testenv.Alert{}
		for _, a := range as {
			if a.Labels["alertname"] == name && a.State == "firing" {
				out[a.Labels["target"]+"/"+a.Labels["kind"]] = a
			}
		}
		return out
	}
	query := func(expr string) []testenv.Sample {
		t.Helper()
		s, err := prom.Query(expr)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	wait := func(what string, limit time.Duration, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(limit); !cond(); time.Sleep(250 * time.Millisecond) {
			if time.Now().After(deadline) {
				health, _ := prom.ScrapeHealth()
				t.Fatalf("timed out after %v waiting for %s (scrape health %v)", limit, what, health)
			}
		}
	}

	wait("the first run's certificate alerts", 60*time.Second, func() bool {
		return len(alerts("HardenCertificateRenewal14d")) >= 2 && len(alerts("HardenCertificateExpired")) >= 2
	})
	firstExpired := alerts("HardenCertificateExpired")
	for _, key := range []string{"d10/served", "d10/server"} {
		for _, name := range []string{"HardenCertificateRenewal14d", "HardenCertificateRenewal30d"} {
			a, ok := alerts(name)[key]
			if !ok || a.Labels["serial"] != strconv.FormatInt(300, 16) || a.Labels["subject"] != "CN=d10" {
				t.Errorf("%s for %s: %+v", name, key, a)
			}
		}
	}
	if a := alerts("HardenCertificateRenewal14d")["d10/served"]; a.Labels["severity"] != "critical" || !strings.Contains(a.Annotations["summary"], "expires in 10d") {
		t.Errorf("14d alert: %+v", a)
	}
	for _, name := range []string{"HardenCertificateRenewal7d", "HardenCertificateExpired"} {
		for key := range alerts(name) {
			if strings.HasPrefix(key, "d10/") {
				t.Errorf("%s fires for %s, 10 days from expiry", name, key)
			}
		}
	}
	for _, key := range []string{"expired/served", "expired/server"} {
		if a, ok := firstExpired[key]; !ok || a.Labels["severity"] != "critical" || a.Labels["serial"] != strconv.FormatInt(301, 16) {
			t.Errorf("HardenCertificateExpired for %s: %+v", key, a)
		}
	}
	for key := range alerts("HardenCertificateRenewal30d") {
		if strings.HasPrefix(key, "expired/") {
			t.Errorf("renewal tier fires for the already expired %s", key)
		}
	}

	// Every check is a series with its ID and a status; the expired
	// certificate's trust check fails on a conclusive observation.
	for _, target := range []string{"d10", "expired"} {
		var ids []string
		for _, s := range query(`harden_check_status{target="` + target + `"} == 1`) {
			ids = append(ids, s.Metric["check"])
			if s.Metric["plugin"] != "redis" || s.Metric["subject"] == "" || s.Metric["severity"] == "" || s.Metric["status"] == "" {
				t.Errorf("check series without its labels: %v", s.Metric)
			}
		}
		for _, want := range []string{"tls.enabled", "tls.protocol.versions", "tls.cipher_suites", "tls.certificate.trusted", "redis.auth.required", "redis.config.tls"} {
			if !slices.Contains(ids, want) {
				t.Errorf("%s: no harden_check_status series for %s (have %v)", target, want, ids)
			}
		}
	}
	if s := query(`harden_check_failed{target="expired",check="tls.certificate.trusted"}`); len(s) != 1 || s[0].Value != 1 {
		t.Errorf("the expired certificate's trust check: %v", s)
	}
	if s := query(`harden_check_failed{target="d10",check="tls.certificate.trusted"}`); len(s) != 1 || s[0].Value != 0 {
		t.Errorf("the valid certificate's trust check: %v", s)
	}
	// That failure (a high check) pages; its ActiveAt is kept to show the
	// alert is not resolved when the server later stops answering.
	verifyFailing := func() (testenv.Alert, bool) {
		t.Helper()
		as, err := prom.Alerts()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if a.Labels["alertname"] == "HardenVerifyFailing" && a.State == "firing" && a.Labels["target"] == "expired" && a.Labels["check"] == "tls.certificate.trusted" {
				return a, true
			}
		}
		return testenv.Alert{}, false
	}
	wait("HardenVerifyFailing for the expired certificate's trust check", 30*time.Second, func() bool { _, ok := verifyFailing(); return ok })
	trustFailing, _ := verifyFailing()
	if trustFailing.Labels["severity"] != "critical" || trustFailing.Labels["check_severity"] != "high" {
		t.Errorf("HardenVerifyFailing: %+v", trustFailing)
	}
	for _, expr := range []string{
		`harden_endpoint_tls_version_accepted{target="d10",version="TLSv1.3"} == 1`,
		`harden_endpoint_tls_version_accepted{target="d10",version="TLSv1.1"} == 0`,
		`harden_endpoint_cipher_suite_accepted{target="d10",version="TLSv1.3"}`,
		`harden_endpoint_group_accepted{target="d10"}`,
		`harden_target_up{target="d10",plugin="redis"} == 1`,
		`harden_data_stale{target="d10"} == 0`,
		`harden_run_ok == 1`,
	} {
		if len(query(expr)) == 0 {
			t.Errorf("no series for %s", expr)
		}
	}

	// Further evaluations: the expired alert is still firing, since the
	// same moment (the series never vanished).
	time.Sleep(2*interval + time.Second)
	for key, a := range firstExpired {
		if b, ok := alerts("HardenCertificateExpired")[key]; !ok || !b.ActiveAt.Equal(a.ActiveAt) {
			t.Errorf("HardenCertificateExpired for %s after more evaluations: %+v, first %+v", key, b, a)
		}
	}
	var direct []time.Duration
	for range 20 {
		start := time.Now()
		resp, err := http.Get("http://" + listen + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		direct = append(direct, time.Since(start))
	}
	slices.Sort(direct)
	t.Logf("direct scrapes of the exporter: median %v, max %v", direct[10], direct[19])
	if s := query(`scrape_duration_seconds{job="harden"}`); len(s) == 1 {
		t.Logf("Prometheus's last scrape of the exporter took %.2f ms (%v series)", s[0].Value*1000, query(`scrape_samples_scraped{job="harden"}`)[0].Value)
	}
	// Scrapes every second did not start runs: at most one per interval.
	if runs := query(`harden_runs_total`); len(runs) != 1 || runs[0].Value > time.Since(started).Seconds()/interval.Seconds()+1 {
		t.Errorf("harden_runs_total %v after %v at a %v interval", runs, time.Since(started).Round(time.Second), interval)
	}

	// d10's server goes down: the next run reads what it can.
	shutdownRedis(t, socks["d10"])
	wait("the failed run to be exported", 60*time.Second, func() bool {
		return len(query(`harden_run_ok == 0`)) == 1 && len(query(`harden_target_up{target="d10"} == 0`)) == 1 &&
			len(query(`harden_data_stale{target="d10"} == 1`)) == 1
	})
	if s := query(`harden_certificate_not_after_seconds{target="d10",kind="served"}`); len(s) != 1 || int64(s[0].Value) != certs[0].notAfter.Unix() {
		t.Errorf("the served certificate of the stopped server is not kept from the last good run: %v", s)
	}
	if s := query(`harden_endpoint_up{target="d10"}`); len(s) != 1 || s[0].Value != 0 {
		t.Errorf("endpoint of the stopped server: %v", s)
	}
	if len(query(`harden_endpoint_tls_version_accepted{target="d10",version="TLSv1.3"} == 1`)) != 1 {
		t.Error("the stopped endpoint's last good scan is not kept")
	}
	if s := query(`harden_inventory_unreadable_items{target="d10"} > 0`); len(s) != 1 {
		t.Errorf("unreadable items of the stopped server: %v", s)
	}
	if len(query(`harden_target_up{target="expired"} == 1`)) != 1 || len(query(`harden_data_stale{target="expired"} == 0`)) != 1 {
		t.Error("the other target is no longer read completely")
	}
	if len(query(`increase(harden_run_errors_total[1m]) > 0`)) != 1 {
		t.Error("harden_run_errors_total did not rise")
	}
	time.Sleep(2 * time.Second) // a rule evaluation over the failed run
	if _, ok := alerts("HardenCertificateRenewal14d")["d10/served"]; !ok {
		t.Error("the 14d alert of the stopped server's certificate stopped firing")
	}
	if !strings.Contains(stderr.String(), "did not read everything (d10: ") {
		t.Errorf("the exporter's log does not say the run was incomplete:\n%s", stderr.String())
	}
	// d10's checks could not be verified: their last conclusive verdicts
	// (the trust check passed) stay, marked stale.
	if s := query(`harden_check_stale{target="d10",check="tls.certificate.trusted"} == 1`); len(s) != 1 {
		t.Errorf("d10's trust check is not marked stale: %v", s)
	}
	if s := query(`harden_check_failed{target="d10",check="tls.certificate.trusted"}`); len(s) != 1 || s[0].Value != 0 {
		t.Errorf("d10's trust check after its server stopped: %v", s)
	}

	// The expired target's server stops too: its trust check can no
	// longer be verified, which is not a fix. harden_check_failed stays 1
	// (stale) and HardenVerifyFailing keeps firing since the same moment.
	shutdownRedis(t, socks["expired"])
	wait("the expired target's run to be exported", 60*time.Second, func() bool {
		return len(query(`harden_target_up{target="expired"} == 0`)) == 1 &&
			len(query(`harden_check_stale{target="expired",check="tls.certificate.trusted"} == 1`)) == 1
	})
	if s := query(`harden_check_failed{target="expired",check="tls.certificate.trusted"}`); len(s) != 1 || s[0].Value != 1 {
		t.Errorf("the expired certificate's trust check after its server stopped: %v", s)
	}
	time.Sleep(2 * time.Second) // a rule evaluation over that run
	if a, ok := verifyFailing(); !ok || !a.ActiveAt.Equal(trustFailing.ActiveAt) {
		t.Errorf("HardenVerifyFailing after the server stopped: %+v (firing %v), first %+v", a, ok, trustFailing)
	}

	// SIGTERM: a graceful stop, exit 0.
	exp.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("exporter after SIGTERM: %v, want exit 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("exporter still runs 30 s after SIGTERM")
	}
	if c, err := net.Dial("tcp", listen); err == nil {
		c.Close()
		t.Error("still listening after the exporter exited")
	}
	t.Logf("exporter log:\n%s", stderr.String())
}
