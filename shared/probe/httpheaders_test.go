package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk/faultkit"
	"github.com/harden-dev/harden/shared/tlsprofile"
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
			got := headerChecks(t, Target{Address: addr, RootCAs: p.pool, ServerName: "localhost"}, Options{})
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
	got := headerChecks(t, Target{Address: addr, RootCAs: p.pool, ClientCert: &p.client, ServerName: "localhost"}, Options{})
	if got[CheckHSTS].Status != checks.Pass || got[CheckContentTypeOptions].Status != checks.Fail {
		t.Errorf("with the client certificate: hsts %s (%s), nosniff %s (%s)", got[CheckHSTS].Status, got[CheckHSTS].Evidence,
			got[CheckContentTypeOptions].Status, got[CheckContentTypeOptions].Evidence)
	}
	for id, c := range headerChecks(t, Target{Address: addr, RootCAs: p.pool, ServerName: "localhost"}, Options{}) {
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
		head, err := FetchHTTPHead(ctx, Target{Address: a, RootCAs: p.pool, ServerName: "localhost"}, "/", opts)
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
		// A quoted string may hold ';', '=' and quoted-pairs (RFC 9110
		// §5.6.4): it is one value, not a directive boundary.
		`max-age=31536000; foo="a;b"`:              "31536000 false false",
		`foo="x; max-age=1"; max-age=63072000`:     "63072000 false false",
		`max-age=5; ext="a\"; max-age=1"; preload`: "5 false true",
		"max-age = 10 ;;; includeSubDomains ;":     "10 true false",
		`max-age="31536000`:                        "error", // not closed
		`max-age=1; foo="a`:                        "error",
		`max-age=1; foo="a"b`:                      "error",
		`max-age=1; foo="a\`:                       "error",
		"max-age=1; foo=\"a\x01\"":                 "error", // a control character
		"max-age=1; foo=\"caf\xc3\xa9\"":           "1 false false",
		"max-age=1; caf\xc3\xa9":                   "error", // obs-text is no token
		"max-age=1; foo=":                          "error",
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
		if h.StatusCode >= 100 && h.StatusCode < 200 {
			t.Fatalf("an interim %d response was taken for the answer: %q", h.StatusCode, raw)
		}
		h.Path, h.TLSVersion, h.ServerName = "/", tls.VersionTLS13, "ingest.example"
		for _, c := range HTTPHeaderChecks("x", h, nil) {
			switch c.ID {
			case CheckHSTS:
				// The oracle is independent of ParseHSTS: a regular
				// expression for RFC 6797's grammar.
				values := h.Header.Values("Strict-Transport-Security")
				want := false
				if len(values) > 0 {
					o, ok := hstsOracle(values[0])
					want = ok && o.MaxAge >= MinHSTSMaxAge
				}
				if (c.Status == checks.Pass) != want {
					t.Fatalf("http.hsts %s on %q, the oracle says pass=%v", c.Status, values, want)
				}
			case CheckContentTypeOptions:
				values := h.Header.Values("X-Content-Type-Options")
				want := len(values) > 0 && nosniffOracle.MatchString(strings.Join(values, ","))
				if (c.Status == checks.Pass) != want {
					t.Fatalf("http.content_type_options %s on %q, the oracle says pass=%v", c.Status, values, want)
				}
			}
		}
	})
}

// nosniffOracle is the Fetch standard's nosniff rule as a regular
// expression over the joined header values: the first comma-separated
// value, without surrounding HTTP whitespace, is "nosniff".
var nosniffOracle = regexp.MustCompile(`(?i)^[ \t\r\n]*nosniff[ \t\r\n]*(,|$)`)

// hstsGrammar is RFC 6797 §6.1's Strict-Transport-Security value as a
// regular expression (RFC 9110 tokens and quoted strings), over the value
// with its bytes mapped by hstsMap: 0x01 stands for obs-text (allowed only
// in quoted strings) and an original 0x01 becomes 0x00, which, like 0x01
// itself, is allowed nowhere.
var (
	hstsToken     = "[!#$%&'*+.^_`|~0-9A-Za-z-]+"
	hstsQuoted    = `"(?:[\t \x21\x23-\x5b\x5d-\x7e\x01]|\\[\t \x21-\x7e\x01])*"`
	hstsDirective = `(` + hstsToken + `)(?:[ \t]*=[ \t]*(` + hstsToken + `|` + hstsQuoted + `))?`
	hstsGrammar   = regexp.MustCompile(`^[ \t]*(?:` + hstsDirective + `)?(?:[ \t]*;[ \t]*(?:` + hstsDirective + `)?)*[ \t]*$`)
	hstsOne       = regexp.MustCompile(hstsDirective)
	hstsQuotedOne = regexp.MustCompile(`\\(.)`)
)

