package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
)

// A proxy built on OpenSSL that refuses the decoy's certificate in a TLS
// 1.3 handshake (HAProxy with verify required) sends its fatal alert in
// the clear: it has not switched to the handshake keys yet when it judges
// the server's Certificate. Go's TLS server expects an encrypted record
// there and reports "local error: tls: bad record MAC" instead of the
// alert. The decoy keeps the bytes it read so that the alert the proxy
// sent can be read from the record itself.

// maxRecorded bounds what a decoy connection keeps of the proxy's bytes
// (a ClientHello and a few records).
const maxRecorded = 64 << 10

// recordingConn is a connection that keeps the first bytes it reads.
type recordingConn struct {
	net.Conn
	read []byte
}

func (r *recordingConn) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	if room := maxRecorded - len(r.read); room > 0 {
		r.read = append(r.read, p[:min(n, room)]...)
	}
	return n, err
}

// cleartextAlert returns err as the proxy's alert when the proxy's bytes
// hold a cleartext alert record (content type 21, two bytes: level,
// description) and Go reported a local error instead; else err.
func (r *recordingConn) cleartextAlert(err error) error {
	if err == nil || strings.HasPrefix(err.Error(), "remote error: ") {
		return err
	}
	if desc, ok := cleartextAlertIn(r.read); ok {
		return fmt.Errorf("remote error: %w (sent in the clear during the TLS 1.3 handshake; Go's TLS server reported %v)", tls.AlertError(desc), err)
	}
	return err
}

// cleartextAlertIn walks the TLS records of b and returns the description
// of the first fatal cleartext alert (an encrypted alert is a record of
// type 23). Records that do not parse end the walk.
func cleartextAlertIn(b []byte) (uint8, bool) {
	for len(b) >= 5 {
		typ, major, n := b[0], b[1], int(b[3])<<8|int(b[4])
		if major != 3 || typ < 20 || typ > 23 || n > 1<<14+2048 || len(b) < 5+n {
			return 0, false
		}
		if typ == 21 && n == 2 && b[5] == 2 {
			return b[6], true
		}
		b = b[5+n:]
	}
	return 0, false
}
