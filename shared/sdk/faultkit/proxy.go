// Package faultkit is the fault-injection kit for plugin authors: a TCP proxy
// to put in front of any real server that, for the connections a rule
// selects (by ClientHello version or suites, by connection index, by time),
// answers bytes that are not the protocol, resets, stalls, closes without an
// answer, truncates the server's first record, or delays it. The assertion
// NeverPasses runs a plugin's verify directly and through each fault and
// fails when a check that does not pass directly passes through a fault —
// a verifier must tell "refused" from "could not tell".
//
// Only loopback listeners are made; the proxy forwards to the upstream it is
// given (a real server testenv started).
package faultkit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Fault is what the proxy does to a selected connection.
type Fault int

const (
	// Pass forwards the connection untouched.
	Pass Fault = iota
	// Garbage answers bytes that are neither TLS nor the application
	// protocol, then closes.
	Garbage
	// Reset closes with a TCP RST (SO_LINGER 0) instead of answering.
	Reset
	// Stall keeps the connection open and never answers.
	Stall
	// Close closes cleanly (FIN) without an answer, like a server at its
	// connection limit.
	Close
	// Truncate forwards the request, then the server's first answer cut
	// in half (inside its first TLS record when it is TLS), and closes.
	Truncate
	// Delay holds the server's answer back for Rule.Delay, then forwards
	// everything.
	Delay
	// HangUp forwards the request and the server's whole first answer
	// (a ServerHello flight, a CertificateRequest), then closes: whatever
	// comes after — the rest of a handshake, its verdict — never arrives.
	HangUp
	// Corrupt forwards everything but flips one bit in the body of the
	// client's first TLS application_data record after Rule.SkipRecords:
	// under TLS 1.2 with none skipped, its first request inside the
	// established session (under TLS 1.3 that record is its encrypted
	// Finished, so the handshake fails; skip it). The server fails the record's MAC
	// and answers with an alert (bad_record_mac) that is no verdict on
	// anything. Connections without such a record pass untouched.
	Corrupt
)

var faultNames = []string{"pass", "garbage", "reset", "stall", "close", "truncate", "delay", "hangup", "corrupt"}

func (f Fault) String() string {
	if int(f) < len(faultNames) {
		return faultNames[f]
	}
	return fmt.Sprintf("fault(%d)", int(f))
}

// Faults are the faults that must never turn a verdict into a pass (Delay
// and Pass excluded: a delay within the timeout should change nothing).
var Faults = []Fault{Garbage, Reset, Stall, Close, Truncate}

// Hello is what the proxy read of a TLS ClientHello (after PostgreSQL's
// SSLRequest, when the client sent one).
type Hello struct {
	// Version is the highest version offered (supported_versions for TLS
	// 1.3, else the legacy version): 0x0300 SSLv3 … 0x0304 TLS 1.3.
	Version uint16
	Suites  []uint16
	// Groups offered (supported_groups).
	Groups []uint16
}

// Conn describes a connection when rules are matched.
type Conn struct {
	// Index counts accepted connections from 0.
	Index int
	// Since is the time since the proxy started.
	Since time.Duration
	// Hello is the ClientHello, nil when the client's first bytes were not
	// TLS (a plaintext StartupMessage, ApiVersions, HTTP request).
	Hello *Hello
	// First holds the client's first bytes (after an SSLRequest).
	First []byte
}

// Rule applies Fault to the connections Match selects (nil: every one).
// The first matching rule wins.
type Rule struct {
	Fault Fault
	Match func(Conn) bool
	// Delay for the Delay fault.
	Delay time.Duration
	// SkipRecords: the client application_data records Corrupt forwards
	// untouched first (1 under TLS 1.3 reaches the first request after
	// the client's Finished when it sends no certificate).
	SkipRecords int
	// Name describes the rule in test output.
	Name string
}

func (r Rule) String() string {
	if r.Name != "" {
		return r.Fault.String() + " " + r.Name
	}
	return r.Fault.String()
}

// HelloVersions selects TLS connections whose ClientHello offers at most
// one of the given versions as its highest.
func HelloVersions(versions ...uint16) func(Conn) bool {
	return func(c Conn) bool {
		if c.Hello == nil {
			return false
		}
		for _, v := range versions {
			if c.Hello.Version == v {
				return true
			}
		}
		return false
	}
}

// HelloSuite selects ClientHellos that offer suite id.
func HelloSuite(id uint16) func(Conn) bool {
	return func(c Conn) bool {
		if c.Hello == nil {
			return false
		}
		for _, s := range c.Hello.Suites {
			if s == id {
				return true
			}
		}
		return false
	}
}

// LaterHellos selects the ClientHellos of version v after the first one the
// proxy saw: a fault in the middle of an enumeration, after the server
// accepted the first offer.
func LaterHellos(v uint16) func(Conn) bool {
	var seen atomic.Bool
	return func(c Conn) bool {
		if c.Hello == nil || c.Hello.Version != v {
			return false
		}
		return seen.Swap(true)
	}
}

