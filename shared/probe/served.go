package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// Served makes n fresh, sequential connections to the target through its
// dialect — each its own TCP connection and full handshake, never a resumed
// session — and records what each one saw: the chain the server sent, the
// version, and whether the session went through with the target's client
// certificate (when the server asked for one) and the dialect's application
// exchange. Nothing is retried and nothing is judged against a trust store:
// the caller verifies the chains (the rotation gate does, against the
// bundle clients hold). It is the Inventory capability's listener half.
func Served(ctx context.Context, target Target, name string, n int, opts Options) sdk.ServedListener {
	out := sdk.ServedListener{Name: name, Address: target.Address}
	s, err := newScanner(target, opts, 1)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	for range max(n, 1) {
		if ctx.Err() != nil {
			out.Handshakes = append(out.Handshakes, sdk.ServedHandshake{Outcome: sdk.OutcomeInconclusive, Evidence: "interrupted: " + context.Cause(ctx).Error()})
			break
		}
		out.Handshakes = append(out.Handshakes, s.served(ctx))
	}
	return out
}

func (s *scanner) served(ctx context.Context) sdk.ServedHandshake {
	var h sdk.ServedHandshake
	var asked atomic.Bool
	cfg := s.baseConfig()
	// A fresh session each time: the cache never offers a ticket (so the
	// server sends its certificate in every handshake), it only signals
	// that one arrived — a TLS 1.3 server's acceptance of the client flight.
	tickets := &ticketSignal{got: make(chan struct{}, 1)}
	cfg.ClientSessionCache = tickets
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		h.ChainPEM = chainPEM(cs.PeerCertificates)
		return nil
	}
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		asked.Store(true)
		if s.target.ClientCert == nil {
			return &tls.Certificate{}, nil
		}
		return s.target.ClientCert, nil
	}
	inconclusive := func(format string, args ...any) sdk.ServedHandshake {
		h.Outcome, h.Evidence = sdk.OutcomeInconclusive, fmt.Sprintf(format, args...)
		return h
	}
	conn, err := s.dial(ctx)
	if err != nil {
		return inconclusive("%v", err)
	}
	defer s.release()
	defer conn.Close()
	if err := s.target.Dialect.StartTLS(ctx, conn); err != nil {
		if errors.Is(err, ErrTLSRefused) {
			h.Outcome, h.Evidence = sdk.OutcomeRefused, err.Error()
			return h
		}
		return inconclusive("before TLS: %s", failureKind(err))
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		if alert, ok := remoteAlert(err); ok {
			h.ClientCertRequested = asked.Load()
			h.Outcome, h.Evidence = sdk.OutcomeRefused, "handshake refused with a TLS alert: "+alert
			return h
		}
		return inconclusive("TLS handshake: %s", failureKind(err))
	}
	st := tc.ConnectionState()
	h.Version = tlsprofile.VersionName(st.Version)
	h.ClientCertRequested = asked.Load()
	o, err := s.target.Dialect.Exchange(ctx, tc)
	if err == nil && o.Outcome == NotAttempted && asked.Load() && st.Version >= tls.VersionTLS13 {
		// No application request in this dialect: a TLS 1.3 server judges
		// the client certificate after the handshake.
		o, err = s.awaitVerdict(ctx, tc, tickets.got)
	}
	switch {
	case err != nil:
		return inconclusive("after the %s handshake: %s", h.Version, failureKind(err))
	case o.Outcome == NotAttempted:
		h.Outcome, h.Evidence = sdk.OutcomeAccepted, h.Version+" handshake completed"
	case o.Outcome == Accepted:
		h.Outcome, h.Evidence = sdk.OutcomeAccepted, o.Evidence
	case o.Outcome == Refused:
		h.Outcome, h.Evidence = sdk.OutcomeRefused, o.Evidence
	default:
		h.Outcome, h.Evidence = sdk.OutcomeInconclusive, o.Evidence
	}
	return h
}

func chainPEM(certs []*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}
