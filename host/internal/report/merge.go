package report

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/harden-dev/harden/host/internal/inventory"
	"github.com/harden-dev/harden/host/internal/policy"
	"github.com/harden-dev/harden/shared/checks"
)

// `harden report` reads JSON runs and merges them, either the shards of
// one fleet run (verify --shard I/N on N machines) into the run one
// machine would have written, or a history (runs of one policy at
// different times) into the latest run with the trend of its failing
// checks.
//
// Merging shards (and a run with itself, or with an identical copy):
//   - targets are matched by name; a target in several inputs gets the
//     union of their checks, endpoints, changes, artifacts and
//     diagnostics; targets are ordered as in the policy (by line, then
//     name);
//   - a check is a duplicate of another with the same ID, subject, status
//     and evidence: it is kept once (the first). Two checks with the same
//     ID and subject that disagree (another status or evidence) are both
//     kept: two observations that differ are both evidence, and report
//     does not pick one — each counts in the summary and the exit code;
//   - an endpoint is a duplicate of another with the same name and address
//     (PostgreSQL's STARTTLS and direct-TLS scans share an address); the
//     first is kept;
//   - the summary and the inconclusive counts are recomputed (Finish);
//     GeneratedAt is the earliest input's, DurationMS the longest (the
//     shards run side by side);
//   - inventories are merged: items deduplicated (a CA by its SHA-256,
//     with its targets and places united; every other item when equal in
//     every field), ordered as one run lists them, the summary recomputed.

// RunSummary is one run of a history: when it ran, its checks counted by
// status (and "target_error" for targets that failed as a whole) and its
// failing checks. Renderers (text, html) show the trend of failing
// checks over Run.History when it is present, from Run.Trend: a check
// failing in the latest run but not before is new; one failing before is
// fixed only when the latest run observed it conclusively not failing
// (else unknown: a run that did not look fixes nothing).
type RunSummary struct {
	GeneratedAt time.Time      `json:"generated_at"`
	DurationMS  float64        `json:"duration_ms,omitempty"`
	Summary     map[string]int `json:"summary"`
	// Failing: the run's checks in status fail, in the run's order.
	Failing []CheckKey `json:"failing"`
}

// CheckKey names one check of one target across runs.
type CheckKey struct {
	Target   string `json:"target"`
	ID       string `json:"id"`
	Subject  string `json:"subject,omitempty"`
	Severity string `json:"severity"`
}

// MergeOptions say how to merge.
type MergeOptions struct {
	// History: the runs are a history (otherwise they are a history only
	// when none is a shard and their GeneratedAt differ).
	History bool
	// Names name the inputs in errors (Names[i] is runs[i]; "input i+1"
	// without).
	Names []string
}

// Merge merges runs as MergeWith with no options.
func Merge(runs ...*Run) (*Run, error) { return MergeWith(MergeOptions{}, runs...) }

// MergeWith merges verify runs of one policy (and inventory-only runs, see
// ReadRun) into one Run: the shards of one run, a run with copies of
// itself, or a history. The inputs are not modified.
func MergeWith(o MergeOptions, runs ...*Run) (*Run, error) {
	name := func(i int) string {
		if i < len(o.Names) && o.Names[i] != "" {
			return o.Names[i]
		}
		return fmt.Sprintf("input %d", i+1)
	}
	if len(runs) == 0 {
		return nil, errors.New("no runs to merge")
	}
	var verify, inv []int
	for i, r := range runs {
		switch {
		case r == nil:
			return nil, fmt.Errorf("%s: no run", name(i))
		case r.Policy != runs[0].Policy:
			return nil, fmt.Errorf("%s is a run of policy %q, %s of %q: merge runs of one policy", name(i), r.Policy, name(0), runs[0].Policy)
		case r.Command == "verify":
			verify = append(verify, i)
		case r.Command == "inventory" && len(r.Targets) == 0:
			inv = append(inv, i)
		default:
			return nil, fmt.Errorf("%s is a %q run: harden report merges verify runs and inventories", name(i), r.Command)
		}
	}
	mode, err := modeOf(o, runs, verify, name)
	if err != nil {
		return nil, err
	}
	var out *Run
	switch {
	case len(verify) == 0:
		out = &Run{FormatVersion: FormatVersion, Command: "inventory", Policy: runs[0].Policy, Targets: []Target{}}
	case mode == "history":
		for _, i := range verify {
			if runs[i].Shard != "" {
				return nil, fmt.Errorf("%s is shard %s: a history is of whole runs; merge each run's shards first (harden report -i 'shard-*.json' --format json -o run.json)", name(i), runs[i].Shard)
			}
		}
		order := slices.Clone(verify)
		slices.SortStableFunc(order, func(a, b int) int { return runs[a].GeneratedAt.Compare(runs[b].GeneratedAt) })
		latest := order[len(order)-1]
		if out, err = unite(runs, []int{latest}); err != nil {
			return nil, err
		}
		for _, i := range order {
			out.History = append(out.History, summarize(runs[i]))
		}
		// The inventory is the latest run's (and the inventory-only
		// inputs'): a history shows what holds now.
		verify = []int{latest}
	default:
		if err := checkShards(runs, verify, mode == "shards", name); err != nil {
			return nil, err
		}
		if out, err = unite(runs, verify); err != nil {
			return nil, err
		}
		if len(out.Targets) == 0 {
			// Only empty shards (more shards than targets, every one
			// given, none holding a target) or runs listing none: a
			// report of nothing verified is not a pass.
			return nil, errors.New("no targets in any input: nothing was verified")
		}
	}
	var invs []*inventory.Report
	for _, i := range slices.Concat(verify, inv) {
		if runs[i].Inventory != nil {
			invs = append(invs, runs[i].Inventory)
		}
	}
	if len(invs) > 0 {
		merged, err := mergeInventories(invs, out.Targets)
		if err != nil {
			return nil, err
		}
		out.Inventory = merged
		if out.Command == "inventory" {
			out.GeneratedAt = merged.GeneratedAt
		}
	}
	out.Finish(out.Command)
	return out, nil
}