// Plaintext selects connections whose first bytes are not TLS.
func Plaintext(c Conn) bool { return c.Hello == nil }

// TLS selects connections that start a TLS handshake.
func TLS(c Conn) bool { return c.Hello != nil }

// Every selects every n-th connection (index % n == k).
func Every(n, k int) func(Conn) bool { return func(c Conn) bool { return c.Index%n == k } }

// After selects connections accepted later than d after the start.
func After(d time.Duration) func(Conn) bool { return func(c Conn) bool { return c.Since >= d } }

// Proxy is a running fault proxy.
type Proxy struct {
	// Addr is the proxy's loopback host:port; point the verifier here.
	Addr     string
	upstream string
	rules    []Rule
	ln       net.Listener
	start    time.Time
	index    atomic.Int64
	faulted  atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]bool
	closed   chan struct{}
	once     sync.Once
	done     bool
}

// Start listens on a free loopback port and forwards to upstream, applying
// rules. Close it when done.
func Start(upstream string, rules ...Rule) (*Proxy, error) {
	host, _, err := net.SplitHostPort(upstream)
	if err != nil {
		return nil, err
	}
	listen := "127.0.0.1:0"
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		listen = "[::1]:0"
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	p := &Proxy{Addr: ln.Addr().String(), upstream: upstream, rules: rules, ln: ln, start: time.Now(),
		conns: map[net.Conn]bool{}, closed: make(chan struct{})}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Faulted is how many connections a fault (not Pass) was applied to.
func (p *Proxy) Faulted() int { return int(p.faulted.Load()) }

// Connections is how many connections the proxy accepted.
func (p *Proxy) Connections() int { return int(p.index.Load()) }

// Close stops the proxy and every connection through it.
func (p *Proxy) Close() error {
	var err error
	p.once.Do(func() {
		close(p.closed)
		err = p.ln.Close()
		p.mu.Lock()
		p.done = true
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return err
}

// track registers a connection for Close; after Close it closes c and
// reports false.
func (p *Proxy) track(c net.Conn, on bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on && p.done {
		c.Close()
		return false
	}
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
	return true
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		info := Conn{Index: int(p.index.Add(1) - 1), Since: time.Since(p.start)}
		if !p.track(c, true) {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.track(c, false)
			defer c.Close()
			p.handle(c, info)
		}()
	}
}

// readFirst reads the client's first message: PostgreSQL's SSLRequest is
// forwarded and answered through upstream first, then the next bytes are
// read. It returns what was read after any SSLRequest.
func (p *Proxy) readFirst(c, up net.Conn) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 8)
	n, err := io.ReadAtLeast(c, buf, 1)
	if err != nil {
		return nil, err
	}
	first := buf[:n]
	if n < 8 && first[0] == 0 {
		rest := make([]byte, 8-n)
		m, _ := io.ReadFull(c, rest)
		first = append(first, rest[:m]...)
	}
	if len(first) == 8 && binary.BigEndian.Uint32(first) == 8 && binary.BigEndian.Uint32(first[4:]) == 80877103 {
		// SSLRequest: let the server answer it, then read the hello.
		if _, err := up.Write(first); err != nil {
			return nil, err
		}
		ans := make([]byte, 1)
		if _, err := io.ReadFull(up, ans); err != nil {
			return nil, err
		}
		if _, err := c.Write(ans); err != nil {
			return nil, err
		}
		if ans[0] != 'S' {
			return nil, errors.New("server declined TLS")
		}
		first = nil
	}
	return readRecord(c, first)
}

// readRecord completes a TLS record when the bytes start one (so the hello
// can be parsed); otherwise it returns what was read.
func readRecord(c net.Conn, have []byte) ([]byte, error) {
	if len(have) == 0 {
		buf := make([]byte, 4096)
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		have = buf[:n]
	}
	if len(have) >= 1 && have[0] == 22 {
		for len(have) < 5 {
			b := make([]byte, 5-len(have))
			n, err := c.Read(b)
			if err != nil {
				return have, nil
			}
			have = append(have, b[:n]...)
		}
		need := 5 + int(binary.BigEndian.Uint16(have[3:5]))
		for len(have) < need {
			b := make([]byte, need-len(have))
			n, err := c.Read(b)
			if err != nil {
				return have, nil
			}
			have = append(have, b[:n]...)
		}
	}
	return have, nil
}

