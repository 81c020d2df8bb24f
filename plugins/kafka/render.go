package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// spec is the Kafka target's spec block.
type spec struct {
	// Listeners the broker should have, all over TLS. Controller listeners
	// are marked; the first other listener carries inter-broker traffic
	// unless InterBrokerListener names one.
	Listeners           []listenerSpec `json:"listeners" jsonschema:"the broker's listeners after hardening, all SSL"`
	InterBrokerListener string         `json:"inter_broker_listener" jsonschema:"listener for inter-broker traffic (default: the first non-controller listener)"`
	// StoreDir is where keystore, truststore and the password file live on
	// the broker host (default: "harden" next to connection.config_file).
	StoreDir string `json:"store_dir" jsonschema:"directory for keystore, truststore and password file on the broker host"`
	// SuperUsers are extra principals (certificate CNs) with every right
	// under mTLS, besides the brokers' and harden's own identities.
	SuperUsers []string `json:"super_users" schema:"items.pattern=^[^;,]+$" jsonschema:"extra principals (certificate CNs) made super users under mTLS; the brokers' and harden's own are always added"`
	// Brokers: per-broker listeners of a cluster target (with
	// connection.brokers) instead of Listeners.
	Brokers []brokerSpec `json:"brokers" schema:"minItems=1" jsonschema:"a cluster: each broker's listeners after hardening (with connection.brokers)"`
	// Migration: the phase of a rolling PLAINTEXT→SSL migration.
	Migration *migration `json:"migration"`
}

type listenerSpec struct {
	Name       string `json:"name" schema:"required,pattern=^[A-Za-z][A-Za-z0-9_]*$" jsonschema:"listener name, e.g. SSL or CONTROLLER"`
	Address    string `json:"address" schema:"required" jsonschema:"host:port the listener binds"`
	Controller bool   `json:"controller" jsonschema:"a KRaft controller listener"`
}

func (s spec) storeDir(configFile string) string {
	if s.StoreDir != "" {
		return s.StoreDir
	}
	if configFile != "" {
		return filepath.Join(filepath.Dir(configFile), "harden")
	}
	return "/etc/kafka/harden"
}

// jsseSuites is the union of the profile's TLS 1.2 and TLS 1.3 suites by
// IANA (= JSSE) name: in JSSE a list of only TLS 1.2 suites silently
// disables TLS 1.3, and only TLS 1.3 suites kill TLS 1.2.
func jsseSuites(p tlsprofile.Profile) []string {
	var out []string
	for _, id := range append(append([]uint16{}, p.TLS13Suites...), p.TLS12Suites...) {
		if s, ok := tlsprofile.SuiteByID(id); ok {
			out = append(out, s.IANA)
		}
	}
	return out
}

// storePassword derives a store password from the key material: render
// stays deterministic, and the password is no easier to learn than the key
// it protects.
func storePassword(label string, key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("harden kafka store password: " + label))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))[:32]
}

// detRand is a deterministic byte stream (HMAC counter mode) for PKCS#12
// salts and IVs, so two renders of the same request are byte-identical.
type detRand struct {
	key     []byte
	counter uint64
	buf     []byte
}

func (d *detRand) Read(p []byte) (int, error) {
	for len(d.buf) < len(p) {
		m := hmac.New(sha256.New, d.key)
		fmt.Fprintf(m, "%d", d.counter)
		d.counter++
		d.buf = append(d.buf, m.Sum(nil)...)
	}
	n := copy(p, d.buf)
	d.buf = d.buf[n:]
	return n, nil
}

// Render produces the broker's TLS settings (to merge into
// server.properties), a PKCS#12 keystore and truststore (the truststore
// with Java's trusted-certificate attribute, or the JVM sees it empty), the
// 0600 password file the settings reference through Kafka's FileConfigProvider
// (no password in server.properties), the JVM @argfile for the key-exchange
// groups, and client configs.
func (kafka) Render(_ context.Context, q sdk.RenderRequest, r *sdk.RenderResponse) {
	c, s, ok := sdk.Decode[connection, spec](q.Target, &r.Diagnostics)
	if !ok {
		return
	}
	all, err := brokersOf(c, s)
	if err != nil {
		r.Diagnostics.AddAttributeError(sdk.Path{"connection"}, "invalid broker list", err.Error())
		return
	}
	for _, b := range all {
		rd, ok := renderTarget(q.RequestContext, c, s, b, all, nil, nil, &r.Diagnostics)
		if !ok {
			return
		}
		for _, a := range rd.artifacts {
			if len(all) > 1 {
				a.Path = fmt.Sprintf("broker-%d/%s", b.NodeID, a.Path)
			}
			r.Artifacts = append(r.Artifacts, a)
		}
	}
}