// modeOf: "history", "shards" (some input is a shard) or "union" (whole
// runs taken at the same time: copies of one run). Whole runs at
// different times are a history without --history only when they cover
// the same targets: a history keeps only the latest run's targets, so
// whole runs over different targets (most likely shards verified without
// --shard) would silently drop the others' findings — refused.
func modeOf(o MergeOptions, runs []*Run, verify []int, name func(int) string) (string, error) {
	if len(verify) == 0 {
		return "union", nil
	}
	if o.History {
		return "history", nil
	}
	for _, i := range verify {
		if runs[i].Shard != "" {
			return "shards", nil
		}
	}
	first := runs[verify[0]]
	union := true
	for _, i := range verify {
		union = union && runs[i].GeneratedAt.Equal(first.GeneratedAt)
	}
	if union {
		return "union", nil
	}
	names := func(r *Run) map[string]bool {
		m := map[string]bool{}
		for _, t := range r.Targets {
			m[t.Name] = true
		}
		return m
	}
	want := names(first)
	for _, i := range verify[1:] {
		got := names(runs[i])
		var only []string
		for n := range got {
			if !want[n] {
				only = append(only, fmt.Sprintf("%s only in %s", n, name(i)))
			}
		}
		for n := range want {
			if !got[n] {
				only = append(only, fmt.Sprintf("%s only in %s", n, name(verify[0])))
			}
		}
		if len(only) > 0 {
			slices.Sort(only)
			if len(only) > 3 {
				only = append(only[:3], fmt.Sprintf("and %d more", len(only)-3))
			}
			return "", fmt.Errorf("%s and %s are whole runs at different times over different targets (%s): "+
				"give --history for the trend (the report is then the latest run's targets only), or, if they are the shards of one run, "+
				"verify them with --shard I/N (shards without --shard metadata cannot be merged safely)",
				name(verify[0]), name(i), strings.Join(only, ", "))
		}
	}
	return "history", nil
}

