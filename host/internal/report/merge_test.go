package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/host/internal/inventory"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// synth is the run verify writes over the targets of a synthetic policy
// of n targets that shard (nil: all) selects, with an inventory built as
// inventory.CollectWith builds it: each target's items in target order,
// the client identities, then the CAs (one shared by the even targets,
// one per odd target).
func synth(n, endpoints int, shard *Shard) *Run {
	r := &Run{FormatVersion: FormatVersion, Command: "verify", Policy: "fleet.yaml", Profile: "intermediate",
		ProfileDetail: &Profile{Name: "intermediate", Versions: []string{"TLSv1.2", "TLSv1.3"}, Suites: []string{"TLS_AES_128_GCM_SHA256"}, Groups: []string{"x25519"}},
		GeneratedAt:   t0, DurationMS: 100, Targets: []Target{}}
	if shard != nil {
		r.Shard = shard.String()
	}
	inv := &inventory.Report{FormatVersion: 1, GeneratedAt: t0, Policy: "fleet.yaml", RenewBefore: "30d", AlertAt: []string{"30d", "14d", "7d"},
		Targets: []string{}, Items: []inventory.Item{}, Notes: []inventory.Note{}}
	var cas []inventory.Item
	caAt := map[string]int{}
	for i := range n {
		name := fmt.Sprintf("pg-%04d", i)
		if shard != nil && !shard.Has(TargetUnit(name)) {
			continue
		}
		tg := Target{Name: name, Plugin: "postgres", Line: 10 + 7*i, Column: 5, Status: "ok"}
		if i%11 == 3 {
			tg.Status, tg.Error = "error", "target: connection refused"
		}
		for e := range endpoints {
			addr := fmt.Sprintf("10.0.%d.%d:5432", i/250, i%250+e)
			tg.Endpoints = append(tg.Endpoints, Endpoint{Name: "postgres", Address: addr, Versions: []Version{{Version: "TLSv1.3", Outcome: "accepted"}},
				Suites: []Suite{{Version: "TLSv1.3", ID: "0x1301", Name: "TLS_AES_128_GCM_SHA256"}}, Groups: []string{"x25519"},
				Chain: []ChainCert{{Subject: "CN=" + name, Serial: fmt.Sprintf("%x", i), NotAfter: t0.AddDate(0, 0, 40)}}})
			for _, id := range []string{"tls.enabled", "tls.protocol.versions", "tls.cipher_suites", "tls.certificate.trusted", "tls.certificate.expiry"} {
				status, sev, inconclusive := "pass", "high", 0
				switch {
				case id == "tls.cipher_suites" && i%5 == 0:
					status, sev = "fail", "medium"
				case id == "tls.certificate.expiry" && i%2 == 1:
					// A pass never has an inconclusive observation.
					status, inconclusive = "warn", 1
				}
				tg.Checks = append(tg.Checks, Check{ID: id, Status: status, Severity: sev, Subject: addr, Evidence: id + " observed on " + addr,
					References: []string{"RFC 8446"}, Inconclusive: inconclusive})
			}
		}
		r.Targets = append(r.Targets, tg)
		inv.Targets = append(inv.Targets, name)
		inv.Items = append(inv.Items, inventory.Item{Kind: inventory.KindServed, Target: name, Where: tg.Endpoints[0].Address, Tier: "ok",
			Certificate: &inventory.Certificate{Serial: fmt.Sprintf("%x", i), SHA256: fmt.Sprintf("leaf%d", i), DaysLeft: 40}})
		inv.Items = append(inv.Items, inventory.Item{Kind: inventory.KindServer, Target: name, Where: "/etc/pg/" + name + ".pem", Tier: "ok",
			Certificate: &inventory.Certificate{Serial: fmt.Sprintf("%x", i), SHA256: fmt.Sprintf("leaf%d", i), DaysLeft: 40}})
		ca := "ca-shared"
		if i%2 == 1 {
			ca = fmt.Sprintf("ca-%d", i)
		}
		if j, ok := caAt[ca]; ok {
			cas[j].Targets = append(cas[j].Targets, name)
		} else {
			caAt[ca] = len(cas)
			cas = append(cas, inventory.Item{Kind: inventory.KindCA, Targets: []string{name}, Where: "/etc/pg/ca.pem", Tier: "ok",
				Certificate: &inventory.Certificate{SHA256: ca, DaysLeft: 300}})
		}
	}
	inv.Items = append(inv.Items, inventory.Item{Kind: inventory.KindClientIdentity, Target: "app", Where: "/var/lib/harden/clients/app/client.pem", Tier: "14d",
		Certificate: &inventory.Certificate{SHA256: "client-app", DaysLeft: 10}})
	inv.Items = append(inv.Items, cas...)
	inv.Summary = inventory.NewRules(30*24*time.Hour, []time.Duration{30 * 24 * time.Hour, 14 * 24 * time.Hour, 7 * 24 * time.Hour}).Summarize(inv.Items)
	r.Inventory = inv
	r.Finish("verify")
	return r
}

