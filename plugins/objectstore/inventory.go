package main

import (
	"context"
	"fmt"
	"net"
	"net/url"

	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
)

// inventoryListener names the one listener: the S3 endpoint harden's S3
// client and verify's TLS scan use.
const inventoryListener = "s3"

// Inventory reports what connection.endpoint serves in fresh HTTPS
// handshakes, with the server name verify's scan uses (the URL's host).
// No client certificate is presented: harden's S3 client presents none, so
// an accepted handshake is what that client gets. An endpoint that is
// plain http has no TLS to inventory: it is listed with that error so the
// host reports it rather than missing it. connection.http_endpoint is not
// a TLS listener and is not listed (verify proves it refuses requests).
//
// No credentials are needed or used: the handshakes end after one
// anonymous GET / (any HTTP answer means the session went through), so
// nothing on the server changes. ReloadsOn is sdk.ReloadsNever: harden
// does not deliver the endpoint's certificate (apply changes bucket
// settings only), so harden rotate has nothing to push here and skips the
// target; the handshakes show what the server serves now. Stored is empty: the plugin reads no
// certificate or key material (SSE keys live in the server's KMS, envelope
// KEKs in Vault transit).
func (objectStore) Inventory(ctx context.Context, q sdk.InventoryRequest, r *sdk.InventoryResponse) {
	c, _, ok := sdk.Decode[connection, spec](q.Target, &r.Diagnostics)
	if !ok {
		return
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil || u.Host == "" {
		r.Diagnostics.AddAttributeError(sdk.Path{"connection", "endpoint"}, "invalid endpoint", "connection.endpoint is not an http(s) URL with a host")
		return
	}
	addr := endpointAddress(u)
	if u.Scheme != "https" {
		r.Listeners = []sdk.ServedListener{{Name: inventoryListener, Address: addr, ReloadsOn: sdk.ReloadsNever,
			Error: fmt.Sprintf("connection.endpoint %s://%s is plaintext %s, no TLS: nothing is served to inventory", u.Scheme, u.Host, u.Scheme)}}
		return
	}
	target := probe.Target{Address: addr, Dialect: probe.HTTP}
	l := probe.Served(ctx, target, inventoryListener, q.Handshakes, probe.Options{})
	l.ReloadsOn = sdk.ReloadsNever
	r.Listeners = []sdk.ServedListener{l}
}

// endpointAddress is the URL's host:port, with the scheme's default port
// when the URL names none (https://s3.example.com is port 443).
func endpointAddress(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}
