package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// GRPC is gRPC over TLS: HTTP/2 negotiated with ALPN "h2", TLS from the
// first byte. The application exchange is one unary call to
// grpc.health.v1.Health/Check for the whole server (an empty request):
// neutral, read-only, and answered by every gRPC server — with
// UNIMPLEMENTED when it has no health service, which still proves the
// session was let in.
//
// Refusals:
//   - plaintext: an h2c (HTTP/2 "prior knowledge") connection preface
//     answered with a TLS record (the port speaks TLS only). An HTTP/2
//     SETTINGS frame is acceptance: the server speaks cleartext HTTP/2 to
//     anyone. A close without an answer is inconclusive — TLS-only Go
//     servers (grpc-go) hang up on non-TLS bytes without a word, and so
//     does a proxy at its connection limit; so is anything else that is
//     neither HTTP/2 nor TLS;
//   - session without a (trusted) client certificate: a TLS alert
//     (grpc-go judges the certificate in the handshake; under TLS 1.3 the
//     alert arrives on the first read).
//
// Over TLS, an HTTP/2 response to the call (HEADERS with :status, with or
// without grpc-status) is acceptance. A server that negotiates another
// ALPN protocol, a GOAWAY or a reset of the call before any response, and
// bytes that are not HTTP/2 are inconclusive.
var GRPC Dialect = grpcDialect{}

type grpcDialect struct{}

func (grpcDialect) Name() string                             { return "grpc" }
func (grpcDialect) singleProtocolPort() bool                 { return true }
func (grpcDialect) ALPN() []string                           { return []string{"h2"} }
func (grpcDialect) StartTLS(context.Context, net.Conn) error { return nil }

// grpcHealthPath is the neutral call the exchange makes.
const grpcHealthPath = "/grpc.health.v1.Health/Check"

// grpcCodes names the gRPC status codes (grpc/codes).
var grpcCodes = []string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
	"PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
	"UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}

func grpcCodeName(s string) string {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 && n < len(grpcCodes) {
		return s + " " + grpcCodes[n]
	}
	return strconv.Quote(truncate(s, 20))
}

// grpcRequest is the client connection preface, an empty SETTINGS frame,
// and the health-check call on stream 1: HEADERS (END_HEADERS) and one
// DATA frame (END_STREAM) with an empty, uncompressed message.
func grpcRequest(authority string) []byte {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":path", grpcHealthPath}, {":authority", authority},
		{"content-type", "application/grpc"}, {"te", "trailers"}, {"user-agent", "harden-probe"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	var out bytes.Buffer
	out.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&out, nil)
	fr.WriteSettings()
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})
	fr.WriteData(1, true, []byte{0, 0, 0, 0, 0})
	return out.Bytes()
}

func (grpcDialect) Exchange(ctx context.Context, conn *tls.Conn) (Observation, error) {
	if p := conn.ConnectionState().NegotiatedProtocol; p != "" && p != "h2" {
		return inconclusive("the server negotiated ALPN %q, not h2: not a gRPC endpoint", p), nil
	}
	authority := conn.RemoteAddr().String()
	if sn := conn.ConnectionState().ServerName; sn != "" {
		_, port, _ := net.SplitHostPort(authority)
		authority = net.JoinHostPort(sn, port)
	}
	if _, err := conn.Write(grpcRequest(authority)); err != nil {
		if alert, ok := remoteAlert(err); ok {
			return refused("session refused with a TLS alert: %s", alert), nil
		}
		return Observation{}, transient("send a gRPC health check over TLS", err)
	}
	o, err := grpcAnswer(conn, conn)
	if alert, ok := remoteAlert(err); ok {
		return refused("session refused with a TLS alert: %s", alert), nil
	}
	return o, err
}

// grpcMaxFrames bounds how many frames the answer may take before the
// response to the call starts (SETTINGS, its ACK, WINDOW_UPDATE, PING).
const grpcMaxFrames = 32