// checkShards: every input is a shard of the same count, of one profile,
// and together they are every shard (a missing shard would silently drop
// its targets from the report). A shard given twice (a retried pod) is
// fine: its copies unite.
func checkShards(runs []*Run, verify []int, shards bool, name func(int) string) error {
	first := runs[verify[0]]
	seen := map[int]bool{}
	count := 0
	for _, i := range verify {
		r := runs[i]
		if r.Profile != first.Profile {
			return fmt.Errorf("%s was verified against profile %q, %s against %q: merge runs of one profile", name(i), r.Profile, name(verify[0]), first.Profile)
		}
		if r.PolicySHA256 != first.PolicySHA256 {
			return fmt.Errorf("%s was verified against policy version %s, %s against %s: the policy changed between the shards "+
				"(an update that reached them at different times); verify the fleet again with one policy",
				name(i), idOrNone(r.PolicySHA256), name(verify[0]), idOrNone(first.PolicySHA256))
		}
		if r.RunID != first.RunID {
			return fmt.Errorf("%s is of run %s, %s of run %s: merge the shards of one run (a shard left from another run would mix them)",
				name(i), idOrNone(r.RunID), name(verify[0]), idOrNone(first.RunID))
		}
		if !shards {
			continue
		}
		if r.Shard == "" {
			return fmt.Errorf("%s is a whole run, other inputs are shards: give the shards of one run (or --history for a trend)", name(i))
		}
		s, err := ParseShard(r.Shard, nil)
		if err != nil {
			return fmt.Errorf("%s: shard %q: %v", name(i), r.Shard, err)
		}
		if count != 0 && s.Count != count {
			return fmt.Errorf("%s is shard %s, another input a shard of %d: give the shards of one run", name(i), r.Shard, count)
		}
		count = s.Count
		seen[s.Index] = true
	}
	var missing []string
	for i := range count {
		if !seen[i] {
			missing = append(missing, Shard{i, count}.String())
			if len(missing) == 10 {
				missing = append(missing, "...")
				break
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("shards missing: %s (every shard of %d is needed: a missing one would drop its targets from the report)", strings.Join(missing, ", "), count)
	}
	if shards && first.RunID == "" {
		return checkShardTimes(runs, verify, name)
	}
	return nil
}

// maxShardSpread: without a run id, shards whose starts lie further apart
// than their durations together plus this are taken for shards of two
// runs (yesterday's leftover beside today's) and refused.
const maxShardSpread = time.Hour

// checkShardTimes refuses shards without a run id that cannot be of one
// run by their times.
func checkShardTimes(runs []*Run, verify []int, name func(int) string) error {
	var earliest, latest int = -1, -1
	var took time.Duration
	for _, i := range verify {
		r := runs[i]
		if r.GeneratedAt.IsZero() {
			continue
		}
		took += time.Duration(r.DurationMS * float64(time.Millisecond))
		if earliest < 0 || r.GeneratedAt.Before(runs[earliest].GeneratedAt) {
			earliest = i
		}
		if latest < 0 || r.GeneratedAt.After(runs[latest].GeneratedAt) {
			latest = i
		}
	}
	if earliest < 0 {
		return nil
	}
	if spread := runs[latest].GeneratedAt.Sub(runs[earliest].GeneratedAt); spread > took+maxShardSpread {
		return fmt.Errorf("%s started %s after %s and no run id was recorded: these look like shards of two runs; verify them with one --run-id (or $HARDEN_RUN_ID)",
			name(latest), spread.Round(time.Second), name(earliest))
	}
	return nil
}

// idOrNone quotes an id, or says there is none.
func idOrNone(s string) string {
	if s == "" {
		return "(none recorded)"
	}
	return strconv.Quote(s)
}

// unite merges runs[idx] target by target into a new Run (see the
// package comment above for what is deduplicated). Every lookup is a map:
// an input's size, not its shape, bounds the work.
func unite(runs []*Run, idx []int) (*Run, error) {
	first := runs[idx[0]]
	out := &Run{FormatVersion: FormatVersion, Command: first.Command, Policy: first.Policy, Profile: first.Profile, Targets: []Target{},
		RunID: first.RunID, PolicySHA256: first.PolicySHA256, PolicyPath: first.PolicyPath, Selection: first.Selection}
	byName := map[string]int{}
	var seen []*targetSeen
	for _, i := range idx {
		r := runs[i]
		if out.ProfileDetail == nil && r.ProfileDetail != nil {
			pd := *r.ProfileDetail
			pd.Versions, pd.Suites, pd.Groups = slices.Clone(pd.Versions), slices.Clone(pd.Suites), slices.Clone(pd.Groups)
			out.ProfileDetail = &pd
		}
		if !r.GeneratedAt.IsZero() && (out.GeneratedAt.IsZero() || r.GeneratedAt.Before(out.GeneratedAt)) {
			out.GeneratedAt = r.GeneratedAt
		}
		out.DurationMS = max(out.DurationMS, r.DurationMS)
		for _, t := range r.Targets {
			j, ok := byName[t.Name]
			if !ok {
				j = len(out.Targets)
				byName[t.Name] = j
				out.Targets = append(out.Targets, Target{Name: t.Name, Plugin: t.Plugin, Line: t.Line, Column: t.Column, Status: t.Status})
				seen = append(seen, &targetSeen{})
			}
			if err := seen[j].unite(&out.Targets[j], t); err != nil {
				return nil, err
			}
		}
	}
	slices.SortStableFunc(out.Targets, func(a, b Target) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Name, b.Name))
	})
	return out, nil
}

// set is what was already taken.
type set[K comparable] map[K]bool

// add: k was not there yet (and is now).
func (s *set[K]) add(k K) bool {
	if *s == nil {
		*s = set[K]{}
	}
	if (*s)[k] {
		return false
	}
	(*s)[k] = true
	return true
}

type checkID struct{ id, subject, status, evidence string }

// targetSeen is what one merged target already holds.
type targetSeen struct {
	errors      set[string]
	checks      set[checkID]
	endpoints   set[[2]string]
	changes     set[Change]
	artifacts   set[Artifact]
	diagnostics set[Diagnostic]
}

