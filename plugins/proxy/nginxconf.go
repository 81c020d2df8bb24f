package main

import (
	"fmt"
	"net"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// What `nginx -T` prints is untrusted text (an operator's files, anything
// they include): it is parsed into facts about two routes, never executed,
// and only what the text says is reported — an unknown is left empty, not
// guessed. The dump is every file nginx read, each after a line
// "# configuration file <path>:"; the first is the main configuration.

// dumpMarker starts each file of an nginx -T dump.
const dumpMarker = "# configuration file "

// confFile is one file of the dump.
type confFile struct {
	path string
	text string
}

// splitDump cuts an nginx -T dump into its files. Text before the first
// marker (nginx prints none on stdout) is ignored.
func splitDump(dump string) []confFile {
	var files []confFile
	var cur *confFile
	var b strings.Builder
	flush := func() {
		if cur != nil {
			// nginx adds a newline after each file's content.
			cur.text = strings.TrimSuffix(b.String(), "\n")
			files = append(files, *cur)
		}
		b.Reset()
	}
	for line := range strings.Lines(dump) {
		bare := strings.TrimRight(line, "\r\n")
		if p, ok := strings.CutPrefix(bare, dumpMarker); ok && strings.HasSuffix(p, ":") && len(p) > 1 {
			flush()
			cur = &confFile{path: strings.TrimSuffix(p, ":")}
			continue
		}
		if cur != nil {
			b.WriteString(line)
		}
	}
	flush()
	return files
}

// directive is one nginx directive: name, arguments, and its block (a
// nil block with hasBlock false: a simple directive ending in ';').
type directive struct {
	name     string
	args     []string
	block    []*directive
	hasBlock bool
	file     string
	line     int
}

// Limits on what one dump may make the parser do (the text is untrusted).
const (
	maxConfDepth      = 32     // nested blocks
	maxIncludeDepth   = 10     // include within include
	maxConfDirectives = 200000 // after includes are inlined
)

// parseConf tokenizes one file the way nginx does (ngx_conf_read_token):
// words separated by blanks, "…" and '…' with backslash escapes, '#' to
// the end of the line, ';' ends a directive, '{' and '}' a block. It
// returns the file's top-level directives; an error names file:line.
func parseConf(file, text string) ([]*directive, error) {
	p := &confParser{file: file, src: text, line: 1}
	ds, closed, err := p.block(0)
	if err == nil && closed {
		err = p.errorf("unexpected \"}\"")
	}
	return ds, err
}

type confParser struct {
	file string
	src  string
	pos  int
	line int
}

func (p *confParser) errorf(format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", p.file, p.line, fmt.Sprintf(format, args...))
}

// token kinds besides words.
const (
	tokWord = iota
	tokSemi
	tokOpen
	tokClose
	tokEOF
)

// next returns the next token and the line it starts on.
func (p *confParser) next() (kind int, word string, line int, err error) {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == '\n':
			p.line++
			p.pos++
		case c == ' ' || c == '\t' || c == '\r':
			p.pos++
		case c == '#':
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.pos++
			}
		default:
			goto token
		}
	}
	return tokEOF, "", p.line, nil
token:
	line = p.line
	switch c := p.src[p.pos]; c {
	case ';':
		p.pos++
		return tokSemi, "", line, nil
	case '{':
		p.pos++
		return tokOpen, "", line, nil
	case '}':
		p.pos++
		return tokClose, "", line, nil
	case '"', '\'':
		p.pos++
		var b strings.Builder
		for p.pos < len(p.src) {
			d := p.src[p.pos]
			switch {
			case d == '\\' && p.pos+1 < len(p.src):
				if p.src[p.pos+1] == '\n' {
					p.line++
				}
				b.WriteByte(p.src[p.pos+1])
				p.pos += 2
				continue
			case d == c:
				p.pos++
				return tokWord, b.String(), line, nil
			case d == '\n':
				p.line++
			}
			b.WriteByte(d)
			p.pos++
		}
		return 0, "", line, p.errorf("unterminated quoted string")
	}
	var b strings.Builder
	for p.pos < len(p.src) {
		d := p.src[p.pos]
		if d == ' ' || d == '\t' || d == '\r' || d == '\n' || d == ';' || d == '{' || d == '}' {
			break
		}
		if d == '\\' && p.pos+1 < len(p.src) && p.src[p.pos+1] != '\n' {
			b.WriteByte(p.src[p.pos+1])
			p.pos += 2
			continue
		}
		b.WriteByte(d)
		p.pos++
	}
	return tokWord, b.String(), line, nil
}

