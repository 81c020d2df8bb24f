package exporter

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// prometheusAccept is what Prometheus 2.42 sends when it scrapes.
const prometheusAccept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

// scrape serves one scrape into body (reset first): reusing it keeps the
// recorder's buffer growth (megabytes, plain) out of the handler's time.
func scrape(tb testing.TB, h http.Handler, gzip bool, body *bytes.Buffer) int {
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept", prometheusAccept)
	if gzip {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	body.Reset()
	rec := httptest.NewRecorder()
	rec.Body = body
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		tb.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.Len()
}

// fleetState is a state after one run over 1,000 endpoints (250 targets of
// 4), about 50,000 series.
func fleetState(tb testing.TB) *State {
	now := time.Now()
	st := NewState(Info{Version: "dev", Policy: "policy.yaml", Interval: 5 * time.Minute})
	start := time.Now()
	snap := st.Observe(fleet(250, 4, now), nil, now, time.Second)
	tb.Logf("1,000 endpoints: %d series, %d bytes (%d gzipped), built in %v (once per run)", snap.Series, len(snap.enc.text), len(snap.enc.gz), time.Since(start).Round(time.Millisecond))
	return st
}

// BenchmarkScrape: one scrape of 1,000 endpoints' metrics through the
// /metrics handler, as Prometheus asks (gzip) and uncompressed; the
// reference is the same handler before any run (its own series only).
// promhttp-* is why the exposition is encoded once per run: promhttp's
// handler over the same families gathers, encodes and compresses them on
// every scrape.
func BenchmarkScrape(b *testing.B) {
	st := fleetState(b)
	full, empty := MetricsHandler(st), MetricsHandler(NewState(Info{Interval: time.Minute}))
	p := expfmt.NewTextParser(model.UTF8Validation)
	parsed, err := p.TextToMetricFamilies(bytes.NewReader(st.Snapshot().Text()))
	if err != nil {
		b.Fatal(err)
	}
	var fams []*dto.MetricFamily
	for _, f := range parsed {
		fams = append(fams, f)
	}
	sort.Slice(fams, func(i, j int) bool { return fams[i].GetName() < fams[j].GetName() })
	perScrape := promhttp.HandlerFor(prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return fams, nil }), promhttp.HandlerOpts{})
	for _, c := range []struct {
		name string
		h    http.Handler
		gzip bool
	}{{"fleet-gzip", full, true}, {"fleet-plain", full, false}, {"reference-empty-gzip", empty, true}, {"reference-empty-plain", empty, false},
		{"promhttp-per-scrape-gzip", perScrape, true}, {"promhttp-per-scrape-plain", perScrape, false}} {
		b.Run(c.name, func(b *testing.B) {
			n, body := 0, new(bytes.Buffer)
			for b.Loop() {
				n = scrape(b, c.h, c.gzip, body)
			}
			b.ReportMetric(float64(n), "bytes/scrape")
		})
	}
}

// The 10 ms budget of a scrape, as Prometheus scrapes (gzip), over 1,000
// endpoints: the median of 50 scrapes.
func TestScrapeBudget(t *testing.T) {
	h := MetricsHandler(fleetState(t))
	var took []time.Duration
	body := new(bytes.Buffer)
	for range 50 {
		start := time.Now()
		scrape(t, h, true, body)
		took = append(took, time.Since(start))
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("scrape of 1,000 endpoints (gzip, handler): median %v, max %v", took[25], took[49])
	if took[25] > 10*time.Millisecond {
		t.Errorf("median scrape %v, budget 10 ms", took[25])
	}

	// The same over a real loopback connection, as Prometheus scrapes
	// (gzip asked, the body read to the end).
	srv := httptest.NewServer(h)
	defer srv.Close()
	cl := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	took = took[:0]
	for range 50 {
		start := time.Now()
		req, _ := http.NewRequest("GET", srv.URL+"/metrics", nil)
		req.Header.Set("Accept", prometheusAccept)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took = append(took, time.Since(start))
		if resp.StatusCode != 200 || n < 100_000 {
			t.Fatalf("scrape over loopback: %d, %d bytes", resp.StatusCode, n)
		}
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("scrape of 1,000 endpoints (gzip, loopback HTTP): median %v, max %v", took[25], took[49])
	if took[25] > 10*time.Millisecond {
		t.Errorf("median scrape over loopback %v, budget 10 ms", took[25])
	}
}
