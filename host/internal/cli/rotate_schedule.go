package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/harden-dev/harden/host/internal/policy"
	"github.com/harden-dev/harden/host/internal/rotate"
)

// scheduleReport is `harden rotate --schedule --format json` (field names
// are stable).
type scheduleReport struct {
	FormatVersion int    `json:"format_version"`
	Policy        string `json:"policy"`
	// Now is the clock the schedule was computed at.
	Now string `json:"now"`
	// NextRun (RFC 3339, UTC, whole seconds) is never before Now; DueNow
	// says a certificate is due already (NextRun is Now).
	NextRun   string             `json:"next_run"`
	InSeconds int64              `json:"in_seconds"`
	DueNow    bool               `json:"due_now"`
	Jitter    float64            `json:"jitter_seconds"`
	Reason    string             `json:"reason"`
	DecidedBy rotate.Scheduled   `json:"decided_by"`
	Certs     []rotate.Scheduled `json:"certificates"`
	NotIssued []string           `json:"not_issued,omitempty"`
	Warnings  []string           `json:"warnings,omitempty"`
}

// runSchedule: `harden rotate --schedule` says when the next rotate run is
// due, from what the certificate store and the policy's certificate files
// hold — it issues nothing and contacts no target (not even the
// certificate source: a CA change is found by the run itself). It covers
// what the same rotate run would (--target and --client narrow it the same
// way). Nothing held at all is exit 3: a scheduler must not read "nothing
// issued yet" as "nothing to do for months".
func runSchedule(c *cli.Context, s *session) error {
	clients, err := selectedClients(c, s.pol)
	if err != nil {
		return err
	}
	targets := s.targets
	if len(c.StringSlice("client")) > 0 && len(c.StringSlice("target")) == 0 {
		targets = nil
	}
	held, missing, err := rotate.Collect(s.pol, targets, clients, func(t policy.Target) bool {
		p, ok := s.eng.Plugins[t.Plugin]
		return ok && p.VerifyOnly()
	})
	if err != nil {
		return &ExitError{Code: ExitTarget, Err: fmt.Errorf("harden rotate --schedule: %w", err)}
	}
	now := clock(s.eng)
	rb := s.pol.Certificates.Rotation.RenewBefore
	sch, err := rotate.NextRun(held, rb, now, nil)
	if errors.Is(err, rotate.ErrNothingToSchedule) && len(missing) > 0 {
		err = fmt.Errorf("%w; not issued yet: %s", err, strings.Join(missing, ", "))
	}
	if err != nil {
		return &ExitError{Code: ExitTarget, Err: err}
	}
	// Whole seconds, rounded down: earlier is safe, later is not.
	next := sch.Next.Truncate(time.Second)
	in := max(next.Sub(now), 0)
	rep := scheduleReport{FormatVersion: 1, Policy: s.pol.File, Now: now.UTC().Format(time.RFC3339), NextRun: next.UTC().Format(time.RFC3339),
		InSeconds: int64(in / time.Second), DueNow: sch.DueNow, Jitter: sch.Jitter.Seconds(), Reason: sch.Why(rb),
		DecidedBy: sch.DecidedBy, Certs: sch.Certificates, NotIssued: missing}
	for _, m := range missing {
		rep.Warnings = append(rep.Warnings, "not in the schedule, nothing issued yet: "+m+" (rotate refuses it until harden apply has issued it)")
	}
	for _, ce := range sch.Certificates {
		if ce.Source == "files" && !ce.Due.After(now) {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s from %s is due and harden cannot renew it: put a renewed file there and run harden apply", ce.Owner(), ce.File))
		}
	}
	for _, w := range rep.Warnings {
		fmt.Fprintln(s.io.Stderr, "warning: "+w)
	}
	if c.String("format") == "json" {
		return writeJSON(s.io.Stdout, rep)
	}
	_, err = fmt.Fprintf(s.io.Stdout, "next rotate run: %s (in %s): %s\n", rep.NextRun, rotate.Human(in), rep.Reason)
	return err
}