// grpcAnswer reads the server's frames after the request until the call's
// response says how it ended (grpc-status in the headers or the trailers,
// or the end of the stream), answering SETTINGS and PING as a client
// must (on w; nil skips that). Any HTTP/2 response HEADERS for stream 1 is
// an accepted session; an error is a transient failure (the reader's, or
// an answer that is not HTTP/2).
func grpcAnswer(r io.Reader, w io.Writer) (Observation, error) {
	if w == nil {
		w = io.Discard
	}
	fr := http2.NewFramer(w, r)
	// The client advertised no larger frames: anything bigger is not HTTP/2
	// from a server that read the SETTINGS (it is often "HTTP/1.1 ...").
	fr.SetMaxReadFrameSize(16384)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.MaxHeaderListSize = 16 << 10
	status := ""
	for range grpcMaxFrames {
		f, err := fr.ReadFrame()
		if err != nil {
			if status != "" {
				// The response started: the session was let in even if the
				// stream did not finish cleanly.
				return accepted("server answered the gRPC health check over HTTP/2 (:status %s), then: %s", status, failureKind(err)), nil
			}
			var ce http2.ConnectionError
			var se http2.StreamError
			if errors.As(err, &ce) || errors.As(err, &se) || errors.Is(err, http2.ErrFrameTooLarge) {
				return Observation{}, transient("gRPC health check over TLS", fmt.Errorf("answer is not HTTP/2: %v", err))
			}
			return Observation{}, transient("read the answer to a gRPC health check", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				fr.WritePing(true, f.Data)
			}
		case *http2.GoAwayFrame:
			if status != "" {
				return accepted("server answered the gRPC health check over HTTP/2 (:status %s), then sent GOAWAY (%s)", status, f.ErrCode), nil
			}
			return Observation{}, transient("gRPC health check over TLS", fmt.Errorf("server sent GOAWAY (%s) before answering", f.ErrCode))
		case *http2.RSTStreamFrame:
			if f.StreamID != 1 {
				continue
			}
			if status != "" {
				return accepted("server answered the gRPC health check over HTTP/2 (:status %s), then reset the stream (%s)", status, f.ErrCode), nil
			}
			return Observation{}, transient("gRPC health check over TLS", fmt.Errorf("server reset the call (%s) before answering", f.ErrCode))
		case *http2.MetaHeadersFrame:
			if f.StreamID != 1 {
				continue
			}
			if s := f.PseudoValue("status"); s != "" {
				status = s
			}
			if status == "" {
				return Observation{}, transient("gRPC health check over TLS", errors.New("response headers without :status"))
			}
			if gs := headerValue(f, "grpc-status"); gs != "" {
				ev := fmt.Sprintf("server answered the gRPC health check over HTTP/2: :status %s, grpc-status %s", status, grpcCodeName(gs))
				if msg := headerValue(f, "grpc-message"); msg != "" {
					ev += " (" + strconv.Quote(truncate(msg, 80)) + ")"
				}
				return accepted("%s", ev), nil
			}
			if f.StreamEnded() {
				return accepted("server answered over HTTP/2 with :status %s but no grpc-status: an HTTP/2 server, not gRPC", status), nil
			}
		case *http2.DataFrame:
			if f.StreamID == 1 && f.StreamEnded() && status != "" {
				return accepted("server answered over HTTP/2 with :status %s but no grpc-status: an HTTP/2 server, not gRPC", status), nil
			}
		}
	}
	if status != "" {
		return accepted("server answered the gRPC health check over HTTP/2 (:status %s) without finishing within %d frames", status, grpcMaxFrames), nil
	}
	return Observation{}, transient("gRPC health check over TLS", fmt.Errorf("no response to the call within %d frames", grpcMaxFrames))
}

func headerValue(f *http2.MetaHeadersFrame, name string) string {
	for _, h := range f.RegularFields() {
		if h.Name == name {
			return h.Value
		}
	}
	return ""
}

// h2cPreface is what a cleartext HTTP/2 client with prior knowledge sends
// first: the connection preface and an empty SETTINGS frame.
func h2cPreface() []byte {
	var out bytes.Buffer
	out.WriteString(http2.ClientPreface)
	http2.NewFramer(&out, nil).WriteSettings()
	return out.Bytes()
}

func (grpcDialect) Plaintext(ctx context.Context, conn net.Conn) (Observation, error) {
	if _, err := conn.Write(h2cPreface()); err != nil {
		return Observation{}, transient("send an h2c connection preface", err)
	}
	return h2cAnswer(conn)
}

// h2cAnswer reads the first answer to an h2c preface: a complete TLS
// alert (or handshake record header) is a refusal, a complete SETTINGS
// frame on stream 0 acceptance; a close, reset or timeout is transient;
// anything else is inconclusive.
func h2cAnswer(r io.Reader) (Observation, error) {
	var buf []byte
	chunk := make([]byte, 512)
	for empty := 0; empty < 100; {
		if tlsRecordAnswer(buf) {
			return refused("h2c preface answered with a TLS record (the port speaks TLS only)"), nil
		}
		if len(buf) >= 9 {
			n := int(buf[0])<<16 | int(buf[1])<<8 | int(buf[2])
			typ, flags, stream := buf[3], buf[4], uint32(buf[5]&0x7f)<<24|uint32(buf[6])<<16|uint32(buf[7])<<8|uint32(buf[8])
			if typ != byte(http2.FrameSettings) || stream != 0 || flags&byte(http2.FlagSettingsAck) != 0 || n%6 != 0 || n > 16384 {
				return inconclusive("answer to an h2c preface is neither HTTP/2 SETTINGS nor TLS: %q", truncate(string(buf[:min(len(buf), 24)]), 24)), nil
			}
			if len(buf) >= 9+n {
				return accepted("server answered an h2c (cleartext HTTP/2) preface with SETTINGS: it takes gRPC without TLS"), nil
			}
		}
		if len(buf) >= 9+16384 {
			return inconclusive("answer to an h2c preface too long"), nil
		}
		k, err := r.Read(chunk)
		buf = append(buf, chunk[:k]...)
		if k > 0 {
			continue
		}
		if err == nil {
			empty++ // a reader that returns nothing without an error
			continue
		}
		if tlsRecordAnswer(buf) {
			continue
		}
		if len(buf) > 0 && errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Observation{}, transient("read the answer to an h2c preface", err)
	}
	return Observation{}, transient("read the answer to an h2c preface", io.ErrNoProgress)
}
