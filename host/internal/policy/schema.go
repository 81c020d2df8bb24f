package policy

import (
	"encoding/json"
	"sort"

	"github.com/harden-dev/harden/shared/tlsprofile"
)

// SchemaID identifies the policy schema.
const SchemaID = "https://harden.dev/schemas/policy/v1.json"

// namePattern: target names are DNS-label-like so they fit file names,
// certificate CNs and check subjects.
const namePattern = `^[a-z0-9]([a-z0-9._-]{0,62})$`

func baseSchema() map[string]any {
	str := map[string]any{"type": "string", "minLength": 1}
	strList := map[string]any{"type": "array", "items": str}
	duration := map[string]any{"type": "string", "pattern": `^[0-9]+(d|h|m|s)$`,
		"description": "a duration such as 90d, 12h, 30m"}
	obj := func(props map[string]any, required ...string) map[string]any {
		m := map[string]any{"type": "object", "additionalProperties": false, "properties": props}
		if len(required) > 0 {
			m["required"] = required
		}
		return m
	}
	versions := []any{"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"}
	return map[string]any{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"$id":                  SchemaID,
		"title":                "harden policy (apiVersion harden/v1)",
		"type":                 "object",
		"required":             []any{"apiVersion", "profile", "targets"},
		"additionalProperties": false,
		"properties": map[string]any{
			"apiVersion": map[string]any{"const": "harden/v1"},
			"profile": map[string]any{
				"description": "TLS profile: modern or intermediate (" + tlsprofile.Guideline + "), or a custom profile based on one",
				"type":        []any{"string", "object"},
				"if":          map[string]any{"type": "string"},
				"then":        map[string]any{"enum": []any{"modern", "intermediate"}},
				"else": obj(map[string]any{
					"base": map[string]any{"enum": []any{"modern", "intermediate"}},
					"overrides": obj(map[string]any{
						"min_version":              map[string]any{"enum": versions},
						"max_version":              map[string]any{"enum": versions},
						"tls12_ciphers":            strList,
						"tls13_ciphers":            strList,
						"groups":                   strList,
						"certificate_types":        strList,
						"max_certificate_lifespan": duration,
						"server_preferred_order":   map[string]any{"type": "boolean"},
						"strict_groups":            map[string]any{"type": "boolean", "description": "accept only the profile's groups; by default a server may also accept groups at least as strong as the profile's weakest (e.g. secp521r1)"},
					}),
					"allow_insecure": map[string]any{"type": "string", "minLength": 1,
						"description": "why weakening below the base profile is accepted; required for any weakening"},
				}, "base"),
			},
			"certificates": obj(map[string]any{
				"source": map[string]any{"enum": []any{"files", "vault-pki"}},
				"files": obj(map[string]any{
					"ca_file":  map[string]any{"type": "string", "minLength": 1, "description": "PEM bundle of trusted CAs"},
					"crl_file": map[string]any{"type": "string", "minLength": 1, "description": "PEM certificate revocation list of the CA (servers refuse revoked client certificates)"},
				}, "ca_file"),
				"vault": obj(map[string]any{
					"target":      map[string]any{"type": "string", "description": "name of the vaultpki target that issues certificates"},
					"store_dir":   map[string]any{"type": "string", "minLength": 1, "description": "where issued certificates and their keys (0600) are kept and reused until renew_before (default .harden/certs next to the policy)"},
					"client_name": map[string]any{"type": "string", "minLength": 1, "description": "common name of harden's client certificate for targets in the mTLS scope (default harden-admin)"},
				}, "target"),
				"rotation": obj(map[string]any{
					"max_lifetime": duration,
					"renew_before": duration,
					"alert_at":     map[string]any{"type": "array", "items": duration},
				}),
			}, "source"),
			"mtls": obj(map[string]any{
				"scope": map[string]any{"type": "array", "items": str, "uniqueItems": true,
					"description": "names of targets that must require client certificates"},
			}),
			"targets": map[string]any{"type": "array", "minItems": 1, "items": map[string]any{"$ref": "#/$defs/target"}},
			"clients": map[string]any{"type": "array", "items": map[string]any{"$ref": "#/$defs/client"},
				"description": "client identities harden issues (CN = name), renders configurations for and delivers; renewed by harden rotate"},
		},
		"$defs": map[string]any{
			"target": obj(map[string]any{
				"name":       map[string]any{"type": "string", "pattern": namePattern},
				"plugin":     map[string]any{"type": "string", "pattern": `^[a-z0-9][a-z0-9_-]*$`},
				"connection": map[string]any{"type": "object"},
				"spec":       map[string]any{"type": "object"},
				"certificate": obj(map[string]any{
					"cert_file":        str,
					"key_file":         str,
					"client_cert_file": map[string]any{"type": "string", "minLength": 1, "description": "harden's client certificate for this target (mTLS scope)"},
					"client_key_file":  str,
				}, "cert_file", "key_file"),
				"certificate_names": strList,
			}, "name", "plugin"),
			"client": obj(map[string]any{
				"name": map[string]any{"type": "string", "pattern": namePattern, "description": "the client's certificate CN (its Kafka principal, its PostgreSQL role for cert auth)"},
				"targets": map[string]any{"type": "array", "minItems": 1, "uniqueItems": true, "items": str,
					"description": "targets the client connects to; harden renders its configuration for each"},
				"deliver": map[string]any{"type": "object", "additionalProperties": false, "minProperties": 1, "maxProperties": 1,
					"description": "where the bundle (tls.crt, tls.key, ca.crt, keystore.p12, truststore.p12, configs) goes: exactly one of vault_kv, dir",
					"properties": map[string]any{
						"vault_kv": map[string]any{"type": "string", "pattern": `^[a-zA-Z0-9_-]+/data/[a-zA-Z0-9_./-]+$`, "description": "Vault KV v2 path as the API names it (mount/data/path), written through the certificate source's vaultpki target; readable by the client's own policy harden-client-<name>"},
						"dir":      map[string]any{"type": "string", "minLength": 1, "description": "directory on this host (0700, files 0600), relative to the policy file"},
					}},
				"install_dir": map[string]any{"type": "string", "pattern": "^/", "description": "where the client keeps the bundle's files: the paths its rendered configurations name (default: dir, or /etc/harden/clients/<name>)"},
			}, "name", "targets", "deliver"),
		},
	}
}

