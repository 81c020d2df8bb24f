package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// Crash consistency (issue 12 items 1 and 6). Each broker's apply has an
// intent journal beside its server.properties, written and fsynced before
// the first change, every file's backup recorded before the file changes
// (applykit). Stores are written first (new names, or atomic
// replacements), server.properties last in one atomic rename, then the
// restart, then verify; the journal goes only when the run succeeded or
// was rolled back. A journal found under a free lock is a run that died:
// plan and verify say so, and apply rolls it back (files from the
// backups, dynamic overrides undone) before it plans and applies again.

// Journal phases, in order (also the fault hook's names).
const (
	phasePrepared      = "prepared"
	phaseStoresWritten = "stores-written"
	phaseConfigWritten = "config-written"
	phaseRestarting    = "restarting"
	phaseRestarted     = "restarted"
	phaseDynamicSet    = "dynamic-set" // a KIP-226 rotation told the broker
	phaseServed        = "served"      // a KIP-226 rotation's new certificate is served
	phaseVerifying     = "verifying"
)

// The journal and the lock of a broker live in harden's private state
// directory (applykit.StateDir: /var/lib/harden/journal for root), keyed by the
// broker's config file — not beside it: the broker's OS user can write the
// config directory, and a journal planted there would make harden, as
// root, restore or remove files of its choosing (and set the dynamic
// overrides it names with harden's admin identity).
func brokerJournal(b brokerTarget) (journal, lock string) {
	id, err := filepath.Abs(b.ConfigFile)
	if err != nil {
		id = b.ConfigFile
	}
	j, l, err := applykit.TargetPaths("", "kafka", filepath.Clean(id))
	if err != nil {
		return "", "" // no HOME: Lock and Begin fail with a clear error
	}
	return j, l
}

func journalPath(b brokerTarget) string { j, _ := brokerJournal(b); return j }
func lockPath(b brokerTarget) string    { _, l := brokerJournal(b); return l }

// allowedFiles are the only files a journal of b may name: its
// server.properties and the files of its store directory. A journal naming
// anything else is refused, never restored or removed.
func allowedFiles(b brokerTarget, s spec) func(string) bool {
	config := filepath.Clean(b.ConfigFile)
	store := filepath.Clean(s.storeDir(b.ConfigFile))
	return func(path string) bool { return path == config || filepath.Dir(path) == store }
}

// setPhase records a step boundary in the journal, then offers the fault
// hook (HARDEN_CRASH_AT=kafka:<phase>) its chance.
func setPhase(j *applykit.Journal, phase string) error {
	if err := j.SetPhase(phase); err != nil {
		return err
	}
	applykit.Crash("kafka", phase)
	return nil
}

// lockBrokers takes every broker's apply lock, in the target's order.
func lockBrokers(all []brokerTarget) (func(), error) {
	var unlocks []func()
	release := func() {
		for i := len(unlocks) - 1; i >= 0; i-- {
			unlocks[i]()
		}
	}
	for _, b := range all {
		u, err := applykit.Lock(lockPath(b))
		if err != nil {
			release()
			return nil, fmt.Errorf("%s: %w", b.label(), err)
		}
		unlocks = append(unlocks, u)
	}
	return release, nil
}

// describeJournal says what an interrupted run left, for the operator.
func describeJournal(j *applykit.Journal) string {
	return fmt.Sprintf("%s with %d file(s) backed up (%s)", applykit.Describe(j.State), len(j.State.Files), j.Path())
}

// noteJournal is what plan and verify report about b's journal
// (applykit.Notices): an interrupted apply (a pending change for plan), a
// running one, or a journal harden cannot trust (ok false). probeLock:
// tell a running apply from a dead one (plan and verify; apply holds the
// locks itself).
func noteJournal(b brokerTarget, s spec, probeLock bool, d *sdk.Diagnostics) (*sdk.Change, bool) {
	n := applykit.Notices{Plugin: "kafka", Journal: journalPath(b), Lock: lockPath(b), Allow: allowedFiles(b, s), Held: !probeLock,
		Label: b.label() + ": ", PlanNext: "harden apply rolls it back, then applies again",
		Change: sdk.Change{Before: "interrupted", After: "rolled back, then applied", RequiresRestart: true,
			Description: "harden apply rolls it back, then applies again"}}
	var r sdk.PlanResponse
	_, ok := n.Plan(&r)
	*d = append(*d, r.Diagnostics...)
	if len(r.Changes) == 0 {
		return nil, ok
	}
	return &r.Changes[0], ok
}

// Journal data keys of a rotation's dynamic overrides: what it set, and
// what they were ("-" absent).
const dynSet, dynPrev = "dynamic.set.", "dynamic.previous."

