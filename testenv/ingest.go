package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Ingest is the seed pipeline's ingest API: a small real HTTPS service
// (Go's net/http) on 127.0.0.1, run inside the testenv process. It has two
// listeners, as many internal services do:
//
//   - HTTPS on TLSAddress, with a certificate from the testenv CA for
//     127.0.0.1 and localhost, TLS 1.2+ with AEAD suites only, and the
//     security headers a service behind TLS sends (HSTS, nosniff, no
//     framing). With ClientCAFile set it requires and verifies client
//     certificates (the mTLS scope).
//   - plain HTTP on PlaintextAddress: the legacy internal port a proxy's
//     "before" configuration forwards to (the seed's mistake "terminating
//     TLS at a proxy but using plaintext to the backend").
//
// Both serve POST /v1/events (JSON array or object; answers 202 with the
// number of events and whether the request came over TLS) and GET /healthz.
// Every answer carries "X-Ingest-Transport: tls" or "plaintext", so a test
// can tell which hop a proxied request took.
type Ingest struct {
	// ClientCAFile, when set before Start, makes the HTTPS listener require
	// client certificates signed by that CA (PEM).
	ClientCAFile string

	TLSAddress       string
	PlaintextAddress string
	CertFile         string
	KeyFile          string
	// CAFile is the CA that issued CertFile (what a client trusts).
	CAFile string

	// Events counts accepted events (both listeners).
	Events atomic.Int64

	mu      sync.Mutex
	servers []*http.Server
}

// Name implements Service.
func (i *Ingest) Name() string { return "ingest" }

// Start binds both listeners on free loopback ports and serves them.
func (i *Ingest) Start(_ context.Context, env *Env) error {
	var err error
	if i.CertFile, i.KeyFile, err = env.CA.Issue("ingest", false, "127.0.0.1", "localhost"); err != nil {
		return err
	}
	i.CAFile = env.CA.CertFile
	pair, err := tls.LoadX509KeyPair(i.CertFile, i.KeyFile)
	if err != nil {
		return err
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{pair},
		MinVersion:   tls.VersionTLS12,
		// Mozilla intermediate's TLS 1.2 suites that Go implements.
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384},
		NextProtos:       []string{"h2", "http/1.1"},
	}
	if i.ClientCAFile != "" {
		pem, err := os.ReadFile(i.ClientCAFile)
		if err != nil {
			return fmt.Errorf("ingest: client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("ingest: client CA %s: no PEM certificate", i.ClientCAFile)
		}
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, pool
	}
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	plainLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tlsLn.Close()
		return err
	}
	i.TLSAddress, i.PlaintextAddress = tlsLn.Addr().String(), plainLn.Addr().String()
	tlsSrv := &http.Server{Handler: i.handler("tls"), TLSConfig: cfg, ReadHeaderTimeout: 10 * time.Second, ErrorLog: quietLog()}
	plainSrv := &http.Server{Handler: i.handler("plaintext"), ReadHeaderTimeout: 10 * time.Second, ErrorLog: quietLog()}
	i.mu.Lock()
	i.servers = []*http.Server{tlsSrv, plainSrv}
	i.mu.Unlock()
	go tlsSrv.ServeTLS(tlsLn, "", "")
	go plainSrv.Serve(plainLn)
	return nil
}

func (i *Ingest) handler(transport string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		i.headers(w, transport)
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("POST /v1/events", func(w http.ResponseWriter, r *http.Request) {
		i.headers(w, transport)
		var body any
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil {
			http.Error(w, "body must be JSON: "+err.Error(), http.StatusBadRequest)
			return
		}
		n := 1
		if a, ok := body.([]any); ok {
			n = len(a)
		}
		i.Events.Add(int64(n))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(map[string]any{"accepted": n, "transport": transport})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		i.headers(w, transport)
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "ingest API: POST /v1/events, GET /healthz\n")
	})
	return mux
}

// headers are what a service behind TLS should send; HSTS only over TLS
// (RFC 6797 §7.2: not over plain HTTP).
func (i *Ingest) headers(w http.ResponseWriter, transport string) {
	h := w.Header()
	h.Set("X-Ingest-Transport", transport)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	if transport == "tls" {
		h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
	}
}

// Stop closes both listeners.
func (i *Ingest) Stop() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	var errs []error
	for _, s := range i.servers {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
		cancel()
	}
	i.servers = nil
	return errors.Join(errs...)
}

// Info implements Service: the ingest entry of env.json.
func (i *Ingest) Info() any {
	return map[string]any{"https": "https://" + i.TLSAddress, "http": "http://" + i.PlaintextAddress,
		"tls_address": i.TLSAddress, "plaintext_address": i.PlaintextAddress, "ca_file": i.CAFile, "mtls": i.ClientCAFile != ""}
}

// Target implements Service. The ingest API is verified by the service
// plugin (verify only: harden cannot change an application's TLS); its
// own CA is named because Vault, when present, issues only the targets
// harden configures.
func (i *Ingest) Target() map[string]any {
	host, port, _ := net.SplitHostPort(i.TLSAddress)
	p, _ := strconv.Atoi(port)
	return map[string]any{"name": "ingest", "plugin": "service",
		"connection": map[string]any{"address": net.JoinHostPort(host, strconv.Itoa(p)), "protocol": "https", "ca_file": i.CAFile, "server_name": "localhost"}}
}

// IngestForTest starts the ingest API for one test and stops it at cleanup.
// With clientCAFile it requires client certificates from that CA.
func IngestForTest(t testing.TB, clientCAFile string) *Ingest {
	t.Helper()
	return startForTest(t, &Ingest{ClientCAFile: clientCAFile})
}

// quietLog drops net/http's per-connection errors (every probe handshake
// that offers a refused version would otherwise print one).
func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }
