package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk/faultkit"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// grpcServer runs a real grpc-go server on loopback: over TLS with cfg
// (nil: cleartext h2c), with the health service when withHealth.
func grpcServer(t testing.TB, cfg *tls.Config, withHealth bool) string {
	t.Helper()
	var opts []grpc.ServerOption
	if cfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg)))
	}
	srv := grpc.NewServer(opts...)
	if withHealth {
		healthpb.RegisterHealthServer(srv, health.NewServer())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

func grpcTLS(p pki, clientCAs *x509.CertPool) *tls.Config {
	cfg := &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12,
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256}}
	if clientCAs != nil {
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, clientCAs
	}
	return cfg
}

func TestGRPCOverTLS(t *testing.T) {
	p := newPKI(t, 60*24*time.Hour)
	for name, tc := range map[string]struct {
		health bool
		want   string
	}{
		"health service":    {true, "grpc-status 0 OK"},
		"no health service": {false, "grpc-status 12 UNIMPLEMENTED"},
	} {
		t.Run(name, func(t *testing.T) {
			addr := grpcServer(t, grpcTLS(p, nil), tc.health)
			res, err := Scan(context.Background(), Target{Address: addr, Dialect: GRPC, RootCAs: p.pool}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.ClientAuth.NoCert.Outcome != Accepted || !strings.Contains(res.ClientAuth.NoCert.Evidence, tc.want) {
				t.Errorf("exchange: %s %s, want accepted with %q", res.ClientAuth.NoCert.Outcome, res.ClientAuth.NoCert.Evidence, tc.want)
			}
			got := byID(res.Checks(Expectations{Profile: tlsprofile.Intermediate()}))
			for _, id := range []string{"tls.enabled", "tls.certificate.trusted", "tls.cipher_suites"} {
				if got[id].Status != checks.Pass {
					t.Errorf("%s = %s: %s", id, got[id].Status, got[id].Evidence)
				}
			}
			// grpc-go hangs up on non-TLS bytes without a word: not a refusal
			// harden can prove, so inconclusive — never a pass.
			if c := got["tls.plaintext.refused"]; c.Status != checks.Error {
				t.Errorf("tls.plaintext.refused = %s (%s), want error", c.Status, c.Evidence)
			}
		})
	}
}

func TestGRPCClientAuth(t *testing.T) {
	p := newPKI(t, 60*24*time.Hour)
	addr := grpcServer(t, grpcTLS(p, p.pool), true)
	res, err := Scan(context.Background(), Target{Address: addr, Dialect: GRPC, RootCAs: p.pool, ClientCert: &p.client}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	requireConclusiveTLS(t, res)
	c := byID(res.Checks(Expectations{Profile: tlsprofile.Intermediate(), RequireClientAuth: true}))["tls.client_auth.required"]
	if c.Status != checks.Pass || !strings.Contains(c.Evidence, "grpc-status 0 OK") {
		t.Errorf("tls.client_auth.required = %s: %s", c.Status, c.Evidence)
	}
	// The same server without client verification fails the check.
	open := grpcServer(t, grpcTLS(p, nil), true)
	res, err = Scan(context.Background(), Target{Address: open, Dialect: GRPC, RootCAs: p.pool, ClientCert: &p.client}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c := byID(res.Checks(Expectations{Profile: tlsprofile.Intermediate(), RequireClientAuth: true}))["tls.client_auth.required"]; c.Status != checks.Fail {
		t.Errorf("without client verification: tls.client_auth.required = %s: %s", c.Status, c.Evidence)
	}
}

// requireConclusiveTLS: every TLS observation concluded (the plaintext
// attempt on a grpc-go TLS port cannot).
func requireConclusiveTLS(t *testing.T, res *Result) {
	t.Helper()
	n := res.Inconclusive()
	if res.Plaintext.Outcome == Inconclusive {
		n--
	}
	if n > 0 {
		t.Errorf("%d inconclusive TLS observations: client auth %v / %v / %v; groups %s", n, res.ClientAuth.NoCert, res.ClientAuth.WrongCA, res.ClientAuth.Trusted, res.GroupsIncomplete)
	}
}

func TestGRPCPlaintext(t *testing.T) {
	p := newPKI(t, 60*24*time.Hour)
	h2c := grpcServer(t, nil, true)
	pt := PlaintextOnly(context.Background(), Target{Address: h2c, Dialect: GRPC}, Options{})
	if pt.Outcome != Accepted || !strings.Contains(pt.Evidence, "SETTINGS") {
		t.Errorf("h2c server: %s %s, want accepted", pt.Outcome, pt.Evidence)
	}
	// A cleartext gRPC port accepts no ClientHello: tls.enabled fails
	// conclusively (single-protocol port).
	res, err := Scan(context.Background(), Target{Address: h2c, Dialect: GRPC}, Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	got := byID(res.Checks(Expectations{Profile: tlsprofile.Intermediate()}))
	if got["tls.enabled"].Status != checks.Fail || got["tls.plaintext.refused"].Status != checks.Fail {
		t.Errorf("h2c server: tls.enabled %s (%s), tls.plaintext.refused %s (%s)", got["tls.enabled"].Status, got["tls.enabled"].Evidence,
			got["tls.plaintext.refused"].Status, got["tls.plaintext.refused"].Evidence)
	}
	tlsOnly := grpcServer(t, grpcTLS(p, nil), true)
	if pt := PlaintextOnly(context.Background(), Target{Address: tlsOnly, Dialect: GRPC}, Options{}); pt.Outcome != Inconclusive {
		t.Errorf("grpc-go TLS port: %s %s, want inconclusive", pt.Outcome, pt.Evidence)
	}
	// A server that answers non-TLS bytes with an alert refuses in its
	// own words.
	alert := fakeAnswer(t, []byte{21, 3, 3, 0, 2, 2, 70})
	if pt := PlaintextOnly(context.Background(), Target{Address: alert, Dialect: GRPC}, Options{}); pt.Outcome != Refused {
		t.Errorf("alert: %s %s, want refused", pt.Outcome, pt.Evidence)
	}
}

// fakeAnswer answers every connection with reply after reading something.
func fakeAnswer(t *testing.T, reply []byte) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Read(make([]byte, 512))
				c.Write(reply)
				time.Sleep(100 * time.Millisecond)
			}()
		}
	}()
	return ln.Addr().String()
}

