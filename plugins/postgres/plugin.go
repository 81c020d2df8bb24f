package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/harden-dev/harden/shared/sdk"
)

type postgres struct{}

// connection is the target's connection block; its fields' tags are the
// connection schema the host validates policies against (sdk.SchemaFor).
type connection struct {
	Host         string `json:"host" schema:"required,minLength=1" jsonschema:"server host name or IP address"`
	Port         int    `json:"port" schema:"required,minimum=1,maximum=65535"`
	User         string `json:"user" jsonschema:"role used for plan/apply (superuser or pg_read_all_settings for plan)"`
	PasswordEnv  string `json:"password_env" jsonschema:"environment variable holding the password"`
	PasswordFile string `json:"password_file" jsonschema:"file holding the password"`
	Database     string `json:"database" schema:"default=postgres" jsonschema:"database the management connection logs in to"`
	DataDir      string `json:"data_dir" jsonschema:"data directory, for local-file apply (default: SHOW data_directory)"`
	SocketDir    string `json:"socket_dir" schema:"minLength=1" jsonschema:"connect for plan/apply/verify through this Unix socket directory (absolute path) instead of TCP"`
	// AllowPlaintextAdmin is the operator's reason for letting the
	// management connection log in without TLS when the server refuses TLS
	// (answers 'N' to the SSLRequest) — and then only with SCRAM-SHA-256.
	// Empty: a server that refuses TLS gets no credentials (see connect).
	AllowPlaintextAdmin string `json:"allow_plaintext_admin" schema:"minLength=1" jsonschema:"why the management connection may log in without TLS while the server refuses TLS (before the first apply); then only SCRAM-SHA-256 is accepted, never a cleartext or MD5 password request. A TLS failure (untrusted certificate, wrong name) never falls back to plaintext."`
}

func (c connection) address() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// validate checks what the JSON schema cannot say on its own (the host
// validates the schema; connect calls this again so that no request reaches
// the network with a connection that could send credentials in the clear).
func (c connection) validate() error {
	if c.SocketDir != "" && !filepath.IsAbs(c.SocketDir) {
		// pgx takes a host that does not start with "/" for a TCP host
		// name: a relative socket_dir would become a plaintext TCP login.
		return fmt.Errorf("socket_dir %q must be an absolute path", c.SocketDir)
	}
	if c.AllowPlaintextAdmin != "" && strings.TrimSpace(c.AllowPlaintextAdmin) == "" {
		return errors.New("allow_plaintext_admin must give the reason, not blanks")
	}
	return nil
}

// The schemas are derived from the types the requests decode into.
var (
	connectionSchema = sdk.LazySchemaFor[connection]("PostgreSQL connection")
	specSchema       = sdk.LazySchemaFor[spec]("PostgreSQL spec")
)

func (postgres) Metadata(_ context.Context, _ sdk.MetadataRequest, r *sdk.MetadataResponse) {
	r.Name, r.Version = "postgres", version
	r.Description = "PostgreSQL: verify TLS, plaintext refusal and client-certificate enforcement on live servers"
}

func (postgres) Schema(_ context.Context, _ sdk.SchemaRequest, r *sdk.SchemaResponse) {
	r.Connection, r.Spec = connectionSchema(), specSchema()
}

