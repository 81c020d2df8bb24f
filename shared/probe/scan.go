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
	"strings"
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
	// Budget caps the whole scan of one endpoint (default 30 s). A healthy
	// endpoint takes a fraction of a second; a stalled one costs about two
	// connection timeouts (a timed-out attempt is retried only while the
	// endpoint has not timed out before), never more than Budget. Whatever
	// is not observed when the budget ends is inconclusive.
	Budget time.Duration
	// PostHandshakeWait bounds the wait for a TLS 1.3 server's verdict on a
	// client certificate it asked for and did not get (or did not trust)
	// when the dialect has no application request to make (plain TLS);
	// default 1 s. A session ticket or an alert ends it early. Nothing
	// waits when the server did not ask for a certificate.
	PostHandshakeWait time.Duration
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

// DefaultTimeout is the per-connection timeout when Options.Timeout is zero.
// Tests that drive a plugin's verify through stalling faults lower it
// (WithDefaultTimeout).
var DefaultTimeout = 5 * time.Second

// WithDefaultTimeout sets DefaultTimeout to d and returns the function that
// restores it: t.Cleanup(probe.WithDefaultTimeout(time.Second)).
func WithDefaultTimeout(d time.Duration) (restore func()) {
	old := DefaultTimeout
	DefaultTimeout = d
	return func() { DefaultTimeout = old }
}

func (o Options) withDefaults() Options {
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Budget <= 0 {
		o.Budget = 30 * time.Second
	}
	if o.PostHandshakeWait <= 0 {
		o.PostHandshakeWait = time.Second
	}
	if o.SplitOffers <= 0 {
		o.SplitOffers = 1
	}
	return o
}

// Plaintext is the outcome of the plaintext attempt.
type Plaintext struct {
	Outcome Outcome
	// Tested: the dialect has a plaintext session to attempt (Outcome is
	// not NotAttempted).
	Tested bool
	// Accepted: the server conclusively went along.
	Accepted bool
	Evidence string
	// Err is set when the attempt was inconclusive (the reason).
	Err error
}

func plaintextOf(o Observation) Plaintext {
	p := Plaintext{Outcome: o.Outcome, Tested: o.Outcome != NotAttempted, Accepted: o.Outcome == Accepted, Evidence: o.Evidence}
	if o.Outcome == Inconclusive {
		p.Err = errors.New(o.Evidence)
	}
	return p
}

