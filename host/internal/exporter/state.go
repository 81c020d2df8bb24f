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
	checks      []report.Check
	endpoints   []endpointView
	// items: certificates and keys, a CA item once per target using it.
	items      []inventory.Item
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
// or item in error or missing, every check when the target gave none)
// keeps the previous view's value and marks the target stale, so an
// expired certificate behind a server that went down keeps alerting
// instead of vanishing. A complete run drops what it no longer lists.
func fold(prev *targetView, t report.Target, items []inventory.Item, now time.Time) *targetView {
	v := &targetView{name: t.Name, plugin: t.Plugin}
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
			v.problem("endpoint %s: %s", endpointKey(e), e.Error)
		}
	}
	for _, it := range items {
		if it.Error != "" {
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

	// Checks: the run's verdicts, an "error" one included (that is what is
	// known now); the last ones only when the target gave none at all.
	v.checks = t.Checks
	if len(t.Checks) == 0 && carry && len(prev.checks) > 0 {
		v.checks, v.stale = prev.checks, true
	}

	// Endpoints, by address: up is the run's, the scan the last good one.
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
	// replaces the old one; its serial is a label, not the key).
	read := map[string]bool{}
	for _, it := range items {
		if it.Error != "" || (it.Certificate == nil && it.Key == nil) {
			continue
		}
		read[itemKey(it)] = true
		v.items = append(v.items, it)
	}
	if carry {
		for _, it := range prev.items {
			if !read[itemKey(it)] {
				v.items, v.stale = append(v.items, it), true
			}
		}
	}
	return v
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

func endpointKey(e report.Endpoint) string {
	if e.Address != "" {
		return e.Address
	}
	return e.Name
}

func itemKey(it inventory.Item) string { return it.Kind + "\x00" + it.Where + "\x00" + it.Name }
