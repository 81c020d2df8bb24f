package probe

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/harden-dev/harden/shared/tlsprofile"
)

// Target is one endpoint to probe.
type Target struct {
	// Address is host:port (IPv6 as [::1]:5432).
	Address string
	// ServerName for SNI and the host name check; defaults to the host part.
	ServerName string
	Dialect    Dialect
	// RootCAs verify the server's chain; nil skips the trust check.
	RootCAs *x509.CertPool
	// ClientCert, when set, is presented in an extra handshake that proves a
	// trusted client is let in (the positive side of mTLS).
	ClientCert *tls.Certificate
}

// Options bound a scan.
type Options struct {
	// Concurrency caps simultaneous connections to the endpoint. PostgreSQL
	// forks a backend per connection and logs each probe, so keep it small.
	Concurrency int
	// Timeout per connection (dial + negotiation + handshake).
	Timeout time.Duration
	// SplitOffers runs each version's suite enumeration in this many
	// parallel parts. 1 (the default) enumerates sequentially: fewest
	// connections, and the discovery order is the server's preference
	// order. More parts lower one endpoint's latency on servers with many
	// suites at the price of one extra connection per part.
	SplitOffers int
	// LocalAddr binds every probe connection to this local IP (e.g.
	// 127.0.0.2, to prove a refusal does not depend on the client address).
	LocalAddr string
}

func (o Options) withDefaults() Options {
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.SplitOffers <= 0 {
		o.SplitOffers = 1
	}
	return o
}

// Plaintext is the outcome of the plaintext attempt.
type Plaintext struct {
	Tested   bool
	Accepted bool
	Evidence string
	Err      error
}

// Protocol is the outcome for one protocol version.
type Protocol struct {
	Version  uint16
	Accepted bool
	Evidence string
	// negotiationRefused: the dialect's pre-TLS step was declined.
	negotiationRefused bool
}

// Cipher is one accepted cipher suite.
type Cipher struct {
	Version uint16
	ID      uint16
	Name    string
}

// Certificate is what the server presented.
type Certificate struct {
	Chain []*x509.Certificate
	// TrustErr is nil when the chain verifies against RootCAs and the name
	// matches; TrustChecked is false without RootCAs.
	TrustChecked bool
	TrustErr     error
}

// ClientAuth is the outcome of connecting without a client certificate.
type ClientAuth struct {
	Tested bool
	// Requested: the server sent a CertificateRequest.
	Requested bool
	// Refused: the session without a certificate was refused.
	Refused  bool
	Evidence string
	// WrongCA: a certificate from an unrelated CA was presented (only when
	// the server refuses clients without one); refused means the server
	// checks who issued it, not merely that there is one.
	WrongCATested   bool
	WrongCARefused  bool
	WrongCAEvidence string
	// TrustedClientAccepted is set when a ClientCert was given and worked.
	TrustedClientTested   bool
	TrustedClientAccepted bool
	TrustedClientEvidence string
}

// Result is everything observed on one endpoint.
type Result struct {
	Address string
	Dialect string
	// ConnectErr is set when the endpoint could not be reached at all.
	ConnectErr error
	Plaintext  Plaintext
	// TLSRefused: the server declined TLS during negotiation (e.g. 'N').
	TLSRefused  bool
	TLSEvidence string
	Protocols   []Protocol
	Ciphers     []Cipher
	// CipherCoverage says which suites were tested (honest about limits).
	CipherCoverage string
	// ServerPreference: the server picks by its own order (PreferenceOrder,
	// for the highest TLS <= 1.2 version) rather than the client's.
	ServerPreference bool
	PreferenceOrder  []uint16
	// Groups accepted for key exchange, by IANA id.
	Groups      []uint16
	Certificate *Certificate
	ClientAuth  ClientAuth
	// Connections is how many connections the scan opened.
	Connections int
	Duration    time.Duration
}

// AcceptedVersions lists accepted protocol versions ascending.
func (r *Result) AcceptedVersions() []uint16 {
	var out []uint16
	for _, p := range r.Protocols {
		if p.Accepted {
			out = append(out, p.Version)
		}
	}
	return out
}

