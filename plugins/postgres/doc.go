// Command harden-plugin-postgres hardens PostgreSQL transport security.
//
// This first slice implements Verify: it proves over real connections what a
// live server enforces — plaintext sessions refused, TLS versions and cipher
// suites accepted, the certificate presented, clients without a certificate
// refused when the target is in the policy's mTLS scope — using the shared
// probe kit with PostgreSQL's SSLRequest dialect. Render, plan and apply
// (postgresql.conf, pg_hba.conf, certificate files) arrive with the
// PostgreSQL plugin issue; until then the plugin does not advertise them.
package main
