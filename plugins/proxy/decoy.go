package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
)

// The decoy proof: does the proxy verify the certificate of the backend it
// forwards to? Verify runs, for the proof's duration only, a TLS server on
// spec.canary.decoy with a certificate for the backend's name from a CA
// made for this one verify (nobody trusts it), and sends one request
// through harden's canary route (spec.canary.listen), which the rendered
// file points at the decoy with the same upstream TLS settings as the
// real route. A proxy that verifies never lets the request reach the
// decoy. Two ways are seen on the wire:
//
//   - HAProxy (verify required) aborts the handshake with an alert the
//     decoy's TLS server reports ("remote error: tls: unknown certificate
//     authority");
//   - nginx (proxy_ssl_verify on) completes the handshake and checks the
//     result after it ("upstream SSL certificate verify error"): the decoy
//     sees the handshake end and the connection closed without a request.
//
// Either way the client must get the proxy's own 5xx, not the decoy's
// body (which holds a random marker). The request reaching the decoy, or
// the marker coming back, is the proof that the proxy does not verify.
// Anything else — nothing reached the decoy, the canary front does not
// answer, a timeout — proves nothing either way.

// decoyTimeout bounds the whole proof.
var decoyTimeout = 8 * time.Second

// decoyConn is what the decoy saw on one connection from the proxy.
type decoyConn struct {
	sni     string
	version uint16
	// handshakeErr: the handshake failed (an alert from the proxy, or the
	// proxy hung up); nil when it completed.
	handshakeErr error
	// request is the first line of what the proxy sent after the
	// handshake ("" when nothing came); afterErr how the read ended
	// (io.EOF: the proxy closed).
	request  string
	afterErr error
}

// decoy is the TLS server of one proof.
type decoy struct {
	ln     net.Listener
	cfg    *tls.Config
	marker string
	mu     sync.Mutex
	conns  []*decoyConn
	wg     sync.WaitGroup
}

// startDecoy listens on addr with a fresh CA's leaf for name.
func startDecoy(addr, name string) (*decoy, error) {
	cert, err := throwawayLeaf(name)
	if err != nil {
		return nil, err
	}
	m := make([]byte, 16)
	rand.Read(m)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("start the decoy backend at %s: %w", addr, err)
	}
	d := &decoy{ln: ln, marker: "harden-decoy-" + hex.EncodeToString(m)}
	d.cfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS10}
	go d.serve()
	return d, nil
}

func (d *decoy) serve() {
	for {
		c, err := d.ln.Accept()
		if err != nil {
			return
		}
		dc := &decoyConn{}
		d.mu.Lock()
		d.conns = append(d.conns, dc)
		d.mu.Unlock()
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			defer c.Close()
			d.handle(c, dc)
		}()
	}
}

// handle runs one connection: the handshake, then what the proxy sends.
// What it saw is stored once, at the end (stop reads it).
func (d *decoy) handle(c net.Conn, dc *decoyConn) {
	c.SetDeadline(time.Now().Add(decoyTimeout))
	var saw decoyConn
	cfg := d.cfg.Clone()
	cfg.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		saw.sni = h.ServerName
		return nil, nil
	}
	rc := &recordingConn{Conn: c}
	tc := tls.Server(rc, cfg)
	if saw.handshakeErr = rc.cleartextAlert(tc.Handshake()); saw.handshakeErr == nil {
		saw.version = tc.ConnectionState().Version
		line, err := bufio.NewReader(tc).ReadString('\n')
		saw.request, saw.afterErr = strings.TrimSpace(line), err
		if line != "" && saw.request == "" {
			saw.request = "(a blank line)"
		}
		if line != "" {
			body := "decoy backend " + d.marker + "\n"
			fmt.Fprintf(tc, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
		}
	}
	d.mu.Lock()
	*dc = saw
	d.mu.Unlock()
}

// stop closes the listener and waits for the connections' handlers.
func (d *decoy) stop() []decoyConn {
	d.ln.Close()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(decoyTimeout):
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]decoyConn, len(d.conns))
	for i, c := range d.conns {
		out[i] = *c
	}
	return out
}

