package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
)

// inventoryListener names Vault's one listener: its API.
const inventoryListener = "vault-api"

// Inventory reports Vault's API listener, seen in fresh handshakes, and
// what Vault stores for the policy: every issuer of the PKI mounts the spec
// manages and the transit keys spec.transit.keys names — only those, not
// every key of the mount: listing the mount needs a right harden-verify
// does not have, and the keys harden manages are the ones due for rotation
// — and each client bundle in KV v2 (client/<name>), known from its
// metadata alone (clientItem: serial and not_after, no chain; the data
// holds the client's key and is never read).
//
// The listener is reached as verify scans it (the HTTP dialect, no client
// certificate: harden's Vault API client presents none, so an accepted
// handshake is harden's client getting in). ReloadsOn is "SIGHUP": Vault
// reads its listener certificate files again on SIGHUP (or a restart),
// never by itself, and harden does not send it. An http:// address
// (allow_insecure) has no TLS listener: it is listed with that as its
// Error, never left out.
//
// Read-only, with the request's credentials: reads and lists, nothing
// written (an AppRole login makes a token, as verify's does). The issuer
// list and each issuer's certificate are unauthenticated reads in Vault
// (CA certificates are public), so they are readable with any token; a
// transit key needs read on <mount>/keys/<name>, a client bundle read on
// <mount>/metadata/<path> (harden-verify has both). A
// read Vault refuses or that gets no answer is the item with the read and
// Vault's words as its Error; a mount or key Vault does not have is the
// item with Error "not found ..."; nothing the spec names goes missing.
func (vaultPKI) Inventory(ctx context.Context, q sdk.InventoryRequest, r *sdk.InventoryResponse) {
	st, ok := load(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	// The listener needs no login: probed while the reads are made.
	listener := make(chan sdk.ServedListener, 1)
	go func() { listener <- servedListener(ctx, q.RequestContext, st, q.Handshakes) }()
	cl, err := client(ctx, q.RequestContext, st.conn)
	if err != nil {
		r.Diagnostics.AddTargetError("vaultpki.login", "cannot log in to Vault to read what it stores", err)
		r.Stored = unread(st, "not read: cannot log in to Vault: "+oneLine(err.Error()))
	} else {
		r.Stored = storedItems(ctx, cl, st)
	}
	r.Listeners = []sdk.ServedListener{<-listener}
}

// servedListener is Vault's API listener in n fresh handshakes.
func servedListener(ctx context.Context, q sdk.RequestContext, st *settings, n int) sdk.ServedListener {
	u, err := url.Parse(st.conn.Address)
	if err != nil || u.Host == "" { // load refuses these; kept total
		return sdk.ServedListener{Name: inventoryListener, Address: st.conn.Address, Error: "connection.address is not a URL with a host"}
	}
	addr := u.Host
	if u.Port() == "" {
		// What the API client dials for a URL without a port.
		addr = net.JoinHostPort(u.Hostname(), map[string]string{"https": "443", "http": "80"}[u.Scheme])
	}
	if u.Scheme != "https" {
		return sdk.ServedListener{Name: inventoryListener, Address: addr,
			Error: "Vault's API at " + st.conn.Address + " is not TLS (allowed by connection.allow_insecure): the token travels in cleartext there and there is no certificate to inspect"}
	}
	target, _, err := probe.ForRequest(q, probe.HTTP)
	if err != nil {
		return sdk.ServedListener{Name: inventoryListener, Address: addr, Error: "not probed: " + err.Error()}
	}
	// harden's client certificate, when the policy gives one, as its API
	// client presents it (clientTLSFor).
	target.Address = addr
	l := probe.Served(ctx, target, inventoryListener, n, probe.Options{})
	l.ReloadsOn = "SIGHUP"
	return l
}

// storedItems reads every issuer of the managed PKI mounts and every
// transit key the spec names.
func storedItems(ctx context.Context, cl *vault.Client, st *settings) []sdk.StoredItem {
	var out []sdk.StoredItem
	for _, m := range st.pkiMounts() {
		out = append(out, issuers(ctx, cl, m)...)
	}
	if st.spec.Transit != nil {
		for _, k := range st.spec.Transit.Keys {
			out = append(out, transitKey(ctx, cl, st.transitMount, k))
		}
	}
	return append(out, clientItems(ctx, cl, st)...)
}

// unread is every item the spec names, none of them read, all with why.
func unread(st *settings, why string) []sdk.StoredItem {
	var out []sdk.StoredItem
	for _, m := range st.pkiMounts() {
		out = append(out, sdk.StoredItem{Kind: sdk.StoredCA, Name: m, Location: m + "/issuers", Error: why})
	}
	if st.spec.Transit != nil {
		for _, k := range st.spec.Transit.Keys {
			out = append(out, sdk.StoredItem{Kind: sdk.StoredKey, Name: k, Location: st.transitMount + "/keys/" + k, Error: why})
		}
	}
	return append(out, unreadClients(st, why)...)
}

// issuers lists a PKI mount's issuers and reads each one's certificate and
// chain; the default issuer is marked "(default)" in its Name.
func issuers(ctx context.Context, cl *vault.Client, mount string) []sdk.StoredItem {
	whole := sdk.StoredItem{Kind: sdk.StoredCA, Name: mount, Location: mount + "/issuers"}
	s, err := cl.Logical().ListWithContext(ctx, mount+"/issuers")
	if err != nil {
		whole.Error = itemError("list "+mount+"/issuers", err)
		return []sdk.StoredItem{whole}
	}
	var ids []any
	if s != nil {
		ids = asList(s.Data["keys"])
	}
	if len(ids) == 0 {
		// Vault answers 404 for a mount that is missing and for one with
		// no issuer alike (an external intermediate waiting for its
		// signed certificate has none yet).
		whole.Error = "not found: Vault lists no issuer in " + mount + " (the mount is missing or holds no CA)"
		return []sdk.StoredItem{whole}
	}
	info, _ := s.Data["key_info"].(map[string]any)
	out := make([]sdk.StoredItem, 0, len(ids))
	for _, raw := range ids {
		id := fmt.Sprint(raw)
		ki, _ := info[id].(map[string]any)
		name, _ := ki["issuer_name"].(string)
		it := sdk.StoredItem{Kind: sdk.StoredCA, Name: mount + "/" + orStr(name, id), Location: mount + "/issuer/" + id}
		if ki["is_default"] == true {
			it.Name += " (default)"
		}
		path := mount + "/issuer/" + id + "/json"
		r, err := cl.Logical().ReadWithContext(ctx, path)
		switch {
		case err != nil:
			it.Error = itemError("read "+path, err)
		case r == nil:
			it.Error = "not found: " + path + " (listed, but Vault answered 404 when read)"
		default:
			chain, err := issuerChain(r.Data)
			if err != nil {
				it.Error = "read " + path + ": " + err.Error()
			} else {
				it.ChainPEM = chain
			}
		}
		out = append(out, it)
	}
	return out
}

// issuerChain is an issuer's certificate followed by the rest of the chain
// Vault returns with it (ca_chain starts with the issuer itself; repeats
// are dropped), re-encoded from the parsed certificates. Vault's answer is
// input: anything but whole certificates is an error, never a chain.
func issuerChain(data map[string]any) ([]byte, error) {
	certPEM, _ := data["certificate"].(string)
	certs, err := sdk.ParseCertificatesPEM([]byte(certPEM))
	if err != nil {
		return nil, fmt.Errorf("the issuer certificate: %w", err)
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("the issuer certificate field holds %d certificates", len(certs))
	}
	var out []byte
	seen := map[string]bool{}
	add := func(der []byte) {
		if !seen[string(der)] {
			seen[string(der)] = true
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
		}
	}
	add(certs[0].Raw)
	for i, c := range asList(data["ca_chain"]) {
		s, _ := c.(string)
		chain, err := sdk.ParseCertificatesPEM([]byte(s))
		if err != nil {
			return nil, fmt.Errorf("ca_chain entry %d: %w", i+1, err)
		}
		for _, c := range chain {
			add(c.Raw)
		}
	}
	return out, nil
}

// transitKey reads one transit key: its latest version, when that was
// made, the automatic rotation period and the type.
func transitKey(ctx context.Context, cl *vault.Client, mount, name string) sdk.StoredItem {
	path := mount + "/keys/" + name
	it := sdk.StoredItem{Kind: sdk.StoredKey, Name: name, Location: path}
	s, err := cl.Logical().ReadWithContext(ctx, path)
	switch {
	case err != nil:
		it.Error = itemError("read "+path, err)
	case s == nil:
		it.Error = "not found: Vault answered 404 for " + path
	default:
		f, err := keyFacts(s.Data)
		if err != nil {
			it.Error = "read " + path + ": " + err.Error()
			return it
		}
		it.LatestVersion, it.LatestCreated, it.AutoRotatePeriod, it.KeyType = f.latest, f.created, f.period, f.keyType
	}
	return it
}

type transitFacts struct {
	latest  int
	created time.Time
	period  time.Duration
	keyType string
}

// keyFacts reads a transit key's answer. The creation time of the latest
// version is in the keys map: Unix seconds for symmetric keys, an object
// with creation_time (RFC 3339) for asymmetric ones. An answer without a
// latest version, its creation time or a readable period is an error: a
// key whose age is unknown must not look new.
func keyFacts(d map[string]any) (transitFacts, error) {
	var f transitFacts
	latest, err := wholeNumber(d["latest_version"])
	if err != nil || latest < 1 || latest > 1<<31-1 {
		return f, fmt.Errorf("no latest_version in Vault's answer (%v)", d["latest_version"])
	}
	f.latest = int(latest)
	v := strconv.Itoa(f.latest)
	ks, _ := d["keys"].(map[string]any)
	switch t := ks[v].(type) {
	case json.Number, float64, int64, int:
		if n, err := wholeNumber(t); err == nil && n > 0 {
			f.created = time.Unix(n, 0).UTC()
		}
	case map[string]any:
		if s, ok := t["creation_time"].(string); ok {
			f.created, _ = time.Parse(time.RFC3339Nano, s)
		}
	}
	if f.created.IsZero() {
		return transitFacts{}, fmt.Errorf("no creation time for the latest version %s in Vault's answer", v)
	}
	period, err := wholeNumber(d["auto_rotate_period"])
	if err != nil || period < 0 || period > int64(1<<63-1)/int64(time.Second) {
		return transitFacts{}, fmt.Errorf("no auto_rotate_period in seconds in Vault's answer (%v)", d["auto_rotate_period"])
	}
	f.period = time.Duration(period) * time.Second
	f.keyType, _ = d["type"].(string)
	return f, nil
}

// wholeNumber is a JSON integer as the Vault API client decodes it
// (json.Number), or as a test builds it.
func wholeNumber(v any) (int64, error) {
	switch n := v.(type) {
	case json.Number:
		return strconv.ParseInt(n.String(), 10, 64)
	case float64:
		if n < -(1<<62) || n > 1<<62 || n != float64(int64(n)) {
			return 0, fmt.Errorf("%v is not a whole number", n)
		}
		return int64(n), nil
	case int64:
		return n, nil
	case int:
		return int64(n), nil
	}
	return 0, fmt.Errorf("%v is not a number", v)
}

// itemError words a failed read for an item's Error: Vault's own answer
// (its status and errors) or that none came. The API client's errors name
// the URL, never the token (a header).
func itemError(what string, err error) string {
	var re *vault.ResponseError
	if errors.As(err, &re) {
		words := oneLine(strings.Join(re.Errors, "; "))
		if words == "" {
			words = "no error text"
		}
		return fmt.Sprintf("%s: Vault answered %d: %s", what, re.StatusCode, words)
	}
	return what + ": no answer from Vault: " + oneLine(err.Error())
}

// oneLine folds Vault's multi-line error texts into one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
