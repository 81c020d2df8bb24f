package main

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/hcl/ast"
	"github.com/hashicorp/hcl/hcl/parser"
	"github.com/hashicorp/hcl/hcl/printer"
	hcltoken "github.com/hashicorp/hcl/hcl/token"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// Vault's own API listener (spec.listener). Vault 1.14 reads a listener's
// TLS settings once, at start-up: on SIGHUP it reloads only the
// certificate and key files named at start-up (internalshared/listenerutil
// TLSConfig returns the certificate getter's Reload as the listener's
// reload function, command/server.go runs nothing else for listeners). So
// apply writes the listener file and restarts Vault with the operator's
// restart_command; Vault comes back sealed (Shamir seal), and harden
// unseals it with the key(s) of connection.unseal_key_file, logs in again
// and probes the listener before the step counts as done. Anything that
// fails puts the old file back, restarts and unseals again.
//
// What harden sets comes from the policy's TLS profile: tls_min_version,
// tls_max_version, tls_cipher_suites (Go's names of the profile's TLS 1.2
// suites, as Vault's tlsutil accepts them) and, when the target is in the
// policy's mTLS scope, tls_require_and_verify_client_cert with
// tls_client_ca_file. The deprecated tls_prefer_server_cipher_suites
// (ignored since Vault 1.9 / Go 1.17, not even parsed by 1.14) is
// removed. Everything else in the file — address, cluster_address, the
// certificate and key files (Vault's own certificate stays what the
// operator set), timeouts, X-Forwarded-For, telemetry — is kept as
// written. Vault has no setting for key-exchange groups: Go's defaults
// apply (an operator starts Vault with GODEBUG=tlssecpmlkem=0 to leave out
// the SecP*MLKEM hybrids outside the profiles).

// listenerSpec is spec.listener.
type listenerSpec struct {
	ConfigFile     string   `json:"config_file" schema:"required,minLength=1" jsonschema:"the .hcl file of Vault's API listener that harden owns: one listener \"tcp\" block and nothing else (Vault loads every .hcl file of its -config directory)"`
	RestartCommand []string `json:"restart_command" schema:"required,minItems=1" jsonschema:"argv that restarts Vault (e.g. [systemctl, restart, vault]); Vault reloads only its certificate on SIGHUP, so TLS settings need a restart"`
	RestartTimeout string   `json:"restart_timeout" schema:"pattern=^[0-9]+(ms|s|m|h)$" jsonschema:"bound for the restart command and each wait after it (until Vault answers, until it is active; default 2m)"`
	ClientCAFile   string   `json:"client_ca_file" jsonschema:"CA (PEM) Vault verifies client certificates with (tls_client_ca_file); required when the target is in the mTLS scope, and harden's own client certificate must chain to it"`
}

// listenerKeys are the settings harden manages; the others are kept.
var (
	listenerTLSKeys  = []string{"tls_min_version", "tls_max_version", "tls_cipher_suites", "tls_prefer_server_cipher_suites"}
	listenerMTLSKeys = []string{"tls_require_and_verify_client_cert", "tls_client_ca_file", "tls_disable_client_certs"}
)

// vaultSuiteNames are the TLS 1.2 suite names Vault 1.14 accepts in
// tls_cipher_suites (go-secure-stdlib/tlsutil v0.1.2 cipherMap, Go's
// names): a profile suite Go does not implement cannot be set.
var vaultSuiteNames = map[string]bool{
	"TLS_RSA_WITH_AES_128_CBC_SHA": true, "TLS_RSA_WITH_AES_256_CBC_SHA": true, "TLS_RSA_WITH_AES_128_CBC_SHA256": true,
	"TLS_RSA_WITH_AES_128_GCM_SHA256": true, "TLS_RSA_WITH_AES_256_GCM_SHA384": true,
	"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": true, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": true,
	"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": true, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": true,
	"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": true, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": true,
	"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": true, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": true,
	"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": true, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": true,
	"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": true, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": true,
}

// goTLS13Suites: Go enables all three TLS 1.3 suites, with no setting.
var goTLS13Suites = []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384, tls.TLS_CHACHA20_POLY1305_SHA256}

func init() {
	checks.Register(checks.Definition{ID: "vaultpki.listener.config", Title: "Vault's listener file holds the TLS profile's settings and Vault serves them (the file alone never passes: a restart still due fails)",
		Severity: checks.Medium, Remediation: "Run harden apply for the Vault target: it writes spec.listener.config_file and restarts and unseals Vault (a file already right but not yet loaded gets the restart alone).",
		References: []string{"HashiCorp Vault TCP listener: tls_min_version, tls_cipher_suites, tls_require_and_verify_client_cert (https://developer.hashicorp.com/vault/docs/configuration/listener/tcp)"}})
}

// setting is one managed listener setting as harden writes it.
type setting struct {
	key   string
	value any // string or bool
}

