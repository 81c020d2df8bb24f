package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk/faultkit"
)

// headersHTTPS is a real HTTPS server (net/http) that sends the given
// headers on every answer; clientCAs makes it require client certificates.
func headersHTTPS(t *testing.T, p pki, headers map[string][]string, clientCAs *x509.CertPool) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, vs := range headers {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		io.WriteString(w, "hello "+r.URL.Path+"\n")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12}
	if clientCAs != nil {
		srv.TLS.ClientAuth, srv.TLS.ClientCAs = tls.RequireAndVerifyClientCert, clientCAs
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "https://")
}

func headerChecks(t *testing.T, target Target, opts Options) map[string]checks.Check {
	t.Helper()
	head, err := FetchHTTPHead(context.Background(), target, "/status", opts)
	got := byID(HTTPHeaderChecks(target.Address, head, err))
	if len(got) != 2 {
		t.Fatalf("want http.hsts and http.content_type_options, got %v", got)
	}
	return got
}

func TestHTTPHeaderChecksAgainstRealServers(t *testing.T) {
	p := newPKI(t, 60*24*time.Hour)
	good := map[string][]string{"Strict-Transport-Security": {"max-age=63072000; includeSubDomains"}, "X-Content-Type-Options": {"nosniff"}}
	for _, tc := range []struct {
		name        string
		headers     map[string][]string
		hsts, sniff checks.Status
		evidence    string
	}{
		{"hardened", good, checks.Pass, checks.Pass, "max-age 63072000 s"},
		{"nothing", nil, checks.Fail, checks.Fail, "no Strict-Transport-Security header in the 200 OK answer to GET /status"},
		{"short max-age", map[string][]string{"Strict-Transport-Security": {"max-age=86400"}, "X-Content-Type-Options": {"NoSniff"}}, checks.Fail, checks.Pass, "shorter than one year"},
		{"max-age=0", map[string][]string{"Strict-Transport-Security": {"max-age=0"}}, checks.Fail, checks.Fail, "forget HSTS"},
		{"invalid: duplicate directive", map[string][]string{"Strict-Transport-Security": {"max-age=31536000; max-age=31536000"}}, checks.Fail, checks.Fail, "appears twice"},
		{"only the first field counts", map[string][]string{"Strict-Transport-Security": {"max-age=60", "max-age=63072000"}, "X-Content-Type-Options": {"sniff, nosniff"}}, checks.Fail, checks.Fail, "max-age 60 s"},
		{"quoted max-age", map[string][]string{"Strict-Transport-Security": {`max-age="31536000"`}, "X-Content-Type-Options": {"nosniff, whatever"}}, checks.Pass, checks.Pass, "max-age 31536000 s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := headersHTTPS(t, p, tc.headers, nil)
			got := headerChecks(t, Target{Address: addr, RootCAs: p.pool}, Options{})
			if c := got[CheckHSTS]; c.Status != tc.hsts || !strings.Contains(c.Evidence, tc.evidence) {
				t.Errorf("http.hsts = %s (%s), want %s containing %q", c.Status, c.Evidence, tc.hsts, tc.evidence)
			}
			if c := got[CheckContentTypeOptions]; c.Status != tc.sniff {
				t.Errorf("http.content_type_options = %s (%s), want %s", c.Status, c.Evidence, tc.sniff)
			}
			if c := got[CheckHSTS]; c.Severity != checks.Medium || got[CheckContentTypeOptions].Severity != checks.Low {
				t.Errorf("severities: hsts %s, nosniff %s (registered definitions missing?)", c.Severity, got[CheckContentTypeOptions].Severity)
			}
		})
	}
}

