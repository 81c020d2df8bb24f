package main

import (
	"context"
	"net"
	"strconv"

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
}

func (c connection) address() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

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
    "data_dir": {"type": "string", "description": "data directory, for local-file apply"}
  }
}`

// specSchema: settings of the rendered configuration arrive with the
// PostgreSQL plugin issue; an empty spec is the only valid one until then.
const specSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "PostgreSQL spec",
  "type": "object",
  "additionalProperties": false,
  "properties": {}
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
}
