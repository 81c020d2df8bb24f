package exporter

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/harden-dev/harden/host/internal/inventory"
	"github.com/harden-dev/harden/host/internal/report"
	"github.com/harden-dev/harden/shared/checks"
)

// State folds the runs into what /metrics serves. Observe is called by the
// one scheduler goroutine; Snapshot by any number of scrapes at once and
// never blocks on a run.
type State struct {
	info    Info
	current atomic.Pointer[Snapshot]

	mu          sync.Mutex // held by Observe only
	runs        uint64
	errors      uint64
	ran         bool
	lastOK      bool
	lastRun     time.Time
	lastSuccess time.Time
	duration    time.Duration
	runErr      string        // why the last run failed as a whole
	targets     []*targetView // in policy order
}

// Info is what the exporter says about itself.
type Info struct {
	Version, Policy, Profile string
	Interval                 time.Duration
}

// targetView is one target as exported: the last run's values where the
// run could read them, the last good ones where it could not.
type targetView struct {
	name, plugin string
	// up: the last run read the target completely.
	up bool
	// stale: some values below are from an earlier run.
	stale       bool
	lastSuccess time.Time
	checks      []checkView // one per check and subject
	endpoints   []endpointView
	// items: certificates and keys, a CA item once per target using it;
	// itemSeen when a run last read each (by itemKey).
	items      []inventory.Item
	itemSeen   map[string]time.Time
	unreadable int
	// problems: why the last run did not read the target completely
	// (the first few, for the log and /healthz).
	problems []string
}

// endpointView: up is the last run's; the data may be older (stale).
type endpointView struct {
	report.Endpoint
	up bool
}

// checkView is one check on one subject as exported. Check is the verdict
// harden_check_status shows: this run's, or, for a check an incomplete run
// did not give, that of the last run that did. last is the last conclusive
// verdict (any status but error), which harden_check_failed reads: an
// error is not a fix, so a check that failed and then could not be
// verified keeps failing (and alerting) until a run sees it pass. stale:
// last (and, for a check the run did not give, the verdict too) is from an
// earlier run.
type checkView struct {
	report.Check
	last  string
	stale bool
	// seen: when a run last gave this check (carried checks age out).
	seen time.Time
}

// Carried values age out: a check the runs stop giving (its subject moved,
// its ID was renamed, the target has been down for days) must not keep an
// alert firing forever, or it gets silenced. By then HardenTargetDown and
// HardenRunStale have been firing for as long. Certificates and keys are
// kept longer: an expired certificate behind a dead server is the thing
// the expired alert is for.
const (
	maxCheckCarry = 7 * 24 * time.Hour
	maxItemCarry  = 30 * 24 * time.Hour
)

// NewState starts with no run: the snapshot has only the exporter's own
// series until the first run ends.
func NewState(info Info) *State {
	s := &State{info: info}
	s.current.Store(s.build())
	return s
}

// Snapshot is the last completed run's metrics.
func (s *State) Snapshot() *Snapshot { return s.current.Load() }

// Observe folds one run into the state and swaps in its snapshot. run is
// nil when err says why the run could not happen at all (the policy, the
// plugins); every target then keeps its last good values, marked stale.
func (s *State) Observe(run *report.Run, err error, end time.Time, took time.Duration) *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs++
	s.ran, s.lastRun, s.duration = true, end, took
	ok := err == nil && run != nil
	s.runErr = ""
	if !ok {
		s.runErr = "the run failed"
		if err != nil {
			s.runErr = err.Error()
		}
		for _, t := range s.targets {
			t.up, t.stale, t.problems = false, true, nil
		}
	} else {
		if run.Profile != "" {
			s.info.Profile = run.Profile
		}
		items := itemsByTarget(run.Inventory)
		prev := map[string]*targetView{}
		for _, t := range s.targets {
			prev[t.name] = t
		}
		// The run lists the policy's (selected) targets: one dropped from
		// the policy is dropped here too.
		next := make([]*targetView, 0, len(run.Targets))
		for _, t := range run.Targets {
			v := fold(prev[t.Name], t, items[t.Name], end)
			ok = ok && v.up
			next = append(next, v)
		}
		s.targets = next
	}
	s.lastOK = ok
	if ok {
		s.lastSuccess = end
	} else {
		s.errors++
	}
	snap := s.build()
	s.current.Store(snap)
	return snap
}

