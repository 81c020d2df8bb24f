// Command harden-plugin-service verifies any TLS endpoint a policy lists —
// an internal HTTPS API (the pipeline's ingest API), a gRPC service, a
// plain TLS port, a PostgreSQL-protocol or Kafka-protocol endpoint — that
// harden does not configure: an application's own TLS is set in its code
// or deployment, so this plugin is verify only (and lists the served
// certificate for `harden inventory`). It has no Render, Plan or Apply:
// `harden apply` has nothing to do for its targets.
//
// Everything is observed live with the SDK's probe (its dialect by
// connection.protocol): the tls.* checks (versions, suites, groups, the
// certificate and its lifetime, client certificates required when the
// target is in the policy's mTLS scope, with harden's client certificate
// proving a trusted client gets in); service.plaintext.refused for each
// declared plaintext port; and for HTTPS the probe's security-header
// checks (http.hsts, http.content_type_options) on one answer fetched over
// a verified session. Nothing is inferred from configuration.
//
// Files: plugin.go (metadata, schemas, checks of the settings, check
// definitions), verify.go, inventory.go.
package main
