package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/tlsprofile"
	"github.com/harden-dev/harden/testenv"
)

const hapMain = `global
    log stderr format raw local0
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
`

func routesOf(t *testing.T, dashDV bool, files ...string) (routeFacts, error) {
	t.Helper()
	var fs []hapFile
	for i, f := range files {
		fs = append(fs, hapFile{path: []string{"/etc/haproxy/haproxy.cfg", "/etc/haproxy/harden.cfg", "/etc/haproxy/third.cfg"}[i], text: f})
	}
	cfg, err := parseHAProxy(fs)
	if err != nil {
		return routeFacts{}, err
	}
	return haproxyRoutes(cfg, "127.0.0.1:8443", "127.0.0.1:9443", dashDV)
}

func TestHAProxyRoutes(t *testing.T) {
	good := "server b 127.0.0.1:9000 ssl verify required ca-file /c/ca.pem sni str(localhost) verifyhost localhost\n"
	tests := map[string]struct {
		main, include string
		dashDV        bool
		want          routeFacts
		wantErr       string
	}{
		"plaintext route": {main: hapMain, include: "frontend f\n  bind 127.0.0.1:8443 ssl crt /c/x.pem\n  default_backend b\nbackend b\n  server s 127.0.0.1:8333\n",
			want: routeFacts{Found: true, Source: "/etc/haproxy/harden.cfg:2 (server at /etc/haproxy/harden.cfg:5)", Upstream: "127.0.0.1:8333"}},
		"verified route": {main: hapMain, include: "frontend f\n  bind 127.0.0.1:8443 ssl crt /c/x.pem\n  default_backend b\nbackend b\n  " + good,
			want: routeFacts{Found: true, Source: "/etc/haproxy/harden.cfg:2 (server at /etc/haproxy/harden.cfg:5)", Upstream: "127.0.0.1:9000",
				UpstreamTLS: true, UpstreamVerify: true, UpstreamCAFile: "/c/ca.pem", UpstreamName: "localhost", UpstreamSNI: true}},
		"verifyhost without sni": {main: hapMain, include: "listen l\n  bind :8443 ssl crt /c/x.pem\n  server b 127.0.0.1:9000 ssl ca-file ca.pem verifyhost backend.example\n",
			want: routeFacts{Found: true, Source: "/etc/haproxy/harden.cfg:2 (server at /etc/haproxy/harden.cfg:3)", Upstream: "127.0.0.1:9000",
				UpstreamTLS: true, UpstreamVerify: true, UpstreamCAFile: "ca.pem", UpstreamName: "backend.example"}},
		"defaults' default-server turns verification off": {main: hapMain + "    default-server ssl verify none\n",
			include: "frontend f\n  bind *:8443\n  default_backend b\nbackend b\n  server b 127.0.0.1:9000 ca-file /c/ca.pem sni str(localhost)\n",
			want: routeFacts{Found: true, Source: "/etc/haproxy/harden.cfg:2 (server at /etc/haproxy/harden.cfg:5)", Upstream: "127.0.0.1:9000",
				UpstreamTLS: true, UpstreamCAFile: "/c/ca.pem", UpstreamName: "localhost", UpstreamSNI: true}},
		"a new defaults section starts afresh": {main: hapMain + "    default-server ssl verify none\ndefaults\n    mode http\n",
			include: "frontend f\n  bind *:8443\n  default_backend b\nbackend b\n  server b 127.0.0.1:9000\n",
			want:    routeFacts{Found: true, Source: "/etc/haproxy/harden.cfg:2 (server at /etc/haproxy/harden.cfg:5)", Upstream: "127.0.0.1:9000"}},
		"named defaults by from": {main: hapMain + "defaults tls\n    default-server ssl verify required ca-file /c/ca.pem\ndefaults\n    mode http\n",
			include: "frontend f\n  bind *:8443\n  default_backend b\nbackend b from tls\n  server b 127.0.0.1:9000 sni str(localhost)\n",
			want: routeFacts{Found: true, Source: "/etc/haproxy/harden.cfg:2 (server at /etc/haproxy/harden.cfg:5)", Upstream: "127.0.0.1:9000",
				UpstreamTLS: true, UpstreamVerify: true, UpstreamCAFile: "/c/ca.pem", UpstreamName: "localhost", UpstreamSNI: true}},
		"global ssl-server-verify none": {main: "global\n  ssl-server-verify none\n  ca-base /etc/ssl\n" + hapMain[len("global\n"):],
			include: "frontend f\n  bind 127.0.0.1:8443\n  default_backend b\nbackend b\n  server b 127.0.0.1:9000 ssl ca-file ca.pem sni str(localhost)\n",
			want: routeFacts{Found: true, Source: "/etc/haproxy/harden.cfg:2 (server at /etc/haproxy/harden.cfg:5)", Upstream: "127.0.0.1:9000",
				UpstreamTLS: true, UpstreamCAFile: "/etc/ssl/ca.pem", UpstreamName: "localhost", UpstreamSNI: true}},
		"-dV": {main: hapMain, dashDV: true, include: "frontend f\n  bind 127.0.0.1:8443\n  default_backend b\nbackend b\n  server b 127.0.0.1:9000 ssl ca-file /c/ca.pem sni str(localhost)\n",
			want: routeFacts{Found: true, Source: "/etc/haproxy/harden.cfg:2 (server at /etc/haproxy/harden.cfg:5)", Upstream: "127.0.0.1:9000",
				UpstreamTLS: true, UpstreamCAFile: "/c/ca.pem", UpstreamName: "localhost", UpstreamSNI: true}},
		"an unconditional use_backend beats default_backend": {main: hapMain,
			include: "frontend f\n  default_backend good\n  use_backend plain if { path_beg /x }\n  use_backend plain\n  bind 127.0.0.1:8443\nbackend good\n  " + good + "backend plain\n  server p 127.0.0.1:8333 # plaintext\n",
			want:    routeFacts{Found: true, Source: "/etc/haproxy/harden.cfg:5 (server at /etc/haproxy/harden.cfg:9)", Upstream: "127.0.0.1:8333"}},
		"the weakest server": {main: hapMain, include: "frontend f\n  bind 127.0.0.1:8443\n  default_backend b\nbackend b\n  " + good + "  server p 127.0.0.1:8333 backup\n",
			want: routeFacts{Found: true, Source: "/etc/haproxy/harden.cfg:2 (server at /etc/haproxy/harden.cfg:6, the weakest of 2 servers)", Upstream: "127.0.0.1:8333"}},
		"two listeners of the front": {main: hapMain + "frontend old\n  bind 127.0.0.1:8443\n  default_backend plain\nbackend plain\n  server p 127.0.0.1:8333\n",
			include: "frontend f\n  bind 127.0.0.1:8443\n  default_backend b\nbackend b\n  " + good,
			want:    routeFacts{Found: true, Source: "/etc/haproxy/haproxy.cfg:9 (server at /etc/haproxy/haproxy.cfg:12) (one of 2 listeners of 127.0.0.1:8443)", Upstream: "127.0.0.1:8333"}},
		"quotes, escapes and comments": {main: hapMain, include: "frontend f # the front\n  bind \"127.0.0.1:8443\" ssl crt '/c/my cert.pem'\n  default_backend b\nbackend b\n  server b 127.0.0.1:9000 ssl verify required ca-file /c/my\\ ca.pem sni 'str(localhost)' # verified\n",
			want: routeFacts{Found: true, Source: "/etc/haproxy/harden.cfg:2 (server at /etc/haproxy/harden.cfg:5)", Upstream: "127.0.0.1:9000",
				UpstreamTLS: true, UpstreamVerify: true, UpstreamCAFile: "/c/my ca.pem", UpstreamName: "localhost", UpstreamSNI: true}},
		"TLS clients to one of HAProxy's own listeners": {main: hapMain, include: "frontend f\n  mode tcp\n  bind 127.0.0.1:8443\n  tcp-request content accept if { req.ssl_hello_type 1 }\n  use_backend hop if { req.ssl_hello_type 1 }\n  default_backend plain\n" +
			"backend hop\n  mode tcp\n  server tls abns@inner send-proxy-v2\nbackend plain\n  http-request return status 400\nfrontend t\n  bind abns@inner accept-proxy ssl crt /c/x.pem\n  default_backend b\nbackend b\n  " + good,
			want: routeFacts{Found: true, Source: "/etc/haproxy/harden.cfg:3 (server at /etc/haproxy/harden.cfg:9 to /etc/haproxy/harden.cfg:13, then server at /etc/haproxy/harden.cfg:16)", Upstream: "127.0.0.1:9000",
				UpstreamTLS: true, UpstreamVerify: true, UpstreamCAFile: "/c/ca.pem", UpstreamName: "localhost", UpstreamSNI: true}},
		"a loop through HAProxy's own listeners":    {main: hapMain, include: "listen l\n  bind 127.0.0.1:8443\n  server self 127.0.0.1:8443\n", wantErr: "more than 4 of HAProxy's own listeners"},
		"no listener":                               {main: hapMain, include: "frontend f\n  bind 127.0.0.1:7443\n  default_backend b\nbackend b\n  " + good},
		"a UNIX socket is no listener of the front": {main: hapMain, include: "frontend f\n  bind unix@/run/x.sock\n  bind abns@x\n  default_backend b\nbackend b\n  " + good},
		"dynamic sni":                               {main: hapMain, include: "frontend f\n  bind 127.0.0.1:8443\n  default_backend b\nbackend b\n  server b 127.0.0.1:9000 ssl verify required ca-file /c/ca.pem sni req.hdr(host)\n", wantErr: "harden.cfg:5: the SNI is computed at run time"},
		"under .if":                                 {main: hapMain, include: ".if defined(TLS)\nfrontend f\n  bind 127.0.0.1:8443\n  default_backend b\n.endif\nbackend b\n  " + good, wantErr: "harden.cfg:3: the listener is under a .if condition"},
		"unknown keyword":                           {main: hapMain, include: "frontend f\n  bind 127.0.0.1:8443\n  default_backend b\nbackend b\n  server b 127.0.0.1:9000 frobnicate ssl verify required\n", wantErr: "frobnicate"},
		"undefined backend":                         {main: hapMain, include: "frontend f\n  bind 127.0.0.1:8443\n  default_backend nope\n", wantErr: "backend nope is not defined"},
		"no backend":                                {main: hapMain, include: "frontend f\n  bind 127.0.0.1:8443\n", wantErr: "names no backend"},
		// Review M2's class for HAProxy: a conditional use_backend before
		// the catch-all sends the requests it matches elsewhere.
		"a conditional use_backend to a plaintext backend": {main: hapMain,
			include: "frontend f\n  bind 127.0.0.1:8443 ssl crt /c/x.pem\n  use_backend plain if { path_beg /api }\n  default_backend b\nbackend b\n  " + good + "backend plain\n  server p 127.0.0.1:8333\n",
			wantErr: "use_backend plain if { path_beg /api } sends some requests elsewhere"},
		"a conditional use_backend after an unconditional one is never reached": {main: hapMain,
			include: "frontend f\n  bind 127.0.0.1:8443\n  use_backend b\n  use_backend plain if { path_beg /api }\nbackend b\n  " + good + "backend plain\n  server p 127.0.0.1:8333\n",
			want:    routeFacts{Found: true, Source: "/etc/haproxy/harden.cfg:2 (server at /etc/haproxy/harden.cfg:6)", Upstream: "127.0.0.1:9000", UpstreamTLS: true, UpstreamVerify: true, UpstreamCAFile: "/c/ca.pem", UpstreamName: "localhost", UpstreamSNI: true}},
		"dynamic backend":      {main: hapMain, include: "frontend f\n  bind 127.0.0.1:8443\n  use_backend %[req.hdr(host)]\n", wantErr: "chosen at run time"},
		"server without port":  {main: hapMain, include: "frontend f\n  bind 127.0.0.1:8443\n  default_backend b\nbackend b\n  server b 127.0.0.1 ssl\n", wantErr: "is not a host:port"},
		"unterminated quote":   {main: hapMain, include: "frontend f\n  bind \"127.0.0.1:8443\n", wantErr: "harden.cfg:2: unterminated \" quote"},
		"backend from default": {main: hapMain + "    default_backend b\n", include: "frontend f\n  bind 127.0.0.1:8443\nbackend b\n  " + good, want: routeFacts{Found: true, Source: "/etc/haproxy/harden.cfg:2 (server at /etc/haproxy/harden.cfg:4)", Upstream: "127.0.0.1:9000", UpstreamTLS: true, UpstreamVerify: true, UpstreamCAFile: "/c/ca.pem", UpstreamName: "localhost", UpstreamSNI: true}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := routesOf(t, tc.dashDV, tc.main, tc.include)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q (facts %+v)", err, tc.wantErr, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.Canary = nil
			if got != tc.want {
				t.Errorf("facts\n %+v\nwant\n %+v", got, tc.want)
			}
		})
	}
}

