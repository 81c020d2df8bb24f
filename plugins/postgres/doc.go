// Command harden-plugin-postgres hardens PostgreSQL transport security.
//
// Render writes postgresql.harden.conf, pg_hba.conf and the certificate
// files; plan and apply bring a live server to the policy (backups, lockout
// guard, ALTER SYSTEM, reload, a NEW handshake as proof, rollback on any
// failure); verify proves over real connections what the server enforces,
// with the shared probe kit (PostgreSQL's SSLRequest dialect, and direct TLS
// on 17+) and the server's own views; inventory (inventory.go) reports the
// chain fresh SSLRequest handshakes see on the connection's host:port.
//
// Crash consistency (apply.go, journal.go): apply holds a flock (one apply
// per cluster) and writes an intent journal before the first change, both
// in harden's state directory (applykit.StateDir: /var/lib/harden/journal
// for root, ~/.local/state/harden/journal for others, $HARDEN_STATE_DIR;
// named from the data directory's real path and system_identifier — never
// in the data directory, which the cluster's OS user controls), with every
// file's backup recorded before the file changes. It stages certificate
// files, settings (ssl = on last), pg_ident.conf and pg_hba.conf (last),
// then reloads once, so a reload by
// anyone at any moment gives the old rules or the new ones. Ctrl-C rolls
// back on a context of its own; after a kill -9 plan and verify report the
// journal and the next apply restores, reloads, confirms harden's login,
// then applies.
//
// Privilege: run as root, every file operation on the server's files —
// reads, the certificate directory, writes, backups, restores — runs with
// the filesystem identity of the data directory's owner (applykit.AsOwner),
// so nothing that user planted (a symlink to /etc, a journal naming
// /etc/shadow) gets root's rights. A recovery restores only files that hold
// what the killed run wrote (postgresql.auto.conf: its old settings plus
// the values that run set); a file changed since needs apply --force.
//
// Policy values reach pg_hba.conf and pg_ident.conf only in PostgreSQL's
// own grammar (hbagrammar.go): what quoting cannot carry is refused in
// ValidateSpec.
//
// Evidence: every check is reduced from observations by checks.Reduce — a
// timeout, a reset, an SQLSTATE other than the pg_hba rejection (28000), a
// permission error, a view that hides rows from the role, a rules file
// changed after the last reload, or no observation at all is inconclusive
// (an error), never a pass.
//
// Secrets: the management connection (connect.go) logs in only through the
// local socket, over TLS verified against the policy's CA, or — when the
// operator gives connection.allow_plaintext_admin a reason and the server
// itself refuses TLS — with SCRAM-SHA-256 only. It never falls back to
// plaintext after a TLS failure.
package main
