package main

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// HAProxy's configuration files are untrusted text (an operator's files):
// they are parsed into facts about two routes, never executed, and only
// what the text says is reported. Where the text leaves a fact open — a
// line under a .if block, a dynamic SNI or backend name, a server keyword
// this parser does not know — routes answers an error (inconclusive), not
// a guess: the facts can fail a check, never pass one.
//
// What is followed, as HAProxy 2.6 reads it (configuration.txt §2, §4, §5):
// sections (a section ends at the next section keyword or the end of its
// file); words split on blanks, with '#' comments, "…" and '…' quoting and
// backslash escapes; a frontend or listen whose bind lines name the front;
// its route (the first unconditional use_backend, else default_backend,
// also from its defaults section; a listen without either is its own
// backend); the backend's server lines, over its default-server lines and
// those of its defaults section (the last defaults before it, or the one
// "from" names); global ssl-server-verify and ca-base.

// hapLine is one configuration line split into words.
type hapLine struct {
	file  string
	line  int
	words []string
	// cond: the line is inside a .if block (HAProxy 2.4+ conditions are
	// not evaluated here).
	cond bool
}

func (l hapLine) at() string { return fmt.Sprintf("%s:%d", l.file, l.line) }

// hapSection is one section and its lines.
type hapSection struct {
	kind, name, from string
	head             hapLine
	lines            []hapLine
	// defaults is the defaults section it inherits from (nil: none).
	defaults *hapSection
}

// hapConfig is every file HAProxy loads, in order.
type hapConfig struct {
	global   []hapLine
	sections []*hapSection
}

// hapSectionKinds are HAProxy 2.6's section keywords.
var hapSectionKinds = map[string]bool{"global": true, "defaults": true, "frontend": true, "backend": true, "listen": true, "peers": true,
	"resolvers": true, "userlist": true, "mailers": true, "program": true, "http-errors": true, "ring": true, "cache": true, "fcgi-app": true}

// maxHAProxyWords bounds one line (HAProxy's MAX_LINE_ARGS is 64).
const maxHAProxyWords = 64

// splitHAProxyLine splits a line into words as HAProxy's parse_line does:
// blanks separate words, '#' starts a comment, "…" quotes (escapes
// apply), '…' quotes literally, a backslash escapes the next character
// (\xHH a byte). Environment variables ($VAR, ${VAR}) are left as written:
// the process's environment is not known here.
func splitHAProxyLine(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
			continue
		case c == '\\':
			inWord = true
			if i+1 >= len(s) {
				return nil, errors.New("a backslash ends the line")
			}
			i++
			if s[i] == 'x' && i+2 < len(s) {
				if b, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
					cur.WriteByte(byte(b))
					i += 2
					continue
				}
			}
			cur.WriteByte(s[i])
			continue
		case quote == '"':
			if c == '"' {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
			continue
		case c == '"' || c == '\'':
			quote, inWord = c, true
			continue
		case c == '#':
			i = len(s)
			continue
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
			continue
		}
		cur.WriteByte(c)
		inWord = true
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	if inWord {
		words = append(words, cur.String())
	}
	if len(words) > maxHAProxyWords {
		return nil, fmt.Errorf("more than %d words", maxHAProxyWords)
	}
	return words, nil
}

// hapFile is one configuration file's name and text.
type hapFile struct {
	path, text string
}

// parseHAProxy reads the files in the order HAProxy loads them.
func parseHAProxy(files []hapFile) (*hapConfig, error) {
	cfg := &hapConfig{}
	named := map[string]*hapSection{}
	var lastDefaults *hapSection
	for _, f := range files {
		var cur *hapSection
		depth := 0
		n := 0
		for raw := range strings.Lines(f.text) {
			n++
			words, err := splitHAProxyLine(raw)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", f.path, n, err)
			}
			if len(words) == 0 {
				continue
			}
			l := hapLine{file: f.path, line: n, words: words, cond: depth > 0}
			switch words[0] {
			case ".if":
				depth++
				continue
			case ".endif":
				if depth > 0 {
					depth--
				}
				continue
			case ".elif", ".else", ".notice", ".warning", ".alert", ".diag":
				continue
			}
			if hapSectionKinds[words[0]] {
				// <kind> [<name>] [from <defaults>]
				cur = &hapSection{kind: words[0], head: l}
				if len(words) > 1 && words[1] != "from" {
					cur.name = words[1]
				}
				if i := indexWord(words, "from"); i > 0 && i+1 < len(words) {
					cur.from = words[i+1]
				}
				switch cur.kind {
				case "global":
				case "defaults":
					// A defaults section starts afresh, or from the one
					// it names.
					if cur.from != "" {
						cur.defaults = named[cur.from]
					}
					lastDefaults = cur
					if cur.name != "" {
						named[cur.name] = cur
					}
				default:
					cur.defaults = lastDefaults
					if cur.from != "" {
						cur.defaults = named[cur.from]
					}
				}
				cfg.sections = append(cfg.sections, cur)
				continue
			}
			if cur == nil {
				continue // outside any section: HAProxy refuses it (haproxy -c says where)
			}
			if cur.kind == "global" {
				cfg.global = append(cfg.global, l)
			}
			cur.lines = append(cur.lines, l)
		}
	}
	return cfg, nil
}

