package exporter

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/harden-dev/harden/host/internal/inventory"
	"github.com/harden-dev/harden/host/internal/report"
)

// exposition parses a snapshot back as Prometheus would.
type exposition map[string]*dto.MetricFamily

func parse(t testing.TB, snap *Snapshot) exposition {
	t.Helper()
	if snap.Err != nil {
		t.Fatalf("snapshot: %v", snap.Err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(snap.Text()))
	if err != nil {
		t.Fatalf("parse the exposition: %v\n%s", err, snap.Text())
	}
	return fams
}

// series returns the values of name's series whose labels include want,
// keyed by their full label set.
func (e exposition) series(name string, want map[string]string) map[string]float64 {
	out := map[string]float64{}
	f := e[name]
	if f == nil {
		return out
	}
	for _, m := range f.Metric {
		labels, ok := map[string]string{}, true
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				ok = false
			}
		}
		if !ok {
			continue
		}
		var keys []string
		for k, v := range labels {
			keys = append(keys, k+"="+v)
		}
		sort.Strings(keys)
		v := m.GetGauge().GetValue()
		if m.Counter != nil {
			v = m.GetCounter().GetValue()
		}
		out[strings.Join(keys, ",")] = v
	}
	return out
}

// one is the value of the single series of name matching want.
func (e exposition) one(t testing.TB, name string, want map[string]string) float64 {
	t.Helper()
	s := e.series(name, want)
	if len(s) != 1 {
		t.Fatalf("%s%v: %d series, want 1: %v", name, want, len(s), s)
	}
	for _, v := range s {
		return v
	}
	return 0
}

func (e exposition) absent(t testing.TB, name string, want map[string]string) {
	t.Helper()
	if s := e.series(name, want); len(s) != 0 {
		t.Errorf("%s%v: want no series, got %v", name, want, s)
	}
}

var day = 24 * time.Hour

// pgRun is one target with one endpoint, its served and held certificate
// (serial given) and a transit key.
func pgRun(now time.Time, serial string, notAfter time.Time) *report.Run {
	addr := "127.0.0.1:5432"
	t := report.Target{Name: "pg", Plugin: "postgres", Status: "ok", Checks: []report.Check{
		{ID: "tls.protocol.versions", Status: "pass", Severity: "high", Subject: addr},
		{ID: "tls.cipher_suites", Status: "fail", Severity: "medium", Subject: addr},
	}, Endpoints: []report.Endpoint{{Name: "postgres", Address: addr, Dialect: "postgres",
		Versions:            []report.Version{{Version: "TLSv1.1", Outcome: "refused"}, {Version: "TLSv1.2", Outcome: "accepted"}, {Version: "TLSv1.3", Outcome: "inconclusive"}},
		Suites:              []report.Suite{{Version: "TLSv1.2", ID: "0xC02B", Name: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}},
		Groups:              []string{"x25519"},
		ClientCertRequested: true, NoClientCert: "refused", Plaintext: "accepted", TrustChecked: true, Inconclusive: 1}}}
	cert := &inventory.Certificate{Subject: "CN=pg", Serial: serial, NotBefore: now.Add(-80 * day), NotAfter: notAfter, RenewAt: notAfter.Add(-30 * day)}
	created := now.Add(-40 * day)
	next := created.Add(30 * day)
	inv := &inventory.Report{Items: []inventory.Item{
		{Kind: inventory.KindServed, Target: "pg", Where: addr, Name: "postgres", Certificate: cert},
		{Kind: inventory.KindServer, Target: "pg", Where: "/etc/pg/server.pem", Certificate: cert},
		{Kind: inventory.KindCA, Targets: []string{"pg", "other"}, Where: "/etc/ca.pem", Certificate: &inventory.Certificate{Subject: "CN=CA", Serial: "1", NotBefore: now.Add(-day), NotAfter: now.Add(300 * day)}},
		{Kind: inventory.KindKey, Target: "pg", Where: "transit/", Name: "kek", Key: &inventory.Key{LatestVersion: 3, LatestCreated: &created, AutoRotatePeriodSeconds: 30 * 86400, NextRotation: &next}},
		{Kind: inventory.KindKey, Target: "pg", Where: "transit/", Name: "manual", Key: &inventory.Key{LatestVersion: 1}},
	}}
	return &report.Run{Profile: "intermediate", Targets: []report.Target{t}, Inventory: inv}
}

