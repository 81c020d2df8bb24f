package exporter

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/harden-dev/harden/shared/checks"
)

// Snapshot is one run's metric families, never changed once built: any
// number of scrapes read it at once while the next run builds the next.
type Snapshot struct {
	// Series: how many series the snapshot holds.
	Series int
	// Runs is how many runs the snapshot has seen (0: none yet).
	Runs uint64
	// OK, End: the last run read everything; when it ended.
	OK  bool
	End time.Time
	// Problems: why the last run did not read everything, per target
	// ("target: reason"; a few per target), or why it failed as a whole.
	Problems []string
	// Err: the registry refused part of the series (a bug: the builder
	// makes only valid, distinct series); the rest is served.
	Err error

	enc encoded
}

// builder collects the series of one snapshot as client_golang constant
// metrics; gather hands them to a fresh pedantic registry, which checks
// names, labels, help and types against the descriptors and refuses
// duplicates — once per run, not per scrape.
type builder struct {
	descs  map[*metric]*prometheus.Desc
	seen   map[*metric]map[string]bool
	series []prometheus.Metric
}

func newBuilder() *builder {
	return &builder{descs: map[*metric]*prometheus.Desc{}, seen: map[*metric]map[string]bool{}}
}

// add appends one series. Label values are forced to valid UTF-8 (a
// certificate's subject comes from a peer); a series whose labels repeat
// one already added is dropped (the first wins), so the registry never
// sees a duplicate and never rejects the scrape.
func (b *builder) add(m *metric, v float64, values ...string) {
	d := b.descs[m]
	if d == nil {
		d = prometheus.NewDesc(m.name, m.help, m.labels, nil)
		b.descs[m], b.seen[m] = d, map[string]bool{}
	}
	for i, s := range values {
		values[i] = strings.ToValidUTF8(s, "\uFFFD")
	}
	key := strings.Join(values, "\xff")
	if b.seen[m][key] {
		return
	}
	b.seen[m][key] = true
	vt := prometheus.GaugeValue
	if m.typ == counter {
		vt = prometheus.CounterValue
	}
	b.series = append(b.series, prometheus.MustNewConstMetric(d, vt, v, values...))
}

// Describe and Collect make the builder the run's one collector.
func (b *builder) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range b.descs {
		ch <- d
	}
}

func (b *builder) Collect(ch chan<- prometheus.Metric) {
	for _, m := range b.series {
		ch <- m
	}
}

