package main

import (
	"context"

	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
)

// inventoryListener names the front in the inventory.
const inventoryListener = "front"

// Inventory reports the front — the listener clients connect to — in
// fresh handshakes through the HTTP dialect verify uses, for the name its
// certificate must have, with harden's client certificate when the front
// asks (mTLS scope); the host judges the chains. The canary front serves
// the same certificate but is harden's own loopback route, not the
// target's: it is not listed. The backend's certificate is the backend's
// (its own target), not one harden deploys here.
//
// ReloadsOn is empty: the front takes new certificate material live from
// harden's point of view — apply writes the files and reloads the proxy
// itself (nginx: SIGHUP, new workers; HAProxy: reload on the master CLI),
// no restart left to the operator — so `harden rotate`'s gate requires
// the new serial right after apply, as it does for PostgreSQL's SIGHUP.
// (A non-empty ReloadsOn would make the gate accept the old serial as
// "pending" and then fail for want of a listener that took it live.)
// Nothing is stored beyond the files harden writes. Read-only: each
// connection ends after the HTTP exchange of the dialect.
func (proxyTLS) Inventory(ctx context.Context, q sdk.InventoryRequest, r *sdk.InventoryResponse) {
	t, ok := load(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	// A killed or running apply: what is served may be mid-change.
	t.notices().Verify(&r.Diagnostics)
	pt, _, err := probe.ForRequest(q.RequestContext, probe.HTTP)
	if err != nil {
		// The listener is known but not probed: listed with the reason, so
		// that it cannot go missing from the inventory or the gate.
		r.Listeners = append(r.Listeners, sdk.ServedListener{Name: inventoryListener, Address: t.conn.Front, Error: "not probed: the policy's certificates: " + err.Error()})
		return
	}
	pt.Address, pt.ServerName = t.conn.Front, t.frontName()
	r.Listeners = append(r.Listeners, probe.Served(ctx, pt, inventoryListener, q.Handshakes, probe.Options{}))
}