// Protocol is the outcome for one protocol version.
type Protocol struct {
	Version uint16
	// Outcome: Accepted, Refused (the server's answer is the evidence) or
	// Inconclusive (the reason is the evidence: "not tested: ...").
	Outcome  Outcome
	Accepted bool
	Evidence string
	// SuitesIncomplete: the version is accepted but its suite enumeration
	// could not finish (the reason); the suite list is partial.
	SuitesIncomplete string
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

// ClientAuth is what client-certificate enforcement looked like.
type ClientAuth struct {
	// Requested: the server sent a CertificateRequest.
	Requested bool
	// NoCert: a session without a client certificate (Refused is what mTLS
	// wants).
	NoCert Observation
	// WrongCA: a certificate from an unrelated CA (tried only when NoCert
	// was refused; Refused means the server checks the issuer).
	WrongCA Observation
	// Trusted: harden's own trusted certificate (when one was given).
	Trusted Observation
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
	// Groups accepted for key exchange, by IANA id. GroupsTested: a group
	// enumeration ran (TLS 1.3 or an ECDHE suite was accepted);
	// GroupsIncomplete: why it could not finish.
	Groups           []uint16
	GroupsTested     bool
	GroupsIncomplete string
	Certificate      *Certificate
	ClientAuth       ClientAuth
	// singleProtocolPort: the dialect's port speaks either plaintext or
	// TLS, never both (Kafka, HTTP), so a plaintext answer proves TLS is
	// not offered there. PostgreSQL negotiates both on one port.
	singleProtocolPort bool
	// Connections is how many connections the scan opened; Retries how
	// many attempts were repeated after a transient failure.
	Connections int
	Retries     int
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

// Inconclusive counts the observations of the scan that could not
// conclude: versions, unfinished suite and group enumerations, the
// plaintext attempt and the client-certificate attempts.
func (r *Result) Inconclusive() int {
	n := 0
	for _, p := range r.Protocols {
		if p.Outcome == Inconclusive {
			n++
		}
		if p.SuitesIncomplete != "" {
			n++
		}
	}
	if r.GroupsIncomplete != "" {
		n++
	}
	if r.Plaintext.Outcome == Inconclusive {
		n++
	}
	for _, o := range []Observation{r.ClientAuth.NoCert, r.ClientAuth.WrongCA, r.ClientAuth.Trusted} {
		if o.Outcome == Inconclusive {
			n++
		}
	}
	return n
}

var probeVersions = []uint16{tlsprofile.VersionSSL30, tlsprofile.VersionTLS10, tlsprofile.VersionTLS11, tlsprofile.VersionTLS12, tlsprofile.VersionTLS13}

type scanner struct {
	target Target
	opts   Options
	sem    chan struct{}
	conns  atomic.Int64
	host   string
	// retries counts repeated attempts; timedOut is set at the first
	// timeout (later timeouts are not retried); dialed at the first
	// connection that could be opened.
	retries  atomic.Int64
	timedOut atomic.Bool
	dialed   atomic.Bool
	dialMu   sync.Mutex
	dialErr  error
}

func newScanner(target Target, opts Options, sem int) (*scanner, error) {
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
	if sem <= 0 {
		sem = opts.Concurrency
	}
	return &scanner{target: target, opts: opts, sem: make(chan struct{}, sem), host: host}, nil
}

// Scan probes one endpoint. It returns an error only for a bad Target; an
// unreachable endpoint is reported in Result.ConnectErr.
func Scan(ctx context.Context, target Target, opts Options) (*Result, error) {
	start := time.Now()
	s, err := newScanner(target, opts, 0)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Budget)
	defer cancel()
	res := &Result{Address: s.target.Address, Dialect: s.target.Dialect.Name()}
	if sp, ok := s.target.Dialect.(interface{ singleProtocolPort() bool }); ok {
		res.singleProtocolPort = sp.singleProtocolPort()
	}
	defer func() {
		res.Connections, res.Retries = int(s.conns.Load()), int(s.retries.Load())
		res.Duration = time.Since(start)
	}()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); res.Plaintext = s.plaintext(ctx) }()
	res.Protocols = make([]Protocol, len(probeVersions))
	scans := make([]versionScan, len(probeVersions))
	for i, v := range probeVersions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			candidates, parts := legacySuites(), s.opts.SplitOffers
			if v == tlsprofile.VersionTLS13 {
				candidates, parts = tls13Suites(), 1
			}
			vs := s.enumerateSuites(ctx, v, candidates, parts)
			scans[i] = vs
			res.Protocols[i] = Protocol{Version: v, Outcome: vs.obs.Outcome, Accepted: vs.obs.Outcome == Accepted, Evidence: vs.obs.Evidence,
				SuitesIncomplete: vs.incomplete, negotiationRefused: vs.tlsRefused}
		}()
	}
	wg.Wait()
	// An endpoint that no probe could even connect to is unreachable; no
	// separate reachability connection is spent.
	if !s.dialed.Load() {
		s.dialMu.Lock()
		res.ConnectErr = s.dialErr
		s.dialMu.Unlock()
		if res.ConnectErr == nil {
			res.ConnectErr = fmt.Errorf("no connection could be opened: %w", ctx.Err())
		}
		return res, nil
	}
	for i, p := range res.Protocols {
		if p.negotiationRefused {
			res.TLSRefused, res.TLSEvidence = true, p.Evidence
		}
		for _, id := range scans[i].suites {
			res.Ciphers = append(res.Ciphers, Cipher{Version: p.Version, ID: id, Name: suiteName(id)})
		}
	}
	slices.SortFunc(res.Ciphers, func(a, b Cipher) int {
		if a.Version != b.Version {
			return int(a.Version) - int(b.Version)
		}
		return int(a.ID) - int(b.ID)
	})
	res.CipherCoverage = fmt.Sprintf("%d suites offered in raw ClientHellos per version", len(legacySuites())+len(tls13Suites()))
	if accepted := res.AcceptedVersions(); len(accepted) > 0 {
		var best12 uint16
		var best12Suites []uint16
		for i, p := range res.Protocols {
			if p.Accepted && p.Version <= tlsprofile.VersionTLS12 {
				best12, best12Suites = p.Version, scans[i].suites
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
		go func() {
			defer wg.Done()
			gs := s.enumerateGroups(ctx, tls13, ecdhe)
			res.Groups, res.GroupsTested, res.GroupsIncomplete = gs.groups, gs.tested, gs.incomplete
		}()
		go func() {
			defer wg.Done()
			if best12 != 0 {
				res.PreferenceOrder, res.ServerPreference = s.preferenceOrder(ctx, best12, best12Suites, s.opts.SplitOffers == 1)
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
	return res, nil
}

func (s *scanner) dial(ctx context.Context) (net.Conn, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, &dialError{ctx.Err()}
	}
	d := net.Dialer{Timeout: s.opts.Timeout}
	if s.opts.LocalAddr != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(s.opts.LocalAddr)}
	}
	s.conns.Add(1)
	conn, err := d.DialContext(ctx, "tcp", s.target.Address)
	if err != nil {
		s.release()
		s.dialMu.Lock()
		s.dialErr = err
		s.dialMu.Unlock()
		return nil, &dialError{err}
	}
	s.dialed.Store(true)
	conn.SetDeadline(time.Now().Add(s.opts.Timeout))
	// Cancellation (Stop, Ctrl-C, the endpoint budget) must end blocking
	// reads at once, not when the per-connection timeout expires.
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

// dialError: the endpoint could not be connected to (a transient failure
// for one attempt; the endpoint is unreachable when no attempt connected).
type dialError struct{ err error }

func (e *dialError) Error() string { return "connect: " + failureKind(e.err) }
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
	return plaintextOf(s.attempt(ctx, "plaintext session", func() (Observation, error) {
		conn, err := s.dial(ctx)
		if err != nil {
			return Observation{}, err
		}
		defer s.release()
		defer conn.Close()
		return s.target.Dialect.Plaintext(ctx, conn)
	}))
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

// PlaintextOnly runs just the dialect's plaintext attempt (one connection,
// more only to retry a transient failure).
func PlaintextOnly(ctx context.Context, target Target, opts Options) Plaintext {
	s, err := newScanner(target, opts, 1)
	if err != nil {
		return Plaintext{Outcome: Inconclusive, Tested: true, Err: err, Evidence: err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Budget)
	defer cancel()
	return s.plaintext(ctx)
}

// Handshake completes one TLS handshake with the target through its dialect
// (e.g. after PostgreSQL's SSLRequest) and returns the connection state; it
// is how apply confirms that NEW connections see the new certificate and
// settings. cfg.ServerName defaults to the target's.
func Handshake(ctx context.Context, target Target, cfg *tls.Config, opts Options) (tls.ConnectionState, error) {
	s, err := newScanner(target, opts, 1)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	if cfg.ServerName == "" {
		cfg.ServerName = s.target.ServerName
	}
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

// ticketSignal is a session cache that reports a TLS 1.3 NewSessionTicket:
// a server that asked for a client certificate sends tickets only after it
// accepted the client's flight, so a ticket ends the wait for its verdict.
type ticketSignal struct{ got chan struct{} }

func (t *ticketSignal) Get(string) (*tls.ClientSessionState, bool) { return nil, false }
func (t *ticketSignal) Put(string, *tls.ClientSessionState) {
	select {
	case t.got <- struct{}{}:
	default:
	}
}

// session makes one attempt at a TLS session with cfg (a client
// certificate or none) and judges whether the server let it in:
//   - a TLS alert during the handshake after the server asked for a client
//     certificate is a refusal; one before it asked is inconclusive (the
//     server refused something else);
//   - once the handshake completes, the dialect's application exchange
//     judges; a dialect with none (plain TLS) is accepted at once unless
//     the server asked for a certificate under TLS 1.3, where its verdict
//     comes after the handshake: an alert refuses, a session ticket or
//     silence for PostHandshakeWait accepts.
//
// chain receives the server's certificates when the handshake got that far.
func (s *scanner) session(ctx context.Context, cfg *tls.Config, what string, chain func([]*x509.Certificate)) (requested bool, obs Observation) {
	var everAsked atomic.Bool
	obs = s.attempt(ctx, what, func() (Observation, error) {
		// Per attempt: a CertificateRequest seen on an earlier attempt says
		// nothing about this one's alert.
		var asked atomic.Bool
		cfg := cfg.Clone()
		verify := cfg.VerifyConnection
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			chain(cs.PeerCertificates)
			if verify != nil {
				return verify(cs)
			}
			return nil
		}
		certs := cfg.Certificates
		cfg.Certificates = nil
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			asked.Store(true)
			everAsked.Store(true)
			if len(certs) == 0 {
				return &tls.Certificate{}, nil // present no certificate
			}
			return &certs[0], nil
		}
		tickets := &ticketSignal{got: make(chan struct{}, 1)}
		cfg.ClientSessionCache = tickets
		conn, err := s.dial(ctx)
		if err != nil {
			return Observation{}, err
		}
		defer s.release()
		defer conn.Close()
		if err := s.target.Dialect.StartTLS(ctx, conn); err != nil {
			if errors.Is(err, ErrTLSRefused) {
				return inconclusive("%s: %v", what, err), nil
			}
			return Observation{}, err
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			if u := (*unverifiedServer)(nil); errors.As(err, &u) {
				return inconclusive("%s not attempted: %v", what, u), nil
			}
			if alert, ok := remoteAlert(err); ok {
				switch {
				case asked.Load() && clientCertRefusal(alert):
					return refused("handshake refused with a TLS alert after the server asked for a client certificate: %s", alert), nil
				case asked.Load():
					return inconclusive("handshake ended with a TLS alert that is not about the client certificate: %s", alert), nil
				}
				return inconclusive("handshake refused with a TLS alert before any client certificate was asked for: %s", alert), nil
			}
			return Observation{}, transient("TLS handshake", err)
		}
		o, err := s.target.Dialect.Exchange(ctx, tc)
		if err == nil && o.Outcome == Refused {
			// A refusal by TLS alert counts only as the verdict on the
			// client certificate: the server asked for one and the alert
			// says so. Any other alert (bad record MAC: a corrupted record;
			// decode error) is the transport failing, whatever the dialect
			// made of it. The alert is sticky on the conn: one read shows it
			// (a refusal in the protocol's own words leaves none).
			if alert, ok := stickyAlert(tc); ok && !(asked.Load() && clientCertRefusal(alert)) {
				if !asked.Load() {
					return inconclusive("session ended with a TLS alert although the server asked for no client certificate: %s", alert), nil
				}
				return inconclusive("session ended with a TLS alert that is not about the client certificate: %s", alert), nil
			}
		}
		if err != nil || o.Outcome != NotAttempted {
			return o, err
		}
		st := tc.ConnectionState()
		switch {
		case !asked.Load():
			return accepted("%s handshake completed; the server did not ask for a client certificate", tlsprofile.VersionName(st.Version)), nil
		case st.Version < tls.VersionTLS13:
			return accepted("%s handshake completed after the server asked for a client certificate (it judges the certificate before its Finished)", tlsprofile.VersionName(st.Version)), nil
		}
		return s.awaitVerdict(ctx, tc, tickets.got)
	})
	return everAsked.Load(), obs
}

// stickyAlert reports the TLS alert the server sent on tc, if one ended it:
// crypto/tls keeps a received alert as the conn's read error, so a read
// returns it at once (with a deadline in the past, a conn without one
// returns a timeout or data instead).
func stickyAlert(tc *tls.Conn) (string, bool) {
	tc.SetReadDeadline(time.Now().Add(-time.Second))
	var b [1]byte
	_, err := tc.Read(b[:])
	return remoteAlert(err)
}

// clientCertRefusal: the alert text (Go's crypto/tls names) is one a server
// sends when it rejects the client's certificate or its absence.
func clientCertRefusal(alert string) bool {
	for _, a := range []string{"handshake failure", "bad certificate", "unsupported certificate", "revoked certificate",
		"expired certificate", "unknown certificate", "unknown certificate authority", "access denied", "certificate required"} {
		if strings.HasSuffix(alert, a) {
			return true
		}
	}
	return false
}

// awaitVerdict waits for a TLS 1.3 server's verdict on the client's
// certificate after the handshake: an alert, a session ticket, data, or
// silence for PostHandshakeWait.
func (s *scanner) awaitVerdict(ctx context.Context, tc *tls.Conn, ticket <-chan struct{}) (Observation, error) {
	wait := s.opts.PostHandshakeWait
	if ctx.Err() != nil {
		return Observation{}, transient("wait for the server's verdict after the TLS 1.3 handshake", ctx.Err())
	}
	tc.SetReadDeadline(time.Now().Add(wait))
	read := make(chan error, 1)
	go func() {
		_, err := tc.Read(make([]byte, 1))
		read <- err
	}()
	select {
	case <-ticket:
		return accepted("TLS 1.3 session accepted: the server sent a session ticket after the client's certificate flight"), nil
	case err := <-read:
		if alert, ok := remoteAlert(err); ok {
			return refused("session refused after the TLS 1.3 handshake with a TLS alert: %s", alert), nil
		}
		select {
		case <-ticket:
			return accepted("TLS 1.3 session accepted: the server sent a session ticket after the client's certificate flight"), nil
		default:
		}
		switch {
		case err == nil:
			return accepted("TLS 1.3 session accepted: the server sent application data"), nil
		case isTimeout(err) && ctx.Err() == nil:
			return accepted("TLS 1.3 session accepted: no alert within %s after the handshake", wait), nil
		}
		return Observation{}, transient("wait for the server's verdict after the TLS 1.3 handshake", err)
	}
}

// clientAuth tries a session without a client certificate, then (when that
// is refused) with a certificate from an unrelated CA, and with harden's
// trusted one when given. The server's chain is read on the way.
func (s *scanner) clientAuth(ctx context.Context, minV, maxV uint16) (ClientAuth, *Certificate) {
	var mu sync.Mutex
	var chain []*x509.Certificate
	keep := func(c []*x509.Certificate) {
		mu.Lock()
		defer mu.Unlock()
		if len(chain) == 0 && len(c) > 0 {
			chain = c
		}
	}
	var ca ClientAuth
	ca.Requested, ca.NoCert = s.session(ctx, s.goConfig(minV, maxV), "session without a client certificate", keep)
	ca.NoCert = ca.NoCert.said("session without a client certificate refused: ", "session without a client certificate accepted: ")
	if ca.NoCert.Outcome == Refused {
		if stranger, err := strangerCertificate(); err != nil {
			ca.WrongCA = inconclusive("could not make an unrelated client certificate: %v", err)
		} else {
			cfg := s.goConfig(minV, maxV)
			cfg.Certificates = []tls.Certificate{stranger}
			_, ca.WrongCA = s.session(ctx, cfg, "session with a certificate from an unrelated CA", keep)
			ca.WrongCA = ca.WrongCA.said("client certificate from an unrelated CA refused: ",
				"client certificate from an unrelated CA ACCEPTED (the server requires a certificate but does not check its issuer): ")
		}
	}
	if s.target.ClientCert != nil {
		cfg := s.goConfig(minV, maxV)
		cfg.Certificates = []tls.Certificate{*s.target.ClientCert}
		cfg.VerifyConnection = s.verifiedServer // harden's certificate only to the server the policy names
		_, ca.Trusted = s.session(ctx, cfg, "session with the trusted client certificate", keep)
		ca.Trusted = ca.Trusted.said("client with a trusted certificate refused: ", "client with a trusted certificate accepted: ")
	}
	var cert *Certificate
	if len(chain) > 0 {
		cert = s.verifyChain(chain)
	}
	return ca, cert
}
