package probe

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk/faultkit"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// A server that asks for no client certificate fails client
// authentication; through a path that corrupts the first request inside
// the session, its bad_record_mac alert must not read as "a client
// without a certificate was refused" — under TLS 1.2 (the alert answers
// the request) and TLS 1.3 (the request after the Finished), for HTTP and
// gRPC alike (found by review: any alert after the handshake counted).
func TestCorruptedSessionIsNoClientAuthRefusal(t *testing.T) {
	p := newPKI(t, 60*24*time.Hour)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") }))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: v, MaxVersion: v}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		direct := strings.TrimPrefix(srv.URL, "https://")
		skip := 0
		if v == tls.VersionTLS13 {
			skip = 1 // the client's Finished
		}
		px, err := faultkit.Start(direct, faultkit.Rule{Fault: faultkit.Corrupt, SkipRecords: skip, Match: func(c faultkit.Conn) bool { return c.Hello != nil && c.Hello.Version >= v }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { px.Close() })
		exp := Expectations{Profile: tlsprofile.Intermediate(), RequireClientAuth: true}
		opts := fastTimeouts(t)
		res, err := Scan(context.Background(), Target{Address: direct, Dialect: HTTP, RootCAs: p.pool, ServerName: "127.0.0.1"}, opts)
		if err != nil {
			t.Fatal(err)
		}
		if c := byID(res.Checks(exp))["tls.client_auth.required"]; c.Status != checks.Fail {
			t.Fatalf("%s direct: client auth = %s (%s), want fail", tlsprofile.VersionName(v), c.Status, c.Evidence)
		}
		res, err = Scan(context.Background(), Target{Address: px.Addr, Dialect: HTTP, RootCAs: p.pool, ServerName: "127.0.0.1"}, opts)
		if err != nil {
			t.Fatal(err)
		}
		c := byID(res.Checks(exp))["tls.client_auth.required"]
		if c.Status == checks.Pass || px.Faulted() == 0 {
			t.Errorf("%s through corruption: client auth = %s (%d faulted): %s", tlsprofile.VersionName(v), c.Status, px.Faulted(), c.Evidence)
		}
		if c.Status == checks.Error && !strings.Contains(c.Evidence, "bad record MAC") {
			t.Errorf("%s: the inconclusive evidence does not name the alert: %s", tlsprofile.VersionName(v), c.Evidence)
		}
		t.Logf("%s through corruption: %s: %s", tlsprofile.VersionName(v), c.Status, c.Evidence)
	}
}
