package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/harden-dev/harden/host/internal/engine"
	"github.com/harden-dev/harden/host/internal/policy"
	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// FormatVersion of the JSON reports; bumped only on incompatible changes.
const FormatVersion = 1

type report struct {
	FormatVersion int            `json:"format_version"`
	Command       string         `json:"command"`
	Policy        string         `json:"policy"`
	Profile       string         `json:"profile"`
	Targets       []targetReport `json:"targets"`
	Summary       map[string]int `json:"summary,omitempty"`
	// Inconclusive (verify) sums the inconclusive observations of every
	// check: what could not be told apart from a refusal or an acceptance.
	Inconclusive *int `json:"inconclusive,omitempty"`
}

type targetReport struct {
	Name        string           `json:"name"`
	Plugin      string           `json:"plugin"`
	Status      string           `json:"status"`
	Error       string           `json:"error,omitempty"`
	Checks      []checkReport    `json:"checks,omitempty"`
	Changes     []changeReport   `json:"changes,omitempty"`
	Artifacts   []artifactReport `json:"artifacts,omitempty"`
	Diagnostics []diagReport     `json:"diagnostics,omitempty"`
	// Inconclusive (verify): the target's checks' inconclusive observations.
	Inconclusive *int `json:"inconclusive,omitempty"`
	configError  bool
}

type checkReport struct {
	ID          string   `json:"id"`
	Status      string   `json:"status"`
	Severity    string   `json:"severity"`
	Title       string   `json:"title,omitempty"`
	Subject     string   `json:"subject,omitempty"`
	Evidence    string   `json:"evidence"`
	Remediation string   `json:"remediation,omitempty"`
	References  []string `json:"references"`
	// Inconclusive observations behind the check (checks.Reduce).
	Inconclusive int `json:"inconclusive"`
	// ConfigurationOnly: the evidence was read from configuration, not
	// observed on the live system (checks.Configured).
	ConfigurationOnly bool `json:"configuration_only"`
}

type changeReport struct {
	Resource        string `json:"resource"`
	Action          string `json:"action"`
	Before          string `json:"before,omitempty"`
	After           string `json:"after,omitempty"`
	Sensitive       bool   `json:"sensitive,omitempty"`
	RequiresRestart bool   `json:"requires_restart,omitempty"`
	Description     string `json:"description,omitempty"`
}

type artifactReport struct {
	Path        string `json:"path"`
	Mode        string `json:"mode"`
	Size        int    `json:"size"`
	Sensitive   bool   `json:"sensitive,omitempty"`
	Description string `json:"description,omitempty"`
	// Binary artifacts (keystores, PKCS#12) are written only with --out.
	Binary bool `json:"binary,omitempty"`
	// Content is omitted for sensitive and binary artifacts: keys never
	// reach stdout, nor do bytes that are not text for a terminal.
	Content string `json:"content,omitempty"`
}

type diagReport struct {
	Severity  string `json:"severity"`
	Source    string `json:"source"`
	Code      string `json:"code,omitempty"`
	Summary   string `json:"summary"`
	Detail    string `json:"detail,omitempty"`
	Attribute string `json:"attribute,omitempty"`
	// Location is file:line:column in the policy for config problems.
	Location string `json:"location,omitempty"`
}

func newReport(s *session) *report {
	r := &report{FormatVersion: FormatVersion, Policy: s.pol.File, Profile: s.pol.Profile.Name}
	for _, t := range s.targets {
		r.Targets = append(r.Targets, targetReport{Name: t.Name, Plugin: t.Plugin, Status: "ok"})
	}
	return r
}

