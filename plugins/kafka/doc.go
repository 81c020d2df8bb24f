// Command harden-plugin-kafka hardens Apache Kafka listeners.
//
// This first slice implements Verify: every listener of the broker — those
// in listeners, the controller listeners included, not only the advertised
// ones — is probed: a cleartext ApiVersions request to each port (an answer
// is a failure), and the TLS ones are enumerated with the probe kit's Kafka
// dialect (versions, suites, groups, certificate, client-certificate
// enforcement through an ApiVersions request after the handshake).
//
// Render produces the TLS settings for every listener (controller included)
// to merge into server.properties, PKCS#12 keystore and truststore, the 0600
// password file they reference through Kafka's FileConfigProvider, the JVM
// option that limits key-exchange groups, and client/Spark configs.
//
// Plan compares the rendered settings and stores with server.properties and
// the store files, and reads the running broker through DescribeConfigs
// (sarama) to report a pending restart. Apply (merge with backups, restart,
// KIP-226 rotation) arrives with the rest of the Kafka plugin issue; until
// then the plugin does not advertise it.
package main
