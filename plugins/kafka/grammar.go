package main

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/harden-dev/harden/shared/sdk"
)

// Every policy value that ends up in server.properties is checked for the
// grammar of the setting it lands in, on top of the properties escaping
// (propertyLine): a value that escapes cleanly can still mean something
// else to the broker (a ; in super.users is a second principal, a , in
// listeners a second listener, a : in a ${file:path:key} reference another
// key). Errors name the attribute, never echo the value (it could be a
// secret pasted in the wrong place).

var (
	listenerNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
	// Kafka's listener parser: NAME://host:port with host in
	// [0-9a-zA-Z-%._:] (IPv6 in brackets).
	listenerHostRE = regexp.MustCompile(`^(\[[0-9a-fA-F:.%]+\]|[0-9A-Za-z\-%._]*)$`)
)

// grammarProblem is one value that may not reach server.properties.
type grammarProblem struct {
	path    sdk.Path
	summary string
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == utf8Bad })
}

// utf8Bad: strings.ContainsFunc yields U+FFFD for an invalid byte.
const utf8Bad = '\uFFFD'

// checkPrincipal: a super_users entry or certificate CN becomes
// "User:<name>" in super.users (split at ;) and is matched against the
// certificate CN the principal mapping rule extracts (it stops at ,).
func checkPrincipal(name string) string {
	switch {
	case name == "":
		return "empty principal"
	case hasControl(name):
		return "control character or line break in a principal (super.users is one line)"
	case strings.ContainsAny(name, ";,"):
		return "; separates super.users entries and , ends the certificate CN: a principal cannot hold either"
	case strings.TrimSpace(name) != name:
		return "leading or trailing blank in a principal (Kafka trims super.users entries)"
	case strings.HasPrefix(name, "User:"):
		return "give the certificate CN alone: harden writes User:<CN>"
	}
	return ""
}

// checkAddress: a listener address as Kafka's listener grammar takes it.
func checkAddress(addr string) string {
	if hasControl(addr) || strings.ContainsAny(addr, ", \t/") {
		return "not host:port (control character, blank, , or / in a listener address)"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "not host:port"
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if !listenerHostRE.MatchString(host) {
		return "host is not a hostname or IP address Kafka's listener grammar accepts"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "port is not a number from 0 to 65535"
	}
	return ""
}

// checkPath: a store path lands in ssl.*.location and in the
// ${file:<path>:<key>} references of the passwords.
func checkPath(p string) string {
	switch {
	case hasControl(p):
		return "control character or line break in a path"
	case strings.ContainsAny(p, ":{}$,"):
		return "a path in server.properties cannot hold : { } $ or , (Kafka's ${file:path:key} references and lists)"
	}
	return ""
}

// grammarProblems lists every policy value of the target that would not
// stay what it says in server.properties.
func grammarProblems(c connection, s spec) []grammarProblem {
	var out []grammarProblem
	add := func(p sdk.Path, why string) {
		if why != "" {
			out = append(out, grammarProblem{p, why})
		}
	}
	listeners := func(ls []listenerSpec, at sdk.Path) {
		for i, l := range ls {
			// A fresh slice each: append to a shared prefix would alias.
			field := func(f string) sdk.Path { return append(append(sdk.Path{}, at...), strconv.Itoa(i), f) }
			if !listenerNameRE.MatchString(l.Name) {
				add(field("name"), "a listener name is a letter then letters, digits or _")
			}
			add(field("address"), checkAddress(l.Address))
		}
	}
	listeners(s.Listeners, sdk.Path{"spec", "listeners"})
	for i, b := range s.Brokers {
		listeners(b.Listeners, sdk.Path{"spec", "brokers", strconv.Itoa(i), "listeners"})
	}
	if s.InterBrokerListener != "" && !listenerNameRE.MatchString(s.InterBrokerListener) {
		add(sdk.Path{"spec", "inter_broker_listener"}, "a listener name is a letter then letters, digits or _")
	}
	for i, u := range s.SuperUsers {
		add(sdk.Path{"spec", "super_users", strconv.Itoa(i)}, checkPrincipal(u))
	}
	if s.StoreDir != "" {
		add(sdk.Path{"spec", "store_dir"}, checkPath(s.StoreDir))
	} else {
		// The default store dir is beside the config file.
		add(sdk.Path{"connection", "config_file"}, checkPath(c.ConfigFile))
		for i, b := range c.Brokers {
			add(sdk.Path{"connection", "brokers", strconv.Itoa(i), "config_file"}, checkPath(b.ConfigFile))
		}
	}
	return out
}

// addGrammarProblems reports them; false when there was any.
func addGrammarProblems(c connection, s spec, d *sdk.Diagnostics) bool {
	ps := grammarProblems(c, s)
	for _, p := range ps {
		d.AddAttributeError(p.path, p.summary, "this value would be written into the broker's server.properties")
	}
	return len(ps) == 0
}

// certificatePrincipal checks a certificate CN harden makes a super user.
func certificatePrincipal(cn, which string) error {
	if why := checkPrincipal(cn); why != "" {
		return fmt.Errorf("the %s certificate's CN cannot be a Kafka super user: %s", which, why)
	}
	return nil
}