func hstsMap(v string) string {
	b := []byte(v)
	for i, c := range b {
		switch {
		case c == 0x01:
			b[i] = 0x00
		case c >= 0x80:
			b[i] = 0x01
		}
	}
	return string(b)
}

// hstsOracle judges one value as a user agent must: the grammar, every
// directive at most once (names case-insensitive), max-age present with
// delta-seconds (capped at 64 bits).
func hstsOracle(v string) (HSTS, bool) {
	m := hstsMap(v)
	if !hstsGrammar.MatchString(m) {
		return HSTS{}, false
	}
	var h HSTS
	seen := map[string]bool{}
	maxAge := false
	for _, d := range hstsOne.FindAllStringSubmatch(m, -1) {
		name, val := strings.ToLower(d[1]), d[2]
		if seen[name] {
			return HSTS{}, false
		}
		seen[name] = true
		if strings.HasPrefix(val, `"`) {
			val = hstsQuotedOne.ReplaceAllString(val[1:len(val)-1], "$1")
		}
		switch name {
		case "max-age":
			n, ok := new(big.Int).SetString(val, 10)
			if !ok || val == "" || strings.Trim(val, "0123456789") != "" {
				return HSTS{}, false
			}
			if !n.IsUint64() {
				n.SetUint64(1<<64 - 1)
			}
			h.MaxAge, maxAge = n.Uint64(), true
		case "includesubdomains":
			h.IncludeSubDomains = true
		case "preload":
			h.Preload = true
		}
	}
	return h, maxAge
}

// FuzzParseHSTS: ParseHSTS agrees with the independent oracle (a regular
// expression for RFC 6797's grammar) on every value — valid or not, and
// max-age, includeSubDomains and preload when valid — and never panics.
// A parser that splits on ';' inside a quoted string disagrees at once.
func FuzzParseHSTS(f *testing.F) {
	for _, s := range []string{"max-age=31536000; includeSubDomains", `max-age="1"`, "max-age=1;max-age=1", ";;max-age=0;;", "preload",
		`max-age=31536000; foo="a;b"`, `max-age=1; x="\"; max-age=2"`, "max-age=1; foo=\"\xff\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		h, err := ParseHSTS(v)
		o, ok := hstsOracle(v)
		if (err == nil) != ok {
			t.Fatalf("ParseHSTS(%q) = %+v, %v; the oracle says valid=%v", v, h, err, ok)
		}
		if ok && h != o {
			t.Fatalf("ParseHSTS(%q) = %+v, the oracle %+v", v, h, o)
		}
	})
}