func (s *targetSeen) unite(dst *Target, t Target) error {
	if t.Plugin != dst.Plugin {
		return fmt.Errorf("target %s is a %s target in one input and a %s target in another: merge runs of one policy", t.Name, dst.Plugin, t.Plugin)
	}
	if dst.Line == 0 {
		dst.Line, dst.Column = t.Line, t.Column
	}
	if t.Status == "error" {
		dst.Status = "error"
	}
	if t.Error != "" && s.errors.add(t.Error) {
		dst.Error = strings.TrimPrefix(dst.Error+"; "+t.Error, "; ")
	}
	dst.ConfigError = dst.ConfigError || t.ConfigError
	for _, c := range t.Checks {
		if s.checks.add(checkID{c.ID, c.Subject, c.Status, c.Evidence}) {
			c.References = slices.Clone(c.References)
			dst.Checks = append(dst.Checks, c)
		}
	}
	for _, e := range t.Endpoints {
		if s.endpoints.add([2]string{e.Name, e.Address}) {
			dst.Endpoints = append(dst.Endpoints, cloneEndpoint(e))
		}
	}
	dst.Changes = appendNew(&s.changes, dst.Changes, t.Changes)
	dst.Artifacts = appendNew(&s.artifacts, dst.Artifacts, t.Artifacts)
	dst.Diagnostics = appendNew(&s.diagnostics, dst.Diagnostics, t.Diagnostics)
	return nil
}

// appendNew appends the xs of src not in seen to dst.
func appendNew[T comparable](seen *set[T], dst, src []T) []T {
	for _, x := range src {
		if seen.add(x) {
			dst = append(dst, x)
		}
	}
	return dst
}

func cloneEndpoint(e Endpoint) Endpoint {
	e.Versions, e.Suites, e.Groups = slices.Clone(e.Versions), slices.Clone(e.Suites), slices.Clone(e.Groups)
	e.Chain = slices.Clone(e.Chain)
	for i := range e.Chain {
		e.Chain[i].DNSNames, e.Chain[i].IPAddresses = slices.Clone(e.Chain[i].DNSNames), slices.Clone(e.Chain[i].IPAddresses)
	}
	return e
}

// summarize is one run of a history, counted from its checks (not from
// its own summary, which the input could contradict).
func summarize(r *Run) RunSummary {
	s := RunSummary{GeneratedAt: r.GeneratedAt, DurationMS: r.DurationMS, Summary: map[string]int{"target_error": r.TargetErrors()}, Failing: []CheckKey{}}
	var failing set[CheckKey]
	for _, t := range r.Targets {
		for _, c := range t.Checks {
			s.Summary[c.Status]++
			k := CheckKey{Target: t.Name, ID: c.ID, Subject: c.Subject, Severity: c.Severity}
			if c.Status == checks.Fail.String() && failing.add(k) {
				s.Failing = append(s.Failing, k)
			}
		}
	}
	return s
}

