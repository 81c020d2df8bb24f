package testenv

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A real Prometheus scrapes a loopback endpoint every second, stores what
// it read (Query sees the value change) and evaluates the rules (Alerts
// sees one fire, another not); Stop ends the process and removes its files.
func TestPrometheus(t *testing.T) {
	var value atomic.Int64
	value.Store(1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "# HELP testenv_value a value the test sets\n# TYPE testenv_value gauge\ntestenv_value{kind=\"x\"} %d\n", value.Load())
	}))
	defer srv.Close()
	rules := filepath.Join(t.TempDir(), "rules.yml")
	os.WriteFile(rules, []byte(`groups:
  - name: t
    rules:
      - alert: ValueHigh
        expr: testenv_value > 5
        labels: {severity: warning}
        annotations: {summary: "value {{ $value }}"}
      - alert: ValueNegative
        expr: testenv_value < 0
`), 0o600)
	p := PrometheusForTest(t, []string{strings.TrimPrefix(srv.URL, "http://")}, rules)

	waitProm(t, "the first scrape", func() bool {
		s, err := p.Query(`testenv_value{job="harden",kind="x"}`)
		return err == nil && len(s) == 1 && s[0].Value == 1
	})
	if a, err := p.Alerts(); err != nil || len(a) != 0 {
		t.Fatalf("alerts before the value rose: %v %v", a, err)
	}
	value.Store(7)
	waitProm(t, "ValueHigh to fire", func() bool {
		a, err := p.Alerts()
		return err == nil && len(a) == 1 && a[0].Labels["alertname"] == "ValueHigh" && a[0].State == "firing" && a[0].Annotations["summary"] == "value 7"
	})
	health, err := p.ScrapeHealth()
	if err != nil || len(health) != 1 || health[srv.URL+"/metrics"] != "up" {
		t.Errorf("scrape health %v %v", health, err)
	}
	if _, err := p.Query("testenv_value{"); err == nil || !strings.Contains(err.Error(), "parse error") {
		t.Errorf("a bad query: %v", err)
	}

	pid, base := p.proc.pid(), p.Base
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("prometheus (pid %d) still runs after Stop", pid)
	}
	if _, err := os.Stat(base); !os.IsNotExist(err) {
		t.Errorf("%s not removed: %v", base, err)
	}
}

func waitProm(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 30 s waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