func (s setting) text() string { return fmt.Sprint(s.value) }

// listenerFile is a parsed listener file: its one listener "tcp" block.
type listenerFile struct {
	items []*ast.ObjectItem
	// values of the block's single-key literal settings (strings unquoted).
	values map[string]string
}

// parseListener parses a listener file harden may own: exactly one
// listener "tcp" block and nothing else, TLS on, address and certificate
// set. An error names the file and what is wrong, never a value.
func parseListener(name string, src []byte) (*listenerFile, error) {
	f, err := parser.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("%s: not valid HCL: %w", name, err)
	}
	list, ok := f.Node.(*ast.ObjectList)
	if !ok || len(list.Items) == 0 {
		return nil, fmt.Errorf("%s: no listener \"tcp\" block", name)
	}
	var lf *listenerFile
	for _, it := range list.Items {
		k := keyNames(it.Keys)
		if len(k) == 0 || k[0] != "listener" {
			return nil, fmt.Errorf("%s: holds %q beside the listener: harden owns this file and rewrites it, so it must hold only the listener block (move the rest to another .hcl file of Vault's config directory)", name, strings.Join(k, " "))
		}
		obj, isObj := it.Val.(*ast.ObjectType)
		if len(k) != 2 || k[1] != "tcp" || !isObj {
			return nil, fmt.Errorf("%s: harden manages a block written as listener \"tcp\" { ... }, not %q", name, strings.Join(k, " "))
		}
		if lf != nil {
			return nil, fmt.Errorf("%s: more than one listener block: harden manages one, the API listener of connection.address", name)
		}
		lf = &listenerFile{values: map[string]string{}}
		for _, in := range obj.List.Items {
			lf.items = append(lf.items, in)
			ik := keyNames(in.Keys)
			if lit, ok := in.Val.(*ast.LiteralType); ok && len(ik) == 1 {
				lf.values[ik[0]] = literal(lit)
			} else if len(ik) == 1 && (slices.Contains(listenerTLSKeys, ik[0]) || slices.Contains(listenerMTLSKeys, ik[0]) || slices.Contains([]string{"address", "tls_disable", "tls_cert_file", "tls_key_file"}, ik[0])) {
				return nil, fmt.Errorf("%s: listener setting %s is not a single value", name, ik[0])
			}
		}
	}
	if isTrue(lf.values["tls_disable"]) {
		return nil, fmt.Errorf("%s: the listener has tls_disable set: harden does not turn TLS on for Vault's listener (that needs the operator's certificate): set tls_cert_file and tls_key_file and remove tls_disable", name)
	}
	for _, k := range []string{"address", "tls_cert_file", "tls_key_file"} {
		if lf.values[k] == "" {
			return nil, fmt.Errorf("%s: the listener sets no %s", name, k)
		}
	}
	return lf, nil
}

func keyNames(keys []*ast.ObjectKey) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = fmt.Sprint(k.Token.Value())
	}
	return out
}

func literal(l *ast.LiteralType) string {
	if l.Token.Type == hcltoken.HEREDOC {
		return strings.TrimSpace(fmt.Sprint(l.Token.Value()))
	}
	return fmt.Sprint(l.Token.Value())
}

func isTrue(s string) bool {
	return strings.EqualFold(strings.TrimSpace(s), "true") || strings.TrimSpace(s) == "1"
}

// has reports whether the block sets key (any value).
func (lf *listenerFile) has(key string) bool {
	for _, it := range lf.items {
		if k := keyNames(it.Keys); len(k) == 1 && k[0] == key {
			return true
		}
	}
	return false
}

