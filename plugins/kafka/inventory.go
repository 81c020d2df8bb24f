package main

import (
	"context"
	"sync"

	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
)

// inventoryParallel bounds the listeners handshaken at the same time: a
// cluster has a few per broker, and each handshake costs the broker a
// JSSE session; 4 keeps a 3-broker cluster's inventory to two rounds.
const inventoryParallel = 4

// reloadsOnRestart: Kafka reloads a KIP-226 keystore on broker listeners
// only; a controller listener serves the certificate it started with until
// the broker restarts (README, Kafka; apply's rotation warns the same).
const reloadsOnRestart = "restart"

// noTLS is the Error of a listener that speaks no TLS at all.
const noTLS = "plaintext listener, no TLS"

// Inventory reports what every listener of every broker serves, in
// q.Handshakes fresh handshakes each through the Kafka dialect (harden's
// client identity presented when asked, an ApiVersions after the TLS 1.3
// handshake): the listeners verify probes — those the brokers'
// server.properties declare, controller listeners included, or the
// bootstrap addresses without the files. It changes nothing. Kafka stores
// nothing to list here: its keystores are files on the broker host, and
// what counts is what the listeners serve.
func (kafka) Inventory(ctx context.Context, q sdk.InventoryRequest, r *sdk.InventoryResponse) {
	c, _, ok := sdk.Decode[connection, spec](q.Target, &r.Diagnostics)
	if !ok {
		return
	}
	ls, _, ok := declaredListeners(c, &r.Diagnostics, nil)
	if !ok {
		return
	}
	// The server name is the listener's host, as verify's probes use it.
	target, _, err := probe.ForRequest(q.RequestContext, probe.Kafka)
	if err != nil {
		r.Diagnostics.AddAttributeError(sdk.Path{"certificate"}, "invalid certificate material", err.Error())
		return
	}
	r.Listeners = make([]sdk.ServedListener, len(ls))
	slots := make(chan struct{}, inventoryParallel)
	var wg sync.WaitGroup
	for i, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			r.Listeners[i] = servedBy(ctx, l, target, q.Handshakes)
		}()
	}
	wg.Wait()
}

// servedBy is one listener's inventory. A listener declared without TLS is
// listed with the reason and not dialled; a bootstrap address of unknown
// protocol that answers a cleartext ApiVersions is the same.
func servedBy(ctx context.Context, l listener, base probe.Target, n int) sdk.ServedListener {
	name := inventoryName(l)
	base.Address = l.Address
	switch {
	case l.Protocol == "unknown":
		if pt := probe.PlaintextOnly(ctx, base, probe.Options{}); pt.Err == nil && pt.Tested && pt.Accepted {
			return sdk.ServedListener{Name: name, Address: l.Address, Error: noTLS}
		}
	case !l.tls():
		return sdk.ServedListener{Name: name, Address: l.Address, Error: noTLS}
	}
	out := probe.Served(ctx, base, name, n, probe.Options{})
	if l.Controller {
		out.ReloadsOn = reloadsOnRestart
	}
	return out
}

// inventoryName is unique in the target: "<node id>/<LISTENER>" (listener
// names are unique per broker), "bootstrap/<address>" without the files.
func inventoryName(l listener) string {
	switch {
	case l.Protocol == "unknown":
		return l.Name + "/" + l.Address
	case l.NodeID == "":
		return "broker/" + l.Name
	default:
		return l.NodeID + "/" + l.Name
	}
}
