package main

import (
	"context"

	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
)

// inventoryListener names the one listener: the server's TCP port, reached
// through the SSLRequest dialect as verify reaches it.
const inventoryListener = "postgres"

// Inventory reports what the server serves where verify probes it over
// TLS: the connection's host:port, through the SSLRequest dialect, with
// the server name verify uses (the host part) and harden's client identity
// presented when the server asks — so under mTLS an accepted handshake
// also proves harden still gets in. A server answering 'N' (ssl = off)
// gives refused handshakes in those words (probe.Served). Only that
// address: postgres.plaintext.other_addresses tries the other addresses in
// plaintext, not over TLS, and inventory discovers nothing verify does not
// probe. PostgreSQL 17+'s direct-TLS door is the same port and the same
// certificate files; telling whether it exists needs a login, which
// inventory does not make.
//
// ReloadsOn is empty: PostgreSQL reads its certificate files again on
// SIGHUP (apply reloads). Stored is empty: the certificate files are the
// ones the host gave, and the host lists them. Read-only: nothing on the
// server changes; every connection ends after the server's first answer
// to the StartupMessage, before any credential is sent.
func (postgres) Inventory(ctx context.Context, q sdk.InventoryRequest, r *sdk.InventoryResponse) {
	c, _, ok := sdk.Decode[connection, spec](q.Target, &r.Diagnostics)
	if !ok {
		return
	}
	target, _, err := probe.ForRequest(q.RequestContext, probe.Postgres)
	if err != nil {
		// The listener is known but not probed: listed with the reason, so
		// that it cannot go missing from the inventory or the gate.
		r.Diagnostics.AddAttributeError(sdk.Path{"certificate"}, "invalid certificate material", err.Error())
		r.Listeners = []sdk.ServedListener{{Name: inventoryListener, Address: c.address(), Error: "not probed: invalid certificate material: " + err.Error()}}
		return
	}
	target.Address = c.address()
	r.Listeners = []sdk.ServedListener{probe.Served(ctx, target, inventoryListener, q.Handshakes, probe.Options{})}
}
