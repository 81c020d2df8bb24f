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

// connection is the target's connection block.
type connection struct {
	Host         string `json:"host"`
	Port         int    `json:"port"`
	User         string `json:"user"`
	PasswordEnv  string `json:"password_env"`
	PasswordFile string `json:"password_file"`
	Database     string `json:"database"`
	DataDir      string `json:"data_dir"`
	SocketDir    string `json:"socket_dir"`
	// AllowPlaintextAdmin is the operator's reason for letting the
	// management connection log in without TLS when the server refuses TLS
	// (answers 'N' to the SSLRequest) — and then only with SCRAM-SHA-256.
	// Empty: a server that refuses TLS gets no credentials (see connect).
	AllowPlaintextAdmin string `json:"allow_plaintext_admin"`
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

const connectionSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "PostgreSQL connection",
  "type": "object",
  "additionalProperties": false,
  "required": ["host", "port"],
  "properties": {
    "host": {"type": "string", "minLength": 1, "description": "server host name or IP address"},
    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
    "user": {"type": "string", "description": "role used for plan/apply (superuser or pg_read_all_settings for plan)"},
    "password_env": {"type": "string", "description": "environment variable holding the password"},
    "password_file": {"type": "string", "description": "file holding the password"},
    "database": {"type": "string", "default": "postgres"},
    "data_dir": {"type": "string", "description": "data directory, for local-file apply (default: SHOW data_directory)"},
    "socket_dir": {"type": "string", "minLength": 1, "description": "connect for plan/apply/verify through this Unix socket directory (absolute path) instead of TCP"},
    "allow_plaintext_admin": {"type": "string", "minLength": 1, "description": "why the management connection may log in without TLS while the server refuses TLS (before the first apply); then only SCRAM-SHA-256 is accepted, never a cleartext or MD5 password request. A TLS failure (untrusted certificate, wrong name) never falls back to plaintext."}
  }
}`

const specSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "PostgreSQL spec",
  "type": "object",
  "additionalProperties": false,
  "$defs": {
    "rule": {
      "type": "object",
      "additionalProperties": false,
      "required": ["database", "user", "method"],
      "properties": {
        "type": {"type": "string", "description": "hostssl (the only network type harden writes) or local"},
        "database": {"type": "string"},
        "user": {"type": "string"},
        "address": {"type": "string", "description": "CIDR, e.g. 10.0.0.0/8 or ::1/128"},
        "method": {"type": "string", "description": "scram-sha-256, cert, reject, ..."},
        "options": {"type": "object", "additionalProperties": {"type": "string"}, "description": "e.g. {clientcert: verify-full, map: certmap}"}
      }
    }
  },
  "properties": {
    "hba": {"type": "array", "items": {"$ref": "#/$defs/rule"}, "description": "network rules in order; default: hostssl from 127.0.0.1 and ::1 with scram-sha-256"},
    "local": {"type": "array", "items": {"$ref": "#/$defs/rule"}, "description": "local socket rules; default: keep the live file's"},
    "cert_dir": {"type": "string", "description": "directory for server.crt/server.key/root.crt, relative to the data directory (default harden)"},
    "server_version": {"type": "integer", "minimum": 12, "maximum": 18, "description": "major version for render (plan/apply read the live server's)"},
    "ident_maps": {"type": "array", "description": "pg_ident.conf: certificate names to roles, for hba rules with options {map: NAME}",
      "items": {"type": "object", "additionalProperties": false, "required": ["map", "system_user", "pg_user"],
        "properties": {"map": {"type": "string", "minLength": 1}, "system_user": {"type": "string", "minLength": 1}, "pg_user": {"type": "string", "minLength": 1}}}}
  }
}`

func (postgres) Metadata(_ context.Context, _ sdk.MetadataRequest, r *sdk.MetadataResponse) {
	r.Name, r.Version = "postgres", version
	r.Description = "PostgreSQL: verify TLS, plaintext refusal and client-certificate enforcement on live servers"
}

func (postgres) Schema(_ context.Context, _ sdk.SchemaRequest, r *sdk.SchemaResponse) {
	r.Connection, r.Spec = []byte(connectionSchema), []byte(specSchema)
}

func (postgres) ValidateSpec(_ context.Context, q sdk.ValidateSpecRequest, r *sdk.ValidateSpecResponse) {
	var c connection
	if err := q.Target.DecodeConnection(&c); err != nil {
		r.Diagnostics.AddAttributeError(sdk.Path{"connection"}, "invalid connection", err.Error())
		return
	}
	if c.PasswordEnv != "" && c.PasswordFile != "" {
		r.Diagnostics.AddAttributeError(sdk.Path{"connection", "password_file"}, "set password_env or password_file, not both", "")
	}
	if err := c.validate(); err != nil {
		r.Diagnostics.AddAttributeError(sdk.Path{"connection"}, "invalid connection", err.Error())
	}
	var sp spec
	if err := q.Target.DecodeSpec(&sp); err != nil {
		r.Diagnostics.AddAttributeError(sdk.Path{"spec"}, "invalid spec", err.Error())
		return
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
