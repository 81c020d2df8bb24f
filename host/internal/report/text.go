package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/harden-dev/harden/host/internal/inventory"
	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
)

// Finish sets the command and, for verify, the summary: checks by status,
// target_error (targets that failed as a whole, whose checks may be
// missing) and the inconclusive observations per target and in all.
func (r *Run) Finish(command string) {
	r.Command = command
	if command != "verify" {
		return
	}
	r.Summary = map[string]int{"target_error": r.TargetErrors()}
	total := 0
	for i := range r.Targets {
		n := 0
		for _, c := range r.Targets[i].Checks {
			r.Summary[c.Status]++
			n += c.Inconclusive
		}
		r.Targets[i].Inconclusive = &n
		total += n
	}
	r.Inconclusive = &total
}

// configOnly counts the configuration-only checks.
func (r *Run) configOnly() int {
	n := 0
	for _, t := range r.Targets {
		for _, c := range t.Checks {
			if c.ConfigurationOnly {
				n++
			}
		}
	}
	return n
}

// WriteText writes the Run for a terminal.
func WriteText(w io.Writer, r *Run) error {
	if r.Command == "inventory" && r.Inventory != nil {
		return inventory.WriteText(w, r.Inventory)
	}
	for _, t := range r.Targets {
		fmt.Fprintf(w, "%s (%s)", t.Name, t.Plugin)
		if t.Status != "ok" {
			fmt.Fprintf(w, ": %s", strings.ToUpper(t.Status))
		}
		fmt.Fprintln(w)
		if t.Error != "" {
			fmt.Fprintf(w, "  error: %s\n", t.Error)
		}
		for _, d := range t.Diagnostics {
			if d.Severity == "warning" {
				fmt.Fprintf(w, "  warning: %s %s\n", d.Summary, d.Detail)
			}
		}
		for _, c := range t.Checks {
			var tags []string
			if c.ConfigurationOnly {
				tags = append(tags, "configuration only")
			}
			if c.Inconclusive > 0 {
				tags = append(tags, fmt.Sprintf("%d inconclusive", c.Inconclusive))
			}
			tag := ""
			if len(tags) > 0 {
				tag = " [" + strings.Join(tags, ", ") + "]"
			}
			fmt.Fprintf(w, "  %-5s %-8s %-34s %s%s\n", strings.ToUpper(c.Status), c.Severity, c.ID, c.Subject, tag)
			fmt.Fprintf(w, "        observed: %s\n", c.Evidence)
			if c.Status == checks.Fail.String() && c.Remediation != "" {
				fmt.Fprintf(w, "        fix: %s\n", c.Remediation)
			}
		}
		for _, c := range t.Changes {
			sym := map[string]string{"create": "+", "update": "~", "delete": "-", "no-op": "="}[c.Action]
			switch {
			case c.Action == string(sdk.NoOp):
				continue
			case c.Sensitive:
				fmt.Fprintf(w, "  %s %s (sensitive value hidden)", sym, c.Resource)
			case c.Action == string(sdk.Update):
				fmt.Fprintf(w, "  %s %s: %q -> %q", sym, c.Resource, c.Before, c.After)
			default:
				fmt.Fprintf(w, "  %s %s: %q", sym, c.Resource, c.After+c.Before)
			}
			if c.RequiresRestart {
				fmt.Fprint(w, " (restart required)")
			}
			fmt.Fprintln(w)
		}
		if t.Inconclusive != nil && *t.Inconclusive > 0 {
			fmt.Fprintf(w, "  %d inconclusive observation(s) in %s's checks\n", *t.Inconclusive, t.Name)
		}
		if r.Command == "plan" && t.Status == "ok" && t.Pending() == 0 {
			fmt.Fprintln(w, "  no changes")
		}
		for _, a := range t.Artifacts {
			fmt.Fprintf(w, "  artifact %s (mode %s, %d bytes)", a.Path, a.Mode, a.Size)
			switch {
			case a.Sensitive:
				fmt.Fprint(w, " [sensitive, not shown; use --out]")
			case a.Binary:
				fmt.Fprint(w, " [binary, written only with --out]")
			}
			fmt.Fprintln(w)
			if a.Content != "" {
				for _, line := range strings.Split(strings.TrimRight(a.Content, "\n"), "\n") {
					fmt.Fprintf(w, "    | %s\n", line)
				}
			}
		}
	}
	targetErrors := ""
	if n := r.TargetErrors(); n > 0 {
		targetErrors = fmt.Sprintf(" (%d target error(s))", n)
	}
	if r.Command == "verify" {
		inconclusive := 0
		if r.Inconclusive != nil {
			inconclusive = *r.Inconclusive
		}
		// errors: checks in status error and targets in error.
		fmt.Fprintf(w, "\nSummary: %d passed, %d failed, %d warnings, %d skipped, %d errors%s; %d inconclusive observations, %d configuration-only checks\n",
			r.Summary["pass"], r.Summary["fail"], r.Summary["warn"], r.Summary["skip"], r.Summary["error"]+r.Summary["target_error"], targetErrors, inconclusive, r.configOnly())
	}
	if r.Command == "plan" {
		// A target in error has unknown pending changes: never just "0".
		if n := r.TargetErrors(); n > 0 {
			fmt.Fprintf(w, "\nPlan: %d change(s) pending, %d target error(s): their changes are unknown\n", r.PendingChanges(), n)
		} else {
			fmt.Fprintf(w, "\nPlan: %d change(s) pending\n", r.PendingChanges())
		}
	}
	if len(r.History) > 0 {
		writeHistory(w, r)
	}
	return nil
}
