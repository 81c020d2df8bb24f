package probe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"

	"github.com/harden-dev/harden/shared/tlsprofile"
)

// Raw TLS ClientHello construction and ServerHello parsing. The probe never
// completes these handshakes: the ServerHello (or HelloRetryRequest, or an
// alert) already says whether the offered version, suite or group is
// accepted, which lets it test suites and groups no TLS library offers.

// Named groups (IANA TLS Supported Groups).
var groupNames = []struct {
	ID   uint16
	Name string
}{
	{0x11EC, "X25519MLKEM768"}, {0x11EB, "SecP256r1MLKEM768"}, {0x11ED, "SecP384r1MLKEM1024"},
	{0x001D, "x25519"}, {0x001E, "x448"}, {0x0017, "secp256r1"}, {0x0018, "secp384r1"}, {0x0019, "secp521r1"},
	{0x001A, "brainpoolP256r1"}, {0x001B, "brainpoolP384r1"}, {0x001C, "brainpoolP512r1"},
	{0x001F, "brainpoolP256r1tls13"}, {0x0020, "brainpoolP384r1tls13"}, {0x0021, "brainpoolP512r1tls13"},
	{0x0100, "ffdhe2048"}, {0x0101, "ffdhe3072"}, {0x0102, "ffdhe4096"}, {0x0103, "ffdhe6144"}, {0x0104, "ffdhe8192"},
	{0x0015, "secp224r1"}, {0x0016, "secp256k1"},
}

// GroupName returns the IANA name of a named group.
func GroupName(id uint16) string {
	for _, g := range groupNames {
		if g.ID == id {
			return g.Name
		}
	}
	return fmt.Sprintf("0x%04X", id)
}

func allGroups() []uint16 {
	ids := make([]uint16, len(groupNames))
	for i, g := range groupNames {
		ids[i] = g.ID
	}
	return ids
}

// Every signature scheme, legacy ones included: a server that finds no
// scheme it can sign with refuses the suite, which would hide it.
var signatureSchemes = []uint16{
	0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0809, 0x080A, 0x080B, 0x0804, 0x0805, 0x0806,
	0x0401, 0x0501, 0x0601, 0x0303, 0x0301, 0x0302, 0x0402, 0x0502, 0x0602, 0x0203, 0x0201, 0x0202,
	0x081A, 0x081B, 0x081C, 0x0101, 0x0102, 0x0103, 0x0104, 0x0105, 0x0106,
}

// hello is what one raw ClientHello offers.
type hello struct {
	// version is the highest version offered (TLS 1.3 uses supported_versions).
	version    uint16
	suites     []uint16
	groups     []uint16
	serverName string
	alpn       []string
}

const scsvRenegotiation = 0x00FF

func appendRandom(b []byte, n int) []byte {
	for i := 0; i < n; i += 8 {
		b = binary.LittleEndian.AppendUint64(b, mrand.Uint64())
	}
	return b
}

func appendU16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }

func appendVec16(b []byte, body []byte) []byte {
	return append(appendU16(b, uint16(len(body))), body...)
}

func ext(b []byte, typ uint16, body []byte) []byte { return appendVec16(appendU16(b, typ), body) }

