package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/harden-dev/harden/shared/tlsprofile"
)

// setting is one postgresql.conf parameter harden manages.
type setting struct {
	Name, Value string
}

// certPaths are where the certificate material lives on the server.
type certPaths struct {
	Dir, Cert, Key, CA, CRL string
}

func newCertPaths(dataDir, certDir string) certPaths {
	dir := certDir
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(dataDir, certDir)
	}
	return certPaths{Dir: dir, Cert: filepath.Join(dir, "server.crt"), Key: filepath.Join(dir, "server.key"), CA: filepath.Join(dir, "root.crt"), CRL: filepath.Join(dir, "root.crl")}
}

// groupToOpenSSL maps IANA group names to OpenSSL's.
var groupToOpenSSL = map[string]string{"x25519": "X25519", "secp256r1": "prime256v1", "secp384r1": "secp384r1", "secp521r1": "secp521r1", "X25519MLKEM768": "X25519MLKEM768"}

// desiredSettings derives the TLS settings from the profile for a server
// major version. ssl_ciphers covers TLS <= 1.2 only, with OpenSSL names, and
// is never empty (PostgreSQL refuses an empty list; TLS 1.3 names there break
// OpenSSL). PostgreSQL <= 17 takes a single ssl_ecdh_curve; 18 takes
// ssl_groups and ssl_tls13_ciphers.
func desiredSettings(major int, p tlsprofile.Profile, paths certPaths, withCA, withCRL bool) []setting {
	ciphers := p.OpenSSLCipherList()
	if ciphers == "" {
		// A TLS 1.3-only profile: TLS 1.2 is off by ssl_min_protocol_version,
		// but the parameter must hold a valid list; use intermediate's.
		ciphers = tlsprofile.Intermediate().OpenSSLCipherList()
	}
	out := []setting{
		{"ssl", "on"},
		{"ssl_cert_file", paths.Cert},
		{"ssl_key_file", paths.Key},
	}
	if withCA {
		out = append(out, setting{"ssl_ca_file", paths.CA})
	}
	if withCRL {
		out = append(out, setting{"ssl_crl_file", paths.CRL})
	}
	out = append(out,
		setting{"ssl_min_protocol_version", tlsprofile.VersionName(p.MinVersion())},
		setting{"ssl_ciphers", ciphers},
		setting{"ssl_prefer_server_ciphers", onOff(p.ServerPreferredOrder)},
	)
	if p.MaxVersion() < tlsprofile.VersionTLS13 {
		out = append(out, setting{"ssl_max_protocol_version", tlsprofile.VersionName(p.MaxVersion())})
	}
	if major >= 18 {
		var groups, suites []string
		for _, g := range p.Groups {
			// Hybrid PQ groups need OpenSSL 3.5; a group the library lacks
			// stops the TLS context from loading, so only classic groups.
			if n, ok := groupToOpenSSL[g]; ok && !strings.Contains(n, "MLKEM") {
				groups = append(groups, n)
			}
		}
		for _, id := range p.TLS13Suites {
			if s, ok := tlsprofile.SuiteByID(id); ok {
				suites = append(suites, s.OpenSSL)
			}
		}
		out = append(out, setting{"ssl_groups", strings.Join(groups, ":")}, setting{"ssl_tls13_ciphers", strings.Join(suites, ":")})
	} else {
		// One curve only: prime256v1 is the one every TLS client has.
		out = append(out, setting{"ssl_ecdh_curve", "prime256v1"})
	}
	out = append(out, setting{"password_encryption", "scram-sha-256"})
	return out
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// confText renders settings in postgresql.conf syntax.
func confText(settings []setting) string {
	var b strings.Builder
	b.WriteString("# TLS settings rendered by harden. Apply them with `harden apply` (ALTER SYSTEM)\n# or copy this file into the data directory and add to postgresql.conf:\n#   include_if_exists = 'postgresql.harden.conf'\n# (relative ssl_*_file paths are relative to the data directory).\n")
	for _, s := range settings {
		fmt.Fprintf(&b, "%s = '%s'\n", s.Name, strings.ReplaceAll(s.Value, "'", "''"))
	}
	return b.String()
}

func itoa(i int) string { return fmt.Sprint(i) }