// itemsByTarget groups the inventory's items by target; a CA item goes to
// every target whose bundle holds it.
func itemsByTarget(inv *inventory.Report) map[string][]inventory.Item {
	out := map[string][]inventory.Item{}
	if inv == nil {
		return out
	}
	for _, it := range inv.Items {
		if it.Target != "" {
			out[it.Target] = append(out[it.Target], it)
			continue
		}
		for _, t := range it.Targets {
			c := it
			c.Target, c.Targets = t, nil
			out[t] = append(out[t], c)
		}
	}
	return out
}

// fold makes the target's new view from its result in the run and its
// previous view. What the run read replaces what was there. When the run
// did not read the target completely, what it could not read (an endpoint
// or item in error or missing, a check missing) keeps the previous view's
// value and marks the target stale, so an expired certificate behind a
// server that went down keeps alerting instead of vanishing; a check in
// error is exported as such beside its last conclusive verdict (stale).
// A complete run drops what it no longer lists.
func fold(prev *targetView, t report.Target, items []inventory.Item, now time.Time) *targetView {
	v := &targetView{name: t.Name, plugin: t.Plugin, itemSeen: map[string]time.Time{}}
	complete := t.Status == "ok"
	if !complete {
		v.problem("%s", t.Error)
	}
	for _, c := range t.Checks {
		if c.Status == checks.Error.String() {
			complete = false
			v.problem("check %s on %s: %s", c.ID, c.Subject, c.Evidence)
		}
	}
	for _, e := range t.Endpoints {
		if e.Error != "" {
			complete = false
			v.problem("endpoint %s: %s", endpointName(e), e.Error)
		}
	}
	// Checks the run did not give are carried only when the verification
	// itself was incomplete (the target, a check or an endpoint in error),
	// not for an unreadable inventory item: that says nothing about checks.
	checksIncomplete := !complete
	for _, it := range items {
		if incomplete(it) {
			v.unreadable++
			complete = false
			v.problem("inventory %s %s: %s", it.Kind, it.Where, it.Error)
		}
	}
	v.up = complete
	if complete {
		v.lastSuccess = now
	} else if prev != nil {
		v.lastSuccess = prev.lastSuccess
	}
	carry := !complete && prev != nil

	// Checks, by ID and subject: the run's verdicts, an "error" one
	// included (that is what is known now), the last conclusive verdict
	// kept beside it; one the run did not give is kept from the last view
	// while the run is incomplete.
	var prevChecks map[[2]string]checkView
	if prev != nil {
		prevChecks = make(map[[2]string]checkView, len(prev.checks))
		for _, c := range prev.checks {
			prevChecks[checkKey(c.Check)] = c
		}
	}
	// The same check on the same subject twice (two listeners answering
	// for one address): the worse verdict is the one kept.
	at := map[[2]string]int{}
	for _, c := range t.Checks {
		k := checkKey(c)
		if i, ok := at[k]; ok {
			if statusRank(c.Status) > statusRank(v.checks[i].Status) {
				v.checks[i].Check = c
			}
			continue
		}
		at[k] = len(v.checks)
		v.checks = append(v.checks, checkView{Check: c})
	}
	for i := range v.checks {
		c := &v.checks[i]
		c.seen = now
		if c.Status != checks.Error.String() {
			c.last = c.Status
		} else if p, ok := prevChecks[checkKey(c.Check)]; ok && p.last != "" {
			c.last, c.stale, v.stale = p.last, true, true
		}
	}
	if checksIncomplete && prev != nil {
		for _, p := range prev.checks {
			if _, ok := at[checkKey(p.Check)]; !ok && now.Sub(p.seen) <= maxCheckCarry {
				p.stale, v.stale = true, true
				v.checks = append(v.checks, p)
			}
		}
	}

	// Endpoints, by name and address (PostgreSQL 17's STARTTLS and direct
	// TLS doors share an address): up is the run's, the scan the last good
	// one.
	prevEP := map[string]endpointView{}
	if prev != nil {
		for _, e := range prev.endpoints {
			prevEP[endpointKey(e.Endpoint)] = e
		}
	}
	seen := map[string]bool{}
	for _, e := range t.Endpoints {
		k := endpointKey(e)
		seen[k] = true
		if e.Error == "" {
			v.endpoints = append(v.endpoints, endpointView{e, true})
		} else if p, ok := prevEP[k]; ok {
			v.endpoints, v.stale = append(v.endpoints, endpointView{p.Endpoint, false}), true
		} else {
			v.endpoints = append(v.endpoints, endpointView{e, false})
		}
	}
	if carry {
		for _, e := range prev.endpoints {
			if !seen[endpointKey(e.Endpoint)] {
				v.endpoints, v.stale = append(v.endpoints, endpointView{e.Endpoint, false}), true
			}
		}
	}

	// Inventory items, by kind, place and name (a renewed certificate
	// replaces the old one; its serial is a label, not the key). An item
	// read in part (a key whose creation time the target does not report)
	// exports what was read; one read not at all keeps the last good
	// values.
	prevItem := map[string]inventory.Item{}
	if prev != nil {
		for _, it := range prev.items {
			prevItem[itemKey(it)] = it
		}
	}
	read := map[string]bool{}
	for _, it := range items {
		if it.Certificate == nil && it.Key == nil {
			continue
		}
		k := itemKey(it)
		if p, ok := prevItem[k]; ok && keepCreated(p.Key, it.Key) {
			// The same version as last time: its creation time (and so
			// the next rotation) is still the one read then. Without it,
			// HardenKeyRotationOverdue would resolve because the target
			// stopped saying, not because the key rotated.
			key := *it.Key
			key.LatestCreated, key.NextRotation = p.Key.LatestCreated, p.Key.NextRotation
			it.Key, v.stale = &key, true
		}
		read[k] = true
		v.items = append(v.items, it)
		v.itemSeen[k] = now
	}
	if carry {
		for _, it := range prev.items {
			k := itemKey(it)
			if seen, ok := prev.itemSeen[k]; !read[k] && (!ok || now.Sub(seen) <= maxItemCarry) {
				v.items, v.stale = append(v.items, it), true
				if ok {
					v.itemSeen[k] = seen
				}
			}
		}
	}
	return v
}