var probeVersions = []uint16{tlsprofile.VersionSSL30, tlsprofile.VersionTLS10, tlsprofile.VersionTLS11, tlsprofile.VersionTLS12, tlsprofile.VersionTLS13}

type scanner struct {
	target Target
	opts   Options
	sem    chan struct{}
	conns  atomic.Int64
	host   string
}

// Scan probes one endpoint. It returns an error only for a bad Target; an
// unreachable endpoint is reported in Result.ConnectErr.
func Scan(ctx context.Context, target Target, opts Options) (*Result, error) {
	start := time.Now()
	if target.Dialect == nil {
		target.Dialect = TLS
	}
	host, _, err := net.SplitHostPort(target.Address)
	if err != nil {
		return nil, fmt.Errorf("probe: address %q: %w", target.Address, err)
	}
	if target.ServerName == "" {
		target.ServerName = host
	}
	opts = opts.withDefaults()
	s := &scanner{target: target, opts: opts, sem: make(chan struct{}, opts.Concurrency), host: host}
	res := &Result{Address: target.Address, Dialect: target.Dialect.Name()}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); res.Plaintext = s.plaintext(ctx) }()
	res.Protocols = make([]Protocol, len(probeVersions))
	suites := make([][]uint16, len(probeVersions))
	errs := make([]error, len(probeVersions))
	for i, v := range probeVersions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			candidates, parts := legacySuites(), opts.SplitOffers
			if v == tlsprofile.VersionTLS13 {
				candidates, parts = tls13Suites(), 1
			}
			found, refusal, err := s.enumerateSuites(ctx, v, candidates, parts)
			suites[i], errs[i] = found, err
			p := Protocol{Version: v, Accepted: len(found) > 0}
			switch {
			case errors.Is(err, ErrTLSRefused):
				p.Evidence, p.negotiationRefused = err.Error(), true
			case len(found) > 0:
				p.Evidence = fmt.Sprintf("%s accepted (%d suites)", tlsprofile.VersionName(v), len(found))
			case err != nil:
				p.Evidence = fmt.Sprintf("%s not tested: %v", tlsprofile.VersionName(v), err)
			default:
				p.Evidence = fmt.Sprintf("%s refused (%s)", tlsprofile.VersionName(v), refusal)
			}
			res.Protocols[i] = p
		}()
	}
	wg.Wait()
	// An endpoint that no version probe could even connect to is
	// unreachable; no separate reachability connection is spent.
	var de *dialError
	if !slices.ContainsFunc(errs, func(err error) bool { return !errors.As(err, &de) }) {
		res.ConnectErr = de.err
		res.Connections = int(s.conns.Load())
		res.Duration = time.Since(start)
		return res, nil
	}
	for i, p := range res.Protocols {
		if p.negotiationRefused {
			res.TLSRefused, res.TLSEvidence = true, p.Evidence
		}
		for _, id := range suites[i] {
			res.Ciphers = append(res.Ciphers, Cipher{Version: p.Version, ID: id, Name: suiteName(id)})
		}
		slices.SortFunc(res.Ciphers, func(a, b Cipher) int {
			if a.Version != b.Version {
				return int(a.Version) - int(b.Version)
			}
			return int(a.ID) - int(b.ID)
		})
	}
	res.CipherCoverage = fmt.Sprintf("%d suites offered in raw ClientHellos per version", len(legacySuites())+len(tls13Suites()))
	if accepted := res.AcceptedVersions(); len(accepted) > 0 {
		var best12 uint16
		var best12Suites []uint16
		for i, p := range res.Protocols {
			if p.Accepted && p.Version <= tlsprofile.VersionTLS12 {
				best12, best12Suites = p.Version, suites[i]
			}
		}
		var ecdhe []uint16
		for _, id := range best12Suites {
			if isECDHE(id) {
				ecdhe = append(ecdhe, id)
			}
		}
		tls13 := slices.Contains(accepted, tlsprofile.VersionTLS13)
		wg.Add(3)
		go func() { defer wg.Done(); res.Groups = s.enumerateGroups(ctx, tls13, ecdhe) }()
		go func() {
			defer wg.Done()
			if best12 != 0 {
				res.PreferenceOrder, res.ServerPreference = s.preferenceOrder(ctx, best12, best12Suites, opts.SplitOffers == 1)
			}
		}()
		// One full handshake yields both the certificate chain and the
		// client-certificate behaviour.
		go func() {
			defer wg.Done()
			res.ClientAuth, res.Certificate = s.clientAuth(ctx, slices.Min(accepted), slices.Max(accepted))
		}()
		wg.Wait()
	}
	res.Connections = int(s.conns.Load())
	res.Duration = time.Since(start)
	return res, nil
}

