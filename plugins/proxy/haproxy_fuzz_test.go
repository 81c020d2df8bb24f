package main

import (
	"bytes"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// Configuration text is untrusted: parsing it never panics, is
// deterministic, and every fact it reports is in the text — a listener at
// a file:line that exists and holds a bind, an upstream whose port the
// text names, verification only over TLS, a canary only beside a found
// front.
func FuzzHAProxyRoutes(f *testing.F) {
	good := "backend b\n  server b 127.0.0.1:9000 ssl verify required ca-file /c/ca.pem sni str(localhost) verifyhost localhost\n"
	f.Add(hapMain, "frontend f\n  bind 127.0.0.1:8443 ssl crt /c/x.pem\n  default_backend b\n"+good)
	f.Add(hapMain+"    default-server ssl verify none\n", "listen l\n  bind :8443,127.0.0.1:9443\n  server s \"127.0.0.1:8333\" 'check'\n")
	f.Add("global\n  ssl-server-verify none\n  ca-base /x\n", "frontend f\n  bind *:8443\n  use_backend b if { src 1.2.3.4 }\n  use_backend b\n.if defined(X)\n"+good+".endif\n")
	f.Add("defaults d from e\ndefaults e from d\n", "backend b from d\n  server s ipv6@[::1]:1-2 source 1.2.3.4 usesrc client\nfrontend f from d\n  bind ipv4@127.0.0.1:8443\n  default_backend b\n")
	f.Add("", "frontend f\n  bind 127.0.0.1:8443\\\n")
	f.Fuzz(func(t *testing.T, main, include string) {
		files := []hapFile{{"/a.cfg", main}, {"/b.cfg", include}}
		cfg, err := parseHAProxy(files)
		if err != nil {
			return
		}
		rf, err := haproxyRoutes(cfg, "127.0.0.1:8443", "127.0.0.1:9443", false)
		cfg2, _ := parseHAProxy(files)
		rf2, err2 := haproxyRoutes(cfg2, "127.0.0.1:8443", "127.0.0.1:9443", false)
		if !reflect.DeepEqual(rf, rf2) || (err == nil) != (err2 == nil) {
			t.Fatalf("not deterministic: %+v %v / %+v %v", rf, err, rf2, err2)
		}
		if err != nil {
			if rf != (routeFacts{}) {
				t.Fatalf("facts beside an error: %+v", rf)
			}
			return
		}
		check := func(what string, r routeFacts) {
			if !r.Found {
				if r != (routeFacts{}) {
					t.Fatalf("%s: facts without a listener: %+v", what, r)
				}
				return
			}
			at, _, _ := strings.Cut(r.Source, " ")
			file, line, ok := strings.Cut(at, ":")
			n, err := strconv.Atoi(line)
			text := map[string]string{"/a.cfg": main, "/b.cfg": include}[file]
			lines := strings.SplitAfter(text, "\n")
			if !ok || err != nil || n < 1 || n > len(lines) || !strings.Contains(lines[n-1], "bind") {
				t.Fatalf("%s: source %q is not a bind line of the text", what, r.Source)
			}
			if r.Upstream != "" {
				_, port, _ := strings.Cut(r.Upstream[strings.LastIndexByte(r.Upstream, ':'):], ":")
				if !strings.Contains(main+include, port) {
					t.Fatalf("%s: upstream %q: port not in the text", what, r.Upstream)
				}
			}
			if r.UpstreamVerify && !r.UpstreamTLS {
				t.Fatalf("%s: verification without TLS: %+v", what, r)
			}
			if r.UpstreamName != "" && !strings.Contains(main+include, r.UpstreamName) {
				t.Fatalf("%s: name %q not in the text", what, r.UpstreamName)
			}
		}
		check("front", rf)
		if rf.Canary != nil {
			if !rf.Found || rf.Canary.Canary != nil {
				t.Fatalf("canary beside no front, or nested: %+v", rf)
			}
			check("canary", *rf.Canary)
		}
	})
}

// A master CLI answer is untrusted: never a panic, and what it reports is
// in the text.
func FuzzParseShowProc(f *testing.F) {
	f.Add("#<PID>          <type>          <reloads>       <uptime>        <version>      \n20356           master          2 [failed: 1]   0d00h10m18s     2.6.12\n# workers\n31771           worker          0               0d00h00m04s     2.6.12\n# programs\n\n")
	f.Add("1 master 0 [failed: 0]\n# workers\n2 worker 3 x\n# programs\n3 foo 1 bar\n")
	f.Add("Unknown command.\n")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseShowProc(s)
		if err != nil {
			return
		}
		if p.master <= 0 || p.reloads < 0 || p.failed < 0 || !strings.Contains(s, strconv.Itoa(p.master)) || !strings.Contains(s, "master") {
			t.Fatalf("master %+v not in %q", p, s)
		}
		for _, w := range p.workers {
			if w.pid <= 0 || w.reloads < 0 || !strings.Contains(s, strconv.Itoa(w.pid)) {
				t.Fatalf("worker %+v not in %q", w, s)
			}
		}
	})
}