// block reads directives until '}' (closed) or the end of the text.
func (p *confParser) block(depth int) (ds []*directive, closed bool, err error) {
	if depth > maxConfDepth {
		return nil, false, p.errorf("blocks nested deeper than %d", maxConfDepth)
	}
	for {
		kind, word, line, err := p.next()
		if err != nil {
			return ds, false, err
		}
		switch kind {
		case tokEOF:
			if depth > 0 {
				return ds, false, p.errorf("unexpected end of file, expecting \"}\"")
			}
			return ds, false, nil
		case tokClose:
			return ds, true, nil // parseConf refuses a '}' at the top
		case tokSemi:
			continue // an empty directive: nginx refuses it, the facts do not need it
		case tokOpen:
			return ds, false, p.errorf("unexpected \"{\"")
		}
		d := &directive{name: word, file: p.file, line: line}
		for {
			kind, word, _, err := p.next()
			if err != nil {
				return ds, false, err
			}
			if kind == tokWord {
				d.args = append(d.args, word)
				continue
			}
			if kind == tokSemi {
				break
			}
			if kind == tokOpen {
				d.hasBlock = true
				var closed bool
				if d.block, closed, err = p.block(depth + 1); err != nil {
					return ds, false, err
				}
				if !closed {
					return ds, false, p.errorf("unexpected end of file, expecting \"}\"")
				}
				break
			}
			return ds, false, p.errorf("unexpected %q in directive %q", map[int]string{tokClose: "}", tokEOF: "end of file"}[kind], d.name)
		}
		ds = append(ds, d)
	}
}

// effectiveConf is the dump as nginx reads it: the main file with every
// include replaced by the directives of the dumped files it names.
type effectiveConf struct {
	top []*directive
}

// parseDump parses an nginx -T dump. includes are resolved against the
// dumped files only (what nginx read), relative paths against the main
// file's directory (nginx's configuration prefix).
func parseDump(dump string) (*effectiveConf, error) {
	files := splitDump(dump)
	if len(files) == 0 {
		return nil, fmt.Errorf("no %q line: not an nginx -T dump", strings.TrimSpace(dumpMarker))
	}
	parsed := map[string][]*directive{}
	var names []string
	for _, f := range files {
		if _, dup := parsed[f.path]; dup {
			continue // a file included twice is dumped once
		}
		ds, err := parseConf(f.path, f.text)
		if err != nil {
			return nil, err
		}
		parsed[f.path] = ds
		names = append(names, f.path)
	}
	slices.Sort(names)
	budget := maxConfDirectives
	prefix := path.Dir(files[0].path)
	var inline func(ds []*directive, depth int) ([]*directive, error)
	inline = func(ds []*directive, depth int) ([]*directive, error) {
		var out []*directive
		for _, d := range ds {
			if budget--; budget < 0 {
				return nil, fmt.Errorf("more than %d directives after includes", maxConfDirectives)
			}
			if d.name == "include" && !d.hasBlock && len(d.args) == 1 {
				if depth >= maxIncludeDepth {
					return nil, fmt.Errorf("%s:%d: includes nested deeper than %d", d.file, d.line, maxIncludeDepth)
				}
				pat := d.args[0]
				if !path.IsAbs(pat) {
					pat = path.Join(prefix, pat)
				}
				for _, n := range names {
					if ok, _ := filepath.Match(pat, n); ok {
						sub, err := inline(parsed[n], depth+1)
						if err != nil {
							return nil, err
						}
						out = append(out, sub...)
					}
				}
				continue
			}
			if d.hasBlock {
				c := *d
				var err error
				if c.block, err = inline(d.block, depth); err != nil {
					return nil, err
				}
				d = &c
			}
			out = append(out, d)
		}
		return out, nil
	}
	top, err := inline(parsed[files[0].path], 0)
	if err != nil {
		return nil, err
	}
	return &effectiveConf{top: top}, nil
}

