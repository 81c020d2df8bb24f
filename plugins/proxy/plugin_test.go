package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/sdktest"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

var update = flag.Bool("update", false, "rewrite testdata/schema.golden.json")

// The schemas are derived from the config types; the golden file shows a
// reviewer what a type change does to what policies may say.
func TestSchemaGolden(t *testing.T) {
	sdktest.SchemaGolden(t, proxyTLS{}, "testdata/schema.golden.json", *update)
}

// ValidateSpec refuses what verify could not prove or render could not
// write: a backend that is the proxy itself, a canary off loopback, a
// value that would change what the configuration says, HAProxy's socket
// on nginx.
func TestValidateRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		edit func(conn, spec map[string]any)
		want string
	}{
		"backend is the front (loop)": {func(c, s map[string]any) { s["backend"].(map[string]any)["address"] = c["front"] }, "a loop"},
		"backend is localhost:front":  {func(c, s map[string]any) { s["backend"].(map[string]any)["address"] = "localhost:8443" }, "a loop"},
		"backend is the canary":       {func(c, s map[string]any) { s["backend"].(map[string]any)["address"] = "127.0.0.1:7443" }, "a loop"},
		"decoy off loopback":          {func(c, s map[string]any) { s["canary"].(map[string]any)["decoy"] = "192.0.2.1:7444" }, "loopback"},
		"canary is the front":         {func(c, s map[string]any) { s["canary"].(map[string]any)["listen"] = "127.0.0.1:8443" }, "three different"},
		"a semicolon in a path":       {func(c, s map[string]any) { s["cert_dir"] = "/etc/nginx/x;include /etc/passwd" }, "cannot be written"},
		"a variable in a name":        {func(c, s map[string]any) { s["backend"].(map[string]any)["server_name"] = "$host" }, "cannot be written"},
		"relative include":            {func(c, s map[string]any) { s["include_file"] = "harden.conf" }, "absolute"},
		"master socket on nginx":      {func(c, s map[string]any) { c["master_socket"] = "/run/haproxy.sock" }, "HAProxy only"},
		"unknown kind":                {func(c, s map[string]any) { c["kind"] = "caddy" }, "kind"},
	} {
		t.Run(name, func(t *testing.T) {
			conn, spec := offlineBlocks()
			tc.edit(conn, spec)
			var r sdk.ValidateSpecResponse
			proxyTLS{}.ValidateSpec(context.Background(), sdk.ValidateSpecRequest{RequestContext: blocksRequest(conn, spec, false)}, &r)
			if !r.Diagnostics.HasError() || !strings.Contains(strings.ToLower(diagText(r.Diagnostics)), strings.ToLower(tc.want)) {
				t.Errorf("diagnostics %v, want an error about %q", r.Diagnostics, tc.want)
			}
		})
	}
	conn, spec := offlineBlocks()
	var r sdk.ValidateSpecResponse
	proxyTLS{}.ValidateSpec(context.Background(), sdk.ValidateSpecRequest{RequestContext: blocksRequest(conn, spec, false)}, &r)
	if r.Diagnostics.HasError() {
		t.Errorf("the plausible target is refused: %v", r.Diagnostics)
	}
}

func diagText(d sdk.Diagnostics) string {
	var b strings.Builder
	for _, x := range d {
		b.WriteString(x.Summary + " " + x.Detail + " " + strings.Join(x.Attribute, ".") + "\n")
	}
	return b.String()
}

