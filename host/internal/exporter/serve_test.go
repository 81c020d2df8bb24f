package exporter

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/harden-dev/harden/host/internal/report"
)

// serveForTest runs Serve on a free loopback port with collect; it returns
// the base URL and a stop that waits for Serve's result.
func serveForTest(t *testing.T, interval time.Duration, collect func(context.Context) (*report.Run, error)) (string, func() error) {
	t.Helper()
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var log syncBuffer
	go func() {
		done <- Serve(ctx, ln, Options{Info: Info{Version: "test", Policy: "p.yaml", Interval: interval}, Collect: collect, Log: &log})
	}()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			t.Logf("exporter log:\n%s", log.String())
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return within 10 s of the cancel")
			return nil
		}
	}
	t.Cleanup(func() { stop() })
	return "http://" + ln.Addr().String(), stop
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func get(t *testing.T, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	// No transparent decompression: the test checks what was sent.
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// waitFor polls until cond holds (10 s at most).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Scrapes are served from memory: a hundred of them, concurrent, while the
// interval is an hour, see the one run made at start and never start
// another; the run's values are what they serve.
func TestScrapeNeverTriggersARun(t *testing.T) {
	var runs atomic.Int32
	now := time.Now()
	base, stop := serveForTest(t, time.Hour, func(context.Context) (*report.Run, error) {
		runs.Add(1)
		return pgRun(now, "abc", now.Add(10*day)), nil
	})
	waitFor(t, "the first run", func() bool {
		_, body := get(t, base+"/metrics")
		return strings.Contains(body, "harden_runs_total 1")
	})
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			resp, err := http.Get(base + "/metrics") // decompressed by the client
			if err != nil {
				t.Error(err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(body), `harden_certificate_not_after_seconds{kind="served"`) {
				t.Errorf("scrape without the certificate series: %.300s", body)
			}
		})
	}
	wg.Wait()
	if n := runs.Load(); n != 1 {
		t.Errorf("%d runs after 100 scrapes, want the 1 made at start", n)
	}
	resp, plain := get(t, base+"/metrics")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("content type %q", ct)
	}
	resp, zipped := get(t, base+"/metrics", "Accept-Encoding", "gzip")
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Accept-Encoding gzip: not gzipped (%v)", resp.Header)
	}
	zr, err := gzip.NewReader(strings.NewReader(zipped))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, _ := io.ReadAll(zr)
	if string(unzipped) != plain {
		t.Error("the gzipped exposition differs from the plain one")
	}
	if resp, _ := get(t, base+"/metrics", "Accept-Encoding", "gzip;q=0"); resp.Header.Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 was answered gzipped")
	}
	if resp, body := get(t, base+"/healthz"); resp.StatusCode != 200 || !strings.Contains(body, "1 run(s); the last one read everything") {
		t.Errorf("healthz: %d %q", resp.StatusCode, body)
	}
	if err := stop(); err != nil {
		t.Errorf("graceful stop: %v", err)
	}
	if _, err := http.Get(base + "/metrics"); err == nil {
		t.Error("still serving after the stop")
	}
}

// Runs follow the interval; one that errors is exported as such and the
// exporter goes on (only the first run's error can be fatal).
func TestRunsOnScheduleAndSurviveErrors(t *testing.T) {
	var runs atomic.Int32
	now := time.Now()
	base, stop := serveForTest(t, 50*time.Millisecond, func(context.Context) (*report.Run, error) {
		if runs.Add(1)%2 == 0 {
			return nil, errors.New("plugin postgres refused")
		}
		return pgRun(now, "abc", now.Add(10*day)), nil
	})
	waitFor(t, "four runs", func() bool { return runs.Load() >= 4 })
	_, body := get(t, base+"/metrics")
	if !strings.Contains(body, "harden_run_errors_total ") || !strings.Contains(body, `harden_certificate_not_after_seconds{kind="served"`) {
		t.Errorf("after failing runs:\n%.2000s", body)
	}
	if err := stop(); err != nil {
		t.Error(err)
	}
}

func TestFirstRunFatal(t *testing.T) {
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	want := errors.New("policy.yaml: no such file")
	err = Serve(context.Background(), ln, Options{Info: Info{Interval: time.Hour},
		Collect: func(context.Context) (*report.Run, error) { return nil, want }, Fatal: func(error) bool { return true }})
	if !errors.Is(err, want) {
		t.Errorf("Serve: %v, want the first run's error", err)
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Error("still listening after the fatal first run")
	}
}

func TestListenErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	if _, err := Listen(addr); err == nil || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("port in use: %v", err)
	}
	for _, bad := range []string{"", "127.0.0.1", "256.0.0.1:80"} {
		if ln, err := Listen(bad); err == nil {
			ln.Close()
			t.Errorf("Listen(%q) succeeded", bad)
		}
	}
	if err := Serve(context.Background(), busy, Options{}); err == nil || !strings.Contains(err.Error(), "interval") {
		t.Errorf("zero interval: %v", err)
	}
}