// mergeInventories merges inventories of one policy, judged by the same
// alert tiers, listing the items in the order one run over targets
// would: each target's items in target order, then the client
// identities and what belongs to no target, then the CAs.
func mergeInventories(invs []*inventory.Report, targets []Target) (*inventory.Report, error) {
	first := invs[0]
	for _, r := range invs[1:] {
		if r.RenewBefore != first.RenewBefore || !slices.Equal(r.AlertAt, first.AlertAt) {
			return nil, fmt.Errorf("the inventories were judged by different rotation settings (renew_before %s, alert_at %v and %s, %v): merge runs of one policy", first.RenewBefore, first.AlertAt, r.RenewBefore, r.AlertAt)
		}
	}
	rules, err := alertRules(first.AlertAt)
	if err != nil {
		return nil, err
	}
	out := &inventory.Report{FormatVersion: inventory.FormatVersion, Policy: first.Policy, RenewBefore: first.RenewBefore,
		AlertAt: slices.Clone(first.AlertAt), Targets: []string{}, Items: []inventory.Item{}, Notes: []inventory.Note{}}
	rank := map[string]int{}
	for i, t := range targets {
		rank[t.Name] = i
	}
	var listed set[string]
	for _, r := range invs {
		if r.GeneratedAt.After(out.GeneratedAt) {
			out.GeneratedAt = r.GeneratedAt
		}
		for _, t := range r.Targets {
			if listed.add(t) {
				out.Targets = append(out.Targets, t)
			}
			if _, ok := rank[t]; !ok {
				rank[t] = len(rank)
			}
		}
	}
	rankOf := func(target string) int {
		if r, ok := rank[target]; ok {
			return r
		}
		return len(rank)
	}
	slices.SortStableFunc(out.Targets, func(a, b string) int { return cmp.Compare(rankOf(a), rankOf(b)) })

	type ranked struct {
		it   inventory.Item
		rank int
		// a CA's targets and places already listed
		targets, wheres set[string]
	}
	var items, cas []ranked
	var seen set[string]
	var notes set[inventory.Note]
	caAt := map[string]int{}
	for _, r := range invs {
		for _, it := range r.Items {
			if it.Kind == inventory.KindCA && it.Certificate != nil && it.Certificate.SHA256 != "" {
				rk := len(rank)
				for _, t := range it.Targets {
					rk = min(rk, rankOf(t))
				}
				j, ok := caAt[it.Certificate.SHA256]
				if !ok {
					j = len(cas)
					caAt[it.Certificate.SHA256] = j
					first := it
					first.Targets, first.Where = nil, ""
					cas = append(cas, ranked{it: cloneItem(first), rank: rk})
				}
				ca := &cas[j]
				ca.rank = min(ca.rank, rk)
				ca.it.Targets = appendNew(&ca.targets, ca.it.Targets, it.Targets)
				wheres := appendNew(&ca.wheres, nil, strings.Split(it.Where, "; "))
				ca.it.Where = strings.TrimPrefix(strings.Join(append([]string{ca.it.Where}, wheres...), "; "), "; ")
				continue
			}
			key, _ := json.Marshal(it)
			if !seen.add(string(key)) {
				continue
			}
			rk := len(rank)
			if it.Kind != inventory.KindClientIdentity {
				rk = rankOf(it.Target)
			}
			items = append(items, ranked{it: cloneItem(it), rank: rk})
		}
		out.Notes = appendNew(&notes, out.Notes, r.Notes)
	}
	byRank := func(a, b ranked) int { return cmp.Compare(a.rank, b.rank) }
	slices.SortStableFunc(items, byRank)
	slices.SortStableFunc(cas, byRank)
	for _, c := range cas {
		slices.SortStableFunc(c.it.Targets, func(a, b string) int { return cmp.Compare(rankOf(a), rankOf(b)) })
	}
	for _, x := range slices.Concat(items, cas) {
		out.Items = append(out.Items, x.it)
	}
	slices.SortStableFunc(out.Notes, func(a, b inventory.Note) int { return cmp.Compare(rankOf(a.Target), rankOf(b.Target)) })
	out.Summary = rules.Summarize(out.Items)
	return out, nil
}

func cloneItem(it inventory.Item) inventory.Item {
	it.Targets, it.Findings = slices.Clone(it.Targets), slices.Clone(it.Findings)
	return it
}

// alertRules rebuilds the alert tiers from their names ("30d", "36h", "90m",
// "45s": inventory.DurationName), which is all a summary needs.
func alertRules(names []string) (inventory.Rules, error) {
	var ds []time.Duration
	for _, n := range names {
		d, err := policy.ParseDuration(n)
		if err != nil || d <= 0 {
			return inventory.Rules{}, fmt.Errorf("the inventory's alert_at %q: not a duration such as 30d", n)
		}
		ds = append(ds, d)
	}
	r := inventory.NewRules(0, ds)
	if !slices.Equal(r.TierNames(), names) {
		return inventory.Rules{}, fmt.Errorf("the inventory's alert_at %v: not distinct durations, widest first", names)
	}
	return r, nil
}

// MaxRunSize caps one JSON input (a run over a thousand endpoints is a
// few MiB).
const MaxRunSize = 256 << 20