// Render: the include with the profile's TLS in OpenSSL's words for the
// front and the upstream, verification on with the backend's CA and name
// for both routes, client verification only in the mTLS scope, the key
// file 0600 and sensitive; groups OpenSSL 3.0 lacks left out with a
// warning.
func TestRender(t *testing.T) {
	for name, mtls := range map[string]bool{"tls": false, "mtls_scope": true} {
		t.Run(name, func(t *testing.T) {
			tg := testTarget(t, nil)
			q := testRequest(t, tg, mtls)
			var r sdk.RenderResponse
			proxyTLS{}.Render(context.Background(), sdk.RenderRequest{RequestContext: q}, &r)
			if r.Diagnostics.HasError() {
				t.Fatal(r.Diagnostics)
			}
			arts := map[string]sdk.Artifact{}
			for _, a := range r.Artifacts {
				arts[a.Path] = a
			}
			if k := arts["certs/front.key"]; k.Mode != 0o600 || !k.Sensitive {
				t.Errorf("key artifact: mode %o sensitive %v", k.Mode, k.Sensitive)
			}
			if _, ok := arts["certs/client-ca.crt"]; ok != mtls {
				t.Errorf("client CA rendered = %v in %s", ok, name)
			}
			inc := string(arts["ingest.conf"].Content)
			for _, want := range []string{
				"listen 127.0.0.1:8443 ssl;", "listen 127.0.0.1:7443 ssl;", "proxy_pass https://127.0.0.1:9443;", "proxy_pass https://127.0.0.1:7444;",
				"ssl_protocols TLSv1.2 TLSv1.3;", "ssl_ciphers " + tlsprofile.Intermediate().OpenSSLCipherList() + ";",
				"ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256;",
				"ssl_ecdh_curve X25519:P-256:P-384;", "ssl_prefer_server_ciphers off;", "ssl_session_tickets off;",
				`add_header Strict-Transport-Security "max-age=63072000" always;`, "proxy_hide_header Strict-Transport-Security;",
				"add_header X-Content-Type-Options nosniff always;", "proxy_hide_header X-Content-Type-Options;",
				"proxy_ssl_trusted_certificate /etc/nginx/harden/certs/backend-ca.crt;", "proxy_ssl_name localhost;", "proxy_ssl_server_name on;",
				"proxy_ssl_protocols TLSv1.2 TLSv1.3;", "proxy_ssl_conf_command Groups X25519:P-256:P-384;",
			} {
				if !strings.Contains(inc, want) {
					t.Errorf("include lacks %q:\n%s", want, inc)
				}
			}
			if n := strings.Count(inc, "proxy_ssl_verify on;"); n != 2 {
				t.Errorf("proxy_ssl_verify on %d times, want both routes", n)
			}
			directives := ""
			for l := range strings.Lines(inc) {
				if !strings.HasPrefix(strings.TrimSpace(l), "#") {
					directives += l
				}
			}
			if strings.Contains(directives, "MLKEM") || !strings.Contains(diagText(r.Diagnostics), "X25519MLKEM768") {
				t.Errorf("X25519MLKEM768 rendered or not warned about: %v", r.Diagnostics)
			}
			if got := strings.Count(inc, "ssl_verify_client on;"); got != 2*btoi(mtls) {
				t.Errorf("ssl_verify_client on %d times in %s", got, name)
			}
		})
	}
	// Without a certificate there is no front to render.
	tg := testTarget(t, nil)
	q := testRequest(t, tg, false)
	q.Certificates.ChainPEM = nil
	var r sdk.RenderResponse
	proxyTLS{}.Render(context.Background(), sdk.RenderRequest{RequestContext: q}, &r)
	if !r.Diagnostics.HasError() || !strings.Contains(diagText(r.Diagnostics), "no certificate") {
		t.Errorf("render without a certificate: %v", r.Diagnostics)
	}
}

// remoteAlert is the error Go's TLS server reports for an alert from the
// client.
func remoteAlert(desc uint8) error {
	return &net.OpError{Op: "remote error", Err: tls.AlertError(desc)}
}

