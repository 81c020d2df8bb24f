// Command harden-plugin-kafka hardens Apache Kafka brokers (KRaft).
//
// Verify probes every listener in server.properties — controller listeners
// included, not only the advertised ones: a cleartext ApiVersions request to
// each port (an answer is a failure), and a TLS enumeration through the
// probe kit's Kafka dialect (versions, suites, groups, certificate,
// client-certificate enforcement through an ApiVersions request after the
// handshake). It then produces a random canary over TLS with harden's
// certificate and reads it back, and reads every broker's running
// configuration through DescribeConfigs (client auth, protocols, suites,
// inter-broker and controller TLS, authorizer).
//
// Evidence: only the broker's own answer concludes (a Kafka error code, a
// TLS alert it sent, a certificate the policy CA does not verify); timeouts,
// resets and garbage are inconclusive, and every check verify promises is
// reported even when nothing answered. Running settings are configuration:
// a high-severity kafka.config.* check passes only when the listener probes
// observed what the setting configures on every listener it governs
// (ssl.enabled.protocols ↔ tls.protocol.versions, ssl.client.auth ↔
// tls.client_auth.required, inter-broker/controller listeners ↔ cleartext
// refused); otherwise it is configuration-only (checks.Configured). Deny by
// default is observed with connection.probe_credentials_file, an identity
// from the policy CA without ACLs: every broker must refuse its Metadata
// (TOPIC_AUTHORIZATION_FAILED) and DescribeAcls
// (CLUSTER_AUTHORIZATION_FAILED). verify never issues such an identity
// (with vault-pki it does not issue at all); without one the authorizer
// check rests on configuration and warns. DescribeConfigs does not report
// allow.everyone.if.no.acl.found (Kafka 4.1): it is read from
// server.properties when config_file is given.
//
// Render produces the settings for every listener, PKCS#12 keystore and
// truststore (named by content), the 0600 password file they reference
// through Kafka's FileConfigProvider, a Java @argfile with the key-exchange
// groups, the CN principal mapping with a deny-by-default StandardAuthorizer
// under mTLS, and client/Spark configs.
//
// Every value written into server.properties goes through one writer
// (propertyLine, java.util.Properties.store's escaping), and every policy
// value bound for it is first checked for the grammar of its setting; the
// parser follows java.util.Properties.load as Kafka calls it (ISO 8859-1,
// \uXXXX, the JDK's continuation rules), held to the JDK by a
// differential test.
//
// Plan compares them with server.properties, the store dir and the running
// broker (DescribeConfigs, per-broker dynamic overrides): a file the
// running broker does not serve is a pending restart — the controller
// listener a KIP-226 rotation cannot reach too, named as such — and an
// interrupted apply's journal is a pending change. Apply is static (merge, the
// operator's restart command, verify of the restarted broker, restore and
// restart on failure) or, when only the stores change and the new
// certificate keeps the served subject and names, a KIP-226 update on the
// running broker confirmed by fresh handshakes. Both run under a per-broker
// lock and an intent journal beside server.properties (shared/sdk/applykit):
// backups recorded before each change, stores first, server.properties last
// in one rename, then the restart, then verify; a killed run is rolled back
// by the next apply, Ctrl-C rolls back before returning
// kafka.apply.interrupted. The restart command runs in its own process group
// (applykit.Run).
//
// Inventory lists what every listener verify probes serves, in fresh
// handshakes through the Kafka dialect (probe.Served); controller listeners
// reload on restart only.
package main