// routeFor is what the configuration says about the route whose listener
// is addr (the server block that listens there, its catch-all location).
// serverName breaks a tie between servers on one address.
func (c *effectiveConf) routeFor(addr, serverName string) routeFacts {
	var rf routeFacts
	for _, http := range c.top {
		if http.name != "http" || !http.hasBlock {
			continue
		}
		// upstream blocks: their servers (port 80 when none is given, as
		// nginx has it), nil when one of them is not an address.
		upstreams := map[string][]string{}
		for _, d := range http.block {
			if d.name == "upstream" && d.hasBlock && len(d.args) == 1 {
				var servers []string
				for _, s := range d.block {
					if s.name == "server" && len(s.args) > 0 {
						hp, ok := hostPort(s.args[0], "80")
						if !ok {
							servers = nil
							break
						}
						servers = append(servers, hp)
					}
				}
				upstreams[d.args[0]] = servers
			}
		}
		var found *directive
		var listen *directive
		for _, srv := range http.block {
			if srv.name != "server" || !srv.hasBlock {
				continue
			}
			l := listenAt(srv, addr)
			if l == nil {
				continue
			}
			if found == nil || (serverNames(srv, serverName) && !serverNames(found, serverName)) {
				found, listen = srv, l
			}
		}
		if found == nil {
			continue
		}
		rf = routeFacts{Found: true, Source: fmt.Sprintf("%s:%d", listen.file, listen.line)}
		var loc *directive
		var other []string
		for _, d := range found.block {
			switch {
			case d.name == "location" && d.hasBlock && len(d.args) == 1 && d.args[0] == "/" && loc == nil:
				loc = d
			case d.hasBlock || nginxRouting[d.name]:
				other = append(other, directiveAt(d))
			}
		}
		if loc != nil {
			passes := 0
			for _, d := range loc.block {
				switch {
				case d.name == "proxy_pass" && !d.hasBlock:
					if passes++; passes > 1 {
						other = append(other, directiveAt(d))
					}
				case d.hasBlock || nginxRouting[d.name]:
					other = append(other, directiveAt(d))
				}
			}
		}
		if len(other) > 0 {
			if len(other) > 3 {
				other = append(other[:3], fmt.Sprintf("%d more", len(other)-3))
			}
			rf.Open = strings.Join(other, "; ") + ": the front's server block routes some requests another way than its one location / (harden renders nothing else), so which hop they take cannot be read"
		}
		if loc == nil {
			return rf
		}
		pass := lastDirective(loc.block, "proxy_pass")
		if pass == nil || len(pass.args) == 0 {
			return rf
		}
		rf.Source = fmt.Sprintf("%s:%d", pass.file, pass.line)
		scheme, rest, ok := strings.Cut(pass.args[0], "://")
		if !ok || !(strings.EqualFold(scheme, "http") || strings.EqualFold(scheme, "https")) {
			return rf
		}
		rf.UpstreamTLS = strings.EqualFold(scheme, "https")
		hostport, _, _ := strings.Cut(rest, "/")
		levels := [][]*directive{loc.block, found.block, http.block}
		port := "80"
		if rf.UpstreamTLS {
			port = "443"
		}
		if servers, ok := upstreams[hostport]; ok {
			rf.Upstream = strings.Join(servers, ",")
			rf.UpstreamName = hostport
		} else if hp, ok := hostPort(hostport, port); ok {
			rf.Upstream = hp
			rf.UpstreamName, _, _ = net.SplitHostPort(hp)
		}
		if v, ok := inherited(levels, "proxy_ssl_verify"); ok {
			rf.UpstreamVerify = v == "on"
		}
		if v, ok := inherited(levels, "proxy_ssl_server_name"); ok {
			rf.UpstreamSNI = v == "on"
		}
		if v, ok := inherited(levels, "proxy_ssl_trusted_certificate"); ok {
			rf.UpstreamCAFile = v
		}
		if v, ok := inherited(levels, "proxy_ssl_name"); ok {
			rf.UpstreamName = v
			if h, _, err := net.SplitHostPort(v); err == nil {
				rf.UpstreamName = h
			}
		}
		return rf
	}
	return rf
}

