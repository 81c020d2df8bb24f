package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/harden-dev/harden/host/internal/engine"
	"github.com/harden-dev/harden/host/internal/policy"
	"github.com/harden-dev/harden/host/internal/report"
	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
)

// The host's side of "evidence, or no verdict" (README: Reduction rules).
// A plugin is another process, possibly third-party: the host does not take
// its checks on trust.
//
//   - A check with an unknown status or severity, an invalid ID, a negative
//     inconclusive count, or a pass that admits inconclusive observations is
//     invalid: it becomes an error, and so does its target (exit 3). An
//     unknown status would otherwise count as neither fail nor error, and a
//     FAIL of unknown severity would never trip --fail-on.
//   - Configuration-only evidence never passes a high or critical check: a
//     plugin's pass of that kind is reported as a warning.
//   - For check IDs the host registers itself (tls.*, postgres.*), the
//     registered severity is a floor, and a warning with inconclusive
//     observations on a check that is not best-effort is an error.
//   - When the certificate source could not provide the policy CA, a trust
//     check the plugin skipped for want of a CA is an error with the
//     source's reason: it could not run, it is not "not applicable".
//   - Zero checks, or only skipped ones, is an error: nothing applicable was
//     verified.

// setVerifyResult records one target's verify outcome by those rules.
func setVerifyResult(t *report.Target, err error, r sdk.VerifyResponse, pol *policy.Policy, plugin string) {
	t.SetResult(err, r.Diagnostics, pol)
	var source *engine.CertificateSourceError
	fromSource := errors.As(err, &source)
	var invalid []string
	cs := make([]sdk.Check, 0, len(r.Checks))
	for _, c := range r.Checks {
		c, why := validateCheck(c)
		if why != "" {
			invalid = append(invalid, fmt.Sprintf("%s: %s", displayID(c.ID), why))
		}
		if fromSource && c.ID == "tls.certificate.trusted" && c.Status == checks.Skip {
			c.Status = checks.Error
			c.Evidence = fmt.Sprintf("the policy CA was not available (certificate source %s: %v); the plugin said: %s", source.Source, source.Err, c.Evidence)
		}
		cs = append(cs, c)
	}
	t.Checks = report.Checks(cs)
	var problems []string
	if len(invalid) > 0 {
		const shown = 5
		total, more := len(invalid), ""
		if total > shown {
			more = fmt.Sprintf("; and %d more", total-shown)
			invalid = invalid[:shown]
		}
		problems = append(problems, fmt.Sprintf("plugin %s sent %d invalid check(s), reported as errors: %s%s", plugin, total, strings.Join(invalid, "; "), more))
	}
	if t.Status == "ok" {
		switch skipped := countStatus(cs, checks.Skip); {
		case len(cs) == 0:
			problems = append(problems, "no checks ran; an empty verification is never a pass")
		case skipped == len(cs):
			problems = append(problems, fmt.Sprintf("nothing applicable was verified: all %d check(s) were skipped", skipped))
		}
	}
	if len(problems) == 0 {
		return
	}
	if t.Error != "" {
		problems = append([]string{t.Error}, problems...)
	}
	t.Status, t.Error = "error", strings.Join(problems, "; ")
	t.ConfigError = false
}

func countStatus(cs []sdk.Check, s checks.Status) int {
	n := 0
	for _, c := range cs {
		if c.Status == s {
			n++
		}
	}
	return n
}

func displayID(id string) string {
	if id == "" {
		return "(no id)"
	}
	return id
}

// validateCheck returns the check as the host reports it and, when the
// plugin sent an invalid one, why it was invalid (the check is then an
// error).
func validateCheck(c sdk.Check) (sdk.Check, string) {
	var why []string
	if !checks.ValidID(c.ID) {
		why = append(why, fmt.Sprintf("invalid check id %q (want a dotted lower-case id such as kafka.listener.plaintext)", c.ID))
	}
	validStatus := c.Status >= checks.Pass && c.Status <= checks.Error
	if !validStatus {
		why = append(why, "unknown status "+c.Status.String())
	}
	validSeverity := c.Severity >= checks.Info && c.Severity <= checks.Critical
	if !validSeverity {
		why = append(why, "unknown severity "+c.Severity.String())
	}
	if c.Inconclusive < 0 {
		why = append(why, fmt.Sprintf("negative inconclusive count %d", c.Inconclusive))
	}
	if c.Status == checks.Pass && c.Inconclusive > 0 {
		why = append(why, fmt.Sprintf("a pass with %d inconclusive observation(s) (an inconclusive observation is never a pass)", c.Inconclusive))
	}
	if len(why) == 0 {
		// For IDs the host knows (shared/checks: tls.*, postgres.*), the
		// registered definition is the contract: a plugin cannot lower the
		// severity, nor warn on an inconclusive observation of a check
		// that is not best-effort.
		if d, ok := checks.Lookup(c.ID); ok {
			if c.Severity < d.Severity {
				c.Severity = d.Severity
			}
			if c.Status == checks.Warn && c.Inconclusive > 0 && !d.BestEffort {
				c.Status = checks.Error
				c.Evidence += " — an inconclusive observation of a check that is not best-effort is an error (reported as such by harden)"
			}
		}
		if c.ConfigurationOnly && c.Status == checks.Pass && c.Severity >= checks.High {
			c.Status = checks.Warn
			c.Evidence += " — configuration-only evidence never passes a " + c.Severity.String() + "-severity check (reported as a warning by harden)"
		}
		return c, ""
	}
	reason := strings.Join(why, ", ")
	if !validSeverity {
		// Whatever it was meant to be, an error stops the run (exit 3).
		c.Severity = checks.High
		if d, ok := checks.Lookup(c.ID); ok {
			c.Severity = d.Severity
		}
	}
	if c.Inconclusive < 0 {
		c.Inconclusive = 0
	}
	c.Status = checks.Error
	c.Evidence = fmt.Sprintf("the plugin sent an invalid check (%s): %s", reason, c.Evidence)
	return c, reason
}
