package checks

// References used across definitions. "seed:" items quote the product seed's
// checklist; CIS items name the benchmark, its version and the control.
const (
	RefSeedPostgresTLS  = "seed: enable TLS on the server, require hostssl entries in pg_hba.conf, and use client certificates for mTLS where possible"
	RefSeedKafkaTLS     = "seed: enable TLS on each broker and for clients, deny plaintext ports, verify with openssl s_client"
	RefSeedRotation     = "seed: rotate certificates regularly (90 days is a good default), alerts at 30/14/7 days"
	RefSeedObjectStore  = "seed: reject unencrypted uploads; unique DEK per object wrapped by a KEK in KMS"
	RefCISPGTLSEnabled  = "CIS PostgreSQL 14 Benchmark v1.2.0 6.8: Ensure TLS is enabled and configured correctly"
	RefCISPGTLSVersions = "CIS PostgreSQL 14 Benchmark v1.2.0 6.9: Ensure the TLSv1.0 and TLSv1.1 Protocols are Disabled"
	RefCISPGHostLogin   = "CIS PostgreSQL Benchmark: Ensure login via \"host\" TCP/IP Socket is configured correctly"
	RefCISPGWeakCiphers = "CIS PostgreSQL 14 Benchmark v1.2.0 6.10: Ensure Weak SSL/TLS Ciphers Are Disabled"
	RefMozillaTLS       = "Mozilla Server Side TLS 6.0 (https://ssl-config.mozilla.org/guidelines/6.0.json)"
	RefRFC8996          = "RFC 8996: Deprecating TLS 1.0 and TLS 1.1"
	RefOWASPTLS         = "OWASP Transport Layer Security Cheat Sheet (https://cheatsheetseries.owasp.org/cheatsheets/Transport_Layer_Security_Cheat_Sheet.html)"
)

// Generic TLS checks produced by shared/probe for any dialect; plugins prefix
// nothing — the subject names the endpoint.
func init() {
	Register(
		Definition{ID: "tls.plaintext.refused", Title: "Endpoint refuses plaintext sessions", Severity: High,
			Remediation: "Disable the plaintext listener or require TLS for every connection.",
			References:  []string{RefOWASPTLS}},
		Definition{ID: "tls.enabled", Title: "Endpoint offers TLS", Severity: High,
			Remediation: "Configure a certificate and key and enable TLS on the endpoint.",
			References:  []string{RefOWASPTLS, RefMozillaTLS}},
		Definition{ID: "tls.protocol.versions", Title: "Only the profile's TLS versions are accepted", Severity: High,
			Remediation: "Set the minimum (and maximum) protocol version to the profile's versions.",
			References:  []string{RefMozillaTLS, RefRFC8996, RefCISPGTLSVersions}},
		Definition{ID: "tls.cipher_suites", Title: "Only the profile's cipher suites are accepted", Severity: Medium,
			Remediation: "Restrict the cipher list to the profile's suites.",
			References:  []string{RefMozillaTLS, RefCISPGWeakCiphers}},
		Definition{ID: "tls.key_exchange.groups", Title: "Only the profile's key-exchange groups, or stronger ones, are accepted", Severity: Low,
			Remediation: "Restrict the server's groups/curves to the profile's (e.g. ssl_ecdh_curve, ssl_groups, ssl.ecdh curves); a group outside the list but at least as strong as its weakest passes unless the profile sets strict_groups.",
			References:  []string{RefMozillaTLS}},
		Definition{ID: "tls.certificate.trusted", Title: "Certificate chains to the expected CA and matches the endpoint name", Severity: High,
			Remediation: "Install a certificate issued by the policy's CA that names the endpoint's host or IP.",
			References:  []string{RefMozillaTLS}},
		Definition{ID: "tls.certificate.lint", Title: "Certificate chain passes the RFC 5280 profile lints (zlint)", Severity: Medium,
			Remediation: "Reissue the certificate from a CA profile that follows RFC 5280 (see the lint's citation).",
			References:  []string{"RFC 5280", "zlint (github.com/zmap/zlint)"}},
		Definition{ID: "tls.certificate.lifetime", Title: "Certificate is within its lifetime and renewal window", Severity: High,
			Remediation: "Renew the certificate before the renewal window (harden rotate).",
			References:  []string{RefSeedRotation, RefMozillaTLS}},
		Definition{ID: "tls.client_auth.required", Title: "Clients without a trusted certificate are refused", Severity: High,
			Remediation: "Require client certificates (mTLS) on the endpoint and trust only the policy's CA.",
			References:  []string{RefSeedPostgresTLS, RefSeedKafkaTLS}},
	)
}

// HTTP security headers judged by shared/probe (HTTPHeaderChecks) on an
// HTTPS answer for the service and proxy plugins.
func init() {
	Register(
		Definition{ID: "http.hsts", Title: "HTTPS answers send Strict-Transport-Security with max-age of at least one year", Severity: Medium,
			Remediation: "Send Strict-Transport-Security: max-age=31536000 (or more) on every HTTPS answer (nginx: add_header ... always; HAProxy: http-response set-header).",
			References:  []string{"RFC 6797: HTTP Strict Transport Security", "OWASP HTTP Strict Transport Security Cheat Sheet", RefMozillaTLS}},
		Definition{ID: "http.content_type_options", Title: "HTTPS answers send X-Content-Type-Options: nosniff", Severity: Low,
			Remediation: "Send X-Content-Type-Options: nosniff on every answer.",
			References:  []string{"Fetch Standard: X-Content-Type-Options (https://fetch.spec.whatwg.org/#x-content-type-options-header)", "OWASP HTTP Headers Cheat Sheet"}},
	)
}

// PostgreSQL checks (plugins/postgres). CIS numbers from the CIS PostgreSQL
// 14 Benchmark v1.2.0.
func init() {
	Register(
		Definition{ID: "postgres.plaintext.other_addresses", Title: "Plaintext logins are refused from every local address", Severity: High,
			Remediation: "End pg_hba.conf with hostnossl ... reject lines for 0.0.0.0/0 and ::/0 (harden apply writes them).",
			References:  []string{RefSeedPostgresTLS, RefCISPGHostLogin}},
		Definition{ID: "postgres.hba.network_methods", Title: "No trust, password, md5 or ident on network lines; the file has no errors", Severity: High,
			Remediation: "Use scram-sha-256 (with clientcert=verify-full for mTLS) or cert on hostssl lines.",
			References:  []string{RefSeedPostgresTLS, RefCISPGHostLogin}},
		Definition{ID: "postgres.password_encryption", Title: "Passwords are hashed with SCRAM-SHA-256, no md5 hashes left", Severity: Medium,
			Remediation: "SET password_encryption = 'scram-sha-256' and reset the passwords of roles that still have md5 hashes.",
			References:  []string{"CIS PostgreSQL 14 Benchmark v1.2.0 4.x/5.x password authentication", "RFC 7677"},
			// Best effort: the md5-hash half reads pg_authid, which only a
			// superuser may; a least-privilege verify role gets a warning
			// naming what it could not see rather than an error.
			BestEffort: true},
		Definition{ID: "postgres.sessions.unencrypted", Title: "No live network session runs without TLS", Severity: Medium,
			Remediation: "Have the listed clients reconnect with sslmode=verify-full; the new pg_hba.conf refuses them from then on.",
			References:  []string{RefSeedPostgresTLS, RefCISPGTLSEnabled}},
	)
}