// matches reports whether the block already holds want and none of the
// managed keys that want leaves out (the suite list compared as a set:
// Go orders suites itself).
func (lf *listenerFile) matches(want []setting, managed []string) bool {
	wanted := map[string]string{}
	for _, s := range want {
		wanted[s.key] = s.text()
	}
	for _, k := range managed {
		w, ok := wanted[k]
		switch {
		case !ok && lf.has(k):
			return false
		case !ok:
		case !lf.has(k):
			return false
		case k == "tls_cipher_suites":
			if !sameSet(splitList(lf.values[k]), splitList(w)) {
				return false
			}
		case w == "true" || w == "false":
			if isTrue(lf.values[k]) != (w == "true") {
				return false
			}
		case lf.values[k] != w:
			return false
		}
	}
	return true
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

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// summary is the managed settings as the file has them (plan's Before).
func (lf *listenerFile) summary(managed []string) string {
	var parts []string
	for _, k := range managed {
		if lf.has(k) {
			parts = append(parts, k+"="+lf.values[k])
		}
	}
	if len(parts) == 0 {
		return "no TLS version, suite or client-certificate settings (Vault's defaults: TLS 1.2+, Go's default suites, CBC included)"
	}
	return strings.Join(parts, " ")
}

// render is the file with want in place of every managed setting and the
// rest of the block kept in order (comments attached to a kept setting
// stay; others are not kept: the journal holds the old file), in HCL's
// canonical format (printer.Format) so that rendering it again is
// byte-identical.
func (lf *listenerFile) render(header string, want []setting, managed []string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(header)
	b.WriteString("listener \"tcp\" {\n")
	for _, it := range lf.items {
		if k := keyNames(it.Keys); len(k) == 1 && slices.Contains(managed, k[0]) {
			continue
		}
		if err := printer.Fprint(&b, it); err != nil {
			return nil, err
		}
		b.WriteByte('\n')
	}
	for _, s := range want {
		switch v := s.value.(type) {
		case bool:
			fmt.Fprintf(&b, "%s = %v\n", s.key, v)
		default:
			fmt.Fprintf(&b, "%s = %s\n", s.key, hclQuote(fmt.Sprint(v)))
		}
	}
	b.WriteString("}\n")
	out, err := printer.Format(b.Bytes())
	if err != nil {
		return nil, err
	}
	if !bytes.HasSuffix(out, []byte("\n")) {
		out = append(out, '\n')
	}
	return out, nil
}

// hclQuote quotes s as an HCL string (JSON escapes are HCL's; ${ and %{
// would start an interpolation and are escaped).
func hclQuote(s string) string {
	q := fmt.Sprintf("%q", s)
	q = strings.ReplaceAll(q, "${", "$${")
	return strings.ReplaceAll(q, "%{", "%%{")
}

// vaultTLSVersion is Vault's name of a TLS version.
func vaultTLSVersion(v uint16) string {
	return map[uint16]string{tls.VersionTLS10: "tls10", tls.VersionTLS11: "tls11", tls.VersionTLS12: "tls12", tls.VersionTLS13: "tls13"}[v]
}

// listenerWant is what the profile asks of Vault's listener, what Vault
// cannot do of it (warnings), and the managed keys.
func listenerWant(p tlsprofile.Profile, mtls bool, clientCA string) (want []setting, managed []string, warnings []string, err error) {
	managed = slices.Clone(listenerTLSKeys)
	lo, hi := vaultTLSVersion(p.MinVersion()), vaultTLSVersion(p.MaxVersion())
	if lo == "" || hi == "" {
		return nil, nil, nil, fmt.Errorf("the %s profile's TLS versions have no Vault setting", p.Name)
	}
	want = append(want, setting{"tls_min_version", lo}, setting{"tls_max_version", hi})
	if p.MinVersion() <= tls.VersionTLS12 {
		var names []string
		for _, id := range p.TLS12Suites {
			n := tls.CipherSuiteName(id)
			if vaultSuiteNames[n] {
				names = append(names, n)
			} else {
				warnings = append(warnings, fmt.Sprintf("the %s profile's TLS 1.2 suite %s cannot be set on Vault (Go does not implement it): left out", p.Name, tlsprofile.HexID(id)))
			}
		}
		if len(names) == 0 {
			return nil, nil, nil, fmt.Errorf("none of the %s profile's TLS 1.2 suites can be set on Vault (Go implements none of them)", p.Name)
		}
		want = append(want, setting{"tls_cipher_suites", strings.Join(names, ",")})
	}
	if p.MaxVersion() >= tls.VersionTLS13 {
		for _, id := range goTLS13Suites {
			if !slices.Contains(p.TLS13Suites, id) {
				warnings = append(warnings, fmt.Sprintf("Vault (Go) offers every TLS 1.3 suite and has no setting for them: %s is outside the %s profile and tls.cipher_suites will report it", tls.CipherSuiteName(id), p.Name))
			}
		}
	}
	if p.ServerPreferredOrder {
		warnings = append(warnings, "the profile asks for the server's suite order, which Vault (Go) cannot set: Go orders suites itself")
	}
	if mtls {
		managed = append(managed, listenerMTLSKeys...)
		want = append(want, setting{"tls_require_and_verify_client_cert", true}, setting{"tls_client_ca_file", clientCA})
	}
	return want, managed, warnings, nil
}

// listenerHeader is the comment harden writes above the block.
func listenerHeader(target, profile string) string {
	return "# Vault's API listener. harden (vaultpki target " + target + ") manages its tls_*\n" +
		"# version, suite and client-certificate settings from the " + profile + " TLS profile\n" +
		"# and keeps every other setting as written. Vault reads them only at start-up\n" +
		"# (SIGHUP reloads just the certificate files), so harden restarts Vault for them.\n" +
		"# Key-exchange groups: Vault has no setting; Go's defaults apply (start Vault\n" +
		"# with GODEBUG=tlssecpmlkem=0 to leave out SecP256r1MLKEM768/SecP384r1MLKEM1024).\n"
}
