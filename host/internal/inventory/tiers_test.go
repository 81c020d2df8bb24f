package inventory

import (
	"testing"
	"time"
)

const day = 24 * time.Hour

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// The tiers and exit codes for certificates 40, 25, 10, 3 days from expiry,
// expired and not valid yet, with the default alert_at, a custom list (in
// any order, with a duplicate), a single tier and none.
func TestCertificateTiersAndExitCodes(t *testing.T) {
	type want struct {
		tier string
		code int
	}
	at := func(d time.Duration) time.Time { return now.Add(d) }
	cases := map[string]struct {
		alertAt []time.Duration
		// notAfter offsets from now -> want
		certs map[time.Duration]want
	}{
		"default 30d/14d/7d": {alertAt: []time.Duration{30 * day, 14 * day, 7 * day}, certs: map[time.Duration]want{
			40 * day: {"ok", 0}, 30*day + time.Second: {"ok", 0}, 30 * day: {"30d", 4}, 25 * day: {"30d", 4},
			14*day + time.Second: {"30d", 4}, 14 * day: {"14d", 5}, 10 * day: {"14d", 5}, 7 * day: {"7d", 6},
			3 * day: {"7d", 6}, time.Second: {"7d", 6}, 0: {"expired", 7}, -day: {"expired", 7}}},
		"custom, unordered, duplicate": {alertAt: []time.Duration{7 * day, 60 * day, 21 * day, 7 * day, 36 * time.Hour}, certs: map[time.Duration]want{
			90 * day: {"ok", 0}, 40 * day: {"60d", 4}, 25 * day: {"60d", 4}, 10 * day: {"21d", 5}, 3 * day: {"7d", 5},
			36 * time.Hour: {"36h", 6}, time.Hour: {"36h", 6}, -time.Hour: {"expired", 7}}},
		"one tier": {alertAt: []time.Duration{10 * day}, certs: map[time.Duration]want{
			40 * day: {"ok", 0}, 10 * day: {"10d", 6}, 3 * day: {"10d", 6}, -day: {"expired", 7}}},
		"two tiers": {alertAt: []time.Duration{14 * day, 7 * day}, certs: map[time.Duration]want{
			25 * day: {"ok", 0}, 10 * day: {"14d", 4}, 3 * day: {"7d", 6}}},
		"none": {alertAt: nil, certs: map[time.Duration]want{
			3 * day: {"ok", 0}, -day: {"expired", 7}}},
		"zero alert ignored": {alertAt: []time.Duration{0, 7 * day}, certs: map[time.Duration]want{
			3 * day: {"7d", 6}, 8 * day: {"ok", 0}}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := NewRules(30*day, tc.alertAt)
			for left, w := range tc.certs {
				tier := r.CertificateTier(now.Add(-80*day), at(left), now)
				if tier != w.tier || r.ExitCode(tier) != w.code {
					t.Errorf("%v left: tier %q exit %d, want %q exit %d", left, tier, r.ExitCode(tier), w.tier, w.code)
				}
			}
		})
	}
	r := NewRules(30*day, []time.Duration{30 * day, 14 * day, 7 * day})
	if tier := r.CertificateTier(now.Add(time.Second), now.Add(90*day), now); tier != TierNotYetValid || r.ExitCode(tier) != 7 {
		t.Errorf("not yet valid: %q %d", tier, r.ExitCode(tier))
	}
	if got := r.TierNames(); len(got) != 3 || got[0] != "30d" || got[2] != "7d" {
		t.Errorf("tier names %v", got)
	}
	// A tier these rules do not name is never "ok".
	if c := r.ExitCode("45d"); c != ExitIncomplete {
		t.Errorf("unknown tier: exit %d", c)
	}
}

// KEK rules: period 0 is rotation disabled (4), a next rotation in the past
// is overdue (4), an unknown creation time gives no date (3), else ok.
func TestKeyTiers(t *testing.T) {
	r := NewRules(30*day, []time.Duration{30 * day, 14 * day, 7 * day})
	for name, tc := range map[string]struct {
		created time.Time
		period  time.Duration
		tier    string
		next    time.Time
		code    int
	}{
		"rotation off":          {now.Add(-5 * day), 0, TierRotationDisabled, time.Time{}, 4},
		"rotation off, unknown": {time.Time{}, 0, TierRotationDisabled, time.Time{}, 4},
		"due in 25 days":        {now.Add(-5 * day), 30 * day, TierOK, now.Add(25 * day), 0},
		"overdue":               {now.Add(-31 * day), 30 * day, TierOverdue, now.Add(-day), 4},
		"due exactly now":       {now.Add(-30 * day), 30 * day, TierOK, now, 0},
		"created unknown":       {time.Time{}, 30 * day, TierUnknown, time.Time{}, 3},
	} {
		tier, next := KeyTier(tc.created, tc.period, now)
		if tier != tc.tier || !next.Equal(tc.next) || r.ExitCode(tier) != tc.code {
			t.Errorf("%s: tier %q next %v exit %d, want %q %v %d", name, tier, next, r.ExitCode(tier), tc.tier, tc.next, tc.code)
		}
	}
}

func TestDurationName(t *testing.T) {
	for d, want := range map[time.Duration]string{30 * day: "30d", 36 * time.Hour: "36h", 90 * time.Minute: "90m", 45 * time.Second: "45s", 1500 * time.Millisecond: "1s"} {
		if got := DurationName(d); got != want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
	}
}

func TestDaysBetween(t *testing.T) {
	for d, want := range map[time.Duration]int{40 * day: 40, 40*day - time.Second: 39, 0: 0, -time.Second: -1, -day: -1, -day - time.Second: -2} {
		if got := daysBetween(now, now.Add(d)); got != want {
			t.Errorf("%v: %d, want %d", d, got, want)
		}
	}
}