// Headers are judged only on an answer from the server the policy names:
// no CA, a chain from another CA, or a name the certificate does not
// carry are errors, and no request is sent.
func TestHTTPHeadersNeedAVerifiedSession(t *testing.T) {
	p, other := newPKI(t, 60*24*time.Hour), newPKI(t, 60*24*time.Hour)
	addr := headersHTTPS(t, p, map[string][]string{"Strict-Transport-Security": {"max-age=63072000"}, "X-Content-Type-Options": {"nosniff"}}, nil)
	for name, tc := range map[string]struct {
		target Target
		want   string
	}{
		"no CA":       {Target{Address: addr}, "no CA to verify"},
		"another CA":  {Target{Address: addr, RootCAs: other.pool}, "does not verify"},
		"wrong name":  {Target{Address: addr, RootCAs: p.pool, ServerName: "ingest.example"}, "does not verify"},
		"nothing up":  {Target{Address: "127.0.0.1:1", RootCAs: p.pool}, "connection refused"},
		"bad address": {Target{Address: "127.0.0.1", RootCAs: p.pool}, "address"},
	} {
		t.Run(name, func(t *testing.T) {
			for id, c := range headerChecks(t, tc.target, Options{Timeout: time.Second}) {
				if c.Status != checks.Error || !strings.Contains(c.Evidence, tc.want) {
					t.Errorf("%s = %s (%s), want error containing %q", id, c.Status, c.Evidence, tc.want)
				}
			}
		})
	}
}

// An mTLS endpoint answers only a trusted client: with harden's client
// certificate the headers are judged; without it there is no answer (an
// error naming the TLS alert, not a pass or a fail).
func TestHTTPHeadersOverMTLS(t *testing.T) {
	p := newPKI(t, 60*24*time.Hour)
	addr := headersHTTPS(t, p, map[string][]string{"Strict-Transport-Security": {"max-age=63072000"}}, p.pool)
	got := headerChecks(t, Target{Address: addr, RootCAs: p.pool, ClientCert: &p.client}, Options{})
	if got[CheckHSTS].Status != checks.Pass || got[CheckContentTypeOptions].Status != checks.Fail {
		t.Errorf("with the client certificate: hsts %s (%s), nosniff %s (%s)", got[CheckHSTS].Status, got[CheckHSTS].Evidence,
			got[CheckContentTypeOptions].Status, got[CheckContentTypeOptions].Evidence)
	}
	for id, c := range headerChecks(t, Target{Address: addr, RootCAs: p.pool}, Options{}) {
		if c.Status != checks.Error || !strings.Contains(c.Evidence, "TLS alert") {
			t.Errorf("without a client certificate: %s = %s (%s), want an error naming the alert", id, c.Status, c.Evidence)
		}
	}
}

// Faults between harden and a server without the headers never make them
// pass.
func TestHTTPHeaderFaultsNeverPass(t *testing.T) {
	p := newPKI(t, 60*24*time.Hour)
	addr := headersHTTPS(t, p, map[string][]string{"Strict-Transport-Security": {"max-age=600"}, "X-Content-Type-Options": {"nosniff"}}, nil)
	opts := fastTimeouts(t)
	verify := func(ctx context.Context, a string) ([]checks.Check, error) {
		head, err := FetchHTTPHead(ctx, Target{Address: a, RootCAs: p.pool, ServerName: "127.0.0.1"}, "/", opts)
		return HTTPHeaderChecks("ingest", head, err), nil
	}
	rules := []faultkit.Rule{{Fault: faultkit.HangUp, Match: faultkit.TLS, Name: "after the server's first answer"}}
	for _, f := range faultkit.Faults {
		rules = append(rules, faultkit.Rule{Fault: f, Match: faultkit.TLS, Name: "on every TLS connection"})
	}
	rules = append(rules, faultkit.Rule{Fault: faultkit.Reset, Match: faultkit.Every(2, 0), Name: "on every 2nd connection"})
	direct := byID(faultkit.NeverPasses(t, addr, verify, rules...))
	if direct[CheckHSTS].Status != checks.Fail || direct[CheckContentTypeOptions].Status != checks.Pass {
		t.Errorf("direct: %v", direct)
	}
}