// ReadRun reads one JSON input of harden report, named name in errors:
// a verify run (`harden verify --format json`, format_version 1) or an
// inventory (`harden inventory --format json`: it has "items"), which
// becomes an inventory-only Run (Command "inventory", no targets). The
// input is untrusted: a newer format_version, a malformed document (its
// line and column), an unknown check status or severity, or a document
// of another command are errors; control characters in strings are
// replaced by U+FFFD (the text output goes to terminals).
func ReadRun(name string, r io.Reader) (*Run, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxRunSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > MaxRunSize {
		return nil, fmt.Errorf("%s: larger than %d MiB", name, MaxRunSize>>20)
	}
	var head struct {
		FormatVersion *int            `json:"format_version"`
		Command       *string         `json:"command"`
		Items         json.RawMessage `json:"items"`
		Endpoints     json.RawMessage `json:"endpoints"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, jsonError(name, data, err)
	}
	switch {
	case head.FormatVersion == nil:
		return nil, fmt.Errorf("%s: not a harden JSON report (no format_version): give harden verify --format json output", name)
	case *head.FormatVersion > FormatVersion:
		return nil, fmt.Errorf("%s: format_version %d is newer than this harden reads (%d): merge it with a newer harden", name, *head.FormatVersion, FormatVersion)
	case *head.FormatVersion < 1:
		return nil, fmt.Errorf("%s: format_version %d: not a harden JSON report", name, *head.FormatVersion)
	}
	if head.Command == nil {
		switch {
		case head.Items != nil:
			var inv inventory.Report
			if err := json.Unmarshal(data, &inv); err != nil {
				return nil, jsonError(name, data, err)
			}
			if inv.FormatVersion > inventory.FormatVersion {
				return nil, fmt.Errorf("%s: inventory format_version %d is newer than this harden reads (%d)", name, inv.FormatVersion, inventory.FormatVersion)
			}
			sanitize(reflect.ValueOf(&inv))
			return &Run{FormatVersion: FormatVersion, Command: "inventory", Policy: inv.Policy, GeneratedAt: inv.GeneratedAt, Inventory: &inv}, nil
		case head.Endpoints != nil:
			return nil, fmt.Errorf("%s: a harden scan report: harden report merges verify runs and inventories", name)
		}
		return nil, fmt.Errorf("%s: neither a verify run nor an inventory (no command, no items)", name)
	}
	if *head.Command != "verify" {
		return nil, fmt.Errorf("%s: a harden %s run: harden report merges verify runs and inventories", name, *head.Command)
	}
	var run Run
	if err := json.Unmarshal(data, &run); err != nil {
		return nil, jsonError(name, data, err)
	}
	sanitize(reflect.ValueOf(&run))
	if run.Inventory != nil && run.Inventory.FormatVersion > inventory.FormatVersion {
		return nil, fmt.Errorf("%s: inventory format_version %d is newer than this harden reads (%d)", name, run.Inventory.FormatVersion, inventory.FormatVersion)
	}
	if err := validRun(&run); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &run, nil
}

// validRun re-checks what verify guarantees of a run it writes (and what
// the merge and the renderers rely on): a target list (empty only in a
// shard), named targets listed once, each ok or error, and checks as the
// host reports them (cli's validateCheck): a stable ID, a known status
// and severity, no negative inconclusive count, and no pass with an
// inconclusive observation.
func validRun(run *Run) error {
	if run.Shard != "" {
		if _, err := ParseShard(run.Shard, nil); err != nil {
			return fmt.Errorf("shard %q: %v", run.Shard, err)
		}
	}
	if err := ValidRunID(run.RunID); run.RunID != "" && err != nil {
		return fmt.Errorf("run_id: %v", err)
	}
	if run.PolicySHA256 != "" && !sha256Hex.MatchString(run.PolicySHA256) {
		return fmt.Errorf("policy_sha256 %q: not a hex SHA-256", run.PolicySHA256)
	}
	if run.Targets == nil || len(run.Targets) == 0 && run.Shard == "" {
		return errors.New("no targets: a verify run lists the targets it verified")
	}
	var names set[string]
	for _, t := range run.Targets {
		if t.Name == "" {
			return errors.New("a target without a name")
		}
		if !names.add(t.Name) {
			return fmt.Errorf("target %s listed twice", t.Name)
		}
		if t.Status != "ok" && t.Status != "error" {
			return fmt.Errorf("target %s: status %q (want ok or error)", t.Name, t.Status)
		}
		for _, c := range t.Checks {
			if !checks.ValidID(c.ID) {
				return fmt.Errorf("target %s: check id %q (want a dotted lower-case id such as tls.protocol.versions)", t.Name, c.ID)
			}
			st, err := checks.ParseStatus(c.Status)
			if err != nil {
				return fmt.Errorf("target %s, check %s: %v", t.Name, c.ID, err)
			}
			if s, err := checks.ParseSeverity(c.Severity); err != nil || s.String() != c.Severity {
				return fmt.Errorf("target %s, check %s: severity %q (want info, low, medium, high or critical)", t.Name, c.ID, c.Severity)
			}
			switch {
			case c.Inconclusive < 0:
				return fmt.Errorf("target %s, check %s: negative inconclusive count %d", t.Name, c.ID, c.Inconclusive)
			case st == checks.Pass && c.Inconclusive > 0:
				return fmt.Errorf("target %s, check %s: a pass with %d inconclusive observation(s) (an inconclusive observation is never a pass)", t.Name, c.ID, c.Inconclusive)
			}
		}
	}
	return nil
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// MaxRunIDLen bounds a run id (a timestamp, a UUID, a Nomad dispatch ID
// and the like fit many times over).
const MaxRunIDLen = 200

// ValidRunID: a run id (Run.RunID) is 1 to MaxRunIDLen printable ASCII
// characters without spaces — it names a run in file paths, logs and
// error messages.
func ValidRunID(id string) error {
	switch {
	case id == "":
		return errors.New("empty run id")
	case len(id) > MaxRunIDLen:
		return fmt.Errorf("run id longer than %d characters", MaxRunIDLen)
	case strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r > '~' }):
		return fmt.Errorf("run id %q: only printable ASCII without spaces", id)
	}
	return nil
}

// jsonError places a decoding error at its line and column and says it
// in the document's terms (JSON types and field paths, not Go's).
func jsonError(name string, data []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("%s: malformed JSON: %v", position(name, data, se.Offset, true), err)
	case errors.As(err, &te) && te.Field == "":
		return fmt.Errorf("%s: a JSON %s, not an object: give harden verify --format json output", position(name, data, te.Offset, false), clipValue(te.Value))
	case errors.As(err, &te):
		return fmt.Errorf("%s: %s is a JSON %s, want %s", position(name, data, te.Offset, false), clipValue(te.Field), clipValue(te.Value), jsonKind(te.Type))
	}
	if off, key, raw, ok := badTime(data); ok {
		return fmt.Errorf("%s: %s %s: not an RFC 3339 time such as 2026-03-01T12:00:00Z", position(name, data, off, true), key, clipValue(raw))
	}
	return fmt.Errorf("%s: %s", name, clean(strings.ToValidUTF8(err.Error(), "\uFFFD")))
}

// position is name:line:column of byte offset off (the column of the
// byte after it when after: a syntax error's offset is past the byte
// read).
func position(name string, data []byte, off int64, syntax bool) string {
	off = max(0, min(off, int64(len(data))))
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - (bytes.LastIndexByte(before, '\n') + 1)
	if syntax && col == 0 {
		col = 1
	}
	return fmt.Sprintf("%s:%d:%d", name, line, max(col, 1))
}

// jsonKind names what a Go type decodes from.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "another type"
}

// timeKeys are the JSON names of every time field a run or an inventory
// holds (found by reflection, so a new one is covered).
var timeKeys = func() map[string]bool {
	keys := map[string]bool{}
	seen := map[reflect.Type]bool{}
	timeType := reflect.TypeFor[time.Time]()
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t == timeType || seen[t] {
			return
		}
		seen[t] = true
		for f := range t.Fields() {
			if !f.IsExported() {
				continue
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft == timeType {
				if n, _, _ := strings.Cut(f.Tag.Get("json"), ","); n != "" && n != "-" {
					keys[n] = true
				}
				continue
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[Run]())
	walk(reflect.TypeFor[inventory.Report]())
	return keys
}()

// badTime finds the first value of a time field (timeKeys) that does not
// decode as a time: its offset, key and raw JSON. encoding/json reports
// such errors without a position.
func badTime(data []byte) (off int64, key, raw string, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	// objects[i]: the open value i is an object expecting a key next.
	type frame struct{ object, wantKey bool }
	var stack []frame
	done := func() {
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].wantKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return 0, "", "", false
		}
		if d, isDelim := tok.(json.Delim); isDelim {
			switch d {
			case '{':
				stack = append(stack, frame{object: true, wantKey: true})
			case '[':
				stack = append(stack, frame{})
			default:
				stack = stack[:len(stack)-1]
				done()
			}
			continue
		}
		n := len(stack)
		if n == 0 || !stack[n-1].object || !stack[n-1].wantKey {
			done()
			continue
		}
		stack[n-1].wantKey = false
		k, _ := tok.(string)
		if !timeKeys[k] {
			continue
		}
		start := dec.InputOffset()
		for start < int64(len(data)) && strings.IndexByte(" \t\r\n:", data[start]) >= 0 {
			start++
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return 0, "", "", false
		}
		stack[n-1].wantKey = true
		var t time.Time
		if err := json.Unmarshal(v, &t); err != nil {
			return start + 1, k, string(v), true
		}
	}
}

// clipValue is an untrusted value made fit for an error message: control
// characters replaced, at most 60 characters.
func clipValue(s string) string {
	s = clean(strings.ToValidUTF8(s, "\uFFFD"))
	if r := []rune(s); len(r) > 60 {
		return string(r[:57]) + "..."
	}
	return s
}

// sanitize replaces control characters (other than tab and newline) in
// every string reachable from v: a report read from a file is printed to
// terminals.
func sanitize(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			sanitize(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				sanitize(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			sanitize(v.Index(i))
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			if k.Kind() == reflect.String && strings.ContainsFunc(k.String(), isControl) {
				val := v.MapIndex(k)
				v.SetMapIndex(k, reflect.Value{})
				v.SetMapIndex(reflect.ValueOf(clean(k.String())), val)
			}
		}
	case reflect.String:
		if v.CanSet() && strings.ContainsFunc(v.String(), isControl) {
			v.SetString(clean(v.String()))
		}
	}
}

func isControl(r rune) bool {
	return (r < 0x20 && r != '\t' && r != '\n') || r == 0x7f || (r >= 0x80 && r < 0xa0)
}

func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return '\uFFFD'
		}
		return r
	}, s)
}

// TrendRow is one check (of one target and subject) that failed in
// some run of a history.
type TrendRow struct {
	Target, ID, Subject string
	// Severity: the latest failing run's.
	Severity string
	// Failing[i]: the check failed in History[i].
	Failing []bool
	// Trend: "new" (failing in the latest run and not in the one before),
	// "failing" (failing in the latest run and before), "fixed" (the
	// latest run observed it conclusively: pass, or warn with no
	// inconclusive observation, and never fail) or "unknown" (the latest
	// run did not observe it conclusively; Why says why: its target in
	// error, not verified, skipped, inconclusive).
	Trend string
	Why   string
}

// Trend is the trend of the checks failing in some run of r.History,
// in the order they first failed, judged against r itself (the latest
// run: its targets are the latest run's). A check is never "fixed"
// because the latest run did not look: only a conclusive non-failing
// observation of the same check and subject fixes it.
func (r *Run) Trend() []TrendRow {
	type key struct{ target, id, subject string }
	var rows []TrendRow
	at := map[key]int{}
	for i, s := range r.History {
		for _, k := range s.Failing {
			kk := key{k.Target, k.ID, k.Subject}
			j, ok := at[kk]
			if !ok {
				j = len(rows)
				at[kk] = j
				rows = append(rows, TrendRow{Target: k.Target, ID: k.ID, Subject: k.Subject, Failing: make([]bool, len(r.History))})
			}
			rows[j].Failing[i], rows[j].Severity = true, k.Severity
		}
	}
	targets := map[string]*Target{}
	for i := range r.Targets {
		targets[r.Targets[i].Name] = &r.Targets[i]
	}
	last := len(r.History) - 1
	for j := range rows {
		row := &rows[j]
		switch {
		case row.Failing[last] && last > 0 && !row.Failing[last-1]:
			row.Trend = "new"
		case row.Failing[last]:
			row.Trend = "failing"
		default:
			row.Trend, row.Why = latestVerdict(targets[row.Target], row.ID, row.Subject)
		}
	}
	return rows
}

// latestVerdict: what the latest run says of a check that failed
// before and is not in its failing list.
func latestVerdict(t *Target, id, subject string) (trend, why string) {
	if t == nil {
		return "unknown", "not verified in the latest run (no such target)"
	}
	seen, conclusive := 0, 0
	skipped := false
	for _, c := range t.Checks {
		if c.ID != id || c.Subject != subject {
			continue
		}
		seen++
		switch {
		case c.Status == checks.Fail.String():
			// Failing at another severity than before.
			return "failing", ""
		case (c.Status == checks.Pass.String() || c.Status == checks.Warn.String()) && c.Inconclusive == 0:
			conclusive++
		case c.Status == checks.Skip.String():
			skipped = true
		}
	}
	switch {
	case seen > 0 && conclusive == seen:
		return "fixed", ""
	case t.Status == "error":
		return "unknown", "target in error in the latest run"
	case seen == 0:
		return "unknown", "not verified in the latest run"
	case skipped:
		return "unknown", "skipped in the latest run"
	}
	return "unknown", "inconclusive in the latest run"
}

// writeHistory writes the trend of failing checks over r.History: one
// row per check that failed in some run, one column per run (oldest
// first): X failing, . not failing.
func writeHistory(w io.Writer, r *Run) {
	h := r.History
	fmt.Fprintf(w, "\nHistory: %d runs of %s, %s to %s\n", len(h), r.Policy, h[0].GeneratedAt.UTC().Format(time.RFC3339), h[len(h)-1].GeneratedAt.UTC().Format(time.RFC3339))
	for i, s := range h {
		fmt.Fprintf(w, "  run %-3d %s  %d passed, %d failed, %d warnings, %d skipped, %d errors\n", i+1, s.GeneratedAt.UTC().Format(time.RFC3339),
			s.Summary["pass"], s.Summary["fail"], s.Summary["warn"], s.Summary["skip"], s.Summary["error"]+s.Summary["target_error"])
	}
	rows := r.Trend()
	if len(rows) == 0 {
		fmt.Fprintln(w, "  no check failed in any run")
		return
	}
	fmt.Fprintln(w, "  failing checks (X failing, . not failing; oldest run first):")
	for _, row := range rows {
		var marks strings.Builder
		for _, f := range row.Failing {
			marks.WriteByte(map[bool]byte{true: 'X', false: '.'}[f])
		}
		trend := ""
		switch row.Trend {
		case "new", "fixed":
			trend = " (" + row.Trend + ")"
		case "unknown":
			trend = " (unknown: " + row.Why + ")"
		}
		fmt.Fprintf(w, "  %s  %-8s %s %s %s%s\n", marks.String(), row.Severity, row.Target, row.ID, row.Subject, trend)
	}
}