// recoverInterrupted rolls back what killed runs left on every broker
// (the caller holds the locks): the dynamic overrides a rotation set, then
// the files from their backups; temp files swept. It says what it did; an
// error leaves the journal in place.
func recoverInterrupted(ctx context.Context, c connection, s spec, all []brokerTarget, q sdk.RequestContext, force bool, d *sdk.Diagnostics) error {
	for _, b := range all {
		j, err := applykit.OpenAllowed(journalPath(b), allowedFiles(b, s))
		if err != nil {
			return fmt.Errorf("%s: cannot trust the apply journal (inspect it, then remove it): %w", b.label(), err)
		}
		if j == nil {
			continue
		}
		what := describeJournal(j)
		del, prev := map[string]string{}, map[string]string{}
		for k := range j.State.Data {
			if key, ok := strings.CutPrefix(k, dynSet); ok {
				if p, ok := j.State.Data[dynPrev+key]; ok && p != "-" {
					prev[key] = p
				} else {
					del[key] = ""
				}
			}
		}
		if len(del)+len(prev) > 0 {
			if err := alterDynamic(c, q, all, j.State.Data["broker"], del, prev); err != nil {
				return fmt.Errorf("%s: %s; undoing its dynamic store overrides failed: %w", b.label(), what, err)
			}
		}
		// A file changed since the kill (neither its old content nor what
		// that run wrote) stops the restore before anything is touched;
		// harden apply --force puts the backups back anyway.
		if errs := j.RestoreWith(applykit.RestoreOptions{Force: force}); len(errs) > 0 {
			if slices.ContainsFunc(errs, func(e error) bool { return errors.Is(e, applykit.ErrChanged) }) {
				return fmt.Errorf("%s: %s; restored nothing, every file is as it is now (journal kept): %w", b.label(), what, errors.Join(errs...))
			}
			return fmt.Errorf("%s: %s; restoring its files FAILED (journal kept): %w", b.label(), what, errors.Join(errs...))
		}
		// A run killed during or after the restart may have left the broker
		// down (a failed start): bring it back on the restored files.
		how := "its files are restored from the journal's backups"
		if slices.Contains([]string{phaseRestarting, phaseRestarted, phaseVerifying}, j.State.Phase) && len(b.RestartCommand) > 0 && !brokerAnswersAny(ctx, b, q) {
			_, props, ok := readBrokerProperties(b.ConfigFile, d)
			if !ok {
				return fmt.Errorf("%s: %s; its files are restored, but server.properties cannot be read (journal kept)", b.label(), what)
			}
			if err := restart(ctx, c, q, b.RestartCommand, listenerAddrs(props)); err != nil {
				return fmt.Errorf("%s: %s; its files are restored, but the broker, which did not answer, did not come back on them (journal kept): %w", b.label(), what, err)
			}
			how += ", and the broker, which did not answer, is restarted with them"
		}
		if err := j.Done(); err != nil {
			return err
		}
		d.AddWarning(b.label()+": an interrupted apply was rolled back",
			what+": "+how+"; this apply starts over from the broker as it is")
	}
	return nil
}

// brokerAnswersAny: one of b's broker listeners, as its server.properties
// declares them now or as the spec wants them, answers (TLS or cleartext).
func brokerAnswersAny(ctx context.Context, b brokerTarget, q sdk.RequestContext) bool {
	var addrs []string
	if text, err := os.ReadFile(b.ConfigFile); err == nil {
		if ps, err := parseProperties(string(text)); err == nil {
			addrs = listenerAddrs(propertyMap(ps))
		}
	}
	for _, l := range brokerListeners(b.Listeners) {
		addrs = append(addrs, l.Address)
	}
	for _, a := range addrs {
		if brokerAnswers(ctx, a, clientTLS(q)) || brokerAnswers(ctx, a, nil) {
			return true
		}
	}
	return false
}

// pendingJournals: the interrupted applies of all, as plan reports them
// (used when the broker cannot be planned).
func pendingJournals(all []brokerTarget, s spec) []sdk.Change {
	var out []sdk.Change
	var scratch sdk.Diagnostics
	for _, b := range all {
		if ch, _ := noteJournal(b, s, false, &scratch); ch != nil {
			out = append(out, *ch)
		}
	}
	return out
}

// sweepTemps removes temp files a killed run left beside the files apply
// writes (applykit.SweepTemps: applykit's, and the ".harden-tmp" of
// earlier versions), as the user who controls the directory.
func sweepTemps(all []brokerTarget, s spec) {
	for _, b := range all {
		for _, dir := range []string{filepath.Dir(b.ConfigFile), s.storeDir(b.ConfigFile)} {
			_, _ = applykit.SweepTemps(dir)
		}
	}
}

// undoContext: a rollback after Ctrl-C must not run on the cancelled
// request context, and must still end (undoTimeout).
func undoContext(ctx context.Context, c connection) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), undoTimeout(c))
}

func undoTimeout(c connection) time.Duration { return 2*c.restartTimeout() + time.Minute }
