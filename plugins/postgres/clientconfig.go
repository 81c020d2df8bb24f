package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"

	"github.com/harden-dev/harden/shared/sdk"
)

// RenderClient renders one client identity's connection settings for the
// target (CapClientConfig): a libpq connection string and a pgjdbc URL,
// both verify-full and both naming the client's own files. The client logs
// in as the role named like its certificate's CN (what a hostssl ... cert
// rule checks); no password, key or keystore password is in an artifact.
func (postgres) RenderClient(_ context.Context, q sdk.RenderRequest, r *sdk.RenderResponse) {
	c, _, ok := sdk.Decode[connection, spec](q.Target, &r.Diagnostics)
	if !ok {
		return
	}
	if q.Client == nil {
		r.Diagnostics.AddError("no client identity in the request", "RenderClient renders one client's configuration; Render renders the server's")
		return
	}
	id := *q.Client
	fail := func(summary string, err error) {
		r.Diagnostics.AddError("client "+id.Name+" on target "+q.Target.Name+": "+summary, err.Error())
	}
	if id.Name == "" {
		r.Diagnostics.AddError("client identity without a name", "the name is the certificate's CN and the role it logs in as")
		return
	}
	for _, f := range []struct{ what, path string }{
		{"ca_file", id.CAFile}, {"cert_file", id.CertFile}, {"key_file", id.KeyFile},
		{"keystore_file", id.KeystoreFile}, {"keystore_password_file", id.KeystorePasswordFile},
	} {
		if err := clientPath(f.path); err != nil {
			fail(f.what+" cannot be used", err)
			return
		}
	}
	db := c.Database
	if db == "" {
		db = "postgres" // the schema's default, as connect uses it
	}
	port := itoa(c.Port)
	libpq, err := conninfo([][2]string{{"host", c.Host}, {"port", port}, {"dbname", db}, {"user", id.Name}, {"sslmode", "verify-full"},
		{"sslrootcert", id.CAFile}, {"sslcert", id.CertFile}, {"sslkey", id.KeyFile}})
	if err != nil {
		fail("cannot write the libpq connection string", err)
		return
	}
	// pgjdbc reads sslkey by its extension: .p12/.pfx as PKCS#12 (the
	// keystore, with sslpassword), anything else as a DER PKCS#8 key.
	jdbc, err := jdbcURL(c.Host, port, db, [][2]string{{"sslmode", "verify-full"}, {"sslrootcert", id.CAFile}, {"sslcert", id.CertFile},
		{"sslkey", id.KeystoreFile}, {"user", id.Name}})
	if err != nil {
		fail("cannot write the JDBC URL", err)
		return
	}
	if ext := strings.ToLower(filepath.Ext(id.KeystoreFile)); ext != ".p12" && ext != ".pfx" {
		r.Diagnostics.AddWarning("client "+id.Name+": the keystore's name does not end in .p12 or .pfx",
			"pgjdbc takes an sslkey without that extension for a DER PKCS#8 key and cannot read the PKCS#12 keystore; jdbc.url names "+id.KeystoreFile)
	}
	r.Artifacts = append(r.Artifacts,
		sdk.Artifact{Path: "libpq.conf", Content: []byte(libpq + "\n"), Mode: 0o644,
			Description: "libpq connection string for " + id.Name + " (psql, pgx, psycopg): verify-full with the client certificate; no secret (libpq wants the key file 0600)"},
		sdk.Artifact{Path: "jdbc.url", Content: []byte(jdbc + "\n"), Mode: 0o644,
			Description: "pgjdbc URL for " + id.Name + " (verify-full, the PKCS#12 keystore as sslkey); pass sslpassword separately, see jdbc.txt"},
		sdk.Artifact{Path: "jdbc.txt", Content: []byte(jdbcNote(id, q.Target.Name)), Mode: 0o644,
			Description: "how to pass the keystore password to pgjdbc"},
	)
}

// clientPath: an absolute path on the client's machine, one line.
func clientPath(p string) error {
	switch {
	case p == "":
		return errors.New("not set")
	case !filepath.IsAbs(p):
		return errors.New("not an absolute path (the client would resolve it against its working directory)")
	case strings.ContainsFunc(p, unicode.IsControl):
		return errors.New("control character or line break in the path")
	}
	return nil
}

// conninfo writes a libpq keyword/value connection string: a value that
// holds blanks, a quote or a backslash is single-quoted with \' and \\
// escaped (libpq's conninfo grammar, which pgx follows). Control characters
// are refused (the string is one line, and libpq cannot carry a NUL at all),
// and so is an empty value: libpq takes an empty user for no user, its default.
func conninfo(params [][2]string) (string, error) {
	parts := make([]string, 0, len(params))
	for _, kv := range params {
		v := kv[1]
		switch {
		case v == "":
			return "", fmt.Errorf("%s: empty value (libpq takes it for unset and uses its default)", kv[0])
		case strings.ContainsFunc(v, unicode.IsControl):
			return "", fmt.Errorf("%s: control character or line break in the value", kv[0])
		}
		if strings.ContainsAny(v, " '\\") {
			v = "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
		}
		parts = append(parts, kv[0]+"="+v)
	}
	return strings.Join(parts, " "), nil
}

// jdbcHost: what a URL's authority can carry unescaped. pgjdbc splits the
// authority itself, so a host is a name or an IP address, nothing else.
var jdbcHost = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)

// jdbcURL writes jdbc:postgresql://host:port/db?k=v&... . pgjdbc decodes the
// database and every value with java.net.URLDecoder (+ is a blank), so
// they are percent-encoded with blanks as %20: URLDecoder and net/url then
// read the same text back.
func jdbcURL(host, port, db string, params [][2]string) (string, error) {
	if net.ParseIP(host) == nil && !jdbcHost.MatchString(host) {
		return "", errors.New("connection.host is not a host name or IP address a JDBC URL can carry")
	}
	esc := func(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
	var b strings.Builder
	b.WriteString("jdbc:postgresql://" + net.JoinHostPort(host, port) + "/" + esc(db))
	for i, kv := range params {
		if strings.ContainsFunc(kv[1], unicode.IsControl) {
			return "", fmt.Errorf("%s: control character or line break in the value", kv[0])
		}
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		b.WriteString(sep + kv[0] + "=" + esc(kv[1]))
	}
	return b.String(), nil
}

// jdbcNote tells where the keystore password comes from: pgjdbc takes it
// as the connection property sslpassword, which must not sit in the URL
// (URLs end up in logs and process lists).
func jdbcNote(id sdk.ClientIdentity, target string) string {
	return "pgjdbc for " + id.Name + " on target " + target + ": connect with the URL in jdbc.url.\n" +
		"\n" +
		"The URL names the PKCS#12 keystore " + id.KeystoreFile + " as sslkey (pgjdbc reads a .p12 or .pfx\n" +
		"sslkey as PKCS#12; the certificate comes from the keystore). Its password is not in the URL:\n" +
		"read it from " + id.KeystorePasswordFile + " (one line, no newline) when the application starts\n" +
		"and pass it as the connection property sslpassword, never in the URL:\n" +
		"\n" +
		"    Properties props = new Properties();\n" +
		"    props.setProperty(\"sslpassword\", Files.readString(Path.of(\"" + javaString(id.KeystorePasswordFile) + "\")));\n" +
		"    Connection conn = DriverManager.getConnection(url, props);\n" +
		"\n" +
		"Spark's JDBC source passes its options to the driver: .option(\"url\", url).option(\"sslpassword\", password).\n"
}

// javaString escapes a path for the Java string literal of the example.
func javaString(s string) string { return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) }
