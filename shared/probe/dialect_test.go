package probe

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func pgError(fields map[byte]string) []byte {
	var body []byte
	for _, k := range []byte{'S', 'C', 'M', 'R'} {
		if v, ok := fields[k]; ok {
			body = append(append(append(body, k), v...), 0)
		}
	}
	body = append(body, 0)
	return append(append([]byte{'E'}, binary.BigEndian.AppendUint32(nil, uint32(len(body)+4))...), body...)
}

// fakeServer answers the first message with reply.
func fakeServer(t *testing.T, reply []byte) net.Conn {
	client, server := net.Pipe()
	go func() {
		defer server.Close()
		buf := make([]byte, 512)
		server.Read(buf)
		server.Write(reply)
	}()
	t.Cleanup(func() { client.Close() })
	client.SetDeadline(time.Now().Add(2 * time.Second))
	return client
}

func TestPostgresPlaintext(t *testing.T) {
	hbaReject := `pg_hba.conf rejects connection for host "127.0.0.1", user "harden_probe", database "postgres", no encryption`
	tests := map[string]struct {
		reply     []byte
		outcome   Outcome
		evidence  string
		transient bool
	}{
		"auth request": {reply: []byte{'R', 0, 0, 0, 12, 0, 0, 0, 10, 'x', 'x', 'x', 'x'}, outcome: Accepted, evidence: "authentication request"},
		"hostnossl reject": {reply: pgError(map[byte]string{'S': "FATAL", 'C': "28000", 'M': hbaReject, 'R': "ClientAuthentication"}),
			outcome: Refused, evidence: "no encryption (SQLSTATE 28000)"},
		// Without the routine field the English message still identifies pg_hba.
		"hostnossl reject, no routine": {reply: pgError(map[byte]string{'S': "FATAL", 'C': "28000", 'M': hbaReject}), outcome: Refused, evidence: "SQLSTATE 28000"},
		// 28000 from auth_failed (ident, peer) is not a pg_hba rejection.
		"ident failure": {reply: pgError(map[byte]string{'S': "FATAL", 'C': "28000", 'M': `Ident authentication failed for user "harden_probe"`, 'R': "auth_failed"}),
			outcome: Inconclusive, evidence: "not a pg_hba rejection"},
		"translated hba reject without routine": {reply: pgError(map[byte]string{'S': "FATAL", 'C': "28000", 'M': "aucune entrée dans pg_hba"}), outcome: Inconclusive},
		"too many clients":                      {reply: pgError(map[byte]string{'S': "FATAL", 'C': "53300", 'M': "sorry, too many clients already"}), transient: true},
		"starting up":                           {reply: pgError(map[byte]string{'S': "FATAL", 'C': "57P03", 'M': "the database system is starting up"}), transient: true},
		"other error":                           {reply: pgError(map[byte]string{'S': "FATAL", 'C': "XX000", 'M': "boom"}), outcome: Inconclusive},
		"garbage":                               {reply: []byte("HTTP/1.1 400 Bad Request\r\n"), transient: true},
		"truncated":                             {reply: []byte{'R', 0, 0}, transient: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o, err := Postgres.Plaintext(context.Background(), fakeServer(t, tc.reply))
			if (err != nil) != tc.transient {
				t.Fatalf("err %v, want transient=%v", err, tc.transient)
			}
			if tc.transient {
				return
			}
			if o.Outcome != tc.outcome || !strings.Contains(o.Evidence, tc.evidence) {
				t.Errorf("outcome %s evidence %q, want %s %q", o.Outcome, o.Evidence, tc.outcome, tc.evidence)
			}
		})
	}
}

func TestPostgresStartTLS(t *testing.T) {
	if err := Postgres.StartTLS(context.Background(), fakeServer(t, []byte("S"))); err != nil {
		t.Errorf("S: %v", err)
	}
	if err := Postgres.StartTLS(context.Background(), fakeServer(t, []byte("N"))); err == nil || !strings.Contains(err.Error(), "answered 'N'") {
		t.Errorf("N: %v", err)
	}
	// Garbage or a close is never the server declining TLS.
	for name, reply := range map[string][]byte{"garbage": []byte("E"), "close": nil} {
		err := Postgres.StartTLS(context.Background(), fakeServer(t, reply))
		var te *transientError
		if !errors.As(err, &te) || errors.Is(err, ErrTLSRefused) {
			t.Errorf("%s: %v, want a transient failure", name, err)
		}
	}
}