// The fault matrix in front of a grpc-go server in its "before" state
// (TLS 1.0 accepted, no client certificates required while in the mTLS
// scope): no failure passes through a fault.
func TestGRPCFaultsNeverPass(t *testing.T) {
	p := newPKI(t, 60*24*time.Hour)
	cfg := grpcTLS(p, nil)
	cfg.MinVersion = tls.VersionTLS10
	// grpc-go keeps only HTTP/2's AEAD suites unless told otherwise.
	cfg.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
	addr := grpcServer(t, cfg, true)
	opts := fastTimeouts(t)
	exp := Expectations{Profile: tlsprofile.Intermediate(), RequireClientAuth: true}
	verify := func(ctx context.Context, a string) ([]checks.Check, error) {
		res, err := Scan(ctx, Target{Address: a, Dialect: GRPC, RootCAs: p.pool, ServerName: "127.0.0.1"}, opts)
		if err != nil {
			return nil, err
		}
		return res.Checks(exp), nil
	}
	got := byID(faultkit.NeverPasses(t, addr, verify, faultkit.Standard(true)...))
	for id, want := range map[string]checks.Status{"tls.protocol.versions": checks.Fail, "tls.client_auth.required": checks.Fail, "tls.enabled": checks.Pass} {
		if got[id].Status != want {
			t.Errorf("direct %s = %s (%s), want %s", id, got[id].Status, got[id].Evidence, want)
		}
	}
}

// serverFrames builds a server's answer from frames (tests and fuzz seeds).
func serverFrames(t testing.TB, write func(fr *http2.Framer, enc func(...string) []byte)) []byte {
	var out bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	enc := func(kv ...string) []byte {
		var b bytes.Buffer
		e := hpack.NewEncoder(&b)
		for i := 0; i+1 < len(kv); i += 2 {
			e.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
		}
		return b.Bytes()
	}
	write(fr, enc)
	return out.Bytes()
}

