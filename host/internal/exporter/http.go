package exporter

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// encoded is a snapshot's exposition, made once when the snapshot is built:
// a scrape writes bytes and does no work that grows with the fleet. Gzip
// is what Prometheus asks for; compressing 1,000 endpoints' series on
// every scrape would cost more than the whole 10 ms budget.
type encoded struct {
	text, gz    []byte
	contentType string
}

func (s *Snapshot) encode(fams []*dto.MetricFamily) {
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, format)
	for _, mf := range fams {
		if err := enc.Encode(mf); err != nil && s.Err == nil {
			// Gathered families always encode; should one not, the others
			// are still served and Serve logs why.
			s.Err = fmt.Errorf("encode %s: %w", mf.GetName(), err)
		}
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	zw.Write(buf.Bytes())
	zw.Close()
	s.enc = encoded{text: buf.Bytes(), gz: gz.Bytes(), contentType: string(format)}
}

// Text is the snapshot in the Prometheus text format.
func (s *Snapshot) Text() []byte { return s.enc.text }

// Handler serves /metrics (the current snapshot), /healthz and an index.
func (s *State) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", MetricsHandler(s))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		snap := s.Snapshot()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		switch {
		case snap.Runs == 0:
			fmt.Fprintln(w, "ok: serving; the first run has not finished yet")
		case snap.OK:
			fmt.Fprintf(w, "ok: %d run(s); the last one read everything and ended %s\n", snap.Runs, snap.End.UTC().Format(time.RFC3339))
		default:
			fmt.Fprintf(w, "ok: %d run(s); the last one, ended %s, did not read everything:\n", snap.Runs, snap.End.UTC().Format(time.RFC3339))
			for _, p := range snap.Problems {
				fmt.Fprintf(w, "  %s\n", p)
			}
		}
	})
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html><head><title>harden exporter</title></head><body><h1>harden exporter</h1><p><a href="/metrics">metrics</a> · <a href="/healthz">healthz</a></p></body></html>`)
	})
	return mux
}

// MetricsHandler writes the state's current snapshot, gzipped when the
// client accepts it. It never triggers a run.
func MetricsHandler(s *State) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		enc := s.Snapshot().enc
		body := enc.text
		h := w.Header()
		h.Set("Content-Type", enc.contentType)
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			h.Set("Content-Encoding", "gzip")
			body = enc.gz
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method == http.MethodHead {
			return
		}
		w.Write(body)
	})
}

// acceptsGzip: gzip is listed without q=0.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
			continue
		}
		if q, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(q, 64); err == nil && f == 0 {
				return false
			}
		}
		return true
	}
	return false
}