// tlsClientsOnly: a use_backend condition that holds exactly for clients
// whose first bytes are a TLS ClientHello.
func tlsClientsOnly(cond []string) bool {
	return slices.Equal(cond, []string{"if", "{", "req.ssl_hello_type", "1", "}"}) || slices.Equal(cond, []string{"if", "{", "req_ssl_hello_type", "1", "}"})
}

func indexWord(words []string, w string) int {
	for i, x := range words {
		if x == w {
			return i
		}
	}
	return -1
}

// hapServerKeywords are the server/default-server keywords of HAProxy
// 2.6 (configuration.txt §5.2) with the number of arguments each takes;
// those harden reads are handled before this table is consulted.
var hapServerKeywords = map[string]int{
	"agent-check": 0, "allow-0rtt": 0, "backup": 0, "check": 0, "check-send-proxy": 0, "check-ssl": 0, "check-via-socks4": 0,
	"disabled": 0, "enabled": 0, "force-sslv3": 0, "force-tlsv10": 0, "force-tlsv11": 0, "force-tlsv12": 0, "force-tlsv13": 0,
	"no-agent-check": 0, "no-backup": 0, "no-check": 0, "no-check-ssl": 0, "no-send-proxy": 0, "no-send-proxy-v2": 0,
	"no-send-proxy-v2-ssl": 0, "no-send-proxy-v2-ssl-cn": 0, "no-ssl-reuse": 0, "no-sslv3": 0, "no-tls-tickets": 0,
	"no-tlsv10": 0, "no-tlsv11": 0, "no-tlsv12": 0, "no-tlsv13": 0, "no-tfo": 0, "non-stick": 0, "send-proxy": 0,
	"send-proxy-v2": 0, "send-proxy-v2-ssl": 0, "send-proxy-v2-ssl-cn": 0, "ssl-reuse": 0, "stick": 0, "tfo": 0, "tls-tickets": 0,
	"addr": 1, "agent-addr": 1, "agent-inter": 1, "agent-port": 1, "agent-send": 1, "alpn": 1, "check-alpn": 1, "check-proto": 1,
	"check-sni": 1, "ciphers": 1, "ciphersuites": 1, "cookie": 1, "crl-file": 1, "crt": 1, "downinter": 1, "error-limit": 1,
	"fall": 1, "fastinter": 1, "id": 1, "init-addr": 1, "inter": 1, "log-proto": 1, "max-reuse": 1, "maxconn": 1, "maxqueue": 1,
	"minconn": 1, "namespace": 1, "npn": 1, "observe": 1, "on-error": 1, "on-marked-down": 1, "on-marked-up": 1,
	"pool-low-conn": 1, "pool-max-conn": 1, "pool-purge-delay": 1, "port": 1, "proto": 1, "proxy-v2-options": 1, "redir": 1,
	"resolve-net": 1, "resolve-opts": 1, "resolve-prefer": 1, "resolvers": 1, "rise": 1, "shard": 1, "slowstart": 1,
	"socks4": 1, "ssl-max-ver": 1, "ssl-min-ver": 1, "tcp-ut": 1, "track": 1, "weight": 1, "ws": 1,
}

// hapServerTLS is a server's TLS settings as its lines set them; nil
// pointers were not set (inherited or HAProxy's default).
type hapServerTLS struct {
	ssl                        *bool
	verify, caFile, sni, vhost *string
	// unknown names a keyword the table does not know: the words after
	// it cannot be read with certainty.
	unknown string
}

func strp(s string) *string { return &s }
func boolp(b bool) *bool    { return &b }

