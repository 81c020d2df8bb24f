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
var Kafka Dialect = kafkaDialect{}

type kafkaDialect struct{}

func (kafkaDialect) Name() string                             { return "kafka" }
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

// apiVersionsAnswer reads a response header and checks the correlation id.
func apiVersionsAnswer(r io.Reader) error {
	hdr := make([]byte, 8)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr)
	if n < 4 || n > 1<<20 {
		return fmt.Errorf("not a Kafka response (length %d)", n)
	}
	if id := binary.BigEndian.Uint32(hdr[4:]); id != kafkaCorrelationID {
		return fmt.Errorf("not a Kafka response (correlation id %#x)", id)
	}
	return nil
}

func (kafkaDialect) Plaintext(ctx context.Context, conn net.Conn) (bool, string, bool, error) {
	if _, err := conn.Write(apiVersionsRequest()); err != nil {
		return false, "", true, err
	}
	if err := apiVersionsAnswer(conn); err != nil {
		return false, "no Kafka answer to a plaintext ApiVersions request: " + err.Error(), true, nil
	}
	return true, "broker answered a plaintext ApiVersions request", true, nil
}

func (kafkaDialect) Exchange(ctx context.Context, conn *tls.Conn) error {
	if _, err := conn.Write(apiVersionsRequest()); err != nil {
		return err
	}
	return apiVersionsAnswer(conn)
}