// The decoy verdicts, each way the wire can look, for each flavor: only
// the flavor's documented refusal (nginx: the handshake, then a close
// without a request; HAProxy: a certificate alert) on a connection of the
// route (SNI the backend's name) counts.
func TestJudgeDecoy(t *testing.T) {
	const marker = "harden-decoy-x"
	handshakeThenClose := decoyConn{sni: "localhost", version: 0x0304, afterErr: io.EOF}
	alert := decoyConn{sni: "localhost", handshakeErr: remoteAlert(48)}
	var rec recordingConn
	rec.read = []byte{21, 3, 3, 0, 2, 2, 48} // OpenSSL's cleartext TLS 1.3 alert: unknown_ca
	cleartext := decoyConn{sni: "localhost", handshakeErr: rec.cleartextAlert(errors.New("local error: tls: bad record MAC"))}
	bad502 := canaryAnswer{status: "502 Bad Gateway", code: 502}
	for name, tc := range map[string]struct {
		kind  string
		ans   canaryAnswer
		conns []decoyConn
		want  string // good, bad, unknown
	}{
		"nginx: handshake, then closed, 502":        {"nginx", bad502, []decoyConn{handshakeThenClose}, "good"},
		"haproxy: alert, 503":                       {"haproxy", canaryAnswer{status: "503 Service Unavailable", code: 503}, []decoyConn{alert, alert}, "good"},
		"haproxy: cleartext TLS 1.3 alert":          {"haproxy", canaryAnswer{status: "503 Service Unavailable", code: 503}, []decoyConn{cleartext}, "good"},
		"nginx: a certificate alert":                {"nginx", bad502, []decoyConn{{sni: "LocalHost", handshakeErr: remoteAlert(42)}}, "good"},
		"haproxy: handshake, then closed":           {"haproxy", canaryAnswer{status: "503 Service Unavailable", code: 503}, []decoyConn{handshakeThenClose}, "unknown"},
		"no SNI (a health check), then closed":      {"nginx", bad502, []decoyConn{{version: 0x0304, afterErr: io.EOF}, {version: 0x0304, afterErr: io.EOF}}, "unknown"},
		"no SNI, certificate alert":                 {"haproxy", bad502, []decoyConn{{handshakeErr: remoteAlert(48)}}, "unknown"},
		"another name's SNI":                        {"nginx", bad502, []decoyConn{{sni: "other.example", version: 0x0304, afterErr: io.EOF}}, "unknown"},
		"one of two connections without SNI":        {"nginx", bad502, []decoyConn{handshakeThenClose, {version: 0x0304, afterErr: io.EOF}}, "unknown"},
		"protocol_version alert":                    {"haproxy", bad502, []decoyConn{{sni: "localhost", handshakeErr: remoteAlert(70)}}, "unknown"},
		"handshake_failure alert":                   {"haproxy", bad502, []decoyConn{{sni: "localhost", handshakeErr: remoteAlert(40)}}, "unknown"},
		"internal_error alert":                      {"nginx", bad502, []decoyConn{{sni: "localhost", handshakeErr: remoteAlert(80)}}, "unknown"},
		"an alert in words only (not an alert)":     {"haproxy", bad502, []decoyConn{{sni: "localhost", handshakeErr: errors.New("remote error: tls: unknown certificate authority")}}, "unknown"},
		"request forwarded":                         {"nginx", canaryAnswer{status: "200 OK", code: 200, body: marker}, []decoyConn{{version: 0x0304, request: "GET / HTTP/1.0"}}, "bad"},
		"request forwarded, client 502":             {"haproxy", bad502, []decoyConn{{version: 0x0304, request: "GET / HTTP/1.0"}}, "bad"},
		"marker came back":                          {"nginx", canaryAnswer{status: "200 OK", code: 200, body: "x" + marker}, nil, "bad"},
		"marker came back, client timed out":        {"nginx", canaryAnswer{err: errors.New("read: i/o timeout")}, []decoyConn{{version: 0x0304, request: "GET /"}}, "bad"},
		"no connection at the decoy":                {"nginx", bad502, nil, "unknown"},
		"canary front not listening":                {"haproxy", canaryAnswer{err: syscall.ECONNREFUSED}, nil, "unknown"},
		"proxy hung up without an alert":            {"haproxy", bad502, []decoyConn{{sni: "localhost", handshakeErr: io.ErrUnexpectedEOF}}, "unknown"},
		"handshake, then silence":                   {"nginx", canaryAnswer{status: "504 Gateway Time-out", code: 504}, []decoyConn{{sni: "localhost", version: 0x0304, afterErr: errors.New("i/o timeout")}}, "unknown"},
		"refused but a 200 from elsewhere":          {"haproxy", canaryAnswer{status: "200 OK", code: 200, body: "hello"}, []decoyConn{alert}, "unknown"},
		"nginx: refused, but the client got no 5xx": {"nginx", canaryAnswer{status: "404 Not Found", code: 404}, []decoyConn{handshakeThenClose}, "unknown"},
	} {
		t.Run(name, func(t *testing.T) {
			o := judgeDecoy("proof", marker, "localhost", tc.kind, tc.ans, tc.conns)
			got := "good"
			switch {
			case !o.Conclusive():
				got = "unknown"
			case o.Bad:
				got = "bad"
			}
			if got != tc.want {
				t.Errorf("%s, want %s: %s", got, tc.want, o)
			}
		})
	}
	// A backend named by its IP address gets no SNI (RFC 6066): the
	// route's connections then have none.
	if o := judgeDecoy("proof", marker, "127.0.0.1", "nginx", bad502, []decoyConn{{version: 0x0304, afterErr: io.EOF}}); !o.Conclusive() || o.Bad {
		t.Errorf("IP backend, no SNI, refused: %s", o)
	}
}

