// Command harden-plugin-kafka hardens Apache Kafka listeners.
//
// This first slice implements Verify: every listener of the broker — those
// in listeners, the controller listeners included, not only the advertised
// ones — is probed: a cleartext ApiVersions request to each port (an answer
// is a failure), and the TLS ones are enumerated with the probe kit's Kafka
// dialect (versions, suites, groups, certificate, client-certificate
// enforcement through an ApiVersions request after the handshake). Render,
// plan and apply (server.properties, keystores, KIP-226 rotation) arrive with
// the rest of the Kafka plugin issue; until then the plugin does not
// advertise them.
package main