// throwawayLeaf is a certificate for name from a CA made now and dropped
// with the proof (its key never leaves this function).
func throwawayLeaf(name string) (tls.Certificate, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "harden decoy CA (throwaway, trusted by nobody)"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if ip := net.ParseIP(name); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}, nil
}

// canaryAnswer is what the client got through the canary front.
type canaryAnswer struct {
	status string
	code   int
	body   string
	err    error
}

// canaryDialAddr is where the client connects for the canary front (the
// fault tests put a fault proxy in between).
var canaryDialAddr = func(t *target) string { return t.spec.Canary.Listen }

// askCanary sends GET / through the canary front, over TLS verified with
// the policy's CA (harden's client certificate under mTLS).
func askCanary(ctx context.Context, q sdk.RequestContext, t *target) canaryAnswer {
	cfg, err := sdk.ClientTLS(q.Certificates, sdk.ClientTLSOptions{ServerName: t.frontName()})
	if err != nil {
		return canaryAnswer{err: fmt.Errorf("the policy's certificates: %w", err)}
	}
	cfg.NextProtos = []string{"http/1.1"}
	ctx, cancel := context.WithTimeout(ctx, decoyTimeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 3 * time.Second}, Config: cfg}
	c, err := d.DialContext(ctx, "tcp", canaryDialAddr(t))
	if err != nil {
		return canaryAnswer{err: err}
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: harden-verify\r\nConnection: close\r\n\r\n", t.frontName()); err != nil {
		return canaryAnswer{err: err}
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return canaryAnswer{err: fmt.Errorf("read the answer: %w", err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return canaryAnswer{status: resp.Status, code: resp.StatusCode, body: string(body), err: err}
}

// decoyProof runs the proof and judges it.
func decoyProof(ctx context.Context, q sdk.RequestContext, t *target) checks.Observation {
	what := fmt.Sprintf("request through the canary front %s to the decoy backend %s", t.spec.Canary.Listen, t.spec.Canary.Decoy)
	d, err := startDecoy(t.spec.Canary.Decoy, t.backendName())
	if err != nil {
		return checks.Unknown(what, err.Error())
	}
	ans := askCanary(ctx, q, t)
	conns := d.stop()
	return judgeDecoy(what, d.marker, t.backendName(), t.flavor.kind(), ans, conns)
}

// certificateAlerts are the alerts a TLS client sends when it refuses the
// server's certificate (RFC 8446 §6.2): the only alerts that count as the
// proxy refusing the decoy. handshake_failure, protocol_version,
// internal_error and the like say the handshake failed for another reason
// (the decoy's versions or suites, the proxy's own trouble).
var certificateAlerts = map[uint8]bool{42: true, 43: true, 44: true, 45: true, 46: true, 48: true} // bad, unsupported, revoked, expired, unknown certificate; unknown CA

// alertNames maps the words Go reports a remote alert in ("tls: unknown
// certificate authority") to the alert.
var alertNames = func() map[string]uint8 {
	m := map[string]uint8{}
	for d := range 256 {
		m[tls.AlertError(d).Error()] = uint8(d)
	}
	return m
}()

// alertOf is the alert the proxy sent, when err is one (Go's "remote
// error: tls: …", or the cleartext TLS 1.3 alert the decoy read itself).
func alertOf(err error) (uint8, bool) {
	var ae tls.AlertError
	if errors.As(err, &ae) {
		return uint8(ae), true
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" && oe.Err != nil {
		d, ok := alertNames[oe.Err.Error()]
		return d, ok
	}
	return 0, false
}

// sniMatches: the decoy's connection asked for the backend's name, as the
// rendered route does (nginx proxy_ssl_server_name on with proxy_ssl_name;
// HAProxy sni str(…)). An IP address is never sent as SNI (RFC 6066 §3):
// then a connection without SNI is the route's.
func sniMatches(sni, name string) bool {
	if net.ParseIP(name) != nil {
		return sni == "" || sni == name
	}
	return strings.EqualFold(sni, name)
}

// judgeDecoy is the verdict on what the client and the decoy saw. kind is
// the proxy's flavor: each refuses the decoy its own documented way, and
// only that way (or a certificate alert) counts —
//
//   - nginx completes the handshake and closes the connection without a
//     request (it checks the verify result after the handshake);
//   - HAProxy aborts the handshake with a certificate alert.
//
// Every connection must be the route's (SNI the backend's name: not a
// health check or another client) and refused; any other is inconclusive.
func judgeDecoy(what, marker, name, kind string, ans canaryAnswer, conns []decoyConn) checks.Observation {
	for _, c := range conns {
		if c.request != "" {
			return checks.Bad(fmt.Sprintf("the proxy does not verify its upstream: it completed a %s handshake with the decoy (certificate for %q from a throwaway CA) and forwarded the request %q", versionName(c.version), name, truncate(c.request, 80)))
		}
	}
	if ans.err == nil && marker != "" && strings.Contains(ans.body, marker) {
		return checks.Bad("the decoy's answer came back through the proxy (" + ans.status + "): the proxy does not verify its upstream")
	}
	if ans.err != nil {
		var ne net.Error
		reason := ans.err.Error()
		if errors.As(ans.err, &ne) && ne.Timeout() {
			reason = "timed out"
		}
		return checks.Unknown(what, "the canary front did not answer: "+reason+decoySaw(conns))
	}
	if len(conns) == 0 {
		return checks.Unknown(what, fmt.Sprintf("the proxy answered %s but never connected to the decoy: the canary route does not lead there", ans.status))
	}
	if ans.code < 500 || ans.code > 599 {
		return checks.Unknown(what, fmt.Sprintf("the proxy answered %s, not a 5xx error%s", ans.status, decoySaw(conns)))
	}
	var refused []string
	for _, c := range conns {
		sni := ""
		if c.sni != "" {
			sni = fmt.Sprintf(" (SNI %q)", c.sni)
		}
		if !sniMatches(c.sni, name) {
			return checks.Unknown(what, fmt.Sprintf("a connection to the decoy asked for %q, not the backend's name %q: not the canary route's (a health check, another client?)", c.sni, name))
		}
		desc, alerted := alertOf(c.handshakeErr)
		switch {
		case c.handshakeErr != nil && alerted && certificateAlerts[desc]:
			refused = append(refused, "the proxy aborted the TLS handshake with the decoy"+sni+": "+c.handshakeErr.Error())
		case c.handshakeErr != nil && alerted:
			return checks.Unknown(what, "the proxy ended the decoy's handshake with an alert that is not about the certificate: "+c.handshakeErr.Error())
		case c.handshakeErr != nil:
			return checks.Unknown(what, "the decoy's handshake ended without an alert from the proxy: "+c.handshakeErr.Error())
		case c.afterErr == io.EOF && kind == "nginx":
			refused = append(refused, fmt.Sprintf("the proxy completed a %s handshake with the decoy%s, then closed the connection without sending the request (nginx checks the certificate after the handshake)", versionName(c.version), sni))
		case c.afterErr == io.EOF:
			return checks.Unknown(what, fmt.Sprintf("%s completed a %s handshake with the decoy and closed without a request: %s refuses a certificate with an alert, so this is not its refusal", kind, versionName(c.version), kind))
		default:
			return checks.Unknown(what, fmt.Sprintf("after the %s handshake the decoy got no request and no close: %v", versionName(c.version), c.afterErr))
		}
	}
	return checks.Good(fmt.Sprintf("the decoy had a certificate for %q from a throwaway CA: %s; the client got the proxy's %s, not the decoy's answer", name, strings.Join(refused, "; "), ans.status))
}

func decoySaw(conns []decoyConn) string {
	if len(conns) == 0 {
		return "; the decoy saw no connection"
	}
	return fmt.Sprintf("; the decoy saw %d connection(s) and no request", len(conns))
}

func versionName(v uint16) string {
	if v == 0 {
		return "TLS"
	}
	return tls.VersionName(v)
}