// storePasswords protect the PKCS#12 stores. Render derives them from the
// key; apply keeps the broker's existing ones (secrets.properties), so a
// rotated keystore keeps the password the running broker already knows and
// KIP-226 rotation needs to change nothing but the store location.
type storePasswords struct{ keystore, truststore string }

// rendered is everything render produces for one broker, with the parts
// plan and apply need.
type rendered struct {
	conn      connection
	spec      spec
	broker    brokerTarget
	dir       string
	settings  [][2]string
	artifacts []sdk.Artifact
	leaf      *x509.Certificate
	mtls      bool
}

// renderTarget renders one broker b of the target (all: every broker);
// cur is its server.properties (nil offline: the end state), pw the store
// passwords it already has (nil: derived from the key).
func renderTarget(q sdk.RequestContext, c connection, s spec, b brokerTarget, all []brokerTarget, cur map[string]string, pw *storePasswords, d *sdk.Diagnostics) (rendered, bool) {
	rd := rendered{broker: b, conn: c, spec: s}
	if !addGrammarProblems(rd.conn, rd.spec, d) {
		return rd, false
	}
	if len(q.Certificates.ChainPEM) == 0 || len(q.Certificates.CABundlePEM) == 0 {
		d.AddAttributeError(sdk.Path{"certificate"}, "Kafka needs a broker certificate and the CA bundle", "set certificate.cert_file/key_file and certificates.files.ca_file")
		return rd, false
	}
	pair, err := tls.X509KeyPair(q.Certificates.ChainPEM, q.Certificates.KeyPEM)
	if err != nil {
		d.AddAttributeError(sdk.Path{"certificate"}, "invalid broker certificate", err.Error())
		return rd, false
	}
	chain, _ := sdk.ParseCertificatesPEM(q.Certificates.ChainPEM)
	cas, err := sdk.ParseCertificatesPEM(q.Certificates.CABundlePEM)
	if err != nil {
		d.AddAttributeError(sdk.Path{"certificate"}, "invalid CA bundle", err.Error())
		return rd, false
	}
	rd.leaf = chain[0]
	rd.dir = rd.spec.storeDir(b.ConfigFile)
	if pw == nil {
		pw = &storePasswords{storePassword("keystore", q.Certificates.KeyPEM), storePassword("truststore", q.Certificates.KeyPEM)}
	}
	rnd := &detRand{key: append([]byte("pkcs12"), q.Certificates.KeyPEM...)}
	keystore, err := pkcs12.Modern.WithRand(rnd).Encode(pair.PrivateKey, chain[0], chain[1:], pw.keystore)
	if err != nil {
		d.AddError("build keystore", err.Error())
		return rd, false
	}
	// The truststore depends on the CA bundle only, so a renewed broker
	// certificate leaves it byte for byte as it is.
	truststore, err := pkcs12.Modern.WithRand(&detRand{key: append([]byte("pkcs12 truststore"), q.Certificates.CABundlePEM...)}).EncodeTrustStore(cas, pw.truststore)
	if err != nil {
		d.AddError("build truststore", err.Error())
		return rd, false
	}
	// Store files are named by what they hold: a rotation is a new path,
	// which is what makes Kafka reload it (KIP-226 ignores a rewrite of the
	// same path), and the previous store stays in place for a rollback.
	keystoreName := "broker-" + fingerprint(chain[0].Raw) + ".p12"
	truststoreName := "truststore-" + fingerprint(q.Certificates.CABundlePEM) + ".p12"
	secretsFile := filepath.Join(rd.dir, "secrets.properties")
	ref := func(key string) string { return "${file:" + secretsFile + ":" + key + "}" }
	rd.mtls = q.Policy.InMTLSScope(q.Target.Name)
	var superUsers []string
	if rd.mtls {
		superUsers = append(superUsers, chain[0].Subject.CommonName)
		if err := certificatePrincipal(chain[0].Subject.CommonName, "broker"); err != nil {
			d.AddAttributeError(sdk.Path{"certificate"}, "invalid broker certificate", err.Error())
			return rd, false
		}
		if client, err := sdk.ParseCertificatesPEM(q.Certificates.ClientChainPEM); err == nil && len(client) > 0 {
			if err := certificatePrincipal(client[0].Subject.CommonName, "client"); err != nil {
				d.AddAttributeError(sdk.Path{"certificate"}, "invalid client certificate", err.Error())
				return rd, false
			}
			superUsers = append(superUsers, client[0].Subject.CommonName)
		}
		superUsers = append(superUsers, rd.spec.SuperUsers...)
	}
	layout, err := listenerLayout(rd.spec, b, all, cur)
	if err != nil {
		d.AddAttributeError(sdk.Path{"spec", "migration"}, b.label()+": "+err.Error(), "")
		return rd, false
	}
	rd.settings = brokerSettings(layout, q.Policy.Profile, rd.mtls, rd.mtls && rd.spec.phase() == phaseTLSOnly, superUsers,
		filepath.Join(rd.dir, keystoreName), filepath.Join(rd.dir, truststoreName), ref)
	var conf strings.Builder
	conf.WriteString("# TLS settings rendered by harden; harden apply merges them into server.properties.\n")
	for _, kv := range rd.settings {
		conf.WriteString(propertyLine(kv[0], kv[1]) + "\n")
	}
	secrets := fmt.Sprintf("keystore.password=%s\ntruststore.password=%s\n", pw.keystore, pw.truststore)
	client := clientSettings(q.Policy.Profile, rd.mtls, rd.dir, truststoreName, pw.truststore)
	rd.artifacts = []sdk.Artifact{
		{Path: "server-harden.properties", Content: []byte(conf.String()), Mode: 0o644, Description: "broker TLS settings (no secrets: passwords come from secrets.properties)"},
		{Path: "harden/" + keystoreName, Content: keystore, Mode: 0o600, Sensitive: true, Description: "broker keystore (PKCS#12)"},
		{Path: "harden/" + truststoreName, Content: truststore, Mode: 0o600, Description: "truststore with the policy CA (PKCS#12, Java trusted-certificate entries)"},
		{Path: "harden/secrets.properties", Content: []byte(secrets), Mode: 0o600, Sensitive: true, Description: "store passwords for Kafka's FileConfigProvider"},
		{Path: "harden/jvm.args", Content: []byte(jvmOptions(q.Policy.Profile)), Mode: 0o644,
			Description: "Java @argfile: start the broker with KAFKA_OPTS=@" + filepath.Join(rd.dir, "jvm.args") + " (key-exchange groups are JVM-wide; Kafka has no setting for them)"},
		{Path: "client.properties", Content: []byte(client), Mode: 0o600, Sensitive: true, Description: "producer/consumer/admin client TLS settings"},
		{Path: "spark-kafka-options.properties", Content: []byte(sparkOptions(client)), Mode: 0o600, Sensitive: true, Description: "the same for Spark's Kafka source/sink (kafka.-prefixed)"},
	}
	if admin, ok := adminClient(q, rd.mtls, rd.dir, truststoreName, pw.truststore); ok {
		rd.artifacts = append(rd.artifacts, admin...)
	}
	return rd, true
}

