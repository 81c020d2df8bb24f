package main

import (
	"context"

	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
)

// Inventory reports the service's TLS listener in fresh handshakes through
// its protocol's dialect, with harden's client identity when the server
// asks (the host judges the chains). ReloadsOn is ReloadsNever: harden
// does not deploy this certificate, so rotate leaves it alone and the
// inventory still shows when it expires. Nothing is stored.
func (service) Inventory(ctx context.Context, q sdk.InventoryRequest, r *sdk.InventoryResponse) {
	t, ok := load(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	var d sdk.Diagnostics
	pt, _, ok := t.probeTarget(q.RequestContext, &d)
	if !ok {
		r.Listeners = append(r.Listeners, sdk.ServedListener{Name: t.listenerName(), Address: t.conn.Address, ReloadsOn: sdk.ReloadsNever, Error: d.Err().Error()})
		return
	}
	l := probe.Served(ctx, pt, t.listenerName(), q.Handshakes, probe.Options{})
	l.ReloadsOn = sdk.ReloadsNever
	r.Listeners = append(r.Listeners, l)
}