// gather registers the builder in a registry of its own and gathers it.
func (b *builder) gather() ([]*dto.MetricFamily, error) {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(b); err != nil {
		return nil, err
	}
	return reg.Gather()
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// build turns the state into a snapshot; the caller holds s.mu (or owns s).
func (s *State) build() *Snapshot {
	b := newBuilder()
	b.add(mInfo, 1, s.info.Version, s.info.Policy, s.info.Profile)
	b.add(mInterval, s.info.Interval.Seconds())
	b.add(mRuns, float64(s.runs))
	b.add(mRunErrors, float64(s.errors))
	if s.ran {
		b.add(mRunOK, bool01(s.lastOK))
		b.add(mLastRun, unix(s.lastRun))
		ls := 0.0
		if !s.lastSuccess.IsZero() {
			ls = unix(s.lastSuccess)
		}
		b.add(mLastSuccess, ls)
		b.add(mRunDuration, s.duration.Seconds())
	}
	for _, t := range s.targets {
		t.export(b)
	}
	// Only the encoded exposition is kept: the families would hold as much
	// memory again for nothing a scrape needs.
	fams, err := b.gather()
	snap := &Snapshot{Series: len(b.series), Err: err, Runs: s.runs, OK: s.lastOK, End: s.lastRun, Problems: s.problems()}
	snap.encode(fams)
	return snap
}

// problems lists the last run's reasons; the caller holds s.mu.
func (s *State) problems() []string {
	if s.runErr != "" {
		return []string{s.runErr}
	}
	var out []string
	for _, t := range s.targets {
		for _, p := range t.problems {
			out = append(out, t.name+": "+p)
		}
	}
	return out
}

func (t *targetView) export(b *builder) {
	b.add(mTargetUp, bool01(t.up), t.name, t.plugin)
	ls := 0.0
	if !t.lastSuccess.IsZero() {
		ls = unix(t.lastSuccess)
	}
	b.add(mTargetLastSuccess, ls, t.name)
	b.add(mStale, bool01(t.stale), t.name)
	b.add(mUnreadable, float64(t.unreadable), t.name)

	for _, c := range t.checks {
		lv := []string{t.name, t.plugin, c.ID, c.Subject, c.Severity}
		b.add(mCheckStatus, 1, append(lv, c.Status)...)
		b.add(mCheckFailed, bool01(c.last == checks.Fail.String()), lv...)
		b.add(mCheckStale, bool01(c.stale), lv...)
	}

	for _, e := range t.endpoints {
		ep, name := endpointLabel(e.Endpoint), e.Name
		b.add(mEPUp, bool01(e.up), t.name, ep, name)
		b.add(mEPInfo, 1, t.name, ep, name, e.Dialect)
		handshake := false
		for _, v := range e.Versions {
			switch v.Outcome {
			case "accepted":
				handshake = true
				b.add(mEPVersion, 1, t.name, ep, name, v.Version)
			case "refused":
				b.add(mEPVersion, 0, t.name, ep, name, v.Version)
			}
		}
		for _, s := range e.Suites {
			suite := s.Name
			if suite == "" {
				suite = s.ID
			}
			b.add(mEPSuite, 1, t.name, ep, name, s.Version, suite)
		}
		for _, g := range e.Groups {
			b.add(mEPGroup, 1, t.name, ep, name, g)
		}
		if handshake {
			b.add(mEPClientRequested, bool01(e.ClientCertRequested), t.name, ep, name)
		}
		if v, ok := conclusive(e.NoClientCert); ok {
			// A session without a certificate refused: one is required.
			b.add(mEPClientRequired, 1-v, t.name, ep, name)
		}
		if v, ok := conclusive(e.Plaintext); ok {
			b.add(mEPPlaintext, 1-v, t.name, ep, name)
		}
		if e.TrustChecked {
			b.add(mEPTrusted, bool01(e.TrustError == ""), t.name, ep, name)
		}
		b.add(mEPInconclusive, float64(e.Inconclusive), t.name, ep, name)
	}

	for _, it := range t.items {
		if c := it.Certificate; c != nil {
			lv := []string{t.name, it.Kind, it.Where, it.Name, c.Serial, c.Subject}
			b.add(mNotAfter, unix(c.NotAfter), lv...)
			b.add(mNotBefore, unix(c.NotBefore), lv...)
			if !c.RenewAt.IsZero() {
				b.add(mRenewAt, unix(c.RenewAt), lv...)
			}
		}
		if k := it.Key; k != nil {
			lv := []string{t.name, it.Where, it.Name}
			b.add(mKeyLatest, float64(k.LatestVersion), lv...)
			if k.LatestCreated != nil {
				b.add(mKeyCreated, unix(*k.LatestCreated), lv...)
			}
			if k.NextRotation != nil {
				b.add(mKeyNext, unix(*k.NextRotation), lv...)
			}
			b.add(mKeyPeriod, float64(k.AutoRotatePeriodSeconds), lv...)
			b.add(mKeyDisabled, bool01(k.AutoRotatePeriodSeconds == 0), lv...)
		}
	}
}

// conclusive maps an accepted/refused outcome to 1/0; anything else (not
// tried, inconclusive) is not a value at all.
func conclusive(outcome string) (float64, bool) {
	switch outcome {
	case "accepted":
		return 1, true
	case "refused":
		return 0, true
	}
	return 0, false
}

// statusRank orders verdicts by how much they need attention.
func statusRank(s string) int {
	switch s {
	case checks.Fail.String():
		return 4
	case checks.Error.String():
		return 3
	case checks.Warn.String():
		return 2
	case checks.Pass.String():
		return 1
	}
	return 0
}
