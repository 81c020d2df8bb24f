package inventory

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"
)

// Rules are the policy's rotation settings the items are judged by.
type Rules struct {
	RenewBefore time.Duration
	// alerts: the alert_at values, widest first, without duplicates and
	// without zero or negative values (inside those a certificate has
	// expired: that tier exists anyway).
	alerts []time.Duration
}

// NewRules orders alertAt widest first; the policy may list it in any order.
func NewRules(renewBefore time.Duration, alertAt []time.Duration) Rules {
	var a []time.Duration
	for _, d := range alertAt {
		if d > 0 && !slices.Contains(a, d) {
			a = append(a, d)
		}
	}
	slices.SortFunc(a, func(x, y time.Duration) int { return cmp.Compare(y, x) })
	return Rules{RenewBefore: renewBefore, alerts: a}
}

// TierNames are the alert tiers' names, widest first.
func (r Rules) TierNames() []string {
	out := []string{}
	for _, d := range r.alerts {
		out = append(out, DurationName(d))
	}
	return out
}

// DurationName writes d as the policy does: 30d, 36h, 90m, 45s.
func DurationName(d time.Duration) string {
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}} {
		if d%u.unit == 0 {
			return fmt.Sprintf("%d%s", d/u.unit, u.name)
		}
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

// CertificateTier: not_yet_valid before NotBefore, expired from NotAfter on,
// else the narrowest alert tier the time left falls in (left <= alert_at),
// else ok.
func (r Rules) CertificateTier(notBefore, notAfter, now time.Time) string {
	switch {
	case now.Before(notBefore):
		return TierNotYetValid
	case !now.Before(notAfter):
		return TierExpired
	}
	left := notAfter.Sub(now)
	for i := len(r.alerts) - 1; i >= 0; i-- {
		if left <= r.alerts[i] {
			return DurationName(r.alerts[i])
		}
	}
	return TierOK
}

// KeyTier: rotation_disabled for a period of 0, overdue once the next
// rotation date has passed, unknown when the latest version's creation time
// is not known (no next date can be given), else ok.
func KeyTier(latestCreated time.Time, period time.Duration, now time.Time) (tier string, next time.Time) {
	switch {
	case period <= 0:
		return TierRotationDisabled, time.Time{}
	case latestCreated.IsZero():
		return TierUnknown, time.Time{}
	}
	next = latestCreated.Add(period)
	if next.Before(now) {
		return TierOverdue, next
	}
	return TierOK, next
}

// ExitCode is what tier means for the exit code: 7 expired or not valid yet,
// 6 the narrowest alert tier, 4 the widest, 5 any tier between (with one
// alert_at value it is the narrowest: 6), 4 a key with rotation disabled or
// overdue, 3 unknown, 0 ok.
func (r Rules) ExitCode(tier string) int {
	switch tier {
	case TierOK:
		return ExitOK
	case TierExpired, TierNotYetValid:
		return ExitExpired
	case TierRotationDisabled, TierOverdue:
		return ExitWidestTier
	case TierUnknown:
		return ExitIncomplete
	}
	names := r.TierNames()
	switch i := slices.Index(names, tier); {
	case i < 0:
		// Not a tier of these rules: never silently "ok".
		return ExitIncomplete
	case i == len(names)-1:
		return ExitNarrowestTier
	case i == 0:
		return ExitWidestTier
	default:
		return ExitMiddleTier
	}
}

// daysBetween is the whole days from a to b, rounded down (negative when b
// is before a).
func daysBetween(a, b time.Time) int {
	return int(math.Floor(b.Sub(a).Hours() / 24))
}