// FuzzReadFirstMessage: server bytes are untrusted input.
func FuzzReadFirstMessage(f *testing.F) {
	f.Add(pgError(map[byte]string{'S': "FATAL", 'C': "28000", 'M': "no encryption"}))
	f.Add([]byte{'R', 0, 0, 0, 8, 0, 0, 0, 0})
	f.Add([]byte{'E', 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{'E', 0, 0, 0, 6, 'M', 'x'})
	f.Fuzz(func(t *testing.T, data []byte) {
		typ, fields, err := readFirstMessage(bytes.NewReader(data))
		if err == nil && len(data) < 5 {
			t.Fatalf("accepted %d bytes", len(data))
		}
		if err == nil && typ != data[0] {
			t.Fatalf("type %q", typ)
		}
		for _, v := range fields {
			if len(v) > len(data) {
				t.Fatalf("field longer than input")
			}
		}
	})
}

// FuzzReadServerAnswer: records, handshake messages and extensions from a
// server are untrusted input.
func FuzzReadServerAnswer(f *testing.F) {
	sh := func(version uint16, suite uint16, exts []byte) []byte {
		body := appendU16(nil, version)
		body = append(body, make([]byte, 32)...)
		body = append(body, 0)
		body = appendU16(body, suite)
		body = append(body, 0)
		if exts != nil {
			body = appendVec16(body, exts)
		}
		msg := append([]byte{2, 0, byte(len(body) >> 8), byte(len(body))}, body...)
		return append([]byte{22, 3, 3, byte(len(msg) >> 8), byte(len(msg))}, msg...)
	}
	f.Add(sh(0x0303, 0xC02F, nil))
	f.Add(sh(0x0303, 0x1301, ext(ext(nil, 0x002B, []byte{3, 4}), 0x0033, []byte{0, 0x1D})))
	f.Add([]byte{21, 3, 3, 0, 2, 2, 40})
	f.Add([]byte{22, 3, 1, 0, 4, 2, 0, 0, 200})
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := readServerAnswer(bytes.NewReader(data))
		if err != nil {
			return
		}
		if a.alert == a.hello {
			t.Fatalf("answer is neither or both alert and hello: %+v", a)
		}
		if a.hello && len(data) < 5+4+35 {
			t.Fatalf("hello from %d bytes", len(data))
		}
	})
}

func TestClientHelloRoundTrip(t *testing.T) {
	for _, v := range []uint16{0x0300, 0x0301, 0x0303, 0x0304} {
		h := hello{version: v, suites: legacySuites(), groups: allGroups(), serverName: "db.example", alpn: []string{"postgresql"}}
		rec := h.marshal()
		if rec[0] != 22 || rec[5] != 1 {
			t.Fatalf("v%x: not a handshake record with a ClientHello", v)
		}
		n := int(rec[3])<<8 | int(rec[4])
		if n != len(rec)-5 {
			t.Errorf("v%x: record length %d, have %d", v, n, len(rec)-5)
		}
		if v > 0x0300 && !bytes.Contains(rec, []byte("db.example")) {
			t.Errorf("v%x: SNI missing", v)
		}
	}
}

func TestKafkaApiVersionsFraming(t *testing.T) {
	req := apiVersionsRequest()
	if int(binary.BigEndian.Uint32(req)) != len(req)-4 || binary.BigEndian.Uint16(req[4:]) != 18 {
		t.Fatalf("request %x", req)
	}
	ok := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 10), kafkaCorrelationID)
	if err := apiVersionsAnswer(bytes.NewReader(append(ok, make([]byte, 6)...))); err != nil {
		t.Errorf("valid answer: %v", err)
	}
	if err := apiVersionsAnswer(bytes.NewReader([]byte("HTTP/1.1 400"))); err == nil {
		t.Errorf("HTTP accepted as Kafka")
	}
	if o, err := Kafka.Plaintext(context.Background(), fakeServer(t, append(ok, make([]byte, 6)...))); err != nil || o.Outcome != Accepted {
		t.Errorf("plaintext broker not detected: %v %v", o, err)
	}
	// An SSL listener answers the plaintext bytes with a TLS alert record.
	if o, err := Kafka.Plaintext(context.Background(), fakeServer(t, []byte{21, 3, 3, 0, 2, 2, 10})); err != nil || o.Outcome != Refused {
		t.Errorf("TLS alert answer: %v %v", o, err)
	}
	// A close, a reset or garbage is never a refusal (a broker at
	// max.connections.per.ip closes every new connection).
	for name, reply := range map[string][]byte{"close": nil, "garbage": []byte("SSH-2.0-OpenSSH\r\n")} {
		if o, err := Kafka.Plaintext(context.Background(), fakeServer(t, reply)); err == nil {
			t.Errorf("%s: %v, want a transient failure", name, o)
		}
	}
}