// parseHello reads the offered version and suites of a ClientHello record.
func parseHello(rec []byte) *Hello {
	if len(rec) < 5+4+2+32+1 || rec[0] != 22 || rec[5] != 1 {
		return nil
	}
	b := rec[9:]
	h := &Hello{Version: binary.BigEndian.Uint16(b)}
	b = b[34:]
	if len(b) < 1 || len(b) < 1+int(b[0])+2 {
		return h
	}
	b = b[1+int(b[0]):]
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if n > len(b) {
		return h
	}
	for i := 0; i+1 < n; i += 2 {
		h.Suites = append(h.Suites, binary.BigEndian.Uint16(b[i:]))
	}
	b = b[n:]
	if len(b) < 1 || len(b) < 1+int(b[0])+2 {
		return h
	}
	b = b[1+int(b[0]):]
	el := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if el > len(b) {
		return h
	}
	b = b[:el]
	for len(b) >= 4 {
		typ, l := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if 4+l > len(b) {
			break
		}
		if typ == 0x000A && l >= 2 { // supported_groups
			for i := 2; i+1 < l && i < 2+int(binary.BigEndian.Uint16(b[4:])); i += 2 {
				h.Groups = append(h.Groups, binary.BigEndian.Uint16(b[4+i:]))
			}
		}
		if typ == 0x002B && l >= 3 { // supported_versions: take the highest
			for i := 1; i+1 < 1+int(b[4]) && 4+i+1 < 4+l; i += 2 {
				if v := binary.BigEndian.Uint16(b[4+i:]); v > h.Version && v <= 0x0304 {
					h.Version = v
				}
			}
		}
		b = b[4+l:]
	}
	return h
}

func (p *Proxy) handle(c net.Conn, info Conn) {
	up, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
	if err != nil {
		return
	}
	if !p.track(up, true) {
		return
	}
	defer p.track(up, false)
	defer up.Close()
	first, err := p.readFirst(c, up)
	if err != nil {
		return
	}
	info.First = first
	info.Hello = parseHello(first)
	rule := Rule{Fault: Pass}
	for _, r := range p.rules {
		if r.Match == nil || r.Match(info) {
			rule = r
			break
		}
	}
	if rule.Fault != Pass {
		p.faulted.Add(1)
	}
	switch rule.Fault {
	case Garbage:
		c.Write([]byte("\x00\x00garbage from harden faultkit\r\n\x7f\xff"))
		finish(c)
		return
	case Reset:
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		return
	case Stall:
		select {
		case <-p.closed:
		case <-drain(c):
		}
		return
	case Close:
		finish(c)
		return
	case HangUp:
		if buf, ok := firstAnswer(c, up, first); ok && len(buf) > 0 {
			c.Write(buf)
		}
		finish(c)
		return
	case Truncate:
		buf, ok := firstAnswer(c, up, first)
		if !ok {
			return
		}
		n := len(buf)
		cut := n / 2
		if n >= 5 && buf[0] >= 20 && buf[0] <= 23 && buf[1] == 3 {
			// Cut inside the first TLS record: half its body.
			cut = 5 + min(int(binary.BigEndian.Uint16(buf[3:5])), n-5)/2
		}
		if cut > 0 {
			c.Write(buf[:cut])
		}
		finish(c)
		return
	}
	if _, err := up.Write(first); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() {
		if rule.Fault == Corrupt {
			corruptAppData(up, c, rule.SkipRecords)
		} else {
			io.Copy(up, c)
		}
		if tc, ok := up.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}()
	go func() {
		if rule.Fault == Delay {
			select {
			case <-time.After(rule.Delay):
			case <-p.closed:
			}
		}
		io.Copy(c, up)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}()
	<-done
	<-done
}

// firstAnswer forwards the client's first bytes (and the rest of what it
// sends) to upstream and returns upstream's first answer, as one read.
func firstAnswer(c, up net.Conn, first []byte) ([]byte, bool) {
	if _, err := up.Write(first); err != nil {
		return nil, false
	}
	go io.Copy(up, c)
	buf := make([]byte, 1<<16)
	up.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _ := up.Read(buf)
	return buf[:n], true
}

// finish closes the connection cleanly: a FIN after what was written, and
// the client's unread bytes drained (closing with unread data would reset).
func finish(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	io.Copy(io.Discard, c)
}

// drain reads and discards until the client closes.
func drain(c net.Conn) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		io.Copy(io.Discard, c)
		close(done)
	}()
	return done
}

// corruptAppData copies src to dst record by record (TLS framing) and
// flips one bit in the last byte of the body of the application_data
// record after the first skip ones, then copies the rest as it comes.
func corruptAppData(dst io.Writer, src io.Reader, skip int) {
	hdr := make([]byte, 5)
	for {
		if _, err := io.ReadFull(src, hdr); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(hdr[3:5]))
		body := make([]byte, n)
		if _, err := io.ReadFull(src, body); err != nil {
			return
		}
		last := false
		if hdr[0] == 23 && n > 0 {
			if skip == 0 {
				last = true
			}
			skip--
		}
		if last {
			body[n-1] ^= 0x01
		}
		if _, err := dst.Write(append(hdr, body...)); err != nil {
			return
		}
		if last {
			io.Copy(dst, src)
			return
		}
	}
}
