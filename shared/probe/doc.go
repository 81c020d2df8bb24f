// Package probe is harden's verification kit: it connects to a live endpoint
// the way a client would and records what the server actually does — whether
// it talks without TLS, which protocol versions and cipher suites it accepts,
// which certificate it presents, whether it refuses clients without a
// certificate — then turns that evidence into checks against a TLS profile.
//
// A Dialect adapts the kit to a protocol: plain TLS, PostgreSQL (SSLRequest,
// and direct TLS with ALPN "postgresql" from PostgreSQL 17), HTTP(S). Third
// parties implement Dialect for their own protocols.
//
// The current engine enumerates with Go's crypto/tls: TLS 1.0–1.3 and every
// TLS 1.2 suite Go can offer, one connection each, at most Concurrency at a
// time. Suites Go cannot offer (CCM, ARIA, CAMELLIA, ...) and individual TLS
// 1.3 suites need raw ClientHellos; the scan reports that limit in its
// evidence rather than claiming completeness.
package probe