// setResult records a transport error and the response's diagnostics.
func (t *targetReport) setResult(err error, diags sdk.Diagnostics, pol *policy.Policy) {
	idx := -1
	if pt, ok := pol.Target(t.Name); ok {
		idx = pt.Index
	}
	for _, d := range diags {
		dr := diagReport{Severity: d.Severity.String(), Source: d.Source.String(), Code: d.Code, Summary: d.Summary,
			Detail: d.Detail, Attribute: d.Attribute.String()}
		if d.Source == sdk.SourceConfig && len(d.Attribute) > 0 && idx >= 0 {
			pe := pol.DiagnosticError(idx, d)
			dr.Location = fmt.Sprintf("%s:%d:%d", pe.File, pe.Pos.Line, pe.Pos.Column)
		}
		t.Diagnostics = append(t.Diagnostics, dr)
	}
	if err != nil {
		t.Status, t.Error = "error", err.Error()
		var en *engine.Error
		t.configError = errors.As(err, &en) && en.Kind == engine.KindConfig
		return
	}
	if diags.HasError() {
		t.Status = "error"
		t.configError = true
		for _, d := range diags {
			if d.Severity == sdk.Error && d.Source != sdk.SourceConfig {
				t.configError = false
			}
		}
		var msgs []string
		for _, d := range diags {
			if d.Severity == sdk.Error {
				prefix := map[sdk.Source]string{sdk.SourceTarget: "target: ", sdk.SourceConfig: "config: ", sdk.SourcePlugin: "plugin: "}[d.Source]
				msgs = append(msgs, prefix+d.Error())
			}
		}
		t.Error = strings.Join(msgs, "; ")
	}
}

func (t *targetReport) pending() int {
	n := 0
	for _, c := range t.Changes {
		if c.Action != string(sdk.NoOp) {
			n++
		}
	}
	return n
}

func (r *report) pendingChanges() int {
	n := 0
	for _, t := range r.Targets {
		n += t.pending()
	}
	return n
}

func (r *report) failed() bool {
	for _, t := range r.Targets {
		if t.Status == "error" {
			return true
		}
	}
	return false
}

func (r *report) failingAtOrAbove(sev checks.Severity) int {
	n := 0
	for _, t := range r.Targets {
		for _, c := range t.Checks {
			s, _ := checks.ParseSeverity(c.Severity)
			if c.Status == checks.Fail.String() && s >= sev {
				n++
			}
		}
	}
	return n
}

// exit returns the error for target failures: config problems exit 1,
// everything else (plugin, target, checks in status error) exits 3.
func (r *report) exit() error {
	code := ExitOK
	var msgs []string
	for _, t := range r.Targets {
		if t.Status == "error" {
			msgs = append(msgs, fmt.Sprintf("target %s (%s): %s", t.Name, t.Plugin, t.Error))
			if t.configError && code != ExitTarget {
				code = ExitConfig
			} else {
				code = ExitTarget
			}
		}
		for _, c := range t.Checks {
			if c.Status == checks.Error.String() {
				msgs = append(msgs, fmt.Sprintf("target %s: check %s could not run: %s", t.Name, c.ID, c.Evidence))
				code = ExitTarget
			}
		}
	}
	if code == ExitOK {
		return nil
	}
	return &ExitError{Code: code, Err: errors.New(strings.Join(msgs, "\n"))}
}

// targetErrors counts targets that failed as a whole (status error).
func (r *report) targetErrors() int {
	n := 0
	for _, t := range r.Targets {
		if t.Status == "error" {
			n++
		}
	}
	return n
}

