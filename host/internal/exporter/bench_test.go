package exporter

import (
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"
)

// prometheusAccept is what Prometheus 2.42 sends when it scrapes.
const prometheusAccept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

func scrape(tb testing.TB, h http.Handler, gzip bool) int {
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept", prometheusAccept)
	if gzip {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	rec := httptest.NewRecorder()
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
func BenchmarkScrape(b *testing.B) {
	full, empty := MetricsHandler(fleetState(b)), MetricsHandler(NewState(Info{Interval: time.Minute}))
	for _, c := range []struct {
		name string
		h    http.Handler
		gzip bool
	}{{"fleet-gzip", full, true}, {"fleet-plain", full, false}, {"reference-empty-gzip", empty, true}, {"reference-empty-plain", empty, false}} {
		b.Run(c.name, func(b *testing.B) {
			n := 0
			for b.Loop() {
				n = scrape(b, c.h, c.gzip)
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
	for range 50 {
		start := time.Now()
		scrape(t, h, true)
		took = append(took, time.Since(start))
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("scrape of 1,000 endpoints (gzip): median %v, max %v", took[25], took[49])
	if took[25] > 10*time.Millisecond {
		t.Errorf("median scrape %v, budget 10 ms", took[25])
	}
}
