package sdk

import (
	"context"
	"time"
)

// Inventorier reports what a live target serves on each TLS listener, seen
// in fresh handshakes, and the certificates and keys it stores. `harden
// inventory` lists it; `harden rotate`'s verify gate requires every
// listener to serve the new certificate in consecutive fresh handshakes.
type Inventorier interface {
	Inventory(ctx context.Context, req InventoryRequest, resp *InventoryResponse)
}

// InventoryRequest asks for the live target's certificates and keys. The
// request's CA bundle and client identity are what a client would hold:
// the handshakes present the client identity when the server asks for one.
type InventoryRequest struct {
	RequestContext
	// Handshakes per listener (at least 1).
	Handshakes int
}

// InventoryResponse lists every listener of the target (unreachable ones
// included, with the reason) and what the target stores.
type InventoryResponse struct {
	Listeners   []ServedListener
	Stored      []StoredItem
	Diagnostics Diagnostics
}

// Outcomes of a ServedHandshake.
const (
	OutcomeAccepted     = "accepted"
	OutcomeRefused      = "refused"
	OutcomeInconclusive = "inconclusive"
)

// ServedHandshake is one fresh connection: the chain the server sent and
// whether the session went through. The plugin does not judge trust: the
// host verifies ChainPEM against the bundle it holds.
type ServedHandshake struct {
	// ChainPEM: leaf first; empty when the handshake did not get that far.
	ChainPEM []byte
	// Version negotiated ("TLSv1.3"); empty without a handshake.
	Version string
	// Outcome: OutcomeAccepted (the session and the dialect's application
	// exchange went through), OutcomeRefused (in the server's own words),
	// OutcomeInconclusive (anything else).
	Outcome string
	// Evidence: the server's words, or why nothing conclusive was seen.
	Evidence string
	// ClientCertRequested: the server asked for a client certificate (an
	// accepted session then proves it took the one presented).
	ClientCertRequested bool
}

// ReloadsNever: the listener serves a certificate harden does not deploy
// (an object store endpoint with its own certificate); rotate skips it.
const ReloadsNever = "never"

// ServedListener is one TLS listener of the target.
type ServedListener struct {
	Name    string
	Address string
	// Handshakes in the order they were made.
	Handshakes []ServedHandshake
	// ReloadsOn is empty when the listener takes new certificate material
	// live, else when it does ("restart": a Kafka controller listener after
	// a KIP-226 update), or ReloadsNever.
	ReloadsOn string
	// Error: the listener could not be reached at all.
	Error string
}

// Kinds of a StoredItem.
const (
	StoredCA          = "ca"
	StoredCertificate = "certificate"
	StoredKey         = "key"
)

// StoredItem is a certificate or key the target stores (a CA in Vault, a
// transit KEK), as opposed to one it serves.
type StoredItem struct {
	Kind     string
	Name     string
	Location string
	// ChainPEM for certificates and CAs, leaf (or the CA) first.
	ChainPEM []byte
	// Keys: the latest version, when it was made, the automatic rotation
	// period (0: off) and the key type.
	LatestVersion    int
	LatestCreated    time.Time
	AutoRotatePeriod time.Duration
	KeyType          string
	// Error: the item could not be read (the rest is then empty).
	Error string
	// Serial (colon-hex) and NotAfter of a certificate known from its
	// metadata alone, without ChainPEM (a client bundle in a secret store
	// whose data harden's verify token may not read: it holds the key).
	Serial   string
	NotAfter time.Time
}
