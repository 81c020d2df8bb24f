package probe

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"
)

func pgError(fields map[byte]string) []byte {
	var body []byte
	for _, k := range []byte{'S', 'C', 'M'} {
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
	tests := map[string]struct {
		reply    []byte
		accepted bool
		evidence string
		wantErr  bool
	}{
		"auth request": {reply: []byte{'R', 0, 0, 0, 12, 0, 0, 0, 10, 'x', 'x', 'x', 'x'}, accepted: true, evidence: "authentication request"},
		"hostnossl reject": {reply: pgError(map[byte]string{'S': "FATAL", 'C': "28000", 'M': `pg_hba.conf rejects connection for host "127.0.0.1", user "harden_probe", database "postgres", no encryption`}),
			evidence: "no encryption (SQLSTATE 28000)"},
		"garbage":   {reply: []byte("HTTP/1.1 400 Bad Request\r\n"), wantErr: true},
		"truncated": {reply: []byte{'R', 0, 0}, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			accepted, ev, ok, err := Postgres.Plaintext(context.Background(), fakeServer(t, tc.reply))
			if (err != nil) != tc.wantErr || !ok {
				t.Fatalf("err %v ok %v", err, ok)
			}
			if accepted != tc.accepted || !strings.Contains(ev, tc.evidence) {
				t.Errorf("accepted %v evidence %q", accepted, ev)
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
