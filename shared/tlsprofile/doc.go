// Package tlsprofile defines the TLS profiles harden enforces — Mozilla Server
// Side TLS 6.0 "modern" and "intermediate" — once, for the host and every
// plugin, together with a cipher-suite table that maps IANA ids to the names
// each ecosystem uses (IANA/JSSE, OpenSSL). Custom profiles start from a base
// and any weakening below that base must carry an explicit reason.
package tlsprofile
