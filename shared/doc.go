// Package shared is the root of harden's plugin SDK module,
// github.com/harden-dev/harden/shared: everything a plugin author imports
// and nothing else. A third-party plugin's go.mod requires this module
// alone — not harden's (which brings the host, the in-tree plugins and
// their database, Kafka, Vault and S3 clients).
//
//	sdk            author API: Plugin and capability interfaces, diagnostics, Serve, Decode, ClientTLS
//	sdk/applykit   apply kit: lock, intent journal, atomic writes as the files' owner, steps with undo, plan token
//	sdk/sdktest    conformance kit: drives a plugin binary over the real protocol
//	sdk/faultkit   fault kit: proxies that break connections; faults never turn a FAIL into a PASS
//	sdk/hostclient host side of the protocol (the harden host and sdktest use it; plugins do not)
//	probe          verification kit: dialects, raw-ClientHello scan engine, checks against the profile
//	probe/probetest  holds the probe to sslscan in a plugin's tests
//	checks         check model and registry of stable check IDs
//	tlsprofile     Mozilla Server Side TLS profiles, suite names
//	certlint       zlint RFC 5280 lints
//
// The module never imports harden's own module; it builds and tests on its
// own: cd shared && go test ./...
package shared
