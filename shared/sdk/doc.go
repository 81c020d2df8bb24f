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
// versioned gRPC protocol (proto/harden/target/v1) through hashicorp/go-plugin;
// no protobuf or go-plugin type appears in this package's API.
//
// Before a request reaches the plugin, its connection and spec are validated
// against the plugin's declared JSON Schemas (unknown keys and wrong types are
// rejected with attribute paths), and ValidateSpec runs where implemented.
//
// Plugins log with Log(), which writes JSON on stderr that the host re-logs
// under the plugin's name. A plugin never writes to stdout.
//
// The same package holds the host side (Launch, Client), so the harden host,
// the conformance kit (sdktest) and plugin authors see one model.
package sdk
