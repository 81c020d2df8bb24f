// Package engine runs plugins for the host: it resolves each plugin a policy
// needs to a pinned binary, launches them (AutoMTLS, sha256 SecureConfig,
// minimal environment), checks their identity and schemas, validates each
// target against them, and builds per-target requests carrying only that
// target's secrets and certificate material.
package engine