func (postgres) ValidateSpec(_ context.Context, q sdk.ValidateSpecRequest, r *sdk.ValidateSpecResponse) {
	c, sp, ok := sdk.Decode[connection, spec](q.Target, &r.Diagnostics)
	if !ok {
		return
	}
	if c.PasswordEnv != "" && c.PasswordFile != "" {
		r.Diagnostics.AddAttributeError(sdk.Path{"connection", "password_file"}, "set password_env or password_file, not both", "")
	}
	if err := c.validate(); err != nil {
		r.Diagnostics.AddAttributeError(sdk.Path{"connection"}, "invalid connection", err.Error())
	}
	for i, rule := range sp.HBA {
		at := func(k string) sdk.Path { return sdk.Path{"spec", "hba", itoa(i), k} }
		if rule.Type != "" && rule.Type != "hostssl" {
			r.Diagnostics.AddAttributeError(at("type"), "network access only through hostssl", "harden writes hostnossl reject lines for IPv4 and IPv6 itself; host and hostnossl lines would let connections without TLS in")
		}
		if rule.Address == "" {
			r.Diagnostics.AddAttributeError(at("address"), "a network rule needs an address (CIDR)", "")
		}
		validateMethod(&r.Diagnostics, rule, at, true)
		rule.Type = "hostssl"
		validateGrammar(&r.Diagnostics, rule, at)
	}
	for i, m := range sp.IdentMaps {
		for j, v := range []string{m.Map, m.SystemUser, m.PGUser} {
			if _, err := encodeList(v, identField); err != nil {
				r.Diagnostics.AddAttributeError(sdk.Path{"spec", "ident_maps", itoa(i), identFieldNames[j]}, "cannot be written to pg_ident.conf: "+identFieldNames[j]+" "+err.Error(), grammarHint)
			}
		}
	}
	maps := map[string]bool{}
	for _, m := range sp.IdentMaps {
		maps[m.Map] = true
	}
	for i, rule := range append(append([]HBARule{}, sp.HBA...), sp.Local...) {
		if name, ok := rule.Options["map"]; ok && !maps[name] && checkText(name) == nil && len(name) <= 64 {
			block, idx := "hba", i
			if i >= len(sp.HBA) {
				block, idx = "local", i-len(sp.HBA)
			}
			r.Diagnostics.AddAttributeError(sdk.Path{"spec", block, itoa(idx), "options"}, "map "+strconv.Quote(name)+" is not defined in spec.ident_maps", "")
		}
	}
	for i, rule := range sp.Local {
		at := func(k string) sdk.Path { return sdk.Path{"spec", "local", itoa(i), k} }
		if rule.Type != "" && rule.Type != "local" {
			r.Diagnostics.AddAttributeError(at("type"), "local rules have type local", "")
		}
		validateMethod(&r.Diagnostics, rule, at, false)
		rule.Type = "local"
		validateGrammar(&r.Diagnostics, rule, at)
	}
}

const grammarHint = "pg_hba.conf and pg_ident.conf fields cannot hold newlines or control characters; harden double-quotes names with blanks, '#', '\"' or ','"

// validateGrammar reports every field of a policy rule that cannot be
// written to pg_hba.conf as PostgreSQL will read it (see hbagrammar.go).
// Messages never repeat the value.
func validateGrammar(d *sdk.Diagnostics, rule HBARule, at func(string) sdk.Path) {
	bad := func(field string, err error) {
		d.AddAttributeError(at(field), "cannot be written to pg_hba.conf: "+field+" "+err.Error(), grammarHint)
	}
	if _, err := encodeList(rule.Database, databaseField); err != nil {
		bad("database", err)
	}
	if _, err := encodeList(rule.User, userField); err != nil {
		bad("user", err)
	}
	switch {
	case rule.Type == "local" && rule.Address != "":
		d.AddAttributeError(at("address"), "cannot be written to pg_hba.conf: address is set on a local rule (local rules have no address)", "")
	case rule.Type != "local" && rule.Address != "":
		if err := checkAddress(rule.Address); err != nil {
			d.AddAttributeError(at("address"), "cannot be written to pg_hba.conf: address "+err.Error(), "")
		}
	}
	keys := make([]string, 0, len(rule.Options))
	for k := range rule.Options {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if _, err := encodeOption(k, rule.Options[k]); err != nil {
			d.AddAttributeError(append(at("options"), k), "cannot be written to pg_hba.conf: option "+err.Error(), grammarHint)
		}
	}
}

func validateMethod(d *sdk.Diagnostics, rule HBARule, at func(string) sdk.Path, network bool) {
	if !slices.Contains(knownMethods, rule.Method) {
		d.AddAttributeError(at("method"), "unknown authentication method "+strconv.Quote(rule.Method), "known: "+strings.Join(knownMethods, ", "))
	}
	if network && slices.Contains(weakNetworkMethods, rule.Method) {
		d.AddAttributeError(at("method"), "insecure: "+rule.Method+" on a network line", "use scram-sha-256 (with clientcert=verify-full for mTLS) or cert")
	}
	if v, ok := rule.Options["clientcert"]; ok && v != "verify-full" && v != "verify-ca" {
		d.AddAttributeError(at("options"), "clientcert="+v+" is invalid", "PostgreSQL 14 removed clientcert=1/0; use clientcert=verify-full (or verify-ca)")
	}
}