// nginxRouting are the directives of a server block or its location /
// that send some requests elsewhere than the location's proxy_pass (or
// answer them without it): beside harden's one `location / { proxy_pass
// … }` they make the route's facts open. Any block (another location —
// prefix, regex, exact, named, nested —, if, limit_except) does too.
var nginxRouting = map[string]bool{"location": true, "if": true, "return": true, "rewrite": true, "error_page": true, "try_files": true,
	"proxy_pass": true, "grpc_pass": true, "fastcgi_pass": true, "uwsgi_pass": true, "scgi_pass": true, "memcached_pass": true}

// directiveAt names a directive and where it is ("location ~ ^/api at
// /etc/nginx/x.conf:7").
func directiveAt(d *directive) string {
	s := d.name
	if len(d.args) > 0 {
		s += " " + truncate(strings.Join(d.args, " "), 60)
	}
	return fmt.Sprintf("%s at %s:%d", s, d.file, d.line)
}

// hostPort is s as host:port (defPort when s has none); false when s is
// not one address (a variable, blanks, quotes, a list): unknown.
func hostPort(s, defPort string) (string, bool) {
	if s == "" || strings.ContainsAny(s, "$,; \t\"'\\/") {
		return "", false
	}
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s, true
	}
	h := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if h == "" || strings.ContainsAny(h, "[]") {
		return "", false
	}
	return net.JoinHostPort(h, defPort), true
}

// inherited is a directive's first argument at the innermost level that
// sets it (nginx's merge of location, server and http).
func inherited(levels [][]*directive, name string) (string, bool) {
	for _, ds := range levels {
		if d := lastDirective(ds, name); d != nil && len(d.args) > 0 {
			return d.args[0], true
		}
	}
	return "", false
}

func lastDirective(ds []*directive, name string) *directive {
	var out *directive
	for _, d := range ds {
		if d.name == name && !d.hasBlock {
			out = d
		}
	}
	return out
}

// listenAt is srv's listen directive for addr: the same port and the same
// host, or a wildcard host ("8443", "*:8443", "0.0.0.0:8443", "[::]:…").
func listenAt(srv *directive, addr string) *directive {
	for _, d := range srv.block {
		if d.name != "listen" || d.hasBlock || len(d.args) == 0 {
			continue
		}
		l := d.args[0]
		if _, err := strconv.Atoi(l); err == nil {
			l = "*:" + l
		}
		lh, lp, err := net.SplitHostPort(l)
		if err != nil {
			continue
		}
		_, ap, err := net.SplitHostPort(addr)
		if err != nil || ap != lp {
			continue
		}
		if lh == "*" || lh == "0.0.0.0" || lh == "::" || sameAddress(l, addr) {
			return d
		}
	}
	return nil
}

// serverNames: srv names name in server_name.
func serverNames(srv *directive, name string) bool {
	for _, d := range srv.block {
		if d.name == "server_name" && slices.Contains(d.args, name) {
			return true
		}
	}
	return false
}

// nginxRoutes parses a dump into the facts of the front and canary routes.
func nginxRoutes(dump, front, frontName, canary string) (routeFacts, error) {
	c, err := parseDump(dump)
	if err != nil {
		return routeFacts{}, err
	}
	rf := c.routeFor(front, frontName)
	if cf := c.routeFor(canary, frontName); cf.Found {
		rf.Canary = &cf
	}
	return rf, nil
}
