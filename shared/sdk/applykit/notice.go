package applykit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
)

// PlanStaleCode is the one diagnostic code of every plugin for an apply
// whose plan token no longer matches the live target.
const PlanStaleCode = "apply.plan_stale"

// PlanToken fingerprints what a plan saw (the live state read, the pending
// changes, a killed run's notice): SHA-256 over the parts, each length-
// prefixed so that no two lists of parts give the same token.
func PlanToken(parts ...string) []byte {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return h.Sum(nil)
}

// PlanCurrent is the stale-plan check of apply: true when no plan token
// was given (apply without a saved plan) or it equals current; otherwise
// it adds PlanStaleCode to d — what names the target ("the bucket", "the
// server") — and returns false: the caller changes nothing.
func PlanCurrent(d *sdk.Diagnostics, token, current []byte, what string) bool {
	if len(token) == 0 || bytes.Equal(token, current) {
		return true
	}
	d.AddTargetError(PlanStaleCode, what+" changed since the plan was made; nothing was changed", errors.New("run harden plan again"))
	return false
}

// Notices is how plan and verify report a target's journal, the same in
// every plugin: a killed run (<Plugin>.apply.interrupted, a warning, and
// for plan a pending change so it never says "nothing to apply"), an apply
// running now (<Plugin>.apply.locked), a journal that cannot be read or
// trusted (<Plugin>.apply.journal, an error), or one this user may not
// read (a warning: a read-only auditor).
type Notices struct {
	// Plugin prefixes the codes.
	Plugin        string
	Journal, Lock string
	// Allow, when set, is the set of files the journal may name
	// (OpenAllowed): a journal naming others is untrusted.
	Allow func(path string) bool
	// Held: the caller holds the lock itself (apply), so a journal is a
	// killed run's, never a running one.
	Held bool
	// Label prefixes every summary (a broker of a cluster); "" none.
	Label string
	// PlanNext ends the plan's warning: what apply will do about a killed
	// run ("harden apply will complete it"). PlanDetail is its detail.
	PlanNext, PlanDetail string
	// Change is the plan's pending change for a killed run: Resource
	// defaults to "journal:<Journal>", Action to update; its Description
	// is appended to the notice.
	Change sdk.Change
	// VerifyDetail is the detail of verify's diagnostic for a killed run.
	VerifyDetail string
	// VerifyErrors makes a killed or running apply an error in verify
	// (not a warning): what verify observes is not a confirmed state.
	VerifyErrors bool
}

// noticeState reads the journal: "" when there is none.
func (n Notices) noticeState() (notice string, running bool, err error) {
	var j *Journal
	if n.Allow != nil {
		j, err = OpenAllowed(n.Journal, n.Allow)
	} else {
		j, err = Open(n.Journal)
	}
	if err != nil || j == nil {
		return "", false, err
	}
	if !n.Held {
		if _, err := os.Stat(n.Lock); err == nil {
			unlock, lerr := Lock(n.Lock)
			if errors.Is(lerr, ErrLocked) {
				return fmt.Sprintf("an apply is running (pid %d, since %s, at %s)", j.State.PID, j.State.Started.UTC().Format(time.RFC3339), j.State.Phase), true, nil
			}
			if lerr == nil {
				unlock()
			}
		}
	}
	return Describe(j.State), false, nil
}

func (n Notices) code(what string) string { return n.Plugin + ".apply." + what }

func (n Notices) unreadable(d *sdk.Diagnostics, err error) bool {
	if errors.Is(err, fs.ErrPermission) {
		d.AddWarning(n.Label+"cannot read the apply journal (permission denied): an interrupted apply by another user would not be seen here", err.Error())
		return true
	}
	d.AddTargetError(n.code("journal"), n.Label+"the apply journal cannot be read or trusted; inspect it and its backups, then remove it", err)
	return false
}

// Plan adds what plan says about the journal to r. It returns the notice
// (for the plan token: "" when there is no journal) and false when the
// journal cannot be trusted (an error is on r: the plan must stop).
func (n Notices) Plan(r *sdk.PlanResponse) (notice string, ok bool) {
	notice, running, err := n.noticeState()
	switch {
	case err != nil:
		return "", n.unreadable(&r.Diagnostics, err)
	case running:
		r.Diagnostics.Add(sdk.Diagnostic{Severity: sdk.Warning, Source: sdk.SourceTarget, Code: n.code("locked"), Summary: n.Label + notice})
	case notice != "":
		summary := n.Label + notice
		if n.PlanNext != "" {
			summary += "; " + n.PlanNext
		}
		r.Diagnostics.Add(sdk.Diagnostic{Severity: sdk.Warning, Source: sdk.SourceTarget, Code: n.code("interrupted"), Summary: summary, Detail: n.PlanDetail})
		ch := n.Change
		if ch.Resource == "" {
			ch.Resource = "journal:" + n.Journal
		}
		if ch.Action == "" {
			ch.Action = sdk.Update
		}
		desc := n.Label + notice
		if ch.Description != "" {
			desc += ": " + ch.Description
		}
		ch.Description = desc
		r.Changes = append([]sdk.Change{ch}, r.Changes...)
	}
	return notice, true
}

// Verify adds what verify says about the journal to d.
func (n Notices) Verify(d *sdk.Diagnostics) {
	notice, running, err := n.noticeState()
	sev := sdk.Warning
	if n.VerifyErrors {
		sev = sdk.Error
	}
	switch {
	case err != nil:
		n.unreadable(d, err)
	case running:
		d.Add(sdk.Diagnostic{Severity: sev, Source: sdk.SourceTarget, Code: n.code("locked"), Summary: n.Label + notice, Detail: "the configuration verified may be about to change"})
	case notice != "":
		detail := n.VerifyDetail
		if detail == "" {
			detail = "run harden apply to complete it"
		}
		d.Add(sdk.Diagnostic{Severity: sev, Source: sdk.SourceTarget, Code: n.code("interrupted"), Summary: n.Label + notice, Detail: detail})
	}
}

// AcquireAt is apply's opening for a plugin whose journal and lock paths
// come from paths (usually TargetPaths): it takes the lock and reads a
// killed run's journal (Acquire). A failure is reported on d —
// <plugin>.apply.journal when there is no place for the journal or it
// cannot be read, <plugin>.apply.locked when another apply holds the lock
// (what names the target) — and ok is false: nothing was changed.
//
//	sess, ok := applykit.AcquireAt("redis", "redis "+addr, t.journalPaths, &r.Diagnostics)
func AcquireAt(plugin, what string, paths func() (journal, lock string, err error), d *sdk.Diagnostics) (*Session, bool) {
	jp, lp, err := paths()
	if err != nil {
		d.AddTargetError(plugin+".apply.journal", "no place for the apply journal; nothing was changed", err)
		return nil, false
	}
	s, err := Acquire(jp, lp)
	if err != nil {
		Locked(plugin, what, err, d)
		return nil, false
	}
	return s, true
}

// Locked reports an apply refused because another holds the lock
// (<plugin>.apply.locked) or a lock or journal that failed otherwise
// (<plugin>.apply.journal); what names the target.
func Locked(plugin, what string, err error, d *sdk.Diagnostics) {
	if errors.Is(err, ErrLocked) {
		d.AddTargetError(plugin+".apply.locked", "another harden apply is running on "+what+"; nothing was changed", err)
		return
	}
	d.AddTargetError(plugin+".apply.journal", "cannot take the apply lock or read the journal of "+what+"; nothing was changed", err)
}
