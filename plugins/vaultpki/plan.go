package main

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/harden-dev/harden/shared/sdk"
	vault "github.com/hashicorp/vault/api"
)

// token fingerprints the planned changes.
func token(steps []step, journal string) []byte {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", journal)
	for _, s := range steps {
		fmt.Fprintf(h, "%s|%s|%s|%s\n", s.change.Resource, s.change.Action, s.change.Before, s.change.After)
	}
	return h.Sum(nil)
}

// planSteps logs in and reads Vault's state into the steps apply would
// take; failures go on d.
func planSteps(ctx context.Context, q sdk.RequestContext, d *sdk.Diagnostics) (*settings, *vault.Client, []step, bool) {
	st, cl, ok := connect(ctx, q, d)
	if !ok {
		return nil, nil, nil, false
	}
	steps, err := desired(ctx, cl, st, d)
	if err != nil {
		readError(d, err)
		return nil, nil, nil, false
	}
	return st, cl, steps, true
}

// Plan lists the steps apply would take (and a killed run to complete).
func (vaultPKI) Plan(ctx context.Context, q sdk.PlanRequest, r *sdk.PlanResponse) {
	st, _, steps, ok := planSteps(ctx, q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	for _, s := range steps {
		r.Changes = append(r.Changes, s.change)
	}
	planJournal(st, r)
	notice, _, _ := st.journalNotice()
	r.PlanToken = token(steps, notice)
}
