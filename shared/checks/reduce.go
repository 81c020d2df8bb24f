package checks

import (
	"fmt"
	"strings"
)

// The reduction rules: how observations of a live system become one check.
// They live here, once, for the probe and every plugin (README: "Reduction
// rules").
//
//  1. Zero observations is never a pass: the check is an error.
//  2. Any conclusive bad observation fails the check, whatever else was or
//     was not observed (a proven violation stays proven).
//  3. Otherwise any inconclusive observation makes the check an error — or a
//     warning when its definition is BestEffort — with every reason in the
//     evidence.
//  4. Only when every observation is conclusive and good does it pass.
//  5. Skip is only for "not applicable here", with the reason (NotApplicable).
//  6. Evidence read from configuration rather than observed (Configured)
//     never passes a check of high or critical severity on its own.

// Observation is one thing looked at on the live system, judged against the
// policy: conclusive and good, conclusive and bad, or inconclusive (with the
// reason nothing could be concluded).
type Observation struct {
	// Evidence is what was seen (the server's answer), or for an
	// inconclusive observation what was attempted.
	Evidence string
	// Bad: a conclusive observation that violates the policy.
	Bad bool
	// Inconclusive is the reason no conclusion could be drawn (timeout,
	// reset, garbled answer, permission denied, ...). Empty = conclusive.
	Inconclusive string
}

// Good is a conclusive observation that meets the policy.
func Good(evidence string) Observation { return Observation{Evidence: evidence} }

// Bad is a conclusive observation that violates the policy.
func Bad(evidence string) Observation { return Observation{Evidence: evidence, Bad: true} }

// Unknown is an inconclusive observation: what was tried and why it did not
// conclude.
func Unknown(attempt, reason string) Observation {
	if reason == "" {
		reason = "no reason given"
	}
	return Observation{Evidence: attempt, Inconclusive: reason}
}

// Conclusive reports whether the observation concluded.
func (o Observation) Conclusive() bool { return o.Inconclusive == "" }

func (o Observation) String() string {
	if !o.Conclusive() {
		if o.Evidence == "" {
			return "not tested: " + o.Inconclusive
		}
		return o.Evidence + ": not tested: " + o.Inconclusive
	}
	return o.Evidence
}

// Reduce turns the observations a check needs into the check, by the rules
// above.
func Reduce(id, subject string, obs ...Observation) Check {
	if len(obs) == 0 {
		return New(id, Error, subject, "nothing was observed (zero observations is never a pass)")
	}
	var bad, unknown, good []string
	for _, o := range obs {
		switch {
		case o.Conclusive() && o.Bad:
			bad = append(bad, o.String())
		case !o.Conclusive():
			unknown = append(unknown, o.String())
		default:
			good = append(good, o.String())
		}
	}
	tail := ""
	if len(unknown) > 0 {
		tail = fmt.Sprintf("; %d inconclusive: %s", len(unknown), strings.Join(unknown, "; "))
	}
	switch {
	case len(bad) > 0:
		c := New(id, Fail, subject, strings.Join(bad, "; ")+tail)
		c.Inconclusive = len(unknown)
		return c
	case len(unknown) > 0:
		status := Error
		if d, ok := Lookup(id); ok && d.BestEffort {
			status = Warn
		}
		ev := fmt.Sprintf("%d of %d observations inconclusive: %s", len(unknown), len(obs), strings.Join(unknown, "; "))
		if len(good) > 0 {
			ev += "; conclusive: " + strings.Join(good, "; ")
		}
		c := New(id, status, subject, ev)
		c.Inconclusive = len(unknown)
		return c
	}
	return New(id, Pass, subject, strings.Join(good, "; "))
}

// NotApplicable is the only way to skip: the check does not apply to this
// target, and reason says why.
func NotApplicable(id, subject, reason string) Check {
	if reason == "" {
		reason = "not applicable (no reason given)"
	}
	return New(id, Skip, subject, reason)
}

// ConfigurationPrefix labels evidence read from configuration, not observed.
const ConfigurationPrefix = "configuration only (not observed live): "

// Configured records evidence read from configuration (a config file, a
// server's reported settings) rather than observed behaviour. It fails when
// the configuration is bad; when it is good it passes only checks below high
// severity — for high and critical ones it warns that only configuration
// was seen.
func Configured(id, subject, evidence string, good bool) Check {
	ev := ConfigurationPrefix + evidence
	if !good {
		c := New(id, Fail, subject, ev)
		c.ConfigurationOnly = true
		return c
	}
	c := New(id, Pass, subject, ev)
	if c.Severity >= High {
		c.Status = Warn
		c.Evidence += " — a high-severity check needs live evidence to pass"
	}
	c.ConfigurationOnly = true
	return c
}
