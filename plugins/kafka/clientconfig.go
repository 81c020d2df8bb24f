package main

import (
	"context"
	"net"
	"path/filepath"
	"slices"
	"strings"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// RenderClient renders one client identity's configuration for the target
// (CapClientConfig): client.properties for Kafka's Java clients and the
// same settings kafka.-prefixed for Spark's Kafka source and sink. They
// name the client's own keystore and truststore; the store password is read
// when the client starts, through Kafka's DirectoryConfigProvider from the
// client's password file, so neither file holds a secret and both can be
// shipped, diffed and logged like any other configuration.
func (kafka) RenderClient(_ context.Context, q sdk.RenderRequest, r *sdk.RenderResponse) {
	c, s, ok := sdk.Decode[connection, spec](q.Target, &r.Diagnostics)
	if !ok {
		return
	}
	if q.Client == nil {
		r.Diagnostics.AddError("no client identity in the request", "RenderClient renders one client's configuration; Render renders the broker's")
		return
	}
	settings, ok := clientIdentitySettings(c, s, q.Policy.Profile, *q.Client, &r.Diagnostics)
	if !ok {
		return
	}
	if !q.Policy.InMTLSScope(q.Target.Name) {
		r.Diagnostics.AddWarning("target "+q.Target.Name+" is not in the mTLS scope",
			"its brokers do not ask for client certificates (ssl.client.auth=none): "+q.Client.Name+" connects over TLS but as User:ANONYMOUS, not User:"+q.Client.Name)
	}
	client := clientPropertiesText(q.Client.Name, settings)
	r.Artifacts = append(r.Artifacts,
		sdk.Artifact{Path: "client.properties", Content: []byte(client), Mode: 0o644,
			Description: "Kafka client configuration for " + q.Client.Name + " (producer/consumer/admin --command-config); no secrets: the store password is read from " + q.Client.KeystorePasswordFile + " at run time"},
		sdk.Artifact{Path: "spark-options.properties", Content: []byte(sparkOptions(client)), Mode: 0o644,
			Description: "the same for Spark's Kafka source/sink (.option(key, value) for each kafka.-prefixed line); no secrets"},
	)
}

// dirProvider is the DirectoryConfigProvider's alias in the client's
// config.providers: ${dir:<directory>:<file name>} is the file's content.
const dirProvider = "dir"

// clientIdentitySettings are the client's settings in the order they are
// written. False (with the reason in d) when a value would not mean in the
// file what it says.
func clientIdentitySettings(c connection, s spec, p tlsprofile.Profile, id sdk.ClientIdentity, d *sdk.Diagnostics) ([][2]string, bool) {
	fail := func(summary, detail string) ([][2]string, bool) {
		d.AddError("client "+id.Name+": "+summary, detail)
		return nil, false
	}
	if why := checkPrincipal(id.Name); why != "" {
		// The name is the certificate's CN, which the principal mapping
		// rule turns into User:<name>.
		return fail("the name cannot be a Kafka principal", why)
	}
	for _, f := range []struct{ what, path string }{
		{"keystore_file", id.KeystoreFile}, {"truststore_file", id.TruststoreFile}, {"keystore_password_file", id.KeystorePasswordFile},
	} {
		switch {
		case f.path == "":
			return fail(f.what+" is not set", "the Java client needs a PKCS#12 keystore, a truststore and the file with their password")
		case !filepath.IsAbs(f.path):
			return fail(f.what+" is not an absolute path", "the client would resolve it against its working directory")
		case hasControl(f.path):
			return fail(f.what+": control character or line break in the path", "")
		}
	}
	// ${dir:<directory>:<name>}: Kafka's ConfigTransformer splits at the
	// colons and ends at the first }, so neither may appear in the parts.
	pwDir, pwName := filepath.Dir(id.KeystorePasswordFile), filepath.Base(id.KeystorePasswordFile)
	if strings.ContainsAny(id.KeystorePasswordFile, ":{}$") {
		return fail("keystore_password_file cannot hold : { } or $", "it is read through a ${"+dirProvider+":<directory>:<file name>} reference, which these characters would cut short")
	}
	bootstrap, why := clientBootstrap(c, s)
	if why != "" {
		return fail("no bootstrap address for the client", why)
	}
	var versions []string
	for _, v := range p.Versions {
		versions = append(versions, tlsprofile.VersionName(v))
	}
	password := "${" + dirProvider + ":" + pwDir + ":" + pwName + "}"
	return [][2]string{
		{"bootstrap.servers", strings.Join(bootstrap, ",")},
		{"security.protocol", "SSL"},
		{"config.providers", dirProvider},
		{"config.providers." + dirProvider + ".class", "org.apache.kafka.common.config.provider.DirectoryConfigProvider"},
		{"ssl.keystore.type", "PKCS12"},
		{"ssl.keystore.location", id.KeystoreFile},
		{"ssl.keystore.password", password},
		{"ssl.key.password", password},
		{"ssl.truststore.type", "PKCS12"},
		{"ssl.truststore.location", id.TruststoreFile},
		{"ssl.truststore.password", password},
		{"ssl.enabled.protocols", strings.Join(versions, ",")},
		{"ssl.protocol", tlsprofile.VersionName(p.MaxVersion())},
		{"ssl.cipher.suites", strings.Join(jsseSuites(p), ",")},
		{"ssl.endpoint.identification.algorithm", "https"},
	}, true
}

// clientBootstrap: the SSL broker listeners the spec gives the brokers
// (they are also what the brokers advertise, so they are the addresses
// clients reach; in a migration connection.bootstrap may still be the
// PLAINTEXT port), or connection.bootstrap when the spec has none with a
// concrete host.
func clientBootstrap(c connection, s spec) ([]string, string) {
	var out []string
	add := func(addr string) {
		if !slices.Contains(out, addr) {
			out = append(out, addr)
		}
	}
	listeners := append([]listenerSpec{}, s.Listeners...)
	for _, b := range s.Brokers {
		listeners = append(listeners, b.Listeners...)
	}
	for _, l := range listeners {
		host, _, err := net.SplitHostPort(l.Address)
		if l.Controller || err != nil || host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified() {
			continue
		}
		if why := checkAddress(l.Address); why != "" {
			return nil, "spec listener " + l.Name + ": " + why
		}
		add(l.Address)
	}
	if len(out) > 0 {
		return out, ""
	}
	for _, a := range c.Bootstrap {
		if why := checkAddress(a); why != "" {
			return nil, "connection.bootstrap: " + why
		}
		add(a)
	}
	if len(out) == 0 {
		return nil, "neither spec listeners with a host nor connection.bootstrap"
	}
	return out, ""
}

// clientPropertiesText writes the settings with the plugin's one
// properties writer (propertyLine), so the client reads back exactly them.
func clientPropertiesText(name string, settings [][2]string) string {
	var b strings.Builder
	b.WriteString("# Kafka client configuration for " + name + ", rendered by harden. It holds no secret:\n")
	b.WriteString("# the store password is read from its file when the client starts (DirectoryConfigProvider).\n")
	for _, kv := range settings {
		b.WriteString(propertyLine(kv[0], kv[1]) + "\n")
	}
	return b.String()
}