func (s *scanner) dial(ctx context.Context) (net.Conn, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	d := net.Dialer{Timeout: s.opts.Timeout}
	if s.opts.LocalAddr != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(s.opts.LocalAddr)}
	}
	s.conns.Add(1)
	conn, err := d.DialContext(ctx, "tcp", s.target.Address)
	if err != nil {
		s.release()
		return nil, &dialError{err}
	}
	conn.SetDeadline(time.Now().Add(s.opts.Timeout))
	// Cancellation (Stop, Ctrl-C) must end blocking reads at once, not when
	// the per-connection timeout expires.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	return &watchedConn{Conn: conn, stop: stop}, nil
}

// strangerCertificate is a self-signed client certificate no server should
// trust, made once per process.
var strangerCertificate = sync.OnceValues(func() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "harden-probe unrelated CA client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
})

// dialError: the endpoint could not be connected to at all.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

type watchedConn struct {
	net.Conn
	stop func() bool
}

func (c *watchedConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

func (s *scanner) release() { <-s.sem }

func (s *scanner) plaintext(ctx context.Context) Plaintext {
	conn, err := s.dial(ctx)
	if err != nil {
		return Plaintext{Tested: true, Err: err}
	}
	defer s.release()
	defer conn.Close()
	accepted, evidence, ok, err := s.target.Dialect.Plaintext(ctx, conn)
	return Plaintext{Tested: ok, Accepted: accepted, Evidence: evidence, Err: err}
}

// handshake opens a connection, negotiates TLS with cfg and returns the
// established session (caller closes and releases).
func (s *scanner) handshake(ctx context.Context, cfg *tls.Config) (*tls.Conn, error) {
	conn, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.target.Dialect.StartTLS(ctx, conn); err != nil {
		conn.Close()
		s.release()
		return nil, err
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		tc.Close()
		s.release()
		return nil, err
	}
	return tc, nil
}

func (s *scanner) baseConfig() *tls.Config {
	return &tls.Config{
		ServerName: s.target.ServerName,
		NextProtos: s.target.Dialect.ALPN(),
		// Verification is done separately so that an untrusted certificate
		// is reported as a finding instead of hiding every other fact.
		InsecureSkipVerify: true, //nolint:gosec // see comment
	}
}

// PlaintextOnly runs just the dialect's plaintext attempt (one connection).
func PlaintextOnly(ctx context.Context, target Target, opts Options) Plaintext {
	if target.Dialect == nil {
		target.Dialect = TLS
	}
	s := &scanner{target: target, opts: opts.withDefaults(), sem: make(chan struct{}, 1)}
	return s.plaintext(ctx)
}

// Handshake completes one TLS handshake with the target through its dialect
// (e.g. after PostgreSQL's SSLRequest) and returns the connection state; it
// is how apply confirms that NEW connections see the new certificate and
// settings. cfg.ServerName defaults to the target's.
func Handshake(ctx context.Context, target Target, cfg *tls.Config, opts Options) (tls.ConnectionState, error) {
	if target.Dialect == nil {
		target.Dialect = TLS
	}
	host, _, err := net.SplitHostPort(target.Address)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	if target.ServerName == "" {
		target.ServerName = host
	}
	if cfg.ServerName == "" {
		cfg.ServerName = target.ServerName
	}
	s := &scanner{target: target, opts: opts.withDefaults(), sem: make(chan struct{}, 1), host: host}
	tc, err := s.handshake(ctx, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer s.release()
	defer tc.Close()
	return tc.ConnectionState(), nil
}

// suiteName is the IANA name of a suite id.
func suiteName(id uint16) string {
	if st, ok := tlsprofile.SuiteByID(id); ok {
		return st.IANA
	}
	return tlsprofile.HexID(id)
}

// goConfig is a crypto/tls client config spanning the accepted versions
// with every suite Go has (it offers few by default).
func (s *scanner) goConfig(minV, maxV uint16) *tls.Config {
	cfg := s.baseConfig()
	cfg.MinVersion, cfg.MaxVersion = max(minV, tls.VersionTLS10), maxV
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		cfg.CipherSuites = append(cfg.CipherSuites, cs.ID)
	}
	return cfg
}

// verifyChain checks the chain against RootCAs and the server name.
func (s *scanner) verifyChain(chain []*x509.Certificate) *Certificate {
	c := &Certificate{Chain: chain}
	if s.target.RootCAs != nil && len(chain) > 0 {
		c.TrustChecked = true
		inter := x509.NewCertPool()
		for _, ic := range chain[1:] {
			inter.AddCert(ic)
		}
		_, c.TrustErr = chain[0].Verify(x509.VerifyOptions{Roots: s.target.RootCAs, Intermediates: inter, DNSName: s.target.ServerName})
	}
	return c
}

// clientAuth connects without a client certificate. The server's chain is
// read on the way (VerifyConnection sees it before any client-certificate
// refusal). A handshake that fails after the server asked for a certificate
// is a refusal; one that fails for another reason leaves client
// authentication untested rather than guessing.
func (s *scanner) clientAuth(ctx context.Context, minV, maxV uint16) (ClientAuth, *Certificate) {
	ca := ClientAuth{}
	var requested atomic.Bool
	var chain []*x509.Certificate
	cfg := s.goConfig(minV, maxV)
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		chain = cs.PeerCertificates
		return nil
	}
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		requested.Store(true)
		return &tls.Certificate{}, nil // present no certificate
	}
	tc, err := s.handshake(ctx, cfg)
	ca.Requested = requested.Load()
	switch {
	case err != nil && ca.Requested:
		ca.Tested, ca.Refused, ca.Evidence = true, true, "handshake without a client certificate refused: "+err.Error()
	case err != nil:
		ca.Evidence = "could not complete a handshake with Go's TLS client to test client authentication: " + err.Error()
	default:
		ca.Tested = true
		err = s.target.Dialect.Exchange(ctx, tc)
		tc.Close()
		s.release()
		if err != nil {
			ca.Refused, ca.Evidence = true, "session without a client certificate refused after the handshake: "+err.Error()
		} else {
			ca.Evidence = "session without a client certificate accepted"
			if !ca.Requested {
				ca.Evidence += " (server did not request one)"
			}
		}
	}
	var cert *Certificate
	if len(chain) > 0 {
		cert = s.verifyChain(chain)
	}
	if ca.Refused {
		ca.WrongCATested = true
		stranger, err := strangerCertificate()
		if err == nil {
			cfg := s.goConfig(minV, maxV)
			cfg.Certificates = []tls.Certificate{stranger}
			var tc *tls.Conn
			if tc, err = s.handshake(ctx, cfg); err == nil {
				err = s.target.Dialect.Exchange(ctx, tc)
				tc.Close()
				s.release()
			}
		}
		ca.WrongCARefused = err != nil
		if err != nil {
			ca.WrongCAEvidence = "client certificate from an unrelated CA refused: " + err.Error()
		} else {
			ca.WrongCAEvidence = "client certificate from an unrelated CA ACCEPTED: the server requires a certificate but does not check its issuer"
		}
	}
	if s.target.ClientCert != nil {
		ca.TrustedClientTested = true
		cfg := s.goConfig(minV, maxV)
		cfg.Certificates = []tls.Certificate{*s.target.ClientCert}
		tc, err := s.handshake(ctx, cfg)
		if err == nil {
			err = s.target.Dialect.Exchange(ctx, tc)
			tc.Close()
			s.release()
		}
		ca.TrustedClientAccepted = err == nil
		if err != nil {
			ca.TrustedClientEvidence = "client with a trusted certificate refused: " + err.Error()
		} else {
			ca.TrustedClientEvidence = "client with a trusted certificate accepted"
		}
	}
	return ca, cert
}