// The verdicts verify derives from the configuration: it can fail the
// hop checks, never pass them without the live observations — the decoy's
// refusal, and live evidence that the running proxy loaded the files
// harden owns (the rendered files on disk, the policy's certificate
// served, the canary refusing the decoy, no file written after the
// workers started).
func TestConfigurationNeverPassesAlone(t *testing.T) {
	tg := testTarget(t, nil)
	good := routeFacts{Found: true, Source: "/x:1", Upstream: "127.0.0.1:9443", UpstreamTLS: true, UpstreamVerify: true, UpstreamCAFile: "/ca", UpstreamName: "localhost"}
	c := good
	good.Canary = &c
	pass := checks.New(checkConfigRendered, checks.Pass, "/x", "rendered")
	served := checks.New(checkFrontSerialServed, checks.Pass, "front", "served")
	live := observed{routes: good, decoy: checks.Good("refused"), rendered: pass, served: served}
	if ch := tg.verifiedCheck(live); ch.Status != checks.Pass {
		t.Fatalf("everything observed live: %s %s", ch.Status, ch.Evidence)
	}
	if o := tg.routeObservation(good, nil, tg.notLoaded(live)); !o.Conclusive() || o.Bad {
		t.Fatalf("everything observed live: route %s", o)
	}
	unknown := checks.Unknown("proof", "the decoy saw no connection")
	o := live
	o.decoy = unknown
	if ch := tg.verifiedCheck(o); ch.Status == checks.Pass {
		t.Errorf("the configuration alone passed %s: %s", ch.ID, ch.Evidence)
	}
	if ob := tg.routeObservation(good, nil, tg.notLoaded(o)); ob.Conclusive() {
		t.Errorf("a route without the canary's refusal counts: %s", ob)
	}
	// The files on disk are harden's, the running proxy serves another
	// certificate (written, never reloaded): the route is not known.
	o = live
	o.served = checks.New(checkFrontSerialServed, checks.Fail, "front", "old serial")
	if ob := tg.routeObservation(good, nil, tg.notLoaded(o)); ob.Conclusive() || !strings.Contains(ob.String(), checkFrontSerialServed) {
		t.Errorf("a route the running proxy has not loaded counts: %s", ob)
	}
	if ch := tg.verifiedCheck(o); ch.Status == checks.Pass {
		t.Errorf("verified passed while the front serves another certificate: %s", ch.Evidence)
	}
	o = live
	o.rendered = checks.New(checkConfigRendered, checks.Fail, "/x", "differs")
	if ob := tg.routeObservation(good, nil, tg.notLoaded(o)); ob.Conclusive() {
		t.Errorf("a route in files that are not harden's counts: %s", ob)
	}
	if ch := tg.verifiedCheck(o); ch.Status == checks.Pass {
		t.Errorf("verified passed on files that are not harden's: %s", ch.Evidence)
	}
	o = live
	o.unloaded = "written after the workers started"
	if ch := tg.verifiedCheck(o); ch.Status == checks.Pass {
		t.Errorf("verified passed on a file written after the workers started: %s", ch.Evidence)
	}
	// A route with other ways through it (another location, an if):
	// never good, still bad when location / forwards in plaintext.
	open := good
	open.Open = "location ~ ^/api at /x:3: …"
	if ob := tg.routeObservation(open, nil, ""); ob.Conclusive() {
		t.Errorf("an open route counts: %s", ob)
	}
	o = live
	o.routes = open
	if ch := tg.verifiedCheck(o); ch.Status == checks.Pass {
		t.Errorf("verified passed on an open route: %s", ch.Evidence)
	}
	openPlain := open
	openPlain.UpstreamTLS = false
	if ob := tg.routeObservation(openPlain, nil, "not loaded"); !ob.Bad {
		t.Errorf("location / over plain HTTP is not a failure: %s", ob)
	}

	off := good
	off.UpstreamVerify = false
	o = live
	o.routes = off
	if ch := tg.verifiedCheck(o); ch.Status != checks.Fail {
		t.Errorf("verify off in the route with a refusing canary: %s %s", ch.Status, ch.Evidence)
	}
	canaryOff := good
	cc := *good.Canary
	cc.UpstreamVerify = false
	canaryOff.Canary = &cc
	o.routes = canaryOff
	if ch := tg.verifiedCheck(o); ch.Status == checks.Pass {
		t.Errorf("a canary unlike the route proved the route: %s", ch.Evidence)
	}
	noCanary := good
	noCanary.Canary = nil
	o.routes, o.decoy = noCanary, unknown
	if ch := tg.verifiedCheck(o); ch.Status != checks.Fail {
		t.Errorf("no canary route: %s %s", ch.Status, ch.Evidence)
	}
	plain := good
	plain.UpstreamTLS = false
	if o := tg.routeObservation(plain, nil, ""); !o.Bad {
		t.Errorf("proxy_pass http:// is not a failure: %s", o)
	}
	elsewhere := good
	elsewhere.Upstream = "127.0.0.1:9999"
	if o := tg.routeObservation(elsewhere, nil, ""); !o.Bad {
		t.Errorf("a route to another address is not a failure: %s", o)
	}
}

// proxy.config.valid: the proxy's refusal fails it; a test that could not
// run, or could not read a file as this user, is inconclusive.
func TestConfigValidVerdicts(t *testing.T) {
	tg := testTarget(t, nil)
	for name, tc := range map[string]struct {
		err  error
		want checks.Status
	}{
		"passes":            {nil, checks.Pass},
		"nginx refuses":     {errors.New(`nginx -t -c /etc/nginx/nginx.conf: exit status 1: nginx: [emerg] unknown directive "x" in /etc/nginx/nginx.conf:3`), checks.Fail},
		"permission denied": {errors.New(`nginx -t: exit status 1: nginx: [emerg] cannot load certificate key "/k": BIO_new_file() failed (SSL: error:8000000D:system library::Permission denied)`), checks.Error},
		"binary missing":    {&notRunError{errors.New(`nginx -t: exec: "nginx": executable file not found in $PATH`)}, checks.Error},
	} {
		if c := tg.configValidCheck(tc.err); c.Status != tc.want {
			t.Errorf("%s: %s, want %s: %s", name, c.Status, tc.want, c.Evidence)
		}
	}
}
