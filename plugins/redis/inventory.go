package main

import (
	"context"

	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
)

// listenerTLSPort names redis's one TLS listener in the inventory.
const listenerTLSPort = "tls-port"

// Inventory reports the TLS port verify scans, in fresh handshakes through
// the redis dialect with harden's client identity (the host judges the
// chains). ReloadsOn is "": CONFIG SET tls-cert-file makes redis load the
// files again for new connections, no restart. redis stores no certificate
// or key of its own beyond the files it serves, so Stored stays empty. It
// only connects: no login, no command beyond the dialect's PING.
func (redisTLS) Inventory(ctx context.Context, q sdk.InventoryRequest, r *sdk.InventoryResponse) {
	t, ok := load(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	// A killed or running apply: what is served may be mid-change.
	t.notices().Verify(&r.Diagnostics)
	pt, _, err := probe.ForRequest(q.RequestContext, redisDialect{})
	if err != nil {
		r.Listeners = append(r.Listeners, sdk.ServedListener{Name: listenerTLSPort, Address: t.conn.Address, Error: "the policy's certificates: " + err.Error()})
		return
	}
	pt.Address, pt.ServerName = t.conn.Address, t.serverName()
	r.Listeners = append(r.Listeners, probe.Served(ctx, pt, listenerTLSPort, q.Handshakes, probe.Options{}))
}