// apply reads the options of a server or default-server line (opts: the
// words after the address, or after default-server) over s.
func (s *hapServerTLS) apply(opts []string) {
	for i := 0; i < len(opts); i++ {
		w := opts[i]
		arg := func() *string {
			if i+1 < len(opts) {
				i++
				return strp(opts[i])
			}
			return nil
		}
		switch w {
		case "ssl":
			s.ssl = boolp(true)
		case "no-ssl":
			s.ssl = boolp(false)
		case "verify":
			s.verify = arg()
		case "ca-file":
			s.caFile = arg()
		case "sni":
			s.sni = arg()
		case "verifyhost":
			s.vhost = arg()
		case "no-verifyhost":
			s.vhost = strp("")
		case "source":
			// source <addr> [usesrc <addr>] [interface <name>]
			i++
			for i+2 < len(opts) && (opts[i+1] == "usesrc" || opts[i+1] == "interface") {
				i += 2
			}
		default:
			n, ok := hapServerKeywords[w]
			if !ok {
				if s.unknown == "" {
					s.unknown = w
				}
				return
			}
			i += n
		}
	}
}

// over returns s with the settings of top applied over it.
func (s hapServerTLS) over(top hapServerTLS) hapServerTLS {
	if top.ssl != nil {
		s.ssl = top.ssl
	}
	for _, p := range []struct{ dst, src **string }{{&s.verify, &top.verify}, {&s.caFile, &top.caFile}, {&s.sni, &top.sni}, {&s.vhost, &top.vhost}} {
		if *p.src != nil {
			*p.dst = *p.src
		}
	}
	if s.unknown == "" {
		s.unknown = top.unknown
	}
	return s
}

// hapAddress normalises a bind or server address to host:port ("" when it
// is not an IP/host address: a UNIX socket, an fd@, a variable). Port
// ranges keep their first port; a missing host is 0.0.0.0.
func hapAddress(a string) string {
	for _, p := range []string{"ipv4@", "ipv6@", "tcp@", "tcp4@", "tcp6@"} {
		a = strings.TrimPrefix(a, p)
	}
	if a == "" || strings.Contains(a, "@") || strings.HasPrefix(a, "/") || strings.Contains(a, "$") {
		return ""
	}
	i := strings.LastIndexByte(a, ':')
	if i < 0 {
		return ""
	}
	host, port := a[:i], a[i+1:]
	if j := strings.IndexByte(port, '-'); j > 0 {
		port = port[:j]
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return ""
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" || host == "*" {
		host = "0.0.0.0"
	}
	return net.JoinHostPort(host, port)
}

// hapRoute is one proxy section that binds the address asked for.
type hapRoute struct {
	facts routeFacts
	// open says why a fact is left open ("" when none is).
	open string
}

// haproxyRoutes is what the configuration says about the routes of the
// front and of the canary listener. dashDV: HAProxy runs with -dV (server
// verification off by default).
func haproxyRoutes(cfg *hapConfig, front, canary string, dashDV bool) (routeFacts, error) {
	main, err := cfg.route(front, dashDV)
	if err != nil {
		return routeFacts{}, err
	}
	if main.Found {
		c, err := cfg.route(canary, dashDV)
		if err != nil {
			return routeFacts{}, fmt.Errorf("the canary route: %w", err)
		}
		if c.Found {
			main.Canary = &c
		}
	}
	return main, nil
}

// route finds every listener of addr (HAProxy spreads connections between
// two listeners of one address: the worst route is the one reported).
func (cfg *hapConfig) route(addr string, dashDV bool) (routeFacts, error) {
	var found []hapRoute
	for _, b := range cfg.listeners(addr) {
		r := cfg.follow(b.sec, dashDV, 0)
		r.facts.Found = true
		r.facts.Source = b.line.at() + " (" + r.facts.Source + ")"
		if b.line.cond {
			r.open = b.line.at() + ": the listener is under a .if condition"
		}
		if r.open != "" {
			return routeFacts{}, errors.New(r.open)
		}
		found = append(found, r)
	}
	if len(found) == 0 {
		return routeFacts{}, nil
	}
	worst := found[0]
	for _, r := range found[1:] {
		if rank(r.facts) < rank(worst.facts) {
			worst = r
		}
	}
	if len(found) > 1 {
		worst.facts.Source += fmt.Sprintf(" (one of %d listeners of %s)", len(found), addr)
	}
	return worst.facts, nil
}

