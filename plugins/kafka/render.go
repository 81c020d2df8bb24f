package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
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
	Listeners           []listenerSpec `json:"listeners"`
	InterBrokerListener string         `json:"inter_broker_listener"`
	// StoreDir is where keystore, truststore and the password file live on
	// the broker host (default: "harden" next to connection.config_file).
	StoreDir string `json:"store_dir"`
}

type listenerSpec struct {
	Name       string `json:"name"`
	Address    string `json:"address"`
	Controller bool   `json:"controller"`
}

func (s spec) storeDir(c connection) string {
	if s.StoreDir != "" {
		return s.StoreDir
	}
	if c.ConfigFile != "" {
		return filepath.Join(filepath.Dir(c.ConfigFile), "harden")
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
// (no password in server.properties), and client configs.
func (kafka) Render(_ context.Context, q sdk.RenderRequest, r *sdk.RenderResponse) {
	var c connection
	var s spec
	if err := q.Target.DecodeConnection(&c); err != nil {
		r.Diagnostics.AddAttributeError(sdk.Path{"connection"}, "invalid connection", err.Error())
		return
	}
	if err := q.Target.DecodeSpec(&s); err != nil {
		r.Diagnostics.AddAttributeError(sdk.Path{"spec"}, "invalid spec", err.Error())
		return
	}
	if len(q.Certificates.ChainPEM) == 0 || len(q.Certificates.CABundlePEM) == 0 {
		r.Diagnostics.AddAttributeError(sdk.Path{"certificate"}, "Kafka needs a broker certificate and the CA bundle", "set certificate.cert_file/key_file and certificates.files.ca_file")
		return
	}
	pair, err := tls.X509KeyPair(q.Certificates.ChainPEM, q.Certificates.KeyPEM)
	if err != nil {
		r.Diagnostics.AddAttributeError(sdk.Path{"certificate"}, "invalid broker certificate", err.Error())
		return
	}
	chain, _ := sdk.ParseCertificatesPEM(q.Certificates.ChainPEM)
	cas, err := sdk.ParseCertificatesPEM(q.Certificates.CABundlePEM)
	if err != nil {
		r.Diagnostics.AddAttributeError(sdk.Path{"certificate"}, "invalid CA bundle", err.Error())
		return
	}
	dir := s.storeDir(c)
	keyPass, trustPass := storePassword("keystore", q.Certificates.KeyPEM), storePassword("truststore", q.Certificates.KeyPEM)
	rnd := &detRand{key: append([]byte("pkcs12"), q.Certificates.KeyPEM...)}
	keystore, err := pkcs12.Modern.WithRand(rnd).Encode(pair.PrivateKey, chain[0], chain[1:], keyPass)
	if err != nil {
		r.Diagnostics.AddError("build keystore", err.Error())
		return
	}
	truststore, err := pkcs12.Modern.WithRand(rnd).EncodeTrustStore(cas, trustPass)
	if err != nil {
		r.Diagnostics.AddError("build truststore", err.Error())
		return
	}
	secretsFile := filepath.Join(dir, "secrets.properties")
	ref := func(key string) string { return "${file:" + secretsFile + ":" + key + "}" }
	mtls := q.Policy.InMTLSScope(q.Target.Name)
	settings := brokerSettings(s, q.Policy.Profile, mtls, dir, ref)
	var conf strings.Builder
	conf.WriteString("# TLS settings rendered by harden; harden apply merges them into server.properties.\n")
	for _, kv := range settings {
		fmt.Fprintf(&conf, "%s=%s\n", kv[0], kv[1])
	}
	secrets := fmt.Sprintf("keystore.password=%s\ntruststore.password=%s\n", keyPass, trustPass)
	client := clientSettings(q.Policy.Profile, mtls, dir, keyPass, trustPass)
	r.Artifacts = append(r.Artifacts,
		sdk.Artifact{Path: "server-harden.properties", Content: []byte(conf.String()), Mode: 0o644, Description: "broker TLS settings (no secrets: passwords come from secrets.properties)"},
		sdk.Artifact{Path: "harden/broker.p12", Content: keystore, Mode: 0o600, Sensitive: true, Description: "broker keystore (PKCS#12)"},
		sdk.Artifact{Path: "harden/truststore.p12", Content: truststore, Mode: 0o644, Description: "truststore with the policy CA (PKCS#12, Java trusted-certificate entries)"},
		sdk.Artifact{Path: "harden/secrets.properties", Content: []byte(secrets), Mode: 0o600, Sensitive: true, Description: "store passwords for Kafka's FileConfigProvider"},
		sdk.Artifact{Path: "kafka-jvm-options.txt", Content: []byte(jvmOptions(q.Policy.Profile)), Mode: 0o644,
			Description: "add to KAFKA_OPTS: key-exchange groups are JVM-wide (Kafka has no setting for them)"},
		sdk.Artifact{Path: "client.properties", Content: []byte(client), Mode: 0o600, Sensitive: true, Description: "producer/consumer/admin client TLS settings"},
		sdk.Artifact{Path: "spark-kafka-options.properties", Content: []byte(sparkOptions(client)), Mode: 0o600, Sensitive: true, Description: "the same for Spark's Kafka source/sink (kafka.-prefixed)"},
	)
}

func brokerSettings(s spec, p tlsprofile.Profile, mtls bool, dir string, ref func(string) string) [][2]string {
	var names, protoMap, adv []string
	var controllers []string
	inter := s.InterBrokerListener
	for _, l := range s.Listeners {
		name := strings.ToUpper(l.Name)
		names = append(names, name+"://"+l.Address)
		protoMap = append(protoMap, name+":SSL")
		if l.Controller {
			controllers = append(controllers, name)
		} else {
			adv = append(adv, name+"://"+l.Address)
			if inter == "" {
				inter = name
			}
		}
	}
	clientAuth := "none"
	if mtls {
		clientAuth = "required"
	}
	var versions []string
	for _, v := range p.Versions {
		versions = append(versions, tlsprofile.VersionName(v))
	}
	out := [][2]string{
		{"listeners", strings.Join(names, ",")},
		{"advertised.listeners", strings.Join(adv, ",")},
		{"listener.security.protocol.map", strings.Join(protoMap, ",")},
		{"inter.broker.listener.name", strings.ToUpper(inter)},
	}
	if len(controllers) > 0 {
		out = append(out, [2]string{"controller.listener.names", strings.Join(controllers, ",")})
	}
	out = append(out,
		[2]string{"config.providers", "file"},
		[2]string{"config.providers.file.class", "org.apache.kafka.common.config.provider.FileConfigProvider"},
		[2]string{"ssl.keystore.type", "PKCS12"},
		[2]string{"ssl.keystore.location", filepath.Join(dir, "broker.p12")},
		[2]string{"ssl.keystore.password", ref("keystore.password")},
		[2]string{"ssl.key.password", ref("keystore.password")},
		[2]string{"ssl.truststore.type", "PKCS12"},
		[2]string{"ssl.truststore.location", filepath.Join(dir, "truststore.p12")},
		[2]string{"ssl.truststore.password", ref("truststore.password")},
		[2]string{"ssl.client.auth", clientAuth},
		[2]string{"ssl.enabled.protocols", strings.Join(versions, ",")},
		[2]string{"ssl.protocol", tlsprofile.VersionName(p.MaxVersion())},
		[2]string{"ssl.cipher.suites", strings.Join(jsseSuites(p), ",")},
		[2]string{"ssl.endpoint.identification.algorithm", "https"},
	)
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
	return "-Djdk.tls.namedGroups=" + strings.Join(groups, ",") + "\n"
}

func clientSettings(p tlsprofile.Profile, mtls bool, dir, keyPass, trustPass string) string {
	var versions []string
	for _, v := range p.Versions {
		versions = append(versions, tlsprofile.VersionName(v))
	}
	lines := []string{
		"security.protocol=SSL",
		"ssl.truststore.type=PKCS12",
		"ssl.truststore.location=" + filepath.Join(dir, "truststore.p12"),
		"ssl.truststore.password=" + trustPass,
		"ssl.enabled.protocols=" + strings.Join(versions, ","),
		"ssl.cipher.suites=" + strings.Join(jsseSuites(p), ","),
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