// incomplete: the item was not read completely, as `harden inventory`
// judges it (tier unknown, which it counts as incomplete and exits 3 on),
// or it carries an error and nothing was read at all. A key with
// automatic rotation but no creation time is one: its known fields are
// exported, but no next rotation can be given, so the overdue alert is
// blind for it and the target is not up.
func incomplete(it inventory.Item) bool {
	return it.Tier == inventory.TierUnknown || (it.Error != "" && it.Certificate == nil && it.Key == nil)
}

// keepCreated: cur is prev's key at the same version and rotation period,
// read without the creation time prev had.
func keepCreated(prev, cur *inventory.Key) bool {
	return prev != nil && cur != nil && cur.LatestCreated == nil && prev.LatestCreated != nil &&
		cur.LatestVersion == prev.LatestVersion && cur.AutoRotatePeriodSeconds == prev.AutoRotatePeriodSeconds
}

// problem records why the target was not read completely: the first
// three reasons, each cut to 300 bytes (evidence can be long).
func (v *targetView) problem(format string, args ...any) {
	if len(v.problems) >= 3 {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if len(msg) > 300 {
		msg = strings.ToValidUTF8(msg[:300], "") + "…"
	}
	v.problems = append(v.problems, msg)
}

func endpointKey(e report.Endpoint) string { return e.Name + "\x00" + e.Address }

// endpointLabel is the endpoint label: the address (the name when there is
// none). The name label beside it tells apart two doors on one address.
func endpointLabel(e report.Endpoint) string {
	if e.Address != "" {
		return e.Address
	}
	return e.Name
}

// endpointName names the endpoint in a problem: its address and name.
func endpointName(e report.Endpoint) string {
	if e.Address == "" || e.Name == "" {
		return e.Address + e.Name
	}
	return e.Address + " (" + e.Name + ")"
}

func checkKey(c report.Check) [2]string { return [2]string{c.ID, c.Subject} }

func itemKey(it inventory.Item) string { return it.Kind + "\x00" + it.Where + "\x00" + it.Name }