// The final answer is judged, never an interim 1xx one before it (103
// Early Hints may carry header fields the final answer lacks).
func TestHTTPHeadersInterimResponses(t *testing.T) {
	p := newPKI(t, 60*24*time.Hour)
	interim := func(hintHSTS, finalHSTS string) string {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Strict-Transport-Security", hintHSTS)
			w.Header().Set("Link", "</app.css>; rel=preload; as=style")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Strict-Transport-Security")
			if finalHSTS != "" {
				w.Header().Set("Strict-Transport-Security", finalHSTS)
			}
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "ok\n")
		}))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.server}}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return strings.TrimPrefix(srv.URL, "https://")
	}
	for name, tc := range map[string]struct {
		hint, final string
		want        checks.Status
	}{
		"HSTS only in the 103": {"max-age=63072000", "", checks.Fail},
		"HSTS in the final":    {"max-age=60", "max-age=63072000", checks.Pass},
	} {
		t.Run(name, func(t *testing.T) {
			got := headerChecks(t, Target{Address: interim(tc.hint, tc.final), RootCAs: p.pool, ServerName: "localhost"}, Options{})
			if c := got[CheckHSTS]; c.Status != tc.want || !strings.Contains(c.Evidence, "200 OK") {
				t.Errorf("http.hsts = %s (%s), want %s judged on the 200 OK", c.Status, c.Evidence, tc.want)
			}
		})
	}
	for raw, want := range map[string]string{
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n": "204 No Content",
		"HTTP/1.1 103 Early Hints\r\n\r\n":                                                 "error: the final response head is incomplete",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n":                         "error: answer is a protocol switch",
		strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", 40) + "HTTP/1.1 200 OK\r\n\r\n": "error: more than 16 interim",
	} {
		h, err := parseHTTPHead(raw)
		got := ""
		if err != nil {
			got = "error: " + err.Error()
		} else {
			got = h.Status
		}
		if !strings.HasPrefix(got, want) {
			t.Errorf("parseHTTPHead(%q) = %s, want %s", truncate(raw, 60), got, want)
		}
	}
}

// HSTS does not apply to a host named by its IP address (RFC 6797 §8.1.1:
// a user agent never notes one): a skip with that reason, never a pass or
// a fail; the nosniff header is judged all the same.
func TestHTTPHeadersIPLiteralHost(t *testing.T) {
	p := newPKI(t, 60*24*time.Hour)
	addr := headersHTTPS(t, p, map[string][]string{"Strict-Transport-Security": {"max-age=63072000"}, "X-Content-Type-Options": {"nosniff"}}, nil)
	for _, name := range []string{"", "127.0.0.1"} {
		got := headerChecks(t, Target{Address: addr, RootCAs: p.pool, ServerName: name}, Options{})
		if c := got[CheckHSTS]; c.Status != checks.Skip || !strings.Contains(c.Evidence, "RFC 6797 §8.1.1") || !strings.Contains(c.Evidence, "127.0.0.1") {
			t.Errorf("server name %q: http.hsts = %s (%s), want a skip citing RFC 6797 §8.1.1", name, c.Status, c.Evidence)
		}
		if c := got[CheckContentTypeOptions]; c.Status != checks.Pass {
			t.Errorf("server name %q: http.content_type_options = %s (%s)", name, c.Status, c.Evidence)
		}
	}
	head := &HTTPHead{Address: "[::1]:8443", Status: "200 OK", StatusCode: 200, TLSVersion: tls.VersionTLS13,
		Header: http.Header{"Strict-Transport-Security": {"max-age=60"}}}
	if c := byID(HTTPHeaderChecks("x", head, nil))[CheckHSTS]; c.Status != checks.Skip {
		t.Errorf("IPv6 literal: http.hsts = %s (%s), want skip", c.Status, c.Evidence)
	}
}

// A head that did not come over TLS (built by a caller, TLSVersion 0) is
// not judged: both checks are errors, never a pass.
func TestHTTPHeaderChecksRefuseAHeadWithoutTLS(t *testing.T) {
	head := &HTTPHead{Address: "127.0.0.1:8080", ServerName: "ingest.example", Path: "/", Status: "200 OK", StatusCode: 200,
		Header: http.Header{"Strict-Transport-Security": {"max-age=63072000"}, "X-Content-Type-Options": {"nosniff"}}}
	for _, c := range HTTPHeaderChecks("x", head, nil) {
		if c.Status != checks.Error || !strings.Contains(c.Evidence, "not fetched over TLS") {
			t.Errorf("%s = %s (%s), want an error: not fetched over TLS", c.ID, c.Status, c.Evidence)
		}
	}
	head.TLSVersion = tls.VersionTLS12
	for _, c := range HTTPHeaderChecks("x", head, nil) {
		if c.Status != checks.Pass {
			t.Errorf("over TLS 1.2: %s = %s (%s)", c.ID, c.Status, c.Evidence)
		}
	}
}