// fingerprint names a store file: the first 12 hex digits of a SHA-256.
func fingerprint(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:6])
}

// brokerSettings: the listener layout, then the TLS settings; the
// authorizer only when every client has a certificate principal (mTLS, and
// no listener without TLS left: phase tls-only).
func brokerSettings(layout [][2]string, p tlsprofile.Profile, mtls, authorizer bool, superUsers []string, keystore, truststore string, ref func(string) string) [][2]string {
	clientAuth := "none"
	if mtls {
		clientAuth = "required"
	}
	var versions []string
	for _, v := range p.Versions {
		versions = append(versions, tlsprofile.VersionName(v))
	}
	out := append([][2]string{}, layout...)
	out = append(out,
		[2]string{"config.providers", "file"},
		[2]string{"config.providers.file.class", "org.apache.kafka.common.config.provider.FileConfigProvider"},
		[2]string{"ssl.keystore.type", "PKCS12"},
		[2]string{"ssl.keystore.location", keystore},
		[2]string{"ssl.keystore.password", ref("keystore.password")},
		[2]string{"ssl.key.password", ref("keystore.password")},
		[2]string{"ssl.truststore.type", "PKCS12"},
		[2]string{"ssl.truststore.location", truststore},
		[2]string{"ssl.truststore.password", ref("truststore.password")},
		[2]string{"ssl.client.auth", clientAuth},
		[2]string{"ssl.enabled.protocols", strings.Join(versions, ",")},
		[2]string{"ssl.protocol", tlsprofile.VersionName(p.MaxVersion())},
		[2]string{"ssl.cipher.suites", strings.Join(jsseSuites(p), ",")},
		[2]string{"ssl.endpoint.identification.algorithm", "https"},
	)
	if authorizer {
		// A valid certificate is not a skeleton key: principals are the
		// certificate CNs, the StandardAuthorizer denies what no ACL allows,
		// and only the brokers and harden's admin identity are super users.
		var users []string
		for _, u := range superUsers {
			users = append(users, "User:"+u)
		}
		out = append(out,
			[2]string{"ssl.principal.mapping.rules", principalMappingRule},
			[2]string{"authorizer.class.name", "org.apache.kafka.metadata.authorizer.StandardAuthorizer"},
			[2]string{"allow.everyone.if.no.acl.found", "false"},
			[2]string{"super.users", strings.Join(users, ";")},
		)
	}
	return out
}