func (r *report) print(w io.Writer, format, command string) error {
	r.Command = command
	configOnly := 0
	if command == "verify" {
		// Checks by status, and target_error: targets that failed as a
		// whole (unreachable, plugin error), whose checks may be missing.
		r.Summary = map[string]int{"target_error": r.targetErrors()}
		total := 0
		for i := range r.Targets {
			n := 0
			for _, c := range r.Targets[i].Checks {
				r.Summary[c.Status]++
				n += c.Inconclusive
				if c.ConfigurationOnly {
					configOnly++
				}
			}
			r.Targets[i].Inconclusive = &n
			total += n
		}
		r.Inconclusive = &total
	}
	if format == "json" {
		return writeJSON(w, r)
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
		if command == "plan" && t.Status == "ok" && t.pending() == 0 {
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
	if n := r.targetErrors(); n > 0 {
		targetErrors = fmt.Sprintf(" (%d target error(s))", n)
	}
	if command == "verify" {
		// errors: checks in status error and targets in error.
		fmt.Fprintf(w, "\nSummary: %d passed, %d failed, %d warnings, %d skipped, %d errors%s; %d inconclusive observations, %d configuration-only checks\n",
			r.Summary["pass"], r.Summary["fail"], r.Summary["warn"], r.Summary["skip"], r.Summary["error"]+r.Summary["target_error"], targetErrors, *r.Inconclusive, configOnly)
	}
	if command == "plan" {
		// A target in error has unknown pending changes: never just "0".
		if n := r.targetErrors(); n > 0 {
			fmt.Fprintf(w, "\nPlan: %d change(s) pending, %d target error(s): their changes are unknown\n", r.pendingChanges(), n)
		} else {
			fmt.Fprintf(w, "\nPlan: %d change(s) pending\n", r.pendingChanges())
		}
	}
	return nil
}

func checkReports(in []sdk.Check) []checkReport {
	out := make([]checkReport, 0, len(in))
	for _, c := range in {
		refs := c.References
		if refs == nil {
			refs = []string{}
		}
		out = append(out, checkReport{ID: c.ID, Status: c.Status.String(), Severity: c.Severity.String(), Title: c.Title,
			Subject: c.Subject, Evidence: c.Evidence, Remediation: c.Remediation, References: refs,
			Inconclusive: c.Inconclusive, ConfigurationOnly: c.ConfigurationOnly})
	}
	return out
}

func changeReports(in []sdk.Change) []changeReport {
	out := make([]changeReport, 0, len(in))
	for _, c := range in {
		cr := changeReport{Resource: c.Resource, Action: string(c.Action), Sensitive: c.Sensitive,
			RequiresRestart: c.RequiresRestart, Description: c.Description}
		if !c.Sensitive {
			cr.Before, cr.After = c.Before, c.After
		}
		out = append(out, cr)
	}
	return out
}

func artifactReports(in []sdk.Artifact) []artifactReport {
	out := make([]artifactReport, 0, len(in))
	for _, a := range in {
		ar := artifactReport{Path: a.Path, Mode: fmt.Sprintf("%04o", a.Mode), Size: len(a.Content),
			Sensitive: sensitive(a), Description: a.Description, Binary: !isText(a.Content)}
		if !ar.Sensitive && !ar.Binary {
			ar.Content = string(a.Content)
		}
		out = append(out, ar)
	}
	return out
}

// sensitive: what the plugin marked so, and whatever holds a private key
// although the plugin forgot to mark it (keys are never printed).
func sensitive(a sdk.Artifact) bool {
	return a.Sensitive || privateKeyPEM.Match(a.Content)
}

var privateKeyPEM = regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----`)

// isText: valid UTF-8 without control characters other than tab, newline
// and carriage return — what is safe to print to a terminal. PKCS#12 and
// JKS stores are not, nor is text carrying terminal escape sequences.
func isText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

// writeArtifacts writes artifacts under dir. Paths must stay inside dir;
// sensitive files are 0600 whatever the plugin asked for.
func writeArtifacts(dir string, arts []sdk.Artifact) error {
	for _, a := range arts {
		clean := path.Clean("/" + a.Path)
		if clean == "/" || strings.Contains(a.Path, "\\") {
			return fmt.Errorf("artifact path %q is not a relative file path", a.Path)
		}
		dst := filepath.Join(dir, filepath.FromSlash(clean[1:]))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(a.Mode & 0o777)
		if mode == 0 {
			mode = 0o644
		}
		if sensitive(a) {
			mode = 0o600
		}
		if err := applykit.WriteFile(dst, a.Content, mode, nil); err != nil {
			return err
		}
	}
	return nil
}
