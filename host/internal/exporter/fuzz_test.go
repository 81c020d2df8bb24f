package exporter

import (
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/host/internal/inventory"
	"github.com/harden-dev/harden/host/internal/report"
)

// Label values come from peers and files (a certificate's subject, a
// plugin's check subject and endpoint name): whatever they hold, the
// exposition parses back, holds no duplicate, and each value reads back as
// given (made valid UTF-8).
func FuzzExpositionLabels(f *testing.F) {
	f.Add("CN=pg", "127.0.0.1:5432", "tls.enabled")
	f.Add("CN=a\"b\\c\nd", "x\xff\xfe", "")
	f.Add("", "", "\u2028")
	f.Fuzz(func(t *testing.T, subject, where, check string) {
		now := time.Unix(1_800_000_000, 0)
		run := &report.Run{Targets: []report.Target{{Name: "t", Plugin: "p", Status: "ok",
			Checks:    []report.Check{{ID: check, Status: "pass", Severity: "high", Subject: where}, {ID: check, Status: "fail", Severity: "high", Subject: where}},
			Endpoints: []report.Endpoint{{Name: subject, Address: where}, {Name: subject, Address: where}}}},
			Inventory: &inventory.Report{Items: []inventory.Item{
				{Kind: "served", Target: "t", Where: where, Name: subject, Certificate: &inventory.Certificate{Subject: subject, Serial: where, NotAfter: now}},
				{Kind: "served", Target: "t", Where: where, Name: subject, Certificate: &inventory.Certificate{Subject: subject, Serial: where, NotAfter: now}},
			}}}
		st := NewState(Info{Version: subject, Policy: where, Interval: time.Minute})
		e := parse(t, st.Observe(run, nil, now, time.Second))
		valid := func(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
		if got := e.one(t, "harden_certificate_not_after_seconds", map[string]string{"subject": valid(subject), "where": valid(where)}); got != float64(now.Unix()) {
			t.Errorf("not_after %v", got)
		}
		if got := e.one(t, "harden_check_failed", map[string]string{"check": valid(check), "subject": valid(where)}); got != 1 {
			t.Errorf("check_failed %v (the worse verdict wins)", got)
		}
		e.one(t, "harden_endpoint_info", map[string]string{"name": valid(subject)})
		e.one(t, "harden_exporter_info", map[string]string{"version": valid(subject), "policy": valid(where)})
	})
}

// Accept-Encoding is a client's header: never a panic, gzip only when
// gzip is named and not refused with q=0.
func FuzzAcceptsGzip(f *testing.F) {
	for _, s := range []string{"gzip", "gzip, deflate, br", "br;q=1.0, gzip;q=0.8", "gzip;q=0", "GZIP", "identity", "", ";;,,gzip;q=", "gzip;q=0.000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		got := acceptsGzip(h)
		if got && !strings.Contains(strings.ToLower(h), "gzip") {
			t.Errorf("acceptsGzip(%q) without gzip named", h)
		}
		if h == "gzip" && !got {
			t.Error("plain gzip refused")
		}
		if got && strings.TrimSpace(h) == "gzip;q=0" {
			t.Error("gzip;q=0 accepted")
		}
	})
}
