package main

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

const dumpMain = `# configuration file /etc/nginx/nginx.conf:
user root;
events { worker_connections 64; }
http {
    proxy_ssl_verify on;   # inherited by every server
    proxy_ssl_trusted_certificate "/etc/nginx/ca bundle.pem";
    upstream pool { server 127.0.0.1:9443; server 127.0.0.1:9444 backup; }
    include conf.d/*.conf;
}

`

func TestNginxRoutes(t *testing.T) {
	for name, tc := range map[string]struct {
		dump string
		want routeFacts
	}{
		"testenv before": {
			dump: "# configuration file /n/nginx.conf:\nhttp {\n    include /n/inc.conf;\n}\n\n# configuration file /n/inc.conf:\n" +
				"server {\n    listen 127.0.0.1:8443 ssl;\n    location / {\n        proxy_pass http://127.0.0.1:8080;\n    }\n}\n\n",
			want: routeFacts{Found: true, Source: "/n/inc.conf:4", Upstream: "127.0.0.1:8080", UpstreamName: "127.0.0.1"},
		},
		"inherited from http, upstream block, glob include, wildcard listen": {
			dump: dumpMain + "# configuration file /etc/nginx/conf.d/a.conf:\nserver {\n  listen 8443 ssl;\n  location / { proxy_pass https://pool/; proxy_ssl_name backend.internal; }\n}\n\n",
			want: routeFacts{Found: true, Source: "/etc/nginx/conf.d/a.conf:3", Upstream: "127.0.0.1:9443,127.0.0.1:9444", UpstreamTLS: true, UpstreamVerify: true,
				UpstreamCAFile: "/etc/nginx/ca bundle.pem", UpstreamName: "backend.internal"},
		},
		"location level overrides": {
			dump: dumpMain + "# configuration file /etc/nginx/conf.d/a.conf:\nserver {\n  listen 127.0.0.1:8443 ssl; server_name x;\n  proxy_ssl_server_name on;\n  location / {\n    proxy_ssl_verify off;\n    proxy_pass https://localhost:9443;\n  }\n}\n",
			want: routeFacts{Found: true, Source: "/etc/nginx/conf.d/a.conf:6", Upstream: "localhost:9443", UpstreamTLS: true, UpstreamSNI: true,
				UpstreamCAFile: "/etc/nginx/ca bundle.pem", UpstreamName: "localhost"},
		},
		"no listener": {
			dump: dumpMain + "# configuration file /etc/nginx/conf.d/a.conf:\nserver { listen 127.0.0.1:9999 ssl; }\n",
			want: routeFacts{},
		},
		"variable upstream is unknown": {
			dump: "# configuration file /n.conf:\nhttp { server { listen 127.0.0.1:8443; location / { proxy_pass https://$backend; } } }\n",
			want: routeFacts{Found: true, Source: "/n.conf:1", UpstreamTLS: true},
		},
		"a file not included does not count": {
			dump: "# configuration file /n.conf:\nhttp { }\n\n# configuration file /other.conf:\nserver { listen 127.0.0.1:8443; }\n",
			want: routeFacts{},
		},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := nginxRoutes(tc.dump, "127.0.0.1:8443", "localhost", "127.0.0.1:7443")
			if err != nil {
				t.Fatal(err)
			}
			got.Canary = nil
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestNginxRoutesRefusesWhatIsNotADump(t *testing.T) {
	for _, d := range []string{"", "server { listen 1; }", "# configuration file /a:\nhttp {", "# configuration file /a:\n}\n", "# configuration file /a:\nx \"unterminated;\n"} {
		if _, err := nginxRoutes(d, "127.0.0.1:8443", "", "127.0.0.1:7443"); err == nil {
			t.Errorf("%q parsed", d)
		}
	}
	deep := "# configuration file /a:\n" + strings.Repeat("a {", 100) + strings.Repeat("}", 100)
	if _, err := nginxRoutes(deep, "127.0.0.1:8443", "", "127.0.0.1:7443"); err == nil {
		t.Error("blocks nested 100 deep parsed")
	}
	loop := "# configuration file /a:\ninclude /a;\n"
	if _, err := nginxRoutes(loop, "127.0.0.1:8443", "", "127.0.0.1:7443"); err == nil {
		t.Error("a file including itself parsed")
	}
}

// The rendered include, dumped the way nginx -T prints it, reads back as
// the route harden meant: the parser and the renderer agree.
func TestRenderedIncludeReadsBack(t *testing.T) {
	tg := testTarget(t, nil)
	q := testRequest(t, tg, false)
	body, err := tg.flavor.render(tg, tg.input(q))
	if err != nil {
		t.Fatal(err)
	}
	dump := "# configuration file /etc/nginx/nginx.conf:\nhttp {\n    include " + tg.spec.IncludeFile + ";\n}\n\n# configuration file " + tg.spec.IncludeFile + ":\n" + string(body) + "\n"
	rf, err := nginxRoutes(dump, tg.conn.Front, tg.frontName(), tg.spec.Canary.Listen)
	if err != nil {
		t.Fatal(err)
	}
	want := routeFacts{Found: true, Upstream: tg.spec.Backend.Address, UpstreamTLS: true, UpstreamVerify: true, UpstreamSNI: true,
		UpstreamCAFile: tg.backendCAFile(), UpstreamName: tg.backendName()}
	c := rf.Canary
	rf.Canary, rf.Source = nil, ""
	if rf != want {
		t.Errorf("front route %+v\nwant %+v", rf, want)
	}
	if c == nil || c.Upstream != tg.spec.Canary.Decoy || !c.UpstreamVerify || c.UpstreamCAFile != want.UpstreamCAFile || c.UpstreamName != want.UpstreamName {
		t.Errorf("canary route %+v", c)
	}
}

// FuzzNginxRoutes: any text is parsed without a panic, and every fact
// comes from the text — a route found names a dumped file and a line it
// has, and the upstream, CA file and name appear in the text.
func FuzzNginxRoutes(f *testing.F) {
	f.Add(dumpMain + "# configuration file /etc/nginx/conf.d/a.conf:\nserver {\n  listen 8443 ssl;\n  location / { proxy_pass https://pool/; }\n}\n")
	f.Add("# configuration file /n.conf:\nhttp { server { listen 127.0.0.1:8443; location / { proxy_pass \"https://h\\\"x:1\"; proxy_ssl_name 'a b'; } } }\n")
	f.Add("# configuration file /n.conf:\nhttp { include *; server { listen [::1]:7443; location / { proxy_pass http://[::1]; } } }\n# configuration file /x:\n")
	tg := testTarget(f, nil)
	q := testRequest(f, tg, false)
	body, _ := tg.flavor.render(tg, tg.input(q))
	f.Add("# configuration file /m:\nhttp { include " + tg.spec.IncludeFile + "; }\n# configuration file " + tg.spec.IncludeFile + ":\n" + string(body))
	f.Fuzz(func(t *testing.T, dump string) {
		for _, addr := range []string{"127.0.0.1:8443", "[::1]:7443"} {
			rf, err := nginxRoutes(dump, addr, "localhost", "127.0.0.1:7443")
			if err != nil {
				continue
			}
			for _, r := range []*routeFacts{&rf, rf.Canary} {
				if r == nil {
					continue
				}
				if !r.Found {
					bare := *r
					bare.Canary = nil
					if bare != (routeFacts{}) {
						t.Fatalf("facts without a route: %+v", r)
					}
					continue
				}
				checkSource(t, dump, r.Source)
				for _, v := range []string{r.UpstreamCAFile, r.UpstreamName} {
					if v != "" && !strings.Contains(dump, unescapedPart(v)) {
						t.Fatalf("%q is not in the text", v)
					}
				}
				for _, u := range strings.Split(r.Upstream, ",") {
					if u == "" {
						continue
					}
					h, _, err := net.SplitHostPort(u)
					if err != nil || !strings.Contains(dump, unescapedPart(h)) {
						t.Fatalf("upstream %q is not in the text", u)
					}
				}
			}
		}
	})
}

// unescapedPart is the longest run of v that a quoted or escaped word in
// the text would hold verbatim (quotes and backslashes are dropped by the
// tokenizer).
func unescapedPart(v string) string {
	best := ""
	for _, p := range strings.FieldsFunc(v, func(r rune) bool { return r == '"' || r == '\'' || r == '\\' }) {
		if len(p) > len(best) {
			best = p
		}
	}
	return best
}

// checkSource: "file:line" names a dumped file and a line within it.
func checkSource(t *testing.T, dump, source string) {
	t.Helper()
	i := strings.LastIndexByte(source, ':')
	if i < 0 {
		t.Fatalf("source %q is not file:line", source)
	}
	file, line := source[:i], source[i+1:]
	n, err := strconv.Atoi(line)
	if err != nil || n < 1 {
		t.Fatalf("source %q has no line number", source)
	}
	for _, f := range splitDump(dump) {
		if f.path == file && n <= strings.Count(f.text, "\n")+1 {
			return
		}
	}
	t.Fatalf("source %q: no such file and line in the dump", source)
}

// frontDump is the rendered include as nginx -T prints it, with extra
// text put into the front's server block (atServer: beside location /;
// else inside it).
func frontDump(tb testing.TB, extra string, atServer bool) (string, *target) {
	tb.Helper()
	tg := testTarget(tb, nil)
	body, err := tg.flavor.render(tg, tg.input(testRequest(tb, tg, false)))
	if err != nil {
		tb.Fatal(err)
	}
	inc := string(body)
	front, canary, ok := strings.Cut(inc, "# harden's canary route")
	if !ok || strings.Count(front, "    location / {\n") != 1 {
		tb.Fatalf("the rendered include has not one front location /:\n%s", inc)
	}
	if atServer {
		front = strings.Replace(front, "    location / {\n", extra+"\n    location / {\n", 1)
	} else {
		front = strings.Replace(front, "    location / {\n", "    location / {\n"+extra+"\n", 1)
	}
	return "# configuration file /etc/nginx/nginx.conf:\nhttp {\n    include " + tg.spec.IncludeFile + ";\n}\n\n# configuration file " + tg.spec.IncludeFile + ":\n" +
		front + "# harden's canary route" + canary + "\n", tg
}

// Any other way through the front's server block than harden's one
// location / — another location (regex, exact, prefix, named), a nested
// one, if, return, rewrite, error_page, a second proxy_pass — leaves the
// route's facts open: routeObservation is never good on them (review M2:
// nginx sends those requests wherever they say, plaintext included).
func TestNginxRoutesOtherWaysThrough(t *testing.T) {
	for name, tc := range map[string]struct {
		extra    string
		atServer bool
	}{
		"regex location":          {"    location ~ ^/ { proxy_pass http://127.0.0.1:8080; }", true},
		"exact location":          {"    location = / { proxy_pass http://127.0.0.1:8080; }", true},
		"prefix location":         {"    location /api { proxy_pass http://127.0.0.1:8080; }", true},
		"named location":          {"    location @fallback { proxy_pass http://127.0.0.1:8080; }", true},
		"if in the server":        {"    if ($http_x_plain) { return 302 http://127.0.0.1:8080; }", true},
		"return in the server":    {"    return 301 http://example.com;", true},
		"rewrite in the server":   {"    rewrite ^ /x last;", true},
		"error_page":              {"    error_page 502 = @fallback;", true},
		"nested location":         {"        location /api { proxy_pass http://127.0.0.1:8080; }", false},
		"if in location /":        {"        if ($arg_x) { proxy_pass http://127.0.0.1:8080; }", false},
		"limit_except":            {"        limit_except GET { deny all; }", false},
		"a second proxy_pass":     {"        proxy_pass http://127.0.0.1:8080;", false},
		"rewrite in location /":   {"        rewrite ^/(.*)$ /x/$1 break;", false},
		"try_files in location /": {"        try_files $uri @fallback;", false},
	} {
		t.Run(name, func(t *testing.T) {
			dump, tg := frontDump(t, tc.extra, tc.atServer)
			rf, err := nginxRoutes(dump, tg.conn.Front, tg.frontName(), tg.spec.Canary.Listen)
			if err != nil {
				t.Fatal(err)
			}
			if rf.Open == "" {
				t.Fatalf("facts not open: %+v", rf)
			}
			if o := tg.routeObservation(rf, nil, ""); o.Conclusive() && !o.Bad {
				t.Errorf("route observation good: %s", o)
			}
		})
	}
	// The rendered include as it is: not open.
	dump, tg := frontDump(t, "", true)
	if rf, err := nginxRoutes(dump, tg.conn.Front, tg.frontName(), tg.spec.Canary.Listen); err != nil || rf.Open != "" || rf.Canary == nil || rf.Canary.Open != "" {
		t.Errorf("the rendered include: %+v %v", rf, err)
	}
}

// FuzzNginxFrontExtras is the metamorphic property of the parser: any
// block, or any directive that routes requests (location, if, return,
// rewrite, error_page, try_files, a *_pass), put into the front's server
// block or its location / of the rendered include, with any arguments,
// makes the route's facts open (never good) — or the dump fails to parse.
func FuzzNginxFrontExtras(f *testing.F) {
	f.Add(uint8(0), "~ ^/", true)
	f.Add(uint8(1), "($http_x)", false)
	f.Add(uint8(2), "301 http://x", true)
	f.Add(uint8(6), "http://127.0.0.1:8080", false)
	f.Add(uint8(7), "GET", false)
	names := []string{"location", "if", "return", "rewrite", "error_page", "try_files", "proxy_pass", "limit_except", "grpc_pass", "fastcgi_pass"}
	f.Fuzz(func(t *testing.T, which uint8, args string, atServer bool) {
		name := names[int(which)%len(names)]
		// One line of words: the fuzzer's arguments, quoted so that they
		// stay arguments of this directive.
		q := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(args)
		extra := name + ` "` + q + `"`
		if name == "location" || name == "if" || name == "limit_except" || which >= 128 {
			extra += " { proxy_pass http://127.0.0.1:8080; }"
		} else {
			extra += ";"
		}
		dump, tg := frontDump(t, extra, atServer)
		rf, err := nginxRoutes(dump, tg.conn.Front, tg.frontName(), tg.spec.Canary.Listen)
		if err != nil {
			return
		}
		if !rf.Found {
			t.Fatalf("the front's server block is gone: %+v", rf)
		}
		if rf.Open == "" {
			t.Fatalf("%q in the front's server block (at server level %v) left the facts closed: %+v", extra, atServer, rf)
		}
		if o := tg.routeObservation(rf, nil, ""); o.Conclusive() && !o.Bad {
			t.Fatalf("%q: route observation good: %s", extra, o)
		}
	})
}
