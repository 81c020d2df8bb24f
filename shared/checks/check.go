package checks

import (
	"fmt"
	"strings"
)

// Status of a check.
type Status int

const (
	StatusUnknown Status = iota
	// Pass: the live system showed the expected behaviour.
	Pass
	// Fail: the live system showed a violation.
	Fail
	// Warn: not a violation, but worth attention.
	Warn
	// Skip: not applicable to this target (the evidence says why).
	Skip
	// Error: the check could not run. Never counted as a pass.
	Error
)

var statusNames = []string{"unknown", "pass", "fail", "warn", "skip", "error"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// ParseStatus is the inverse of String.
func ParseStatus(s string) (Status, error) {
	for i, n := range statusNames {
		if n == s && i > 0 {
			return Status(i), nil
		}
	}
	return StatusUnknown, fmt.Errorf("unknown check status %q", s)
}

// Severity of a check, ordered.
type Severity int

const (
	SeverityUnknown Severity = iota
	Info
	Low
	Medium
	High
	Critical
)

var severityNames = []string{"unknown", "info", "low", "medium", "high", "critical"}

func (s Severity) String() string {
	if int(s) < len(severityNames) {
		return severityNames[s]
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// ParseSeverity accepts info, low, medium, high, critical.
func ParseSeverity(s string) (Severity, error) {
	for i, n := range severityNames {
		if n == strings.ToLower(s) && i > 0 {
			return Severity(i), nil
		}
	}
	return SeverityUnknown, fmt.Errorf("unknown severity %q (want info, low, medium, high or critical)", s)
}

// Check is one verified fact about a live system.
type Check struct {
	ID       string
	Status   Status
	Severity Severity
	Title    string
	// Evidence is what was observed, e.g. "TLSv1.1 handshake accepted".
	Evidence    string
	Remediation string
	References  []string
	// Subject is the endpoint or resource looked at.
	Subject string
	// Inconclusive counts the observations behind this check that could not
	// conclude (see Reduce); text and JSON reports sum them.
	Inconclusive int
	// ConfigurationOnly: the evidence was read from configuration, not
	// observed (see Configured).
	ConfigurationOnly bool
}

// New builds a check from the registry's definition of id.
func New(id string, status Status, subject, evidence string) Check {
	c := Check{ID: id, Status: status, Subject: subject, Evidence: evidence, Severity: Medium}
	if d, ok := Lookup(id); ok {
		c.Title, c.Severity, c.Remediation = d.Title, d.Severity, d.Remediation
		c.References = append([]string(nil), d.References...)
	}
	return c
}

// Passed records an observation that meets the policy.
func Passed(id, subject, evidence string) Check { return New(id, Pass, subject, evidence) }

// Failed records an observation that violates the policy.
func Failed(id, subject, evidence string) Check { return New(id, Fail, subject, evidence) }

// Errored records a check that could not run; err is the evidence.
func Errored(id, subject string, err error) Check { return New(id, Error, subject, err.Error()) }