func TestParseHSTS(t *testing.T) {
	for v, want := range map[string]string{
		"max-age=31536000":                        "31536000 false false",
		"Max-Age=10 ; includeSubDomains; preload": "10 true true",
		`max-age="5"; foo=bar; baz`:               "5 false false",
		"max-age=99999999999999999999999":         "18446744073709551615 false false",
		"includeSubDomains":                       "error",
		"max-age=":                                "error",
		"max-age=-1":                              "error",
		"max-age=1; MAX-AGE=2":                    "error",
		"max-age=1 2":                             "error",
		"max-age=1, max-age=2":                    "error",
		"":                                        "error",
	} {
		h, err := ParseHSTS(v)
		got := "error"
		if err == nil {
			got = strconv.FormatUint(h.MaxAge, 10) + " " + strconv.FormatBool(h.IncludeSubDomains) + " " + strconv.FormatBool(h.Preload)
		}
		if got != want {
			t.Errorf("ParseHSTS(%q) = %s (%v), want %s", v, got, err, want)
		}
	}
}

// FuzzParseHTTPHead: any answer a server sends parses or errs without
// panicking; a parsed head came from a complete HTTP/1.x head, and a
// security-header verdict that passes is one a user agent would follow.
func FuzzParseHTTPHead(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=63072000\r\nX-Content-Type-Options: nosniff\r\n\r\nbody",
		"HTTP/1.1 301 Moved\r\nStrict-Transport-Security: max-age=1\r\nStrict-Transport-Security: max-age=63072000\r\n\r\n",
		"HTTP/1.0 400 Bad Request\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-Content-Type-Options: nosniff",
		"HTTP/2 200\r\n\r\n",
		"\x15\x03\x03\x00\x02\x02\x28",
		"HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=\"31536000\"; max-age=1\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		h, err := parseHTTPHead(raw)
		if err != nil {
			if h != nil {
				t.Fatal("head and error")
			}
			cs := HTTPHeaderChecks("x", nil, err)
			for _, c := range cs {
				if c.Status != checks.Error {
					t.Fatalf("no head but %s %s", c.ID, c.Status)
				}
			}
			return
		}
		if !strings.Contains(raw, "\r\n\r\n") || !strings.HasPrefix(raw, "HTTP/1.") {
			t.Fatalf("parsed an incomplete or non-HTTP/1 head: %q", raw)
		}
		h.Path = "/"
		for _, c := range HTTPHeaderChecks("x", h, nil) {
			if c.Status != checks.Pass {
				continue
			}
			switch c.ID {
			case CheckHSTS:
				first := h.Header.Values("Strict-Transport-Security")[0]
				hs, err := ParseHSTS(first)
				if err != nil || hs.MaxAge < MinHSTSMaxAge || strings.Count(strings.ToLower(first), "max-age") < 1 {
					t.Fatalf("hsts passed on %q", first)
				}
			case CheckContentTypeOptions:
				v := strings.ToLower(strings.Join(h.Header.Values("X-Content-Type-Options"), ","))
				if !strings.HasPrefix(strings.TrimLeft(v, " \t"), "nosniff") {
					t.Fatalf("nosniff passed on %q", v)
				}
			}
		}
	})
}

// FuzzParseHSTS: a parsed value has exactly one max-age directive (RFC
// 6797: a duplicate makes the header invalid) and never panics.
func FuzzParseHSTS(f *testing.F) {
	for _, s := range []string{"max-age=31536000; includeSubDomains", `max-age="1"`, "max-age=1;max-age=1", ";;max-age=0;;", "preload"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		h, err := ParseHSTS(v)
		if err != nil {
			return
		}
		n := 0
		for _, d := range strings.Split(v, ";") {
			name, _, _ := strings.Cut(d, "=")
			if strings.EqualFold(strings.Trim(name, " \t"), "max-age") {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("ParseHSTS(%q) = %+v with %d max-age directives", v, h, n)
		}
	})
}