func grpcAnswerSeeds(t testing.TB) map[string][]byte {
	return map[string][]byte{
		"trailers only": serverFrames(t, func(fr *http2.Framer, enc func(...string) []byte) {
			fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 16384})
			fr.WriteSettingsAck()
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, EndStream: true,
				BlockFragment: enc(":status", "200", "content-type", "application/grpc", "grpc-status", "12", "grpc-message", "unknown service")})
		}),
		"ok with trailers": serverFrames(t, func(fr *http2.Framer, enc func(...string) []byte) {
			fr.WriteSettings()
			fr.WritePing(false, [8]byte{1})
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, BlockFragment: enc(":status", "200", "content-type", "application/grpc")})
			fr.WriteData(1, false, []byte{0, 0, 0, 0, 2, 8, 1})
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, EndStream: true, BlockFragment: enc("grpc-status", "0")})
		}),
		"goaway": serverFrames(t, func(fr *http2.Framer, enc func(...string) []byte) {
			fr.WriteSettings()
			fr.WriteGoAway(0, http2.ErrCodeProtocol, nil)
		}),
		"no status": serverFrames(t, func(fr *http2.Framer, enc func(...string) []byte) {
			fr.WriteSettings()
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, EndStream: true, BlockFragment: enc("grpc-status", "0")})
		}),
		"http/1.1": []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
		"alert":    {21, 3, 3, 0, 2, 2, 42},
	}
}

func TestGRPCAnswer(t *testing.T) {
	want := map[string]string{"trailers only": "accepted grpc-status 12 UNIMPLEMENTED", "ok with trailers": "accepted grpc-status 0 OK",
		"goaway": "error GOAWAY", "no status": "error without :status", "http/1.1": "error not HTTP/2", "alert": "error truncated"}
	for name, b := range grpcAnswerSeeds(t) {
		o, err := grpcAnswer(bytes.NewReader(b), nil)
		got := o.Outcome.String() + " " + o.Evidence
		if err != nil {
			got = "error " + err.Error()
		}
		w := strings.SplitN(want[name], " ", 2)
		if !strings.HasPrefix(got, w[0]) || !strings.Contains(got, w[1]) {
			t.Errorf("%s: %s, want %s", name, got, want[name])
		}
	}
}

// hasStream1Headers walks frame headers naively: is there a HEADERS frame
// on stream 1 within the bytes?
func hasStream1Headers(b []byte) bool {
	for len(b) >= 9 {
		n := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
		if b[3] == byte(http2.FrameHeaders) && uint32(b[5]&0x7f)<<24|uint32(b[6])<<16|uint32(b[7])<<8|uint32(b[8]) == 1 {
			return true
		}
		if len(b) < 9+n {
			return false
		}
		b = b[9+n:]
	}
	return false
}

// FuzzGRPCAnswer: any server answer is judged without panicking, never as
// a refusal (only a TLS alert refuses, and that comes from crypto/tls),
// and as accepted only when a HEADERS frame for the call is there.
func FuzzGRPCAnswer(f *testing.F) {
	for _, b := range grpcAnswerSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := grpcAnswer(bytes.NewReader(b), nil)
		if err != nil {
			return
		}
		switch o.Outcome {
		case Accepted:
			if !hasStream1Headers(b) {
				t.Fatalf("accepted without a HEADERS frame for stream 1: %s", o.Evidence)
			}
		default:
			t.Fatalf("outcome %s (%s): only acceptance or a transient error come from the answer", o.Outcome, o.Evidence)
		}
	})
}

// FuzzH2CAnswer: refused only on a TLS record, accepted only on a complete
// SETTINGS frame on stream 0.
func FuzzH2CAnswer(f *testing.F) {
	f.Add(serverFrames(f, func(fr *http2.Framer, _ func(...string) []byte) {
		fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100})
	}))
	f.Add([]byte{21, 3, 3, 0, 2, 2, 70})
	f.Add([]byte("\x00\x00garbage from harden faultkit\r\n\x7f\xff"))
	f.Add([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
	f.Add([]byte{0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := h2cAnswer(bytes.NewReader(b))
		if err != nil {
			return
		}
		switch o.Outcome {
		case Refused:
			if !tlsRecordAnswer(b) {
				t.Fatalf("refused without a TLS record: %q", b)
			}
		case Accepted:
			n := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
			if len(b) < 9+n || b[3] != 4 || b[4]&1 != 0 || b[5]|b[6]|b[7]|b[8] != 0 {
				t.Fatalf("accepted without a complete SETTINGS frame: %q", b)
			}
		}
	})
}