// The Host field names the server as a URI does: an IPv6 literal in
// brackets, the port unless it is 443; a real server on ::1 sees it so.
func TestHostHeader(t *testing.T) {
	for _, tc := range [][3]string{
		{"ingest.example", "10.0.0.1:443", "ingest.example"},
		{"ingest.example", "10.0.0.1:8443", "ingest.example:8443"},
		{"::1", "[::1]:443", "[::1]"},
		{"::1", "[::1]:8443", "[::1]:8443"},
		{"127.0.0.1", "127.0.0.1:443", "127.0.0.1"},
	} {
		if got := hostHeader(tc[0], tc[1]); got != tc[2] {
			t.Errorf("hostHeader(%q, %q) = %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
	p := newPKI(t, 60*24*time.Hour)
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	var host atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { host.Store(r.Host) }))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.server}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	if _, err := FetchHTTPHead(context.Background(), Target{Address: ln.Addr().String(), RootCAs: p.pool}, "/", Options{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := host.Load().(string); got != ln.Addr().String() {
		t.Errorf("the server saw Host %q, want %q", got, ln.Addr().String())
	}
}

// certCatcher is a real HTTPS server (net/http) with the given certificate
// that asks every client for a certificate (without requiring one) and
// counts the handshakes in which the client presented want's leaf.
func certCatcher(t *testing.T, server, want tls.Certificate, maxV uint16) (string, *atomic.Int32) {
	t.Helper()
	var got atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=63072000")
		io.WriteString(w, "hello\n")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{server}, MinVersion: tls.VersionTLS12, MaxVersion: maxV, ClientAuth: tls.RequestClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) > 0 && bytes.Equal(cs.PeerCertificates[0].Raw, want.Certificate[0]) {
				got.Add(1)
			}
			return nil
		}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "https://"), &got
}

// harden's client certificate goes only to a server whose chain verified:
// a server with a certificate from another CA that asks for client
// certificates never receives it — neither from the header fetch nor from
// the scan's trusted-client session — in TLS 1.2 or 1.3. The same server
// with a trusted certificate does receive it (so the count can fail).
func TestClientCertificateNeverSentToAnUnverifiedServer(t *testing.T) {
	p, other := newPKI(t, 60*24*time.Hour), newPKI(t, 60*24*time.Hour)
	for _, maxV := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tlsprofile.VersionName(maxV), func(t *testing.T) {
			untrusted, seen := certCatcher(t, other.server, p.client, maxV)
			target := Target{Address: untrusted, RootCAs: p.pool, ClientCert: &p.client, Dialect: HTTP}
			opts := Options{}
			_, err := FetchHTTPHead(context.Background(), target, "/", opts)
			if err == nil || !strings.Contains(err.Error(), "does not verify") {
				t.Errorf("fetch from an untrusted server: %v, want 'does not verify'", err)
			}
			res, err := Scan(context.Background(), target, opts)
			if err != nil {
				t.Fatal(err)
			}
			if n := seen.Load(); n != 0 {
				t.Errorf("the untrusted server received harden's client certificate in %d handshake(s)", n)
			}
			if o := res.ClientAuth.Trusted; o.Outcome == Accepted || !strings.Contains(o.Evidence, "not sent") {
				t.Errorf("trusted-client session against an untrusted server: %s (%s), want not accepted, saying the certificate was not sent", o.Outcome, o.Evidence)
			}

			trusted, seen := certCatcher(t, p.server, p.client, maxV)
			target.Address = trusted
			if _, err := FetchHTTPHead(context.Background(), target, "/", opts); err != nil {
				t.Fatal(err)
			}
			if _, err := Scan(context.Background(), target, opts); err != nil {
				t.Fatal(err)
			}
			if seen.Load() < 2 {
				t.Errorf("the trusted server received harden's client certificate %d time(s), want from the fetch and the scan", seen.Load())
			}
		})
	}
}
