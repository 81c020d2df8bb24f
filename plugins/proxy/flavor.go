package main

import (
	"context"

	"github.com/harden-dev/harden/shared/sdk"
)

// flavor is what differs between nginx and HAProxy. Everything else —
// certificate files, the apply flow, the live verification of every hop —
// is shared.
type flavor interface {
	// kind is "nginx" or "haproxy".
	kind() string
	// render returns the content of the file harden owns for t (the front,
	// the upstream/backend with verified TLS, the canary route) referring
	// to the certificate files in f.
	render(t *target, p renderInput) ([]byte, error)
	// test runs the proxy's own configuration test (nginx -t -c, haproxy
	// -c -f … -f include) with the file harden owns as it is on disk now.
	// The error carries the proxy's message (file:line).
	test(ctx context.Context, t *target) error
	// reload makes the running proxy load its configuration without
	// dropping connections, and returns once the reload was accepted.
	reload(ctx context.Context, t *target) error
	// routes reads the effective configuration (nginx -T; HAProxy's files
	// as `haproxy -c` accepts them) and returns what it says about the
	// route to the front and (Canary) the canary route: supporting
	// evidence only, never a pass alone.
	routes(ctx context.Context, t *target) (routeFacts, error)
}

// renderInput is the material render refers to.
type renderInput struct {
	Policy sdk.Policy
	// MTLS: the front requires client certificates from ClientCAFile.
	MTLS bool
	// Files apply writes into cert_dir.
	CertFile, KeyFile, ClientCAFile, BackendCAFile string
	// ClientCertFile/ClientKeyFile: harden's client identity the proxy
	// presents to a backend that requires one ("" when none).
	ClientCertFile, ClientKeyFile string
}

// routeFacts is what the configuration says about the front's route.
type routeFacts struct {
	// Found: a listener for the front was found in the configuration.
	Found bool
	// Source names the file:line of the front's listener or route.
	Source string
	// Upstream is the address the route forwards to ("" if unknown).
	Upstream string
	// UpstreamTLS / UpstreamVerify / UpstreamCAFile / UpstreamName: the
	// upstream TLS settings in effect for the route.
	UpstreamTLS, UpstreamVerify  bool
	UpstreamCAFile, UpstreamName string
	// UpstreamSNI: the proxy sends UpstreamName as SNI (nginx
	// proxy_ssl_server_name on; HAProxy sni).
	UpstreamSNI bool
	// Open says why the facts do not cover every request of the route
	// (nginx: another location, an if, a return beside location /), ""
	// when they do. Open facts can still fail a check (location / itself
	// forwards over plain HTTP), never support a pass.
	Open string
	// Canary is the same for harden's canary route (the listener at
	// spec.canary.listen); nil when the configuration has none. Verify
	// needs it: no canary route is a FAIL of proxy.backend.verified (the
	// file harden owns is not rendered), and a canary whose upstream TLS
	// differs from the real route's proves nothing about it.
	Canary *routeFacts
}

// flavorOf returns the implementation for a connection kind (nil for an
// unknown kind: the schema's enum refuses it first).
func flavorOf(kind string) flavor {
	switch kind {
	case "nginx":
		return nginxFlavor{}
	case "haproxy":
		return haproxyFlavor{}
	}
	return nil
}
