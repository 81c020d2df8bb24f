package probe

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
)

// Kafka is a Kafka listener: TLS from the first byte, and one ApiVersions
// request as the application exchange (with TLS 1.3 a broker requiring
// client certificates refuses only there).
//
// Refusals:
//   - plaintext ApiVersions: an answer that is a TLS record (an SSL listener
//     answers the bytes with an alert). A broker that closes the connection
//     or resets it is inconclusive: a broker at max.connections(.per.ip)
//     does the same to every client;
//   - session without a (trusted) client certificate: a TLS alert.
//
// An ApiVersions response carrying the request's correlation id is
// acceptance.
var Kafka Dialect = kafkaDialect{}

type kafkaDialect struct{}

func (kafkaDialect) Name() string                             { return "kafka" }
func (kafkaDialect) singleProtocolPort() bool                 { return true }
func (kafkaDialect) ALPN() []string                           { return nil }
func (kafkaDialect) StartTLS(context.Context, net.Conn) error { return nil }

const kafkaCorrelationID = 0x68617264 // "hard"

// apiVersionsRequest is ApiVersions v0 (api key 18), client id "harden-probe".
func apiVersionsRequest() []byte {
	var body []byte
	body = binary.BigEndian.AppendUint16(body, 18)
	body = binary.BigEndian.AppendUint16(body, 0)
	body = binary.BigEndian.AppendUint32(body, kafkaCorrelationID)
	body = binary.BigEndian.AppendUint16(body, uint16(len("harden-probe")))
	body = append(body, "harden-probe"...)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// errTLSAnswer: the peer answered a plaintext request with a TLS record.
var errTLSAnswer = fmt.Errorf("answered with a TLS record")

// apiVersionsAnswer reads a response header and checks the correlation id.
func apiVersionsAnswer(r io.Reader) error {
	hdr := make([]byte, 8)
	n, err := io.ReadFull(r, hdr)
	if n >= 3 && tlsRecordAnswer(hdr[:n]) {
		return errTLSAnswer
	}
	if err != nil {
		return err
	}
	l := binary.BigEndian.Uint32(hdr)
	if l < 4 || l > 1<<20 {
		return fmt.Errorf("not a Kafka response (length %d)", l)
	}
	if id := binary.BigEndian.Uint32(hdr[4:]); id != kafkaCorrelationID {
		return fmt.Errorf("not a Kafka response (correlation id %#x)", id)
	}
	return nil
}

func (kafkaDialect) Plaintext(ctx context.Context, conn net.Conn) (Observation, error) {
	if _, err := conn.Write(apiVersionsRequest()); err != nil {
		return Observation{}, transient("send a plaintext ApiVersions request", err)
	}
	switch err := apiVersionsAnswer(conn); {
	case err == nil:
		return accepted("broker answered a plaintext ApiVersions request"), nil
	case err == errTLSAnswer:
		return refused("plaintext ApiVersions answered with a TLS record (the listener speaks TLS only)"), nil
	default:
		return Observation{}, transient("plaintext ApiVersions request", err)
	}
}

func (kafkaDialect) Exchange(ctx context.Context, conn *tls.Conn) (Observation, error) {
	_, err := conn.Write(apiVersionsRequest())
	if err == nil {
		err = apiVersionsAnswer(conn)
	}
	if alert, ok := remoteAlert(err); ok {
		return refused("session refused with a TLS alert: %s", alert), nil
	}
	if err != nil {
		return Observation{}, transient("ApiVersions over TLS", err)
	}
	return accepted("broker answered ApiVersions over TLS"), nil
}