// hapTarget is a target for render and routes without a running HAProxy.
func hapTarget(t testing.TB, dir string) (*target, renderInput) {
	t.Helper()
	tg := &target{name: "lake-proxy", flavor: haproxyFlavor{},
		conn: connection{Kind: "haproxy", Front: "127.0.0.1:8443", ConfigFile: filepath.Join(dir, "haproxy.cfg"), MasterSocket: filepath.Join(dir, "master.sock")},
		spec: spec{IncludeFile: filepath.Join(dir, "harden.cfg"), CertDir: filepath.Join(dir, "certs"),
			Backend: backend{Address: "127.0.0.1:9000", ServerName: "localhost"}, Canary: canary{Listen: "127.0.0.1:9443", Decoy: "127.0.0.1:9444"}}}
	in := renderInput{Policy: sdk.Policy{Profile: tlsprofile.Intermediate()}, CertFile: tg.certFile(), KeyFile: tg.keyFile(),
		ClientCAFile: tg.clientCAFile(), BackendCAFile: tg.backendCAFile()}
	return tg, in
}

// The rendered file says what the design says, HAProxy 2.6 accepts it
// (haproxy -c, with real certificate files), and the route parser reads
// back a verified route and a canary with the same upstream TLS.
func TestHAProxyRenderAccepted(t *testing.T) {
	for name, mtls := range map[string]bool{"tls": false, "mtls": true} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			tg, in := hapTarget(t, dir)
			in.MTLS = mtls
			body, err := haproxyFlavor{}.render(tg, in)
			if err != nil {
				t.Fatal(err)
			}
			s := string(body)
			for _, want := range []string{
				"mode tcp\n    option tcplog\n    bind 127.0.0.1:8443\n    tcp-request inspect-delay 5s\n    tcp-request content accept if { req.ssl_hello_type 1 }\n",
				"server tls " + tg.innerFront() + " send-proxy-v2\n",
				`http-request return status 400 content-type text/plain string "The plain HTTP request was sent to HTTPS port"`,
				"bind " + tg.innerFront() + " accept-proxy ssl crt " + tg.frontPEMFile() + " ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.3 ciphers ECDHE-ECDSA-AES128-GCM-SHA256:",
				" ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256 curves X25519:P-256:P-384 prefer-client-ciphers no-tls-tickets",
				"server backend 127.0.0.1:9000 ssl verify required ca-file " + tg.backendCAFile() + " sni str(localhost) verifyhost localhost ssl-min-ver TLSv1.2",
				"server decoy 127.0.0.1:9444 ssl verify required ca-file " + tg.backendCAFile() + " sni str(localhost) verifyhost localhost ssl-min-ver TLSv1.2",
				"bind 127.0.0.1:9443 ssl crt ",
				`http-response set-header Strict-Transport-Security "max-age=63072000"`,
				"left out (not in OpenSSL 3.0): X25519MLKEM768",
			} {
				if !strings.Contains(s, want) {
					t.Errorf("render lacks %q:\n%s", want, s)
				}
			}
			if got := strings.Count(s, " ca-file "+tg.clientCAFile()+" verify required"); got != 2*btoi(mtls) {
				t.Errorf("client verification on %d binds, want %d:\n%s", got, 2*btoi(mtls), s)
			}
			if strings.Contains(s, "\ndefaults") {
				t.Errorf("the render has a defaults section (it would become the defaults of the operator's later proxies):\n%s", s)
			}

			rf, err := routesOf(t, false, hapMain, s)
			if err != nil {
				t.Fatal(err)
			}
			if !rf.Found || rf.Upstream != "127.0.0.1:9000" || !rf.UpstreamTLS || !rf.UpstreamVerify || rf.UpstreamName != "localhost" || rf.UpstreamCAFile != tg.backendCAFile() || rf.Canary == nil {
				t.Fatalf("routes of the render: %+v", rf)
			}
			c := *rf.Canary
			if c.Upstream != "127.0.0.1:9444" || c.UpstreamTLS != rf.UpstreamTLS || c.UpstreamVerify != rf.UpstreamVerify || c.UpstreamName != rf.UpstreamName || c.UpstreamCAFile != rf.UpstreamCAFile {
				t.Fatalf("canary of the render: %+v", c)
			}

			// haproxy -c with real files in place.
			bin, err := testenv.HAProxyBinary()
			if err != nil {
				if os.Getenv("CI") == "true" {
					t.Fatal(err)
				}
				t.Skip(err)
			}
			ca, err := testenv.NewCA(dir)
			if err != nil {
				t.Fatal(err)
			}
			cf, kf, err := ca.Issue("front", false, "localhost")
			if err != nil {
				t.Fatal(err)
			}
			os.MkdirAll(tg.spec.CertDir, 0o700)
			chain, _ := os.ReadFile(cf)
			key, _ := os.ReadFile(kf)
			caPEM, _ := os.ReadFile(ca.CertFile)
			for _, f := range (haproxyFlavor{}).certFiles(tg, sdk.Certificates{ChainPEM: chain, KeyPEM: key}) {
				os.WriteFile(f.path, f.data, os.FileMode(f.mode))
			}
			os.WriteFile(tg.backendCAFile(), caPEM, 0o644)
			os.WriteFile(tg.clientCAFile(), caPEM, 0o644)
			os.WriteFile(tg.conn.ConfigFile, []byte(hapMain), 0o644)
			os.WriteFile(tg.spec.IncludeFile, body, 0o644)
			tg.conn.Binary = bin
			if err := (haproxyFlavor{}).test(t.Context(), tg); err != nil {
				t.Fatalf("haproxy -c refuses the render: %v\n%s", err, s)
			}
			// And it names the line of what it refuses.
			os.WriteFile(tg.spec.IncludeFile, append(body, "    frobnicate\n"...), 0o644)
			if err := (haproxyFlavor{}).test(t.Context(), tg); err == nil || !strings.Contains(err.Error(), "harden.cfg:") || !strings.Contains(err.Error(), "frobnicate") {
				t.Fatalf("haproxy -c of a broken include: %v", err)
			}
		})
	}
}