// hapBind is one bind line and its section.
type hapBind struct {
	sec  *hapSection
	line hapLine
}

// listeners are the bind lines of frontend and listen sections that
// listen on addr: a host:port (the same listener as far as the text says,
// sameAddress), or a socket named as the bind names it (abns@…, unix@…).
func (cfg *hapConfig) listeners(addr string) []hapBind {
	ip := hapAddress(addr)
	var out []hapBind
	for _, s := range cfg.sections {
		if s.kind != "frontend" && s.kind != "listen" {
			continue
		}
		for _, l := range s.lines {
			if l.words[0] != "bind" || len(l.words) < 2 {
				continue
			}
			for _, a := range strings.Split(l.words[1], ",") {
				h := hapAddress(a)
				if (ip != "" && h != "" && sameAddress(h, ip)) || (ip == "" && a == addr) {
					out = append(out, hapBind{s, l})
					break
				}
			}
		}
	}
	return out
}

// maxHops bounds how many proxies of this HAProxy a route may pass
// through (a server line pointing at another of its own listeners).
const maxHops = 4

// rank orders routes from worst (0: plaintext hop) to best.
func rank(f routeFacts) int {
	switch {
	case !f.UpstreamTLS:
		return 0
	case !f.UpstreamVerify:
		return 1
	case f.UpstreamCAFile == "" || f.UpstreamName == "":
		return 2
	}
	return 3
}

// follow reads the route of a frontend or listen section to its servers.
func (cfg *hapConfig) follow(s *hapSection, dashDV bool, hops int) hapRoute {
	// use_backend rules come before default_backend whatever their order
	// in the file; the first without a condition takes every request.
	// Conditional ones route some requests elsewhere: the catch-all is the
	// route to the backend (as nginx's location /) — except the condition
	// "the client sent a TLS ClientHello" (req.ssl_hello_type 1), which
	// takes every TLS client: the route harden is asked about.
	//
	// Any other conditional use_backend leaves the route open: the
	// requests it matches take another hop, which the catch-all says
	// nothing about (harden renders none).
	var use, def *hapLine
	var others []*hapLine
	pick := func(sec *hapSection) {
		for i, l := range sec.lines {
			switch {
			case l.words[0] == "use_backend" && len(l.words) >= 2 && (len(l.words) == 2 || tlsClientsOnly(l.words[2:])) && use == nil:
				use = &sec.lines[i]
			case l.words[0] == "use_backend" && len(l.words) > 2 && use == nil: // before the catch-all: it takes some requests
				others = append(others, &sec.lines[i])
			case l.words[0] == "default_backend" && len(l.words) >= 2 && def == nil:
				def = &sec.lines[i]
			}
		}
	}
	pick(s)
	if def == nil && s.defaults != nil {
		pick(s.defaults)
	}
	backend, open := "", ""
	for _, l := range []*hapLine{def, use} {
		if l != nil {
			backend = l.words[1]
			if l.cond {
				open = l.at() + ": " + l.words[0] + " is under a .if condition"
			}
		}
	}
	for _, o := range others {
		if o.words[1] != backend && open == "" {
			open = o.at() + ": use_backend " + o.words[1] + " " + truncate(strings.Join(o.words[2:], " "), 60) + " sends some requests elsewhere than the route's backend " + backend + ": which hop they take cannot be read"
		}
	}
	var be *hapSection
	switch {
	case backend == "" && s.kind == "listen":
		be = s
	case backend == "":
		return hapRoute{open: s.head.at() + ": " + s.kind + " " + s.name + " names no backend (no default_backend)"}
	case strings.ContainsAny(backend, "%[]"):
		return hapRoute{open: s.head.at() + ": the backend is chosen at run time (" + backend + ")"}
	default:
		for _, x := range cfg.sections {
			if (x.kind == "backend" || x.kind == "listen") && x.name == backend {
				be = x
			}
		}
		if be == nil {
			return hapRoute{open: s.head.at() + ": backend " + backend + " is not defined"}
		}
	}
	r := cfg.servers(be, dashDV, hops)
	if r.open == "" {
		r.open = open
	}
	return r
}

