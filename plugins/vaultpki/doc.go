// Command harden-plugin-vaultpki hardens HashiCorp Vault as the internal CA
// and KMS.
//
// Plan and apply (hashicorp/vault/api): a file audit device first, PKI
// mounts tuned to the CA lifetimes, a root CA and an intermediate signed by
// it (ECDSA P-256, in every Mozilla profile), issuer and CRL URLs, server,
// client and peer roles on the intermediate (max_ttl from the rotation
// policy, names from the policy's other targets, no wildcard, glob or
// any-name issuing), auto-tidy, transit KEKs (aes256-gcm96, auto-rotate,
// deletion off). A capability pre-flight (sys/capabilities-self) refuses a
// weak token before anything changes; a failure undoes this run's steps
// newest first; CAs are never re-generated and keys never deleted;
// exportable / plaintext-backup keys are reported as needing a new key.
// With spec.listener, Vault's own API listener file last (listener.go):
// the profile's TLS versions and suites (client certificates in the mTLS
// scope), a restart (SIGHUP reloads only the certificate), an unseal, a
// live probe, and the old file back on any failure.
//
// Verify: CA presence, lifetime left vs the longest role TTL + the renewal
// window, CA key type, every role of the mount (harden's or not), URLs,
// tidy, RFC 5280 lints on the chain and a freshly signed 5-minute leaf (the
// key is made here; only the CSR goes to Vault), issued certificates near
// expiry, transit keys (age of the latest version, auto-rotate, flags), the
// audit device proven by a canary request found in its log, denied requests
// since the previous verify, and Vault's own listener scanned by the probe.
// Every check rests on Vault's answers (checks.Reduce): a read refused or
// unanswered is inconclusive (an error naming it), never a pass, a skip or
// a silent omission; the audit device list without a canary is
// configuration only (a warning at best); zero certificates to judge is
// not applicable, never a pass.
//
// Inventory (read-only): Vault's API listener in fresh handshakes, every
// issuer of the managed PKI mounts with its chain (the default marked) and
// the transit keys the spec names (latest version and when it was made,
// auto-rotate period, type); a read refused, unanswered or not found is
// the item with that as its Error, never left out.
//
// Client identities (the policy's clients:): the client role issues every
// client's CN besides spec.pki.client_names (IssueCertificate refuses any
// other CN in its own words). For a client delivered to Vault KV
// (deliver.vault_kv, mount/data/path), plan and apply make the KV v2 mount
// when missing (a KV v1 mount or another engine there is an error naming
// it; nothing changes) and the ACL policy harden-client-<name>: read on
// that data path, nothing else (a KV v2 data read carries the version's
// custom_metadata). DeliverSecret (secret_store) writes a declared
// client's bundle to its own path only, as one KV v2 version (text as
// strings, anything not UTF-8 base64 under "<name>.base64"), then its
// custom_metadata, reads the version back and compares; with the target's
// token, after a capability check (create/update and read on the data
// path, update on the metadata path). Inventory lists each bundle as
// client/<name> from <mount>/metadata/<path> alone (the current version,
// not deleted or destroyed, and custom_metadata's serial and not_after;
// never the data, which holds the key): harden-verify reads the metadata
// paths and nothing of the data. verify's vaultpki.clients.policy compares
// each client's policy as Vault stores it (configuration-level).
//
// Staged CA rotation (ca_rotation, RotateCA; the host drives the phases):
// prepare makes a next root (<root>/root/generate/internal, issuer and key
// "harden-next", ECDSA P-256, root_ttl) and a next intermediate (CSR from
// <int>/intermediate/generate/internal with key "harden-next", signed by
// <root>/issuer/<next>/sign-intermediate, imported by
// <int>/intermediate/set-signed, named "harden-next", the imported root copy
// "harden-next-root"); neither becomes a default. activate and deactivate
// write <int>/config/issuers default (harden's roles sign with
// issuer_ref "default"; a role pinned elsewhere is refused). finish makes
// the next intermediate and then the next root the defaults, renames the
// old root, intermediate and root copy "retired-<date>" (usage without
// issuing-certificates, kept for CRLs), and gives the next ones apply's
// names (root "harden-root", the rest unnamed). discard renames a next CA
// that does not sign "discarded-<date>" (not issuing). The state is read
// from Vault alone (issuer names and which key signed which certificate),
// one write at a time, so every operation is idempotent and a killed run
// is completed by the next; writes take apply's lock and a capability
// pre-flight. IssueCertificate's Issuer "next"/"current" signs by
// <int>/issuer/<id>/sign/<role>; the bundle stays the current root until
// finish.
//
// An http:// address is refused before any request (the token would
// travel in cleartext) unless connection.allow_insecure gives the reason.
package main