// shards runs synth once per shard of n, each at its own time.
func shards(targets, endpoints, n int) []*Run {
	var out []*Run
	for i := range n {
		s := synth(targets, endpoints, &Shard{i, n})
		s.GeneratedAt = t0.Add(time.Duration(i) * time.Second)
		s.Inventory.GeneratedAt = s.GeneratedAt
		s.DurationMS = float64(10 * (i + 1))
		out = append(out, s)
	}
	return out
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteJSON(&b, v.(*Run)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// normalized: the run's JSON without the volatile fields (when it ran,
// for how long).
func normalized(t testing.TB, r *Run) string {
	t.Helper()
	c := *r
	c.GeneratedAt, c.DurationMS = time.Time{}, 0
	if c.Inventory != nil {
		inv := *c.Inventory
		inv.GeneratedAt = time.Time{}
		c.Inventory = &inv
	}
	return mustJSON(t, &c)
}

// Merged shards of N = 1, 3, 7 (and more shards than targets) equal the
// run of one machine, inventory included.
func TestMergeShardsEqualOneRun(t *testing.T) {
	whole := synth(40, 2, nil)
	want := normalized(t, whole)
	for _, n := range []int{1, 3, 7, 64} {
		parts := shards(40, 2, n)
		// Given in any order.
		for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
			parts[i], parts[j] = parts[j], parts[i]
		}
		m, err := Merge(parts...)
		if err != nil {
			t.Fatalf("N=%d: %v", n, err)
		}
		if got := normalized(t, m); got != want {
			t.Errorf("N=%d: the merge differs from one run:\n%s", n, firstDiff(got, want))
		}
		if m.Shard != "" || !m.GeneratedAt.Equal(t0) || m.DurationMS != float64(10*n) {
			t.Errorf("N=%d: shard %q generated_at %v duration %v", n, m.Shard, m.GeneratedAt, m.DurationMS)
		}
		if m.Summary["fail"] == 0 || m.Summary["target_error"] == 0 || *m.Inconclusive == 0 {
			t.Errorf("N=%d: summary %v inconclusive %d: the synthetic run lacks failures", n, m.Summary, *m.Inconclusive)
		}
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d:\n got  %s\n want %s", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("%d lines, want %d", len(al), len(bl))
}

func TestMergeRefusesWhatIsNotOneRun(t *testing.T) {
	three := shards(20, 1, 3)
	other := synth(20, 1, nil)
	other.Policy = "other.yaml"
	modern := shards(20, 1, 3)
	modern[1].Profile = "modern"
	seven := shards(20, 1, 7)
	plugin := shards(20, 1, 1)[0]
	plugin2 := shards(20, 1, 1)[0]
	plugin2.Targets[0].Plugin = "kafka"
	plan := synth(5, 1, nil)
	plan.Command = "plan"
	hist := synth(5, 1, nil)
	hist.GeneratedAt = t0.Add(time.Hour)
	for name, c := range map[string]struct {
		runs []*Run
		want string
	}{
		"a shard missing":        {three[:2], "shards missing: 2/3"},
		"two counts":             {append(three[:2:2], seven[2]), "a shard of 3"},
		"two policies":           {[]*Run{three[0], other}, `policy "other.yaml"`},
		"two profiles":           {modern, `profile "modern"`},
		"shards and a whole run": {append(three[:3:3], synth(20, 1, nil)), "is a whole run"},
		"two plugins":            {[]*Run{plugin, plugin2}, "a postgres target in one input and a kafka target"},
		"a plan":                 {[]*Run{plan}, `"plan" run`},
		"history of shards":      {[]*Run{three[0], hist}, "is a whole run"},
		"nothing":                {nil, "no runs"},
		"nil":                    {[]*Run{nil}, "no run"},
	} {
		_, err := MergeWith(MergeOptions{Names: []string{"a.json", "b.json"}}, c.runs...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
	if _, err := MergeWith(MergeOptions{History: true, Names: []string{"a.json"}}, three...); err == nil || !strings.Contains(err.Error(), "a.json is shard 0/3") {
		t.Errorf("--history over shards: %v", err)
	}
}

// A run merged with itself (a retried shard, a file given twice) is the
// run; a check seen twice is kept once; two that disagree are both kept.
func TestMergeDeduplicates(t *testing.T) {
	r := synth(10, 2, nil)
	m, err := Merge(r, r, r)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := normalized(t, m), normalized(t, r); got != want {
		t.Errorf("a run merged with itself differs:\n%s", firstDiff(got, want))
	}
	if mustJSON(t, r) != mustJSON(t, synth(10, 2, nil)) {
		t.Error("Merge modified its input")
	}
	a, b := synth(1, 1, nil), synth(1, 1, nil)
	b.Targets[0].Checks[0].Status, b.Targets[0].Checks[0].Evidence = "fail", "plaintext accepted"
	b.Targets[0].Checks = append(b.Targets[0].Checks, b.Targets[0].Checks[1])
	b.Targets[0].Endpoints = append(b.Targets[0].Endpoints, Endpoint{Name: "postgres (direct TLS)", Address: b.Targets[0].Endpoints[0].Address})
	b.Targets[0].Status, b.Targets[0].Error = "error", "plugin: crashed"
	m, err = Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	tg := m.Targets[0]
	if len(tg.Checks) != len(a.Targets[0].Checks)+1 || tg.Checks[0].Status != "pass" || tg.Checks[len(tg.Checks)-1].Status != "fail" {
		t.Errorf("checks %+v", tg.Checks)
	}
	if len(tg.Endpoints) != 2 || tg.Status != "error" || tg.Error != "plugin: crashed" {
		t.Errorf("endpoints %d status %s error %q", len(tg.Endpoints), tg.Status, tg.Error)
	}
	// pg-0000's cipher suites fail in both; b's tls.enabled disagrees.
	if m.Summary["fail"] != 2 || m.Summary["pass"] != len(a.Targets[0].Checks)-1 || m.FailingAtOrAbove(0) != 2 {
		t.Errorf("summary %v", m.Summary)
	}
}

// Whole runs at different times are a history: the latest run with the
// trend of failing checks, in JSON and in the text output.
func TestMergeHistory(t *testing.T) {
	var runs []*Run
	for day := range 3 {
		r := synth(6, 1, nil)
		r.GeneratedAt = t0.AddDate(0, 0, day)
		tg := &r.Targets[0] // pg-0000: tls.cipher_suites fails on day 0 and 1 (i%5 == 0)
		if day == 2 {
			tg.Checks[2].Status = "pass"
		}
		if day >= 1 {
			r.Targets[1].Checks[0].Status = "fail" // pg-0001 tls.enabled: new on day 1
		}
		r.Finish("verify")
		runs = append(runs, r)
	}
	for _, o := range []MergeOptions{{}, {History: true}} {
		m, err := MergeWith(o, runs[2], runs[0], runs[1])
		if err != nil {
			t.Fatal(err)
		}
		if len(m.History) != 3 || !m.GeneratedAt.Equal(runs[2].GeneratedAt) || !m.History[0].GeneratedAt.Equal(t0) {
			t.Fatalf("%+v: history %+v at %v", o, m.History, m.GeneratedAt)
		}
		c := *m
		c.History = nil
		if normalized(t, &c) != normalized(t, runs[2]) {
			t.Errorf("the history's run is not the latest:\n%s", firstDiff(normalized(t, &c), normalized(t, runs[2])))
		}
		cipher := CheckKey{Target: "pg-0000", ID: "tls.cipher_suites", Subject: "10.0.0.0:5432", Severity: "medium"}
		enabled := CheckKey{Target: "pg-0001", ID: "tls.enabled", Subject: "10.0.0.1:5432", Severity: "high"}
		for i, want := range [][]CheckKey{{cipher}, {cipher, enabled}, {enabled}} {
			var got []CheckKey
			for _, k := range m.History[i].Failing {
				if k.Target != "pg-0005" {
					got = append(got, k)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("run %d failing %v, want %v", i, got, want)
			}
		}
		var text bytes.Buffer
		if err := WriteText(&text, m); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"History: 3 runs of fleet.yaml, 2026-03-01T12:00:00Z to 2026-03-03T12:00:00Z",
			"XX.  medium   pg-0000 tls.cipher_suites 10.0.0.0:5432 (fixed)", ".XX  high     pg-0001 tls.enabled 10.0.0.1:5432\n"} {
			if !strings.Contains(text.String(), want) {
				t.Errorf("text lacks %q:\n%s", want, text.String())
			}
		}
		var doc struct {
			History []struct {
				Summary map[string]int `json:"summary"`
				Failing []CheckKey     `json:"failing"`
			} `json:"history"`
		}
		if err := json.Unmarshal([]byte(mustJSON(t, m)), &doc); err != nil || len(doc.History) != 3 || doc.History[1].Summary["fail"] != 3 {
			t.Errorf("JSON history %+v %v", doc.History, err)
		}
	}
}

// A check that failed before is fixed only when the latest run observed
// it conclusively not failing: a target in error, a target or check the
// latest run did not verify, a skip or an inconclusive verdict leave it
// unknown (never "fixed"), in Trend and in the text.
func TestMergeHistoryFixedOnlyWhenObserved(t *testing.T) {
	// pg-0000's tls.cipher_suites (Checks[2]) fails in synth.
	const subject = "10.0.0.0:5432"
	for name, c := range map[string]struct {
		latest     func(r *Run)
		trend, why string
	}{
		"pass":            {func(r *Run) { r.Targets[0].Checks[2].Status = "pass" }, "fixed", ""},
		"conclusive warn": {func(r *Run) { r.Targets[0].Checks[2].Status = "warn" }, "fixed", ""},
		"target in error": {func(r *Run) {
			r.Targets[0].Status, r.Targets[0].Error, r.Targets[0].Checks = "error", "plugin: crashed", nil
		}, "unknown", "target in error in the latest run"},
		"target not listed": {func(r *Run) { r.Targets = r.Targets[1:] }, "unknown", "not verified in the latest run (no such target)"},
		"check not listed":  {func(r *Run) { r.Targets[0].Checks = slices.Delete(r.Targets[0].Checks, 2, 3) }, "unknown", "not verified in the latest run"},
		"check in error":    {func(r *Run) { r.Targets[0].Checks[2].Status = "error" }, "unknown", "inconclusive in the latest run"},
		"inconclusive warn": {func(r *Run) { r.Targets[0].Checks[2].Status, r.Targets[0].Checks[2].Inconclusive = "warn", 2 }, "unknown", "inconclusive in the latest run"},
		"skipped":           {func(r *Run) { r.Targets[0].Checks[2].Status = "skip" }, "unknown", "skipped in the latest run"},
		"pass and error": {func(r *Run) {
			r.Targets[0].Checks[2].Status = "pass"
			r.Targets[0].Checks = append(r.Targets[0].Checks, Check{ID: "tls.cipher_suites", Status: "error", Severity: "medium", Subject: subject, Evidence: "timeout", References: []string{}})
		}, "unknown", "inconclusive in the latest run"},
		"failing, now high": {func(r *Run) { r.Targets[0].Checks[2].Severity = "high" }, "failing", ""},
	} {
		before, latest := synth(6, 1, nil), synth(6, 1, nil)
		latest.GeneratedAt = t0.Add(time.Hour)
		c.latest(latest)
		latest.Finish("verify")
		m, err := MergeWith(MergeOptions{History: true}, before, latest)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var row *TrendRow
		rows := m.Trend()
		for i := range rows {
			if rows[i].Target == "pg-0000" && rows[i].ID == "tls.cipher_suites" {
				if row != nil {
					t.Errorf("%s: two rows for one check: %+v", name, rows)
				}
				row = &rows[i]
			}
		}
		if row == nil || row.Trend != c.trend || row.Why != c.why || row.Subject != subject || !row.Failing[0] {
			t.Errorf("%s: trend %+v, want %s (%s)", name, row, c.trend, c.why)
			continue
		}
		var text bytes.Buffer
		if err := WriteText(&text, m); err != nil {
			t.Fatal(err)
		}
		line := ""
		for l := range strings.Lines(text.String()) {
			if strings.Contains(l, "pg-0000 tls.cipher_suites") {
				line = l
			}
		}
		want := map[string]string{"fixed": " (fixed)\n", "unknown": " (unknown: " + c.why + ")\n", "failing": subject + "\n"}[c.trend]
		if !strings.HasSuffix(line, want) || c.trend != "fixed" && strings.Contains(line, "fixed") {
			t.Errorf("%s: text row %q, want it to end in %q", name, line, want)
		}
		if c.trend == "failing" && !strings.Contains(line, "XX  high") {
			t.Errorf("%s: text row %q: the latest severity", name, line)
		}
	}
}

// Whole runs at different times over different targets are not taken
// for a history (which would keep only the latest run's targets and call
// the others' failures fixed): refused, naming the files and the way
// out; --history takes them.
func TestMergeWholeRunsOverDifferentTargets(t *testing.T) {
	billing := synth(1, 1, nil) // pg-0000: tls.cipher_suites fails
	billing.Targets[0].Name = "billing-pg"
	billing.Finish("verify")
	web := synth(3, 1, nil)
	web.Targets = web.Targets[1:]
	web.GeneratedAt = t0.Add(time.Minute)
	web.Finish("verify")
	_, err := MergeWith(MergeOptions{Names: []string{"billing.json", "web.json"}}, billing, web)
	for _, want := range []string{"billing.json and web.json are whole runs at different times over different targets",
		"billing-pg only in billing.json", "pg-0001 only in web.json", "give --history", "--shard I/N"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v, want %q", err, want)
		}
	}
	m, err := MergeWith(MergeOptions{History: true}, billing, web)
	if err != nil || len(m.History) != 2 || len(m.Targets) != 2 {
		t.Fatalf("--history: %v", err)
	}
	for _, row := range m.Trend() {
		if row.Target == "billing-pg" && (row.Trend != "unknown" || !strings.Contains(row.Why, "not verified")) {
			t.Errorf("billing-pg's failure after a run without it: %+v", row)
		}
	}
	// The same targets at different times: a history without --history.
	again := synth(1, 1, nil)
	again.Targets[0].Name, again.GeneratedAt = "billing-pg", t0.Add(time.Hour)
	again.Finish("verify")
	if m, err := Merge(billing, again); err != nil || len(m.History) != 2 {
		t.Errorf("same targets: %v", err)
	}
}

// Shards merge only when they are of one run and one policy version: a
// shard left from an earlier run, or verified after a policy update
// reached its pod, is refused naming both files.
func TestMergeRefusesShardsOfOtherRunsOrPolicies(t *testing.T) {
	mk := func() []*Run {
		parts := shards(20, 1, 3)
		for _, p := range parts {
			p.RunID, p.PolicySHA256 = "run-7", strings.Repeat("ab", 32)
		}
		return parts
	}
	names := MergeOptions{Names: []string{"shard-0.json", "shard-1.json", "shard-2.json"}}
	m, err := MergeWith(names, mk()...)
	if err != nil || m.RunID != "run-7" || m.PolicySHA256 != strings.Repeat("ab", 32) {
		t.Fatalf("one run: %v %+v", err, m)
	}
	stale := mk()
	stale[2].RunID = "run-6"
	updated := mk()
	updated[1].PolicySHA256 = strings.Repeat("cd", 32)
	old := mk()
	old[1].RunID, old[1].PolicySHA256 = "", ""
	copies := []*Run{synth(5, 1, nil), synth(5, 1, nil)}
	copies[0].RunID = "run-7"
	for name, c := range map[string]struct {
		runs []*Run
		want string
	}{
		"another run":      {stale, `shard-2.json is of run "run-6", shard-0.json of run "run-7"`},
		"a policy update":  {updated, `shard-1.json was verified against policy version "` + strings.Repeat("cd", 32) + `", shard-0.json against "` + strings.Repeat("ab", 32)},
		"an older harden":  {old, "shard-1.json was verified against policy version (none recorded)"},
		"copies of a run":  {copies, `shard-1.json is of run (none recorded), shard-0.json of run "run-7"`},
		"nothing verified": {[]*Run{synth(0, 1, &Shard{0, 1})}, "no targets in any input"},
	} {
		if _, err := MergeWith(names, c.runs...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
	// A history is of runs at different times: other run ids and policy
	// versions are its point.
	a, b := synth(3, 1, nil), synth(3, 1, nil)
	a.RunID, a.PolicySHA256 = "mon", strings.Repeat("ab", 32)
	b.RunID, b.PolicySHA256, b.GeneratedAt = "tue", strings.Repeat("cd", 32), t0.AddDate(0, 0, 1)
	if m, err := Merge(a, b); err != nil || m.RunID != "tue" {
		t.Errorf("history: %v", err)
	}
}

// Inventories (harden inventory --format json) merge into the run's
// inventory, or on their own.
func TestMergeInventories(t *testing.T) {
	r := synth(6, 1, nil)
	inv := *r.Inventory
	r.Inventory = nil
	only := &Run{FormatVersion: 1, Command: "inventory", Policy: "fleet.yaml", Inventory: &inv}
	m, err := Merge(r, only)
	if err != nil {
		t.Fatal(err)
	}
	if normalized(t, m) != normalized(t, synth(6, 1, nil)) {
		t.Error("run + its inventory differs from the run with --inventory")
	}
	m, err = Merge(only, only)
	if err != nil || m.Command != "inventory" || len(m.Inventory.Items) != len(inv.Items) || m.Inventory.Summary.ExitCode != 5 {
		t.Fatalf("inventory only: %v %+v", err, m)
	}
	var text bytes.Buffer
	if err := WriteText(&text, m); err != nil || !strings.Contains(text.String(), "Summary: 17 items: 16 ok, 1 14d; exit code 5") {
		t.Errorf("inventory text: %v\n%s", err, text.String())
	}
	other := inv
	other.AlertAt = []string{"45d", "5d"}
	if _, err := Merge(only, &Run{FormatVersion: 1, Command: "inventory", Policy: "fleet.yaml", Inventory: &other}); err == nil || !strings.Contains(err.Error(), "rotation settings") {
		t.Errorf("two alert tiers: %v", err)
	}
}

func TestReadRun(t *testing.T) {
	good := mustJSON(t, synth(3, 1, &Shard{0, 1}))
	r, err := ReadRun("shard-0.json", strings.NewReader(good))
	if err != nil || mustJSON(t, r) != good {
		t.Fatalf("round trip: %v", err)
	}
	var invDoc bytes.Buffer
	json.NewEncoder(&invDoc).Encode(synth(3, 1, nil).Inventory)
	r, err = ReadRun("inv.json", &invDoc)
	if err != nil || r.Command != "inventory" || r.Policy != "fleet.yaml" || len(r.Inventory.Items) == 0 {
		t.Fatalf("inventory: %v %+v", err, r)
	}
	for name, c := range map[string]struct{ doc, want string }{
		"newer":        {`{"format_version": 2, "command": "verify"}`, "new.json: format_version 2 is newer than this harden reads (1)"},
		"no version":   {`{"command": "verify", "targets": []}`, "no format_version"},
		"zero":         {`{"format_version": 0, "command": "verify"}`, "format_version 0"},
		"syntax":       {"{\n  \"format_version\": 1,\n  \"command\": \"verify\",,\n}", "new.json:3:23: malformed JSON"},
		"type":         {"{\"format_version\": 1,\n\"command\": \"verify\", \"targets\": {}}", "new.json:2:33: targets is a JSON object, want an array"},
		"deep type":    {`{"format_version": 1, "command": "verify", "targets": [{"name": "a", "status": "ok", "checks": [{"id": "tls.enabled", "status": 5}]}]}`, "new.json:1:129: targets.checks.status is a JSON number, want a string"},
		"array":        {`[]`, "new.json:1:1: a JSON array, not an object"},
		"bad time":     {"{\"format_version\": 1, \"command\": \"verify\",\n  \"generated_at\": \"yesterday\"}", `new.json:2:19: generated_at "yesterday": not an RFC 3339 time`},
		"nested time":  {"{\"format_version\": 1, \"command\": \"verify\", \"targets\": [{\"name\": \"a\", \"status\": \"ok\"}],\n \"inventory\": {\"items\": [{\"certificate\": {\"not_after\": 17}}]}}", "new.json:2:56: not_after 17: not an RFC 3339 time"},
		"escaped time": {"{\"format_version\": 1, \"command\": \"verify\", \"generated_at\": \"\u009b[2J\"}", "generated_at \"\uFFFD[2J\""},
		"null targets": {`{"format_version": 1, "command": "verify", "targets": null}`, "new.json: no targets"},
		"no targets":   {`{"format_version": 1, "command": "verify"}`, "new.json: no targets"},
		"empty run":    {`{"format_version": 1, "command": "verify", "targets": []}`, "new.json: no targets"},
		"empty shard":  {`{"format_version": 1, "command": "verify", "shard": "1/2", "targets": []}`, ""},
		"unnamed":      {`{"format_version": 1, "command": "verify", "targets": [{"status": "ok"}]}`, "a target without a name"},
		"twice":        {`{"format_version": 1, "command": "verify", "targets": [{"name": "a", "status": "ok"}, {"name": "a", "status": "error"}]}`, "target a listed twice"},
		"empty id":     {`{"format_version": 1, "command": "verify", "targets": [{"name": "a", "status": "ok", "checks": [{"id": "", "status": "fail", "severity": "high"}]}]}`, `target a: check id ""`},
		"bad id":       {`{"format_version": 1, "command": "verify", "targets": [{"name": "a", "status": "ok", "checks": [{"id": "TLS enabled", "status": "fail", "severity": "high"}]}]}`, `check id "TLS enabled"`},
		"inconclusive pass": {`{"format_version": 1, "command": "verify", "targets": [{"name": "a", "status": "ok", "checks": [{"id": "tls.enabled", "status": "pass", "severity": "high", "inconclusive": 1}]}]}`,
			"target a, check tls.enabled: a pass with 1 inconclusive observation(s)"},
		"negative": {`{"format_version": 1, "command": "verify", "targets": [{"name": "a", "status": "ok", "checks": [{"id": "tls.enabled", "status": "error", "severity": "high", "inconclusive": -1}]}]}`,
			"negative inconclusive count -1"},
		"run id":        {`{"format_version": 1, "command": "verify", "run_id": "a b", "targets": [{"name": "a", "status": "ok"}]}`, `run_id: run id "a b"`},
		"policy sha256": {`{"format_version": 1, "command": "verify", "policy_sha256": "abc", "targets": [{"name": "a", "status": "ok"}]}`, `policy_sha256 "abc": not a hex SHA-256`},
		"trailing":      {`{"format_version": 1, "command": "verify"} {}`, "malformed JSON"},
		"empty":         {``, "malformed JSON"},
		"scan":          {`{"format_version": 1, "profile": "modern", "endpoints": []}`, "a harden scan report"},
		"plan":          {`{"format_version": 1, "command": "plan", "targets": []}`, "a harden plan run"},
		"neither":       {`{"format_version": 1}`, "neither a verify run nor an inventory"},
		"status":        {`{"format_version": 1, "command": "verify", "targets": [{"name": "a", "status": "ok", "checks": [{"id": "tls.enabled", "status": "passed", "severity": "high"}]}]}`, `target a, check tls.enabled: unknown check status "passed"`},
		"severity":      {`{"format_version": 1, "command": "verify", "targets": [{"name": "a", "status": "ok", "checks": [{"id": "tls.enabled", "status": "fail", "severity": "HIGH"}]}]}`, `severity "HIGH"`},
		"target":        {`{"format_version": 1, "command": "verify", "targets": [{"name": "a", "status": "fine"}]}`, `target a: status "fine"`},
		"shard":         {`{"format_version": 1, "command": "verify", "shard": "3/3", "targets": []}`, `shard "3/3"`},
		"inv newer":     {`{"format_version": 1, "items": [], "policy": "p"}`, ""},
		"inv nested 2":  {`{"format_version": 1, "command": "verify", "inventory": {"format_version": 9, "items": []}}`, "inventory format_version 9"},
	} {
		_, err := ReadRun("new.json", strings.NewReader(c.doc))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
	// Terminal escapes in what a server said are neutralised.
	esc := `{"format_version": 1, "command": "verify", "targets": [{"name": "a\u001b[2J", "status": "ok", "checks": [{"id": "tls.enabled", "status": "pass", "severity": "high", "evidence": "ok\u009b\nnext\tcol"}]}], "summary": {"pass\u0007": 1}}`
	r, err = ReadRun("esc.json", strings.NewReader(esc))
	if err != nil {
		t.Fatal(err)
	}
	if r.Targets[0].Name != "a\uFFFD[2J" || r.Targets[0].Checks[0].Evidence != "ok\uFFFD\nnext\tcol" || r.Summary["pass\uFFFD"] != 1 {
		t.Errorf("not sanitized: %q %q %v", r.Targets[0].Name, r.Targets[0].Checks[0].Evidence, r.Summary)
	}
}

// JSON input is untrusted: reading and merging never panic, a merge of a
// run with itself is the merge of the run, and a merged run written as
// JSON reads back as itself.
func FuzzReadMerge(f *testing.F) {
	f.Add(mustJSON(f, synth(3, 2, nil)))
	f.Add(mustJSON(f, synth(4, 1, &Shard{0, 1})))
	var inv bytes.Buffer
	json.NewEncoder(&inv).Encode(synth(2, 1, nil).Inventory)
	f.Add(inv.String())
	f.Add(`{"format_version":1,"command":"verify","targets":[{"name":"a","status":"error"},{"name":"a","plugin":"x","status":"ok"}]}`)
	f.Add(`{"format_version":1,"command":"verify","inventory":{"items":[{"kind":"ca","targets":["z"],"certificate":{"sha256":"x"}}],"alert_at":["7d"]}}`)
	f.Add(`{"format_version":1,"command":"verify","shard":"0/1","run_id":"r/1","policy_sha256":"` + strings.Repeat("0", 64) + `","generated_at":"2026-03-01T12:00:00Z","targets":[]}`)
	f.Add("{\"format_version\":1,\"command\":\"verify\",\n\"targets\":[{\"name\":\"a\",\"status\":\"ok\",\"checks\":[{\"id\":\"tls.enabled\",\"status\":\"warn\",\"severity\":\"low\",\"inconclusive\":2}]}],\"generated_at\":\"x\"}")
	f.Fuzz(func(t *testing.T, doc string) {
		r, err := ReadRun("fuzz.json", strings.NewReader(doc))
		if err != nil {
			return
		}
		one, err := Merge(r)
		if err != nil {
			return
		}
		two, err := Merge(r, r)
		if err != nil {
			t.Fatalf("merged alone, not with itself: %v", err)
		}
		if a, b := mustJSON(t, one), mustJSON(t, two); a != b {
			t.Fatalf("a run merged with itself differs from the run:\n%s", firstDiff(b, a))
		}
		back, err := ReadRun("merged.json", strings.NewReader(mustJSON(t, one)))
		if err != nil {
			if one.Command == "verify" {
				t.Fatalf("a merged run does not read back: %v", err)
			}
			return
		}
		again, err := Merge(back)
		if err != nil || mustJSON(t, again) != mustJSON(t, one) {
			t.Fatalf("merging is not idempotent: %v", err)
		}
	})
}

// A 7-shard merge of a fleet of 1,000 targets with two endpoints each
// (10,000 checks, 2,000 endpoints, 3,000 inventory items).
func BenchmarkMergeSevenShards(b *testing.B) {
	parts := shards(1000, 2, 7)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Merge(parts...); err != nil {
			b.Fatal(err)
		}
	}
}

// The same with reading the shards' JSON, as harden report does.
func BenchmarkReadMergeSevenShards(b *testing.B) {
	var docs []string
	size := 0
	for _, p := range shards(1000, 2, 7) {
		docs = append(docs, mustJSON(b, p))
		size += len(docs[len(docs)-1])
	}
	b.SetBytes(int64(size))
	b.ResetTimer()
	for b.Loop() {
		var runs []*Run
		for _, d := range docs {
			r, err := ReadRun("shard.json", strings.NewReader(d))
			if err != nil {
				b.Fatal(err)
			}
			runs = append(runs, r)
		}
		if _, err := Merge(runs...); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMergeRefusesShardsOfTwoRunsByTime: without a run id, shards that
// started further apart than their durations together plus an hour are
// not taken for one run; shards made one after the other on one machine
// still merge.
func TestMergeRefusesShardsOfTwoRunsByTime(t *testing.T) {
	names := MergeOptions{Names: []string{"shard-0.json", "shard-1.json", "shard-2.json"}}
	mk := func(gap time.Duration) []*Run {
		parts := shards(20, 1, 3)
		for i, p := range parts {
			p.RunID, p.DurationMS = "", 60_000
			p.GeneratedAt = t0.Add(time.Duration(i) * gap)
		}
		return parts
	}
	if _, err := MergeWith(names, mk(time.Minute)...); err != nil {
		t.Fatalf("shards run one after the other: %v", err)
	}
	_, err := MergeWith(names, mk(24*time.Hour)...)
	if err == nil || !strings.Contains(err.Error(), "shard-2.json started 48h0m0s after shard-0.json and no run id was recorded") {
		t.Fatalf("shards a day apart: %v", err)
	}
}