// servers judges the server lines of a backend (or listen) section: the
// first server with the weakest hop is the one reported.
func (cfg *hapConfig) servers(be *hapSection, dashDV bool, hops int) hapRoute {
	// default-server of the defaults chain, the root first.
	var chain []*hapSection
	for d := be.defaults; d != nil && len(chain) < 16; d = d.defaults {
		chain = append([]*hapSection{d}, chain...)
	}
	var base hapServerTLS
	for _, d := range chain {
		for _, l := range d.lines {
			if l.words[0] == "default-server" {
				var x hapServerTLS
				x.apply(l.words[1:])
				base = base.over(x)
			}
		}
	}
	globalVerify, caBase := "", ""
	for _, l := range cfg.global {
		switch {
		case l.words[0] == "ssl-server-verify" && len(l.words) > 1:
			globalVerify = l.words[1]
		case l.words[0] == "ca-base" && len(l.words) > 1:
			caBase = l.words[1]
		}
	}
	var out []hapRoute
	open := ""
	for _, l := range be.lines {
		switch l.words[0] {
		case "default-server":
			var d hapServerTLS
			d.apply(l.words[1:])
			base = base.over(d)
			if l.cond {
				open = l.at() + ": default-server is under a .if condition"
			}
		case "server", "server-template":
			addrAt := 2
			if l.words[0] == "server-template" {
				addrAt = 3
			}
			if len(l.words) <= addrAt {
				continue
			}
			// A server that is one of this HAProxy's own listeners: the
			// route goes on from that listener.
			if local := cfg.listeners(l.words[addrAt]); len(local) > 0 {
				if hops >= maxHops {
					out = append(out, hapRoute{open: l.at() + fmt.Sprintf(": the route passes through more than %d of HAProxy's own listeners", maxHops)})
					continue
				}
				r := cfg.follow(local[0].sec, dashDV, hops+1)
				r.facts.Source = fmt.Sprintf("server at %s to %s, then %s", l.at(), local[0].line.at(), r.facts.Source)
				if l.cond || local[0].line.cond {
					r.open = l.at() + ": the hop is under a .if condition"
				}
				out = append(out, r)
				continue
			}
			var own hapServerTLS
			own.apply(l.words[addrAt+1:])
			eff := base.over(own)
			r := hapRoute{facts: routeFacts{Upstream: hapAddress(l.words[addrAt])}}
			r.facts.UpstreamTLS = eff.ssl != nil && *eff.ssl
			verify := "required"
			switch {
			case eff.verify != nil:
				verify = *eff.verify
			case globalVerify != "":
				verify = globalVerify
			case dashDV:
				verify = "none"
			}
			r.facts.UpstreamVerify = r.facts.UpstreamTLS && verify == "required"
			if eff.caFile != nil {
				ca := *eff.caFile
				if caBase != "" && !filepath.IsAbs(ca) && !strings.HasPrefix(ca, "@") {
					ca = filepath.Join(caBase, ca)
				}
				r.facts.UpstreamCAFile = ca
			}
			// HAProxy checks the certificate against the SNI it sent, else
			// against verifyhost (ssl_sock_srv_verifycbk).
			switch {
			case eff.sni != nil:
				r.facts.UpstreamSNI = true
				if name, ok := strings.CutPrefix(*eff.sni, "str("); ok && strings.HasSuffix(name, ")") && !strings.ContainsAny(name[:len(name)-1], "(),") {
					r.facts.UpstreamName = name[:len(name)-1]
				} else {
					r.open = l.at() + ": the SNI is computed at run time (" + *eff.sni + ")"
				}
			case eff.vhost != nil:
				r.facts.UpstreamName = *eff.vhost
			}
			switch {
			case r.facts.Upstream == "":
				r.open = l.at() + ": the server address " + l.words[addrAt] + " is not a host:port"
			case eff.unknown != "":
				r.open = l.at() + ": server keyword " + eff.unknown + " is not one of HAProxy 2.6's known to harden"
			case verify != "none" && verify != "required":
				r.open = l.at() + ": verify " + verify
			case l.cond:
				r.open = l.at() + ": the server is under a .if condition"
			}
			r.facts.Source = "server at " + l.at()
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return hapRoute{open: be.head.at() + ": " + be.kind + " " + be.name + " has no server"}
	}
	worst := out[0]
	for _, r := range out[1:] {
		if rank(r.facts) < rank(worst.facts) {
			worst = r
		}
	}
	for _, r := range out {
		if r.open != "" {
			return r
		}
	}
	if open != "" {
		return hapRoute{open: open}
	}
	if len(out) > 1 {
		worst.facts.Source += fmt.Sprintf(", the weakest of %d servers", len(out))
	}
	return worst
}
