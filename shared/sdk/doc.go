// Package sdk is the author API for harden target plugins.
//
// A plugin is a Go value implementing Plugin (metadata and schemas) plus any
// of the optional capability interfaces — Renderer, Planner, Applier,
// Verifier, SpecValidator, Issuer. Capabilities are derived from the
// interfaces a value implements, so adding one never breaks older plugins.
// Methods have the shape Method(ctx, Request, *Response) and report problems
// as diagnostics on the response; there is no error return.
//
// The plugin's main is one line: sdk.Serve(myPlugin{}). Serve speaks the
// versioned gRPC protocol (proto/harden/target/v1, generated into internal/targetv1) through hashicorp/go-plugin;
// no protobuf or go-plugin type appears in this package's API.
//
// Before a request reaches the plugin, its connection and spec are validated
// against the plugin's declared JSON Schemas (unknown keys and wrong types are
// rejected with attribute paths), and ValidateSpec runs where implemented.
//
// Plugins log with Log(), which writes JSON on stderr that the host re-logs
// under the plugin's name. A plugin never writes to stdout.
//
// Request helpers: Decode is the one prelude (connection and spec decoded
// strictly, failures as config diagnostics); ClientTLS builds the TLS client
// configuration from the request's certificates and refuses material that
// does not parse.
//
// This package is the plugin side only. The host side (Launch, Client,
// InProcess) is package hostclient, which plugin binaries never link; the
// generated protocol code is internal to the SDK module.
//
// The SDK is its own Go module, github.com/harden-dev/harden/shared (sdk,
// sdk/applykit, sdk/sdktest, sdk/faultkit, sdk/hostclient, probe,
// probe/probetest, checks, tlsprofile, certlint): a plugin depends on it
// alone. Its major version follows the protocol's (ProtocolVersion).
// docs/writing-a-plugin.md in the repository goes from zero to a tested
// plugin.
package sdk
