// Package inventory is `harden inventory`'s model: every certificate and key
// the policy touches — what each listener serves (seen in fresh handshakes
// through the plugin's Inventory), what harden holds for each target (the
// server certificate and harden's client certificate), the CA bundle, and
// what the targets store (Vault CAs, transit KEKs) — each with its expiry
// tier or next rotation date, and the exit code those tiers mean.
//
// Collect is pure (a fixed clock in, a Report out) so the tier and exit rules
// are tested without servers; Ask is the one call to a plugin. The JSON field
// names are a contract (format_version 1): issue 15's exporter and HTML
// report read them.
package inventory
