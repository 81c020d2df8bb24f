package main

import (
	"fmt"
	"net"
	"strings"
)

// listener is one broker listener as server.properties declares it.
type listener struct {
	Name       string // e.g. PLAINTEXT, SSL, CONTROLLER, EXTERNAL
	Protocol   string // PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL
	Address    string // host:port to probe
	Controller bool
	Node       string // "broker N" in a cluster target
	NodeID     string // node.id (or broker.id) of the file that declares it
}

// listenersOf reads listeners, listener.security.protocol.map and
// controller.listener.names. A listener without an explicit map entry uses
// its name as the protocol (Kafka's rule for the four standard names).
func listenersOf(props map[string]string) ([]listener, error) {
	protoMap := map[string]string{}
	for _, pair := range splitList(props["listener.security.protocol.map"]) {
		name, proto, ok := strings.Cut(pair, ":")
		if !ok {
			return nil, fmt.Errorf("listener.security.protocol.map entry %q is not NAME:PROTOCOL", pair)
		}
		protoMap[strings.ToUpper(name)] = strings.ToUpper(proto)
	}
	controllers := map[string]bool{}
	for _, n := range splitList(props["controller.listener.names"]) {
		controllers[strings.ToUpper(n)] = true
	}
	var out []listener
	for _, l := range splitList(props["listeners"]) {
		name, hostport, ok := strings.Cut(l, "://")
		if !ok {
			return nil, fmt.Errorf("listener %q is not NAME://HOST:PORT", l)
		}
		name = strings.ToUpper(name)
		host, port, err := net.SplitHostPort(hostport)
		if err != nil {
			return nil, fmt.Errorf("listener %q: %w", l, err)
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1" // bound to every interface: probe it on loopback
		}
		proto := protoMap[name]
		if proto == "" {
			proto = name
		}
		out = append(out, listener{Name: name, Protocol: proto, Address: net.JoinHostPort(host, port), Controller: controllers[name]})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no listeners declared")
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (l listener) tls() bool { return l.Protocol == "SSL" || l.Protocol == "SASL_SSL" }
