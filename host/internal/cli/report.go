package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/harden-dev/harden/host/internal/report"
	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// FormatVersion of the JSON reports; bumped only on incompatible changes.
const FormatVersion = report.FormatVersion

// newReport starts the Run of a session's targets.
func newReport(s *session) *report.Run { return report.New(s.pol, s.targets) }

// printRun finishes rep for command and writes it as text or JSON
// (render, plan and apply; verify, scan and inventory use emit).
func printRun(w io.Writer, rep *report.Run, format, command string) error {
	rep.Finish(command)
	return report.Render(w, format, rep)
}

// exit returns the error for target failures: config problems exit 1,
// everything else (plugin, target, checks in status error) exits 3.
func runExit(r *report.Run) error {
	code := ExitOK
	var msgs []string
	for _, t := range r.Targets {
		if t.Status == "error" {
			msgs = append(msgs, fmt.Sprintf("target %s (%s): %s", t.Name, t.Plugin, t.Error))
			if t.ConfigError && code != ExitTarget {
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
		if report.Sensitive(a) {
			mode = 0o600
		}
		if err := applykit.WriteFile(dst, a.Content, mode, nil); err != nil {
			return err
		}
	}
	return nil
}
