package main

import (
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

// notices is what plan and verify say about a killed run: each of Vault's
// writes is atomic, so what remains shows in the plan, but the run never
// finished and apply must complete it.
func (st *settings) notices() (applykit.Notices, error) {
	jp, lp, err := st.journalPaths()
	return applykit.Notices{Plugin: "vaultpki", Journal: jp, Lock: lp,
		PlanNext: "harden apply will complete it", PlanDetail: "the steps that run did not reach are listed below",
		Change:       sdk.Change{Resource: "vault interrupted apply", Description: "complete its remaining steps"},
		VerifyDetail: "run harden apply to complete it"}, err
}

// planJournal adds the journal's notice to r and returns it (for the plan
// token).
func planJournal(st *settings, r *sdk.PlanResponse) string {
	n, err := st.notices()
	if err != nil {
		r.Diagnostics.AddTargetError("vaultpki.apply.journal", "no place for the apply journal", err)
		return ""
	}
	notice, _ := n.Plan(r)
	return notice
}

func verifyJournal(st *settings, d *sdk.Diagnostics) {
	n, err := st.notices()
	if err != nil {
		d.AddTargetError("vaultpki.apply.journal", "no place for the apply journal", err)
		return
	}
	n.Verify(d)
}