// marshal returns the ClientHello as one or more TLS records.
func (h hello) marshal() []byte {
	tls13 := h.version >= tlsprofile.VersionTLS13
	legacy := h.version
	if tls13 {
		legacy = tlsprofile.VersionTLS12
	}
	var body []byte
	body = appendU16(body, legacy)
	// The probe never completes these handshakes: the client random and
	// session id need to be unpredictable to nobody, so a fast PRNG
	// replaces two getrandom calls per connection.
	body = appendRandom(body, 32)
	if tls13 {
		body = appendRandom(append(body, 32), 32)
	} else {
		body = append(body, 0)
	}
	var suites []byte
	for _, s := range h.suites {
		suites = appendU16(suites, s)
	}
	if !tls13 {
		suites = appendU16(suites, scsvRenegotiation)
	}
	body = appendVec16(body, suites)
	body = append(body, 1, 0) // compression: null only
	if h.version > tlsprofile.VersionSSL30 {
		var exts []byte
		if h.serverName != "" && net.ParseIP(h.serverName) == nil {
			name := append([]byte{0}, appendVec16(nil, []byte(h.serverName))...)
			exts = ext(exts, 0x0000, appendVec16(nil, name))
		}
		var groups []byte
		for _, g := range h.groups {
			groups = appendU16(groups, g)
		}
		exts = ext(exts, 0x000A, appendVec16(nil, groups))
		exts = ext(exts, 0x000B, []byte{1, 0}) // ec_point_formats: uncompressed
		var sigs []byte
		for _, s := range signatureSchemes {
			sigs = appendU16(sigs, s)
		}
		exts = ext(exts, 0x000D, appendVec16(nil, sigs))
		if len(h.alpn) > 0 {
			var protos []byte
			for _, p := range h.alpn {
				protos = append(append(protos, byte(len(p))), p...)
			}
			exts = ext(exts, 0x0010, appendVec16(nil, protos))
		}
		exts = ext(exts, 0x0016, nil) // encrypt_then_mac
		exts = ext(exts, 0x0017, nil) // extended_master_secret
		exts = ext(exts, 0x0023, nil) // session_ticket
		if tls13 {
			exts = ext(exts, 0x002B, []byte{2, 0x03, 0x04}) // supported_versions: TLS 1.3
			exts = ext(exts, 0x002D, []byte{1, 1})          // psk_key_exchange_modes: psk_dhe_ke
			// An empty key_share: a server that accepts the offer answers
			// with a HelloRetryRequest naming its group and suite.
			exts = ext(exts, 0x0033, appendVec16(nil, nil))
		}
		exts = ext(exts, 0xFF01, []byte{0}) // renegotiation_info
		body = appendVec16(body, exts)
	}
	msg := append([]byte{1, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
	recVersion := tlsprofile.VersionTLS10
	if h.version == tlsprofile.VersionSSL30 {
		recVersion = tlsprofile.VersionSSL30
	}
	var out []byte
	for len(msg) > 0 {
		n := min(len(msg), 1<<14)
		out = append(out, 22)
		out = appendU16(out, recVersion)
		out = appendVec16(out, msg[:n])
		msg = msg[n:]
	}
	return out
}

// serverAnswer is the server's first flight, as far as the probe reads it.
type serverAnswer struct {
	// alert: the server refused with a TLS alert.
	alert     bool
	alertDesc byte
	// hello: a ServerHello or HelloRetryRequest arrived.
	hello   bool
	retry   bool
	version uint16
	suite   uint16
	group   uint16
	// tlsRefused: the dialect's negotiation was declined before any hello.
	tlsRefused bool
}

// errNotTLS: the peer answered with something that is not a TLS record.
var errNotTLS = errors.New("answer is not TLS")

// helloRetryRandom marks a ServerHello as HelloRetryRequest (RFC 8446 4.1.3).
var helloRetryRandom = [32]byte{
	0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
	0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
}

// maxHandshakeRead bounds what is read of the server's first flight
// (certificate chains included when the key exchange is wanted).
const maxHandshakeRead = 1 << 17

// readServerAnswer reads records until the ServerHello or an alert. With
// wantKeyExchange it keeps reading a TLS <= 1.2 flight until the
// ServerKeyExchange (for its ECDHE curve) or ServerHelloDone. Server bytes
// are untrusted: every length is checked.
func readServerAnswer(r io.Reader, wantKeyExchange ...bool) (serverAnswer, error) {
	want := len(wantKeyExchange) > 0 && wantKeyExchange[0]
	var hs []byte
	var answer serverAnswer
	for {
		hdr := make([]byte, 5)
		if _, err := io.ReadFull(r, hdr); err != nil {
			if answer.hello {
				return answer, nil
			}
			return serverAnswer{}, err
		}
		typ, n := hdr[0], int(binary.BigEndian.Uint16(hdr[3:5]))
		if (typ != 21 && typ != 22) || hdr[1] != 3 || n > 1<<14+2048 {
			if answer.hello {
				return answer, nil
			}
			return serverAnswer{}, errNotTLS
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return serverAnswer{}, err
		}
		if typ == 21 {
			if answer.hello {
				return answer, nil
			}
			if len(body) < 2 {
				return serverAnswer{}, fmt.Errorf("short alert")
			}
			if body[1] == 0 {
				return serverAnswer{}, io.EOF // close_notify: closed without an answer
			}
			if body[0] == 1 {
				continue // a warning (e.g. unrecognized_name) before the ServerHello
			}
			return serverAnswer{alert: true, alertDesc: body[1]}, nil
		}
		hs = append(hs, body...)
		if len(hs) > maxHandshakeRead {
			return serverAnswer{}, fmt.Errorf("handshake flight too large")
		}
		// Consume every complete handshake message in the buffer.
		for len(hs) >= 4 {
			need := 4 + (int(hs[1])<<16 | int(hs[2])<<8 | int(hs[3]))
			if need > maxHandshakeRead {
				return serverAnswer{}, fmt.Errorf("handshake message too large")
			}
			if len(hs) < need {
				break
			}
			msgType, msg := hs[0], hs[4:need]
			hs = hs[need:]
			switch {
			case !answer.hello && msgType != 2:
				return serverAnswer{}, fmt.Errorf("first handshake message is type %d, not ServerHello", msgType)
			case !answer.hello:
				a, err := parseServerHello(msg)
				if err != nil {
					return a, err
				}
				answer = a
				if !want || answer.retry || answer.version >= 0x0304 {
					return answer, nil
				}
			case msgType == 12: // ServerKeyExchange: ECDHE names its curve
				if len(msg) >= 3 && msg[0] == 3 {
					answer.group = binary.BigEndian.Uint16(msg[1:3])
				}
				return answer, nil
			case msgType == 14: // ServerHelloDone: no key exchange message
				return answer, nil
			}
		}
	}
}

// parseServerHello reads a ServerHello body.
func parseServerHello(b []byte) (serverAnswer, error) {
	a := serverAnswer{hello: true}
	short := fmt.Errorf("truncated ServerHello")
	if len(b) < 2+32+1 {
		return a, short
	}
	a.version = binary.BigEndian.Uint16(b)
	a.retry = [32]byte(b[2:34]) == helloRetryRandom
	b = b[34:]
	sid := int(b[0])
	if len(b) < 1+sid+3 {
		return a, short
	}
	b = b[1+sid:]
	a.suite = binary.BigEndian.Uint16(b)
	b = b[3:] // suite + compression
	if len(b) < 2 {
		return a, nil // no extensions (TLS <= 1.2)
	}
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if n > len(b) {
		return a, short
	}
	b = b[:n]
	for len(b) >= 4 {
		typ, l := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if 4+l > len(b) {
			return a, short
		}
		data := b[4 : 4+l]
		switch typ {
		case 0x002B: // supported_versions
			if l == 2 {
				a.version = binary.BigEndian.Uint16(data)
			}
		case 0x0033: // key_share: group (+ key in a ServerHello)
			if l >= 2 {
				a.group = binary.BigEndian.Uint16(data)
			}
		}
		b = b[4+l:]
	}
	return a, nil
}