// What the proxy sent the decoy is untrusted: an alert is reported only
// when the bytes hold a fatal alert record with that description.
func FuzzCleartextAlert(f *testing.F) {
	f.Add([]byte{22, 3, 1, 0, 3, 1, 0, 0, 20, 3, 3, 0, 1, 1, 21, 3, 3, 0, 2, 2, 48})
	f.Add([]byte{21, 3, 3, 0, 2, 2, 42})
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, ok := cleartextAlertIn(b)
		if ok && !bytes.Contains(b, []byte{2, d}) {
			t.Fatalf("alert %d not in %x", d, b)
		}
		if ok && !bytes.Contains(b, []byte{0, 2, 2, d}) {
			t.Fatalf("alert %d without its record header in %x", d, b)
		}
	})
}

// FuzzHAProxyFrontExtras is the metamorphic property of the parser: a
// use_backend to a plaintext backend under any condition, put before the
// TLS front's default_backend in the rendered file, never leaves the
// route good — an error (open) or a failing hop. A condition that is
// exactly "TLS clients only" routes the TLS front's every request: its
// plaintext backend is then the route, and fails.
func FuzzHAProxyFrontExtras(f *testing.F) {
	f.Add("if { path_beg /api }")
	f.Add("unless { src 127.0.0.1 }")
	f.Add("if { req.ssl_hello_type 1 }")
	f.Add("if TRUE")
	dir := f.TempDir()
	tg, in := hapTarget(f, dir)
	body, err := haproxyFlavor{}.render(tg, in)
	if err != nil {
		f.Fatal(err)
	}
	tlsFront := "frontend " + haproxyName(tg.name, "tls") + "\n"
	if !strings.Contains(string(body), tlsFront) {
		f.Fatalf("no %q in the render", tlsFront)
	}
	f.Fuzz(func(t *testing.T, cond string) {
		if strings.ContainsAny(cond, "\n\r#\\\"'") {
			return // one line of words as written
		}
		extra := "    use_backend fuzz-plain " + cond + "\n"
		inc := strings.Replace(string(body), tlsFront+"    mode http\n", tlsFront+"    mode http\n"+extra, 1) + "\nbackend fuzz-plain\n    mode http\n    server p 127.0.0.1:8333\n"
		cfg, err := parseHAProxy([]hapFile{{"/a.cfg", hapMain}, {"/b.cfg", inc}})
		if err != nil {
			return
		}
		rf, err := haproxyRoutes(cfg, tg.conn.Front, tg.spec.Canary.Listen, false)
		if err != nil {
			return
		}
		if o := tg.routeObservation(rf, nil, ""); o.Conclusive() && !o.Bad {
			t.Fatalf("%q in the TLS front: route good: %s (%+v)", extra, o, rf)
		}
	})
}
