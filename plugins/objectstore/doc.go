// Command harden-plugin-objectstore hardens S3-compatible object stores:
// default bucket encryption (SSE-KMS or SSE-S3), bucket policy statements
// that deny plaintext transport, uploads without server-side encryption or
// with a non-approved algorithm (stricter for sensitive prefixes) — merged
// with the operator's statements, never clobbering them — applied with
// backups and a lockout check, and verified by live requests that must be
// refused, sampled objects' encryption headers and, where harden can read
// the server's data directory, a canary proven absent from disk. Inventory
// (inventory.go) reports the chain fresh handshakes see on the endpoint.
//
// Evidence rules (checks.Reduce): only a 403 is a refusal; a timeout, a
// reset, another S3 error or a file that cannot be read is inconclusive —
// an error with the reason, never a pass; the bucket policy is judged by
// its statements' content and by the refusals verify observes, never by
// their names; nothing to sample is "not applicable", never a pass.
//
// Files: plugin.go (metadata, schema, connection), plan.go, apply.go,
// journal.go, bucketpolicy.go (the bucket policy document), verify.go,
// envelope/ (the envelope-encryption library it shares with the host CLI).
package main
