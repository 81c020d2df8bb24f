package main

import (
	"context"
	"errors"
	"io/fs"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// stepHook lets unit tests act at a step boundary (e.g. cancel the context
// as the host's Stop does on Ctrl-C).
var stepHook func(step string)

// journalPaths: one journal and lock per Vault address and PKI mounts, in
// harden's state directory (two policies naming one Vault share the lock).
func (st *settings) journalPaths() (journal, lock string, err error) {
	return applykit.TargetPaths("", "vaultpki", st.conn.Address, st.rootMount, st.intMount, st.transitMount)
}

// atStep marks a boundary between two of apply's steps: the journal's phase,
// the fault hook (HARDEN_CRASH_AT=vaultpki:<phase>), cancellation.
func atStep(ctx context.Context, s *applykit.Session, phase string) error {
	if err := s.Journal.SetPhase(phase); err != nil {
		return err
	}
	if stepHook != nil {
		stepHook(phase)
	}
	return s.Step(ctx, phase)
}

// journalNotice is what plan and verify say about a killed run: each of
// Vault's writes is atomic, so what remains shows in the plan, but the run
// never finished and apply must complete it.
func (st *settings) journalNotice() (notice string, running bool, err error) {
	jp, lp, err := st.journalPaths()
	if err != nil {
		return "", false, err
	}
	return applykit.Notice(jp, lp)
}

func planJournal(st *settings, r *sdk.PlanResponse) {
	notice, running, err := st.journalNotice()
	switch {
	case errors.Is(err, fs.ErrPermission):
		r.Diagnostics.AddWarning("cannot read the apply journal (permission denied): an interrupted apply by another user would not be seen here", err.Error())
	case err != nil:
		r.Diagnostics.AddTargetError("vaultpki.apply.journal", "the apply journal cannot be read; inspect or remove it", err)
	case running:
		r.Diagnostics.Add(sdk.Diagnostic{Severity: sdk.Warning, Source: sdk.SourceTarget, Code: "vaultpki.apply.locked", Summary: notice})
	case notice != "":
		r.Diagnostics.Add(sdk.Diagnostic{Severity: sdk.Warning, Source: sdk.SourceTarget, Code: "vaultpki.apply.interrupted",
			Summary: notice + "; harden apply will complete it", Detail: "the steps that run did not reach are listed below"})
		r.Changes = append([]sdk.Change{{Resource: "vault interrupted apply", Action: sdk.Update,
			Description: notice + ": complete its remaining steps"}}, r.Changes...)
	}
}

func verifyJournal(st *settings, d *sdk.Diagnostics) {
	notice, running, err := st.journalNotice()
	switch {
	case errors.Is(err, fs.ErrPermission):
		d.AddWarning("cannot read the apply journal (permission denied): an interrupted apply by another user would not be seen here", err.Error())
	case err != nil:
		d.AddTargetError("vaultpki.apply.journal", "the apply journal cannot be read; inspect or remove it", err)
	case running:
		d.Add(sdk.Diagnostic{Severity: sdk.Warning, Source: sdk.SourceTarget, Code: "vaultpki.apply.locked", Summary: notice, Detail: "the configuration verified may be about to change"})
	case notice != "":
		d.Add(sdk.Diagnostic{Severity: sdk.Warning, Source: sdk.SourceTarget, Code: "vaultpki.apply.interrupted", Summary: notice, Detail: "run harden apply to complete it"})
	}
}