// PluginSchemas are one plugin's declared schemas (JSON documents).
type PluginSchemas struct {
	Connection json.RawMessage
	Spec       json.RawMessage
}

// JSONSchema returns the policy file's JSON Schema with each plugin's
// connection and spec schemas embedded, keyed by the target's plugin, so
// editors can complete and check the whole file.
func JSONSchema(plugins map[string]PluginSchemas) ([]byte, error) {
	s := baseSchema()
	target := s["$defs"].(map[string]any)["target"].(map[string]any)
	names := make([]string, 0, len(plugins))
	for n := range plugins {
		names = append(names, n)
	}
	sort.Strings(names)
	var branches []any
	for _, n := range names {
		ps := plugins[n]
		props := map[string]any{}
		for key, raw := range map[string]json.RawMessage{"connection": ps.Connection, "spec": ps.Spec} {
			if len(raw) == 0 {
				continue
			}
			var sub map[string]any
			if err := json.Unmarshal(raw, &sub); err != nil {
				return nil, err
			}
			// Embedded subschemas are not resource roots.
			delete(sub, "$schema")
			delete(sub, "$id")
			props[key] = sub
		}
		branches = append(branches, map[string]any{
			"if":   map[string]any{"properties": map[string]any{"plugin": map[string]any{"const": n}}, "required": []any{"plugin"}},
			"then": map[string]any{"properties": props},
		})
	}
	if len(branches) > 0 {
		target["allOf"] = branches
	}
	return json.MarshalIndent(s, "", "  ")
}