func TestHAProxyRenderModernAndNoHSTS(t *testing.T) {
	tg, in := hapTarget(t, t.TempDir())
	in.Policy.Profile = tlsprofile.Modern()
	off := false
	tg.spec.HSTS = &off
	body, err := haproxyFlavor{}.render(tg, in)
	if err != nil {
		t.Fatal(err)
	}
	s := string(body)
	if strings.Contains(s, " ciphers ") || !strings.Contains(s, "ssl-min-ver TLSv1.3 ssl-max-ver TLSv1.3") || strings.Contains(s, "Strict-Transport-Security") {
		t.Errorf("modern, hsts off:\n%s", s)
	}
}

func TestHAProxyNames(t *testing.T) {
	if got := haproxyName("lake proxy/ü", "front"); got != "harden-lake_proxy___-front" {
		t.Errorf("haproxyName = %q", got)
	}
}

// The running master's command line is what a reload re-executes.
func TestHAProxyArgs(t *testing.T) {
	l := haproxyArgs([]string{"/usr/sbin/haproxy", "-W", "-S", "/run/m.sock", "-f", "haproxy.cfg", "-C", "/etc/haproxy", "-f", "conf.d", "-dV", "-p", "/run/h.pid", "--", "/x/a.cfg", "b.cfg"}, "/root")
	want := []string{"/etc/haproxy/haproxy.cfg", "/etc/haproxy/conf.d", "/x/a.cfg", "/etc/haproxy/b.cfg"}
	if !slices.Equal(l.files, want) || !l.dashDV {
		t.Errorf("files %v dV %v, want %v", l.files, l.dashDV, want)
	}
	// A directory is its *.cfg files in lexical order.
	dir := t.TempDir()
	for _, f := range []string{"b.cfg", "a.cfg", "c.txt", "a.cfg.harden-backup-x"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	files, err := haproxyLoad{files: []string{dir}}.expand()
	if err != nil || !slices.Equal(files, []string{filepath.Join(dir, "a.cfg"), filepath.Join(dir, "b.cfg")}) {
		t.Errorf("expand: %v %v", files, err)
	}
}

// Without a readable master command line, the files are config_file and
// the include (once it exists).
func TestHAProxyLoadWithoutMaster(t *testing.T) {
	dir := t.TempDir()
	tg, _ := hapTarget(t, dir)
	l, err := tg.haproxyLoad()
	if err != nil || !slices.Equal(l.files, []string{tg.conn.ConfigFile}) {
		t.Fatalf("before the include exists: %v %v", l.files, err)
	}
	os.WriteFile(tg.spec.IncludeFile, nil, 0o644)
	if l, _ = tg.haproxyLoad(); !slices.Equal(l.files, []string{tg.conn.ConfigFile, tg.spec.IncludeFile}) {
		t.Fatalf("with the include: %v", l.files)
	}
	if _, err := exec.LookPath("true"); err == nil {
		tg.conn.PIDFile = filepath.Join(dir, "nope.pid") // unreadable: the fallback
		if l, _ = tg.haproxyLoad(); len(l.files) != 2 {
			t.Fatalf("with an unreadable pid file: %v", l.files)
		}
	}
}

func TestParseShowProc(t *testing.T) {
	out := "#<PID>          <type>          <reloads>       <uptime>        <version>      \n20356           master          2 [failed: 1]   0d00h10m18s     2.6.12-1+deb12u4\n# workers\n31771           worker          1               0d00h00m04s     2.6.12-1+deb12u4\n31800           worker          0               0d00h00m01s     2.6.12-1+deb12u4\n# programs\n\n"
	p, err := parseShowProc(out)
	if err != nil || p.master != 20356 || p.reloads != 2 || p.failed != 1 || !slices.Equal(p.workers, []hapWorker{{31771, 1}, {31800, 0}}) {
		t.Fatalf("%+v %v", p, err)
	}
	for _, bad := range []string{"", "Unknown command.\n", "1 master 0\n", "12 master 0 [failed: x]\n", "12 master 0 [failed: 0]\n13 master 0 [failed: 0]\n", "12 master 0 [failed: 0]\n# workers\n13 worker\n"} {
		if _, err := parseShowProc(bad); err == nil {
			t.Errorf("parseShowProc(%q) accepted", bad)
		}
	}
}

func TestCleartextAlert(t *testing.T) {
	hello := append([]byte{22, 3, 1, 0, 3}, 1, 0, 0)
	ccs := []byte{20, 3, 3, 0, 1, 1}
	alert := []byte{21, 3, 3, 0, 2, 2, 48}
	if d, ok := cleartextAlertIn(slices.Concat(hello, ccs, alert)); !ok || d != 48 {
		t.Errorf("alert after hello and CCS: %d %v", d, ok)
	}
	for name, b := range map[string][]byte{"no alert": slices.Concat(hello, ccs), "encrypted": slices.Concat(hello, []byte{23, 3, 3, 0, 2, 2, 48}),
		"a warning": slices.Concat(hello, []byte{21, 3, 3, 0, 2, 1, 0}), "truncated": slices.Concat(hello, alert[:6]), "not TLS": []byte("GET / HTTP/1.1\r\n")} {
		if d, ok := cleartextAlertIn(b); ok {
			t.Errorf("%s: alert %d", name, d)
		}
	}
	rc := &recordingConn{read: slices.Concat(hello, alert)}
	if err := rc.cleartextAlert(os.ErrClosed); err == nil || !strings.HasPrefix(err.Error(), "remote error: tls: unknown certificate authority") {
		t.Errorf("cleartextAlert: %v", err)
	}
}
