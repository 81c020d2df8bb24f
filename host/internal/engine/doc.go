// Package engine runs plugins for the host: it resolves each plugin a policy
// needs to a pinned binary, launches them (one-time mutual TLS, sha256
// SecureConfig, minimal environment) — or attaches to one a developer
// started in debug mode (HARDEN_REATTACH_PLUGINS, with a warning: no pin
// applies) — checks their identity and schemas, validates each target
// against them, and builds per-target requests carrying only that target's
// secrets and certificate material. Certificates it has issued for targets
// are kept by package certstore.
package engine