func TestSnapshotSeries(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	st := NewState(Info{Version: "1.2.3", Policy: "policy.yaml", Interval: 5 * time.Minute})
	before := parse(t, st.Snapshot())
	if before.one(t, "harden_runs_total", nil) != 0 || before.one(t, "harden_exporter_interval_seconds", nil) != 300 {
		t.Errorf("before the first run: %v", before)
	}
	before.absent(t, "harden_run_ok", nil)
	before.absent(t, "harden_last_success_timestamp_seconds", nil)

	notAfter := now.Add(10 * day)
	e := parse(t, st.Observe(pgRun(now, "abc", notAfter), nil, now, 1500*time.Millisecond))
	pg := map[string]string{"target": "pg"}
	ep := map[string]string{"target": "pg", "endpoint": "127.0.0.1:5432"}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for name, want := range map[string]float64{
		"harden_runs_total": 1, "harden_run_errors_total": 0, "harden_run_ok": 1, "harden_run_duration_seconds": 1.5,
		"harden_last_run_timestamp_seconds": float64(now.Unix()), "harden_last_success_timestamp_seconds": float64(now.Unix()),
	} {
		if got := e.one(t, name, nil); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if e.one(t, "harden_exporter_info", map[string]string{"version": "1.2.3", "policy": "policy.yaml", "profile": "intermediate"}) != 1 {
		t.Error("exporter info")
	}
	for name, want := range map[string]float64{"harden_target_up": 1, "harden_data_stale": 0, "harden_inventory_unreadable_items": 0,
		"harden_target_last_success_timestamp_seconds": float64(now.Unix())} {
		if got := e.one(t, name, pg); got != want {
			t.Errorf("%s{pg} = %v, want %v", name, got, want)
		}
	}
	if e.one(t, "harden_target_up", with(pg, "plugin", "postgres")) != 1 {
		t.Error("target_up has no plugin label")
	}
	// Checks: one status series each, failed 0/1.
	if e.one(t, "harden_check_status", with(pg, "check", "tls.cipher_suites", "status", "fail", "severity", "medium", "subject", "127.0.0.1:5432", "plugin", "postgres")) != 1 ||
		e.one(t, "harden_check_failed", with(pg, "check", "tls.cipher_suites")) != 1 ||
		e.one(t, "harden_check_failed", with(pg, "check", "tls.protocol.versions")) != 0 ||
		e.one(t, "harden_check_status", with(pg, "check", "tls.protocol.versions", "status", "pass")) != 1 {
		t.Errorf("check series: %v %v", e.series("harden_check_status", pg), e.series("harden_check_failed", pg))
	}
	if n := len(e.series("harden_check_status", pg)); n != 2 {
		t.Errorf("%d check status series, want one per check", n)
	}
	// Endpoints: only conclusive outcomes are values.
	if e.one(t, "harden_endpoint_tls_version_accepted", with(ep, "version", "TLSv1.2")) != 1 || e.one(t, "harden_endpoint_tls_version_accepted", with(ep, "version", "TLSv1.1")) != 0 {
		t.Error("versions")
	}
	e.absent(t, "harden_endpoint_tls_version_accepted", with(ep, "version", "TLSv1.3"))
	if e.one(t, "harden_endpoint_cipher_suite_accepted", with(ep, "version", "TLSv1.2", "suite", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")) != 1 ||
		e.one(t, "harden_endpoint_group_accepted", with(ep, "group", "x25519")) != 1 ||
		e.one(t, "harden_endpoint_client_cert_requested", ep) != 1 || e.one(t, "harden_endpoint_client_cert_required", ep) != 1 ||
		e.one(t, "harden_endpoint_plaintext_refused", ep) != 0 || e.one(t, "harden_endpoint_chain_trusted", ep) != 1 ||
		e.one(t, "harden_endpoint_inconclusive_observations", ep) != 1 || e.one(t, "harden_endpoint_up", ep) != 1 ||
		e.one(t, "harden_endpoint_info", with(ep, "name", "postgres", "dialect", "postgres")) != 1 {
		t.Error("endpoint series")
	}
	// Certificates: served, held and the CA once per target using it.
	for _, kind := range []string{"served", "server"} {
		if got := e.one(t, "harden_certificate_not_after_seconds", with(pg, "kind", kind, "serial", "abc", "subject", "CN=pg")); got != float64(notAfter.Unix()) {
			t.Errorf("%s not_after %v", kind, got)
		}
	}
	if e.one(t, "harden_certificate_renew_at_seconds", with(pg, "kind", "served")) != float64(notAfter.Add(-30*day).Unix()) ||
		e.one(t, "harden_certificate_not_before_seconds", with(pg, "kind", "server")) != float64(now.Add(-80*day).Unix()) {
		t.Error("not_before / renew_at")
	}
	// The CA is also "other"'s, which is not in this run: pg's only.
	if len(e.series("harden_certificate_not_after_seconds", map[string]string{"kind": "ca", "where": "/etc/ca.pem", "target": "pg"})) != 1 ||
		len(e.series("harden_certificate_not_after_seconds", map[string]string{"kind": "ca"})) != 1 {
		t.Errorf("CA: %v", e.series("harden_certificate_not_after_seconds", map[string]string{"kind": "ca"}))
	}
	// Keys.
	kek, manual := with(pg, "key", "kek", "where", "transit/"), with(pg, "key", "manual")
	if e.one(t, "harden_key_latest_version", kek) != 3 || e.one(t, "harden_key_latest_version_created_seconds", kek) != float64(now.Add(-40*day).Unix()) ||
		e.one(t, "harden_key_next_rotation_seconds", kek) != float64(now.Add(-10*day).Unix()) || e.one(t, "harden_key_auto_rotate_disabled", kek) != 0 ||
		e.one(t, "harden_key_auto_rotate_period_seconds", kek) != 30*86400 || e.one(t, "harden_key_auto_rotate_disabled", manual) != 1 {
		t.Error("key series")
	}
	e.absent(t, "harden_key_next_rotation_seconds", manual)
	e.absent(t, "harden_key_latest_version_created_seconds", manual)
	for name, f := range e {
		if f.GetHelp() == "" {
			t.Errorf("%s has no HELP", name)
		}
	}
	promtoolCheckMetrics(t, st.Snapshot().Text())
}

// A run that cannot read a target keeps the last good values of what it
// could not read, marks the target stale and says so; the next complete
// run clears it. A renewed certificate replaces the old series.
func TestLastGoodValuesKeptStale(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	st := NewState(Info{Interval: time.Minute})
	expired := now.Add(-2 * day)
	st.Observe(pgRun(now, "old", expired), nil, now, time.Second)
	pg := map[string]string{"target": "pg"}
	served := map[string]string{"target": "pg", "kind": "served"}

	// 1. The server went down: the endpoint and the served certificate
	// are unreadable; the held file is still read.
	t1 := now.Add(time.Minute)
	down := pgRun(t1, "old", expired)
	down.Targets[0].Checks = []report.Check{{ID: "tls.protocol.versions", Status: "error", Severity: "high", Subject: "127.0.0.1:5432"}}
	down.Targets[0].Endpoints = []report.Endpoint{{Name: "postgres", Address: "127.0.0.1:5432", Error: "dial tcp 127.0.0.1:5432: connect: connection refused"}}
	down.Inventory.Items[0] = inventory.Item{Kind: inventory.KindServed, Target: "pg", Where: "127.0.0.1:5432", Name: "postgres", Tier: inventory.TierUnknown, Error: "connection refused"}
	e := parse(t, st.Observe(down, nil, t1, time.Second))
	if e.one(t, "harden_run_ok", nil) != 0 || e.one(t, "harden_run_errors_total", nil) != 1 || e.one(t, "harden_target_up", pg) != 0 ||
		e.one(t, "harden_data_stale", pg) != 1 || e.one(t, "harden_inventory_unreadable_items", pg) != 1 ||
		e.one(t, "harden_target_last_success_timestamp_seconds", pg) != float64(now.Unix()) ||
		e.one(t, "harden_last_success_timestamp_seconds", nil) != float64(now.Unix()) || e.one(t, "harden_last_run_timestamp_seconds", nil) != float64(t1.Unix()) {
		t.Errorf("run state after the failed run:\n%s", st.Snapshot().Text())
	}
	if e.one(t, "harden_certificate_not_after_seconds", served) != float64(expired.Unix()) {
		t.Error("the served expired certificate was dropped")
	}
	if p := strings.Join(st.Snapshot().Problems, "\n"); !strings.Contains(p, "pg: check tls.protocol.versions on 127.0.0.1:5432") ||
		!strings.Contains(p, "pg: endpoint 127.0.0.1:5432 (postgres): dial tcp 127.0.0.1:5432: connect: connection refused") || len(st.Snapshot().Problems) != 3 {
		t.Errorf("problems: %q", st.Snapshot().Problems)
	}
	ep := map[string]string{"target": "pg", "endpoint": "127.0.0.1:5432"}
	if e.one(t, "harden_endpoint_up", ep) != 0 || e.one(t, "harden_endpoint_tls_version_accepted", map[string]string{"target": "pg", "version": "TLSv1.2"}) != 1 {
		t.Error("the endpoint's last good scan was dropped, or it is not marked down")
	}
	if e.one(t, "harden_check_status", map[string]string{"check": "tls.protocol.versions", "status": "error"}) != 1 {
		t.Error("the check's current verdict (error) is not what is exported")
	}

	// 2. The plugin failed as a whole: every value from the last run that
	// had it (the checks: the last verdicts given, the error above).
	t2 := t1.Add(time.Minute)
	crashed := &report.Run{Targets: []report.Target{{Name: "pg", Plugin: "postgres", Status: "error", Error: "plugin postgres exited"}},
		Inventory: &inventory.Report{Items: []inventory.Item{{Kind: inventory.KindTarget, Target: "pg", Tier: inventory.TierUnknown, Error: "plugin postgres exited"}}}}
	e = parse(t, st.Observe(crashed, nil, t2, time.Second))
	if e.one(t, "harden_data_stale", pg) != 1 || len(e.series("harden_certificate_not_after_seconds", pg)) != 3 ||
		e.one(t, "harden_check_status", map[string]string{"check": "tls.protocol.versions", "status": "error"}) != 1 ||
		e.one(t, "harden_endpoint_tls_version_accepted", map[string]string{"target": "pg", "version": "TLSv1.2"}) != 1 || e.one(t, "harden_key_latest_version", map[string]string{"key": "kek"}) != 3 {
		t.Errorf("after a crashed plugin:\n%s", st.Snapshot().Text())
	}

	// 3. The whole run failed (the policy did not load).
	t3 := t2.Add(time.Minute)
	e = parse(t, st.Observe(nil, fmt.Errorf("policy.yaml: no such file"), t3, time.Millisecond))
	if p := st.Snapshot().Problems; len(p) != 1 || p[0] != "policy.yaml: no such file" {
		t.Errorf("problems of a failed run: %q", p)
	}
	if e.one(t, "harden_run_ok", nil) != 0 || e.one(t, "harden_run_errors_total", nil) != 3 || e.one(t, "harden_runs_total", nil) != 4 ||
		e.one(t, "harden_data_stale", pg) != 1 || e.one(t, "harden_target_up", pg) != 0 || e.one(t, "harden_certificate_not_after_seconds", served) != float64(expired.Unix()) {
		t.Errorf("after a failed run:\n%s", st.Snapshot().Text())
	}

	// 4. Back, with a renewed certificate: fresh values, the old serial gone.
	t4 := t3.Add(time.Minute)
	renewed := t4.Add(90 * day)
	e = parse(t, st.Observe(pgRun(t4, "new", renewed), nil, t4, time.Second))
	if e.one(t, "harden_run_ok", nil) != 1 || e.one(t, "harden_data_stale", pg) != 0 || e.one(t, "harden_target_up", pg) != 1 ||
		e.one(t, "harden_certificate_not_after_seconds", served) != float64(renewed.Unix()) || e.one(t, "harden_last_success_timestamp_seconds", nil) != float64(t4.Unix()) {
		t.Errorf("after recovery:\n%s", st.Snapshot().Text())
	}
	e.absent(t, "harden_certificate_not_after_seconds", map[string]string{"serial": "old"})
	e.absent(t, "harden_check_status", map[string]string{"status": "error"})
	if p := st.Snapshot().Problems; len(p) != 0 {
		t.Errorf("problems after recovery: %q", p)
	}

	// 5. A target dropped from the policy is dropped from the metrics.
	e = parse(t, st.Observe(&report.Run{Inventory: &inventory.Report{}}, nil, t4.Add(time.Minute), time.Second))
	e.absent(t, "harden_target_up", pg)
	e.absent(t, "harden_certificate_not_after_seconds", nil)
}

// A check reported twice for one subject is one series with the worse
// verdict (a scrape with duplicates would be rejected as a whole), and
// label values from a peer that are not UTF-8 are made valid.
func TestDuplicatesAndInvalidUTF8(t *testing.T) {
	now := time.Now()
	run := pgRun(now, "abc", now.Add(day))
	tg := &run.Targets[0]
	tg.Checks = append(tg.Checks, report.Check{ID: "tls.protocol.versions", Status: "fail", Severity: "high", Subject: "127.0.0.1:5432"},
		report.Check{ID: "tls.protocol.versions", Status: "pass", Severity: "high", Subject: "127.0.0.1:5432"})
	tg.Endpoints = append(tg.Endpoints, tg.Endpoints[0])
	run.Inventory.Items = append(run.Inventory.Items, inventory.Item{Kind: inventory.KindServed, Target: "pg", Where: "127.0.0.1:6543", Name: "x",
		Certificate: &inventory.Certificate{Subject: "CN=bad\xff\xfe", Serial: "2", NotAfter: now.Add(day)}})
	st := NewState(Info{Interval: time.Minute})
	e := parse(t, st.Observe(run, nil, now, time.Second))
	if s := e.series("harden_check_status", map[string]string{"check": "tls.protocol.versions"}); len(s) != 1 || e.one(t, "harden_check_failed", map[string]string{"check": "tls.protocol.versions"}) != 1 {
		t.Errorf("duplicate check: %v", s)
	}
	if e.one(t, "harden_certificate_not_after_seconds", map[string]string{"subject": "CN=bad\uFFFD"}) == 0 {
		t.Error("invalid UTF-8 subject")
	}
}

// promtoolCheckMetrics lints the exposition with promtool (CI=true: it must
// be installed).
func promtoolCheckMetrics(t *testing.T, text []byte) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("promtool not found (setup installs prometheus): %v", err)
		}
		t.Skipf("promtool not found: %v", err)
	}
	f := filepath.Join(t.TempDir(), "metrics.txt")
	os.WriteFile(f, text, 0o600)
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// A plugin that leaves an unreachable endpoint out of its answer (only an
// "error" check says so) still gets its last good scan and served
// certificate kept; a complete run without the endpoint drops it (it was
// removed from the target).
func TestMissingEndpointCarriedOnlyWhileIncomplete(t *testing.T) {
	now := time.Now()
	st := NewState(Info{Interval: time.Minute})
	st.Observe(pgRun(now, "abc", now.Add(day)), nil, now, time.Second)
	ep := map[string]string{"target": "pg", "endpoint": "127.0.0.1:5432"}
	served := map[string]string{"target": "pg", "kind": "served"}

	quiet := pgRun(now, "abc", now.Add(day))
	quiet.Targets[0].Endpoints = nil
	quiet.Targets[0].Checks = []report.Check{{ID: "tls.enabled", Status: "error", Severity: "high", Subject: "127.0.0.1:5432", Evidence: "endpoint unreachable"}}
	quiet.Inventory.Items = quiet.Inventory.Items[1:] // the served item is not listed either
	e := parse(t, st.Observe(quiet, nil, now, time.Second))
	if e.one(t, "harden_endpoint_up", ep) != 0 || e.one(t, "harden_endpoint_group_accepted", ep) != 1 || e.one(t, "harden_certificate_not_after_seconds", served) == 0 ||
		e.one(t, "harden_data_stale", map[string]string{"target": "pg"}) != 1 {
		t.Errorf("incomplete run without the endpoint:\n%s", st.Snapshot().Text())
	}

	gone := pgRun(now, "abc", now.Add(day))
	gone.Targets[0].Endpoints = nil
	gone.Inventory.Items = gone.Inventory.Items[1:]
	e = parse(t, st.Observe(gone, nil, now, time.Second))
	e.absent(t, "harden_endpoint_up", ep)
	e.absent(t, "harden_certificate_not_after_seconds", served)
	if e.one(t, "harden_data_stale", map[string]string{"target": "pg"}) != 0 || e.one(t, "harden_target_up", map[string]string{"target": "pg"}) != 1 {
		t.Errorf("complete run without the endpoint:\n%s", st.Snapshot().Text())
	}
}

// An error is not a fix: a check that failed and then could not be
// verified keeps harden_check_failed 1 (HardenVerifyFailing keeps firing),
// marked stale per check and per target, with status="error" beside it,
// over any number of erroring runs, until a run sees it pass. A check an
// incomplete run does not give at all is kept the same way; one that was
// never conclusive is not called failed.
func TestCheckErrorKeepsLastConclusiveVerdict(t *testing.T) {
	const addr = "127.0.0.1:5432"
	run := func(cs ...report.Check) *report.Run {
		return &report.Run{Targets: []report.Target{{Name: "pg", Plugin: "postgres", Status: "ok", Checks: cs}}}
	}
	chk := func(id, status string) report.Check {
		return report.Check{ID: id, Status: status, Severity: "high", Subject: addr, Evidence: "e"}
	}
	const ver, suites, enabled = "tls.protocol.versions", "tls.cipher_suites", "tls.enabled"
	pg := map[string]string{"target": "pg"}
	of := func(id string, kv ...string) map[string]string {
		m := map[string]string{"target": "pg", "check": id}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	st := NewState(Info{Interval: time.Minute})
	now := time.Now()
	// 1. versions fails, suites passes; enabled errors from the start.
	e := parse(t, st.Observe(run(chk(ver, "fail"), chk(suites, "pass"), chk(enabled, "error")), nil, now, time.Second))
	if e.one(t, "harden_check_failed", of(ver)) != 1 || e.one(t, "harden_check_stale", of(ver)) != 0 ||
		e.one(t, "harden_check_failed", of(enabled)) != 0 || e.one(t, "harden_check_stale", of(enabled)) != 0 ||
		e.one(t, "harden_check_status", of(enabled, "status", "error")) != 1 || e.one(t, "harden_data_stale", pg) != 0 {
		t.Fatalf("first run:\n%s", st.Snapshot().Text())
	}
	// 2 and 3. Both can no longer be verified (twice): the last conclusive
	// verdicts stay, stale, beside status error.
	for i := 1; i <= 2; i++ {
		e = parse(t, st.Observe(run(chk(ver, "error"), chk(suites, "error"), chk(enabled, "error")), nil, now.Add(time.Duration(i)*time.Minute), time.Second))
		if e.one(t, "harden_check_failed", of(ver, "severity", "high", "subject", addr, "plugin", "postgres")) != 1 || e.one(t, "harden_check_stale", of(ver)) != 1 ||
			e.one(t, "harden_check_status", of(ver, "status", "error")) != 1 || len(e.series("harden_check_status", of(ver))) != 1 ||
			e.one(t, "harden_check_failed", of(suites)) != 0 || e.one(t, "harden_check_stale", of(suites)) != 1 ||
			e.one(t, "harden_check_failed", of(enabled)) != 0 || e.one(t, "harden_check_stale", of(enabled)) != 0 ||
			e.one(t, "harden_data_stale", pg) != 1 || e.one(t, "harden_target_up", pg) != 0 {
			t.Fatalf("erroring run %d:\n%s", i, st.Snapshot().Text())
		}
	}
	// 4. The target answers for enabled only (still in error): the checks
	// it left out are kept as they were, stale.
	e = parse(t, st.Observe(run(chk(enabled, "error")), nil, now.Add(3*time.Minute), time.Second))
	if e.one(t, "harden_check_failed", of(ver)) != 1 || e.one(t, "harden_check_stale", of(ver)) != 1 ||
		e.one(t, "harden_check_status", of(suites, "status", "error")) != 1 || e.one(t, "harden_check_stale", of(suites)) != 1 {
		t.Fatalf("checks missing from an incomplete run:\n%s", st.Snapshot().Text())
	}
	// 5. Conclusive again: versions passes now, nothing stale; a complete
	// run drops the checks it no longer gives.
	e = parse(t, st.Observe(run(chk(ver, "pass"), chk(enabled, "pass")), nil, now.Add(4*time.Minute), time.Second))
	if e.one(t, "harden_check_failed", of(ver)) != 0 || e.one(t, "harden_check_stale", of(ver)) != 0 ||
		e.one(t, "harden_check_status", of(ver, "status", "pass")) != 1 || e.one(t, "harden_data_stale", pg) != 0 || e.one(t, "harden_target_up", pg) != 1 {
		t.Fatalf("after recovery:\n%s", st.Snapshot().Text())
	}
	e.absent(t, "harden_check_status", of(suites))
	// 6. A failure seen, then the plugin fails as a whole: still failed.
	st.Observe(run(chk(ver, "fail"), chk(enabled, "pass")), nil, now.Add(5*time.Minute), time.Second)
	crashed := &report.Run{Targets: []report.Target{{Name: "pg", Plugin: "postgres", Status: "error", Error: "plugin postgres exited"}}}
	e = parse(t, st.Observe(crashed, nil, now.Add(6*time.Minute), time.Second))
	if e.one(t, "harden_check_failed", of(ver)) != 1 || e.one(t, "harden_check_stale", of(ver)) != 1 || e.one(t, "harden_check_stale", of(enabled)) != 1 {
		t.Fatalf("after a crashed plugin:\n%s", st.Snapshot().Text())
	}
	promtoolCheckMetrics(t, st.Snapshot().Text())
}

// PostgreSQL 17+: the STARTTLS and the direct-TLS door share an address.
// Both are exported, told apart by name; TLSv1 accepted on the direct
// door is 1 there, refused on the other 0. When one door cannot be read,
// its last scan is kept and the other door's is the run's.
func TestEndpointsSharingAnAddress(t *testing.T) {
	const addr = "127.0.0.1:5432"
	starttls := report.Endpoint{Name: "postgres", Address: addr, Dialect: "postgres",
		Versions: []report.Version{{Version: "TLSv1", Outcome: "refused"}, {Version: "TLSv1.3", Outcome: "accepted"}}, Groups: []string{"x25519"}}
	direct := report.Endpoint{Name: "postgres (direct TLS)", Address: addr, Dialect: "postgres-direct",
		Versions: []report.Version{{Version: "TLSv1", Outcome: "accepted"}, {Version: "TLSv1.3", Outcome: "accepted"}}, Groups: []string{"secp256r1"}}
	run := func(eps ...report.Endpoint) *report.Run {
		return &report.Run{Targets: []report.Target{{Name: "pg", Plugin: "postgres", Status: "ok", Endpoints: eps,
			Checks: []report.Check{{ID: "tls.enabled", Status: "pass", Severity: "high", Subject: addr}}}}}
	}
	door := func(name string, kv ...string) map[string]string {
		m := map[string]string{"target": "pg", "endpoint": addr, "name": name}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	st := NewState(Info{Interval: time.Minute})
	now := time.Now()
	e := parse(t, st.Observe(run(starttls, direct), nil, now, time.Second))
	if e.one(t, "harden_endpoint_tls_version_accepted", door(direct.Name, "version", "TLSv1")) != 1 ||
		e.one(t, "harden_endpoint_tls_version_accepted", door(starttls.Name, "version", "TLSv1")) != 0 ||
		e.one(t, "harden_endpoint_group_accepted", door(direct.Name, "group", "secp256r1")) != 1 ||
		e.one(t, "harden_endpoint_info", door(direct.Name, "dialect", "postgres-direct")) != 1 ||
		len(e.series("harden_endpoint_up", map[string]string{"endpoint": addr})) != 2 {
		t.Fatalf("two doors on one address:\n%s", st.Snapshot().Text())
	}
	e.absent(t, "harden_endpoint_group_accepted", door(starttls.Name, "group", "secp256r1"))

	down := direct
	down.Versions, down.Groups, down.Error = nil, nil, "dial tcp "+addr+": connection reset by peer"
	e = parse(t, st.Observe(run(starttls, down), nil, now.Add(time.Minute), time.Second))
	if e.one(t, "harden_endpoint_up", door(direct.Name)) != 0 || e.one(t, "harden_endpoint_up", door(starttls.Name)) != 1 ||
		e.one(t, "harden_endpoint_tls_version_accepted", door(direct.Name, "version", "TLSv1")) != 1 ||
		e.one(t, "harden_endpoint_tls_version_accepted", door(starttls.Name, "version", "TLSv1")) != 0 {
		t.Fatalf("one door down:\n%s", st.Snapshot().Text())
	}
	if p := strings.Join(st.Snapshot().Problems, "\n"); !strings.Contains(p, "pg: endpoint "+addr+" (postgres (direct TLS)): dial tcp") {
		t.Errorf("problems: %q", st.Snapshot().Problems)
	}
}

// An inventory item read in part (inventory/collect.go: a key with
// automatic rotation whose creation time the target does not report; tier
// unknown, error set) exports what was read. The inventory calls it
// incomplete (tier unknown, exit 3), so the target is not up and the item
// counts as unreadable: no next rotation can be given. While the key stays
// at the version last read with its creation time, that creation time and
// next rotation are kept (stale), so an overdue rotation keeps alerting;
// a new version drops them. An item with an error but a known tier is a
// finding, not an unread item.
func TestPartlyReadKey(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	const period = 30 * 86400
	key := func(version int, created *time.Time) inventory.Item {
		it := inventory.Item{Kind: inventory.KindKey, Target: "pg", Where: "transit/", Name: "kek",
			Key: &inventory.Key{LatestVersion: version, AutoRotatePeriodSeconds: period, AutoRotatePeriod: "30d"}, Tier: inventory.TierOK}
		if created == nil {
			it.Tier, it.Error = inventory.TierUnknown, "the plugin did not report when the latest version was made: no next rotation date"
		} else {
			next := created.Add(period * time.Second)
			it.Key.LatestCreated, it.Key.NextRotation = created, &next
			if next.Before(now) {
				it.Tier = inventory.TierOverdue
			}
		}
		return it
	}
	run := func(items ...inventory.Item) *report.Run {
		return &report.Run{Targets: []report.Target{{Name: "pg", Plugin: "postgres", Status: "ok",
			Checks: []report.Check{{ID: "tls.enabled", Status: "pass", Severity: "high", Subject: "127.0.0.1:5432"}}}},
			Inventory: &inventory.Report{Items: items}}
	}
	kek := map[string]string{"target": "pg", "key": "kek", "where": "transit/"}
	pg := map[string]string{"target": "pg"}

	st := NewState(Info{Interval: time.Minute})
	e := parse(t, st.Observe(run(key(4, nil)), nil, now, time.Second))
	if e.one(t, "harden_key_latest_version", kek) != 4 || e.one(t, "harden_key_auto_rotate_period_seconds", kek) != period ||
		e.one(t, "harden_key_auto_rotate_disabled", kek) != 0 || e.one(t, "harden_inventory_unreadable_items", pg) != 1 ||
		e.one(t, "harden_target_up", pg) != 0 || e.one(t, "harden_data_stale", pg) != 0 {
		t.Fatalf("a key read in part:\n%s", st.Snapshot().Text())
	}
	e.absent(t, "harden_key_next_rotation_seconds", kek)
	e.absent(t, "harden_key_latest_version_created_seconds", kek)
	if p := strings.Join(st.Snapshot().Problems, "\n"); !strings.Contains(p, "pg: inventory key transit/: the plugin did not report") {
		t.Errorf("problems: %q", st.Snapshot().Problems)
	}

	// Read in full, overdue; then the creation time goes missing at the
	// same version: kept, stale; then a new version: dropped.
	created := now.Add(-40 * day)
	e = parse(t, st.Observe(run(key(4, &created)), nil, now, time.Second))
	if e.one(t, "harden_target_up", pg) != 1 || e.one(t, "harden_inventory_unreadable_items", pg) != 0 ||
		e.one(t, "harden_key_next_rotation_seconds", kek) != float64(created.Add(period*time.Second).Unix()) {
		t.Fatalf("the key read in full:\n%s", st.Snapshot().Text())
	}
	e = parse(t, st.Observe(run(key(4, nil)), nil, now, time.Second))
	if e.one(t, "harden_key_next_rotation_seconds", kek) != float64(created.Add(period*time.Second).Unix()) ||
		e.one(t, "harden_key_latest_version_created_seconds", kek) != float64(created.Unix()) ||
		e.one(t, "harden_data_stale", pg) != 1 || e.one(t, "harden_target_up", pg) != 0 {
		t.Fatalf("the same version without its creation time:\n%s", st.Snapshot().Text())
	}
	e = parse(t, st.Observe(run(key(5, nil)), nil, now, time.Second))
	if e.one(t, "harden_key_latest_version", kek) != 5 || len(e.series("harden_key_latest_version", pg)) != 1 {
		t.Fatalf("a new version:\n%s", st.Snapshot().Text())
	}
	e.absent(t, "harden_key_next_rotation_seconds", kek)

	// An error beside a known tier: exported, and the target is up.
	found := key(5, &created)
	found.Error = "a note the collector attached"
	e = parse(t, st.Observe(run(found), nil, now, time.Second))
	if e.one(t, "harden_target_up", pg) != 1 || e.one(t, "harden_inventory_unreadable_items", pg) != 0 || e.one(t, "harden_key_latest_version", kek) != 5 {
		t.Fatalf("an error with a known tier:\n%s", st.Snapshot().Text())
	}
}

// TestCarriedChecksAreBounded: a check the runs stop giving is not kept
// failing forever — not at all when only an inventory item is unreadable
// (that says nothing about checks), and at most maxCheckCarry while the
// verification itself is incomplete.
func TestCarriedChecksAreBounded(t *testing.T) {
	chk := func(subject, status string) report.Check {
		return report.Check{ID: "tls.enabled", Status: status, Severity: "high", Subject: subject, Evidence: "e"}
	}
	unreadableKey := &inventory.Report{Items: []inventory.Item{{Kind: inventory.KindKey, Target: "pg", Where: "transit/keys/k", Name: "k", Tier: inventory.TierUnknown, Error: "permission denied"}}}
	run := func(status string, inv *inventory.Report, cs ...report.Check) *report.Run {
		return &report.Run{Targets: []report.Target{{Name: "pg", Plugin: "postgres", Status: status, Checks: cs}}, Inventory: inv}
	}
	old := map[string]string{"target": "pg", "subject": "127.0.0.1:1"}
	now := time.Now()

	st := NewState(Info{Interval: time.Minute})
	st.Observe(run("ok", nil, chk("127.0.0.1:1", "fail")), nil, now, time.Second)
	// The subject moved; an unrelated key cannot be read.
	e := parse(t, st.Observe(run("ok", unreadableKey, chk("127.0.0.1:2", "pass")), nil, now.Add(time.Minute), time.Second))
	if got := e.series("harden_check_failed", old); len(got) != 0 {
		t.Fatalf("the moved check is still exported beside an unreadable key: %v", got)
	}

	st = NewState(Info{Interval: time.Minute})
	st.Observe(run("ok", nil, chk("127.0.0.1:1", "fail")), nil, now, time.Second)
	// The target is in error: the failing check is carried, stale...
	e = parse(t, st.Observe(run("error", nil), nil, now.Add(time.Hour), time.Second))
	if e.one(t, "harden_check_failed", old) != 1 || e.one(t, "harden_check_stale", old) != 1 {
		t.Fatalf("a target in error dropped its failing check:\n%s", st.Snapshot().Text())
	}
	// ...until it has not been seen for longer than maxCheckCarry.
	e = parse(t, st.Observe(run("error", nil), nil, now.Add(maxCheckCarry+2*time.Hour), time.Second))
	if got := e.series("harden_check_failed", old); len(got) != 0 {
		t.Fatalf("a check not seen for %v is still exported: %v", maxCheckCarry, got)
	}
}