// HTTP plaintext: a TLS-only Go server answers a plaintext request with
// "400 ... Client sent an HTTP request to an HTTPS server" — a refusal; a
// plain HTTP server answering is a failure.
func TestHTTPPlaintext(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") })
	for name, tc := range map[string]struct {
		srv    *httptest.Server
		accept bool
	}{"tls-only": {httptest.NewTLSServer(h), false}, "plain": {httptest.NewServer(h), true}} {
		defer tc.srv.Close()
		addr := strings.TrimPrefix(strings.TrimPrefix(tc.srv.URL, "https://"), "http://")
		r := PlaintextOnly(context.Background(), Target{Address: addr, Dialect: HTTP}, Options{})
		if r.Err != nil || r.Accepted != tc.accept {
			t.Errorf("%s: accepted=%v err=%v evidence=%s", name, r.Accepted, r.Err, r.Evidence)
		}
	}
}

// The HTTP dialect's refusal table: only an HTTPS-redirecting 400 or a TLS
// record refuses; a half answer, garbage or a close is never a refusal.
func TestHTTPPlaintextTable(t *testing.T) {
	for name, tc := range map[string]struct {
		reply     string
		outcome   Outcome
		transient bool
	}{
		"go https 400":   {reply: "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n", outcome: Refused},
		"nginx 400":      {reply: "HTTP/1.1 400 Bad Request\r\nContent-Length: 36\r\n\r\nThe plain HTTP request was sent to HTTPS port", outcome: Refused},
		"tls alert":      {reply: "\x15\x03\x03\x00\x02\x02\x46", outcome: Refused},
		"plain 200":      {reply: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", outcome: Accepted},
		"half a body":    {reply: "HTTP/1.1 400 Bad Request\r\nContent-Length: 80\r\n\r\nThe plain", transient: true},
		"half a head":    {reply: "HTTP/1.1 400 Bad Req", transient: true},
		"garbage":        {reply: "\x00\x01garbage garbage garbage\r\n\r\n", transient: true},
		"close, nothing": {reply: "", transient: true},
	} {
		t.Run(name, func(t *testing.T) {
			o, err := HTTP.Plaintext(context.Background(), fakeServer(t, []byte(tc.reply)))
			if (err != nil) != tc.transient || (!tc.transient && o.Outcome != tc.outcome) {
				t.Errorf("%v %v, want %s transient=%v", o, err, tc.outcome, tc.transient)
			}
		})
	}
}

// PostgreSQL over TLS: only a 28000 pg_hba rejection about the certificate
// refuses the session; another pg_hba rejection (the probe user is not
// allowed) says nothing about certificates.
func TestPostgresExchangeTable(t *testing.T) {
	for name, tc := range map[string]struct {
		fields  map[byte]string
		outcome Outcome
	}{
		"certificate required":  {map[byte]string{'S': "FATAL", 'C': "28000", 'M': "connection requires a valid client certificate", 'R': "ClientAuthentication"}, Refused},
		"no hba entry for user": {map[byte]string{'S': "FATAL", 'C': "28000", 'M': `no pg_hba.conf entry for host "127.0.0.1", user "harden_probe", database "postgres", SSL encryption`, 'R': "ClientAuthentication"}, Inconclusive},
		"password failed":       {map[byte]string{'S': "FATAL", 'C': "28P01", 'M': "password authentication failed", 'R': "auth_failed"}, Inconclusive},
	} {
		t.Run(name, func(t *testing.T) {
			o, err := pgAnswer(bytes.NewReader(pgError(tc.fields)), pgCertificateRejection, "TLS")
			if err != nil || o.Outcome != tc.outcome {
				t.Errorf("%v %v, want %s", o, err, tc.outcome)
			}
		})
	}
}
