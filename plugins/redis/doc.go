// Command harden-plugin-redis is harden's Redis TLS plugin, and the worked
// example of docs/writing-a-plugin.md: a plugin in its own Go module that
// depends on nothing of harden but the plugin SDK
// (github.com/harden-dev/harden/shared).
//
// It renders redis.conf settings (tls-port, port 0, the certificate files,
// tls-protocols and ciphers from the policy's profile, tls-auth-clients
// from its mTLS scope), applies them to a running redis-server with CONFIG
// SET in an order that never locks the operator out (certificate files,
// tls-* settings, tls-port, a new TLS login with the policy's CA, only then
// port 0, then CONFIG REWRITE), and verifies the result live with the SDK's
// TLS probe.
//
// Files: plugin.go (metadata, schemas, check definitions), resp.go (the
// RESP2 client: Redis speaks a small protocol, and writing it here keeps
// the password's path auditable — AUTH is sent only over TLS verified
// against the policy's CA or over the Unix socket), connect.go (which
// management connection may carry the password), render.go, plan.go,
// apply.go, verify.go, dialect.go (Redis for the probe).
package main
