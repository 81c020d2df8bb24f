package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/harden-dev/harden/testenv"
)

// TestApplyInterruptedEndToEnd interrupts the real harden binary while it
// applies the real PostgreSQL plugin to a real, unhardened PostgreSQL: with
// Ctrl-C (SIGINT) and with SIGKILL of the host (the plugin dies with it),
// right when apply's journal appears and a moment later. Every round ends
// old or new, never half: after Ctrl-C harden exits 130 with nothing left
// to recover; after SIGKILL plan reports the interrupted apply (exit 2 with
// --detailed-exitcode, never "nothing to apply"); then apply ends at the
// policy, verify passes, a second apply has nothing to do, and no temporary
// file is left in the data directory.
func TestApplyInterruptedEndToEnd(t *testing.T) {
	dir := t.TempDir()
	pluginDir := filepath.Join(dir, "plugins")
	cmd := exec.Command("go", "build", "-o", filepath.Join(pluginDir, "harden-plugin-postgres"), "./plugins/postgres")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build postgres plugin: %v\n%s", err, out)
	}
	lock := filepath.Join(dir, "plugins.lock")
	plugin := filepath.Join(pluginDir, "harden-plugin-postgres")
	// The plugin keeps its journal in harden's state directory
	// (applykit.StateDir): this test's own, passed on by the host.
	state0 := filepath.Join(dir, "state")
	journals := filepath.Join(state0, "journal")
	harden := func(args ...string) *exec.Cmd {
		c := exec.Command(hardenBin, append(args, "--plugin-dir", pluginDir, "--lock-file", lock)...)
		c.Env = append(os.Environ(), "HARDEN_STATE_DIR="+state0)
		return c
	}
	run := func(args ...string) result {
		t.Helper()
		var out, errb bytes.Buffer
		c := harden(args...)
		c.Stdout, c.Stderr = &out, &errb
		err := c.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return result{code, out.String(), errb.String()}
	}
	if r := run("plugins", "lock"); r.code != 0 {
		t.Fatalf("plugins lock: %d %s", r.code, r.stderr)
	}
	// The postgres plugin's steps, in order, as its journal records them.
	phases := []string{"begun", "cert-file", "files-written", "setting", "settings", "ident", "hba", "reloading", "confirmed"}
	journalFile := func() string {
		m, _ := filepath.Glob(filepath.Join(journals, "postgres-*.journal"))
		if len(m) == 1 {
			return m[0]
		}
		return ""
	}
	reached := func(phase string) bool {
		raw, err := os.ReadFile(journalFile())
		if err != nil {
			return false
		}
		var j struct{ Phase string }
		if json.Unmarshal(raw, &j) != nil {
			return false
		}
		return slices.Index(phases, j.Phase) >= slices.Index(phases, phase)
	}
	type round struct {
		sig   syscall.Signal
		phase string // the signal goes when the journal shows this step (or a later one)
	}
	for _, rd := range []round{{syscall.SIGINT, "files-written"}, {syscall.SIGINT, "hba"}, {syscall.SIGKILL, "setting"}, {syscall.SIGKILL, "reloading"}} {
		t.Run(fmt.Sprintf("%s@%s", rd.sig, rd.phase), func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state")
			env, err := testenv.Up(context.Background(), testenv.Options{Services: []string{"postgres"}, StateDir: state})
			if err != nil {
				if os.Getenv("CI") == "true" {
					t.Fatalf("testenv (CI=true): %v", err)
				}
				t.Skipf("testenv: %v", err)
			}
			t.Cleanup(func() { _ = env.Down() })
			policy := filepath.Join(state, "policy.yaml")
			var ef struct {
				Services struct {
					Postgres struct {
						DataDir string `json:"data_dir"`
					} `json:"postgres"`
				} `json:"services"`
			}
			raw, err := os.ReadFile(filepath.Join(state, "env.json"))
			if err == nil {
				err = json.Unmarshal(raw, &ef)
			}
			if err != nil || ef.Services.Postgres.DataDir == "" {
				t.Fatalf("env.json: %v", err)
			}
			dataDir := ef.Services.Postgres.DataDir

			var out bytes.Buffer
			c := harden("apply", "-f", policy, "--yes")
			c.Stdout, c.Stderr = &out, &out
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(60 * time.Second)
			for {
				if reached(rd.phase) {
					break
				}
				if time.Now().After(deadline) {
					c.Process.Kill()
					c.Wait()
					t.Fatalf("apply never wrote its journal:\n%s", out.String())
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := c.Process.Signal(rd.sig); err != nil {
				t.Fatalf("signal: %v (apply ended before it)", err)
			}
			err = c.Wait()
			waitNoPlugin(t, plugin, 10*time.Second)
			left := journalFile() != ""
			if rd.sig == syscall.SIGKILL && !left {
				t.Fatalf("no journal after apply was killed at %s", rd.phase)
			}
			if rd.sig == syscall.SIGINT {
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 130 {
					t.Fatalf("Ctrl-C during apply: %v, want exit 130\n%s", err, out.String())
				}
				if !strings.Contains(out.String(), "interrupted: waiting for") {
					t.Errorf("Ctrl-C did not say what harden waits for:\n%s", out.String())
				}
				if left {
					t.Fatalf("Ctrl-C left a journal to recover: the step was neither finished nor rolled back\n%s", out.String())
				}
				r := run("plan", "-f", policy, "--detailed-exitcode")
				if (r.code != 0 && r.code != 2) || strings.Contains(r.stdout+r.stderr, "interrupted") {
					t.Fatalf("plan after Ctrl-C: %d\n%s\n%s", r.code, r.stdout, r.stderr)
				}
			} else if left {
				r := run("plan", "-f", policy, "--detailed-exitcode")
				if r.code != 2 || !strings.Contains(r.stdout+r.stderr, "interrupted") {
					t.Fatalf("plan after a killed apply: %d, want 2 and the interrupted apply named\n%s\n%s", r.code, r.stdout, r.stderr)
				}
				v := run("verify", "-f", policy)
				if v.code == 0 || !strings.Contains(v.stdout+v.stderr, "interrupted") {
					t.Errorf("verify after a killed apply: %d, want an error naming the interrupted apply\n%s\n%s", v.code, v.stdout, v.stderr)
				}
			}
			r := run("apply", "-f", policy, "--yes")
			if r.code != 0 {
				t.Fatalf("apply after the interruption: %d\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			if left && !strings.Contains(r.stdout+r.stderr, "interrupted") {
				t.Errorf("the recovering apply does not say it recovered an interrupted run:\n%s\n%s", r.stdout, r.stderr)
			}
			if v := run("verify", "-f", policy); v.code != 0 {
				t.Errorf("verify after recovery: %d\n%s\n%s", v.code, v.stdout, v.stderr)
			}
			if r := run("apply", "-f", policy, "--yes"); r.code != 0 || !strings.Contains(r.stdout, "Nothing to apply") {
				t.Errorf("second apply: %d\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			if j := journalFile(); j != "" {
				t.Errorf("a journal is left after the recovering apply: %s", j)
			}
			filepath.WalkDir(dataDir, func(p string, d os.DirEntry, err error) error {
				if err == nil && strings.HasPrefix(d.Name(), ".harden-") {
					t.Errorf("temporary file left: %s", p)
				}
				return nil
			})
		})
	}
}
