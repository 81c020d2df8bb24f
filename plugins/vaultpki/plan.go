package main

import (
	"context"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
	vault "github.com/hashicorp/vault/api"
)

// token fingerprints the planned changes (and a killed run's notice).
func token(steps []step, journal string) []byte {
	parts := []string{journal}
	for _, s := range steps {
		parts = append(parts, s.change.Resource, string(s.change.Action), s.change.Before, s.change.After)
	}
	return applykit.PlanToken(parts...)
}

// planSteps logs in with the decoded settings and reads Vault's state into
// the steps apply would take; failures go on d.
func planSteps(ctx context.Context, q sdk.RequestContext, st *settings, d *sdk.Diagnostics) (*vault.Client, []step, bool) {
	cl, err := client(ctx, q, st.conn)
	if err != nil {
		d.AddTargetError("vaultpki.login", "cannot log in to Vault", err)
		return nil, nil, false
	}
	steps, err := desired(ctx, cl, st, d)
	if err != nil {
		readError(d, err)
		return nil, nil, false
	}
	// Vault's own listener last: its restart comes after the API changes.
	ls, ok := listenerSteps(ctx, q, st, cl, d)
	if !ok {
		return nil, nil, false
	}
	return cl, append(steps, ls...), true
}

// Plan lists the steps apply would take (and a killed run to complete).
func (vaultPKI) Plan(ctx context.Context, q sdk.PlanRequest, r *sdk.PlanResponse) {
	st, ok := load(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	_, steps, ok := planSteps(ctx, q.RequestContext, st, &r.Diagnostics)
	if !ok {
		return
	}
	for _, s := range steps {
		r.Changes = append(r.Changes, s.change)
	}
	r.PlanToken = token(steps, planJournal(st, r))
}