// jdkGroups maps profile groups to JDK names; hybrid PQ groups need a newer
// JDK than 17 and are left out.
var jdkGroups = map[string]string{"x25519": "x25519", "secp256r1": "secp256r1", "secp384r1": "secp384r1", "secp521r1": "secp521r1"}

func jvmOptions(p tlsprofile.Profile) string {
	var groups []string
	for _, g := range p.Groups {
		if n, ok := jdkGroups[g]; ok {
			groups = append(groups, n)
		}
	}
	return "# harden: TLS key-exchange groups of the policy profile (JVM-wide)\n-Djdk.tls.namedGroups=" + strings.Join(groups, ",") + "\n"
}

// principalMappingRule makes a certificate's CN the Kafka principal
// (User:<CN>); other DNs keep Kafka's default (the whole DN).
const principalMappingRule = "RULE:^CN=([^,]+)(,.*)?$/$1/,DEFAULT"

func clientSettings(p tlsprofile.Profile, mtls bool, dir, truststoreName, trustPass string) string {
	var versions []string
	for _, v := range p.Versions {
		versions = append(versions, tlsprofile.VersionName(v))
	}
	lines := []string{
		"security.protocol=SSL",
		"ssl.truststore.type=PKCS12",
		propertyLine("ssl.truststore.location", filepath.Join(dir, truststoreName)),
		propertyLine("ssl.truststore.password", trustPass),
		propertyLine("ssl.enabled.protocols", strings.Join(versions, ",")),
		propertyLine("ssl.cipher.suites", strings.Join(jsseSuites(p), ",")),
		"ssl.endpoint.identification.algorithm=https",
	}
	if mtls {
		lines = append(lines, "# mTLS: each client needs its own keystore from the policy's CA",
			"ssl.keystore.type=PKCS12", "ssl.keystore.location=/path/to/client.p12", "ssl.keystore.password=<client keystore password>")
	}
	return strings.Join(lines, "\n") + "\n"
}

// sparkOptions prefixes every client setting with "kafka." as Spark's Kafka
// source and sink expect.
func sparkOptions(client string) string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(client), "\n") {
		if strings.HasPrefix(l, "#") {
			out = append(out, l)
			continue
		}
		out = append(out, "kafka."+l)
	}
	return strings.Join(out, "\n") + "\n"
}

var _ io.Reader = (*detRand)(nil)

// adminClient renders harden's admin identity for Kafka's admin tools
// (kafka-configs.sh --command-config admin.properties, kafka-acls.sh):
// a PKCS#12 keystore (0600) and the properties that use it. They stay with
// the operator (render output), never on the broker.
func adminClient(q sdk.RequestContext, mtls bool, dir, truststoreName, trustPass string) ([]sdk.Artifact, bool) {
	if !mtls || len(q.Certificates.ClientChainPEM) == 0 {
		return nil, false
	}
	pair, err := tls.X509KeyPair(q.Certificates.ClientChainPEM, q.Certificates.ClientKeyPEM)
	if err != nil {
		return nil, false
	}
	chain, err := sdk.ParseCertificatesPEM(q.Certificates.ClientChainPEM)
	if err != nil {
		return nil, false
	}
	pass := storePassword("admin keystore", q.Certificates.ClientKeyPEM)
	ks, err := pkcs12.Modern.WithRand(&detRand{key: append([]byte("pkcs12 admin"), q.Certificates.ClientKeyPEM...)}).Encode(pair.PrivateKey, chain[0], chain[1:], pass)
	if err != nil {
		return nil, false
	}
	props := strings.Join([]string{
		"# harden's admin identity (" + chain[0].Subject.CommonName + ", a super user): kafka-configs.sh/kafka-acls.sh --command-config admin.properties",
		"security.protocol=SSL",
		"ssl.truststore.type=PKCS12",
		propertyLine("ssl.truststore.location", filepath.Join(dir, truststoreName)),
		propertyLine("ssl.truststore.password", trustPass),
		"ssl.keystore.type=PKCS12",
		"ssl.keystore.location=admin.p12",
		propertyLine("ssl.keystore.password", pass),
		"ssl.endpoint.identification.algorithm=https",
	}, "\n") + "\n"
	return []sdk.Artifact{
		{Path: "admin.p12", Content: ks, Mode: 0o600, Sensitive: true, Description: "harden's admin client identity (PKCS#12) for Kafka's admin tools"},
		{Path: "admin.properties", Content: []byte(props), Mode: 0o600, Sensitive: true, Description: "admin client config for kafka-configs.sh / kafka-acls.sh (--command-config)"},
	}, true
}
