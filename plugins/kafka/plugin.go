package main

import (
	"context"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
)

type kafka struct{}

type connection struct {
	Bootstrap  []string `json:"bootstrap"`
	ConfigFile string   `json:"config_file"`
}

const connectionSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "Kafka connection",
  "type": "object",
  "additionalProperties": false,
  "required": ["bootstrap"],
  "properties": {
    "bootstrap": {"type": "array", "minItems": 1, "items": {"type": "string"}, "description": "host:port of the brokers"},
    "config_file": {"type": "string", "description": "the broker's server.properties: verify probes every listener it declares, controller listeners included"}
  }
}`

const specSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "Kafka spec",
  "type": "object",
  "additionalProperties": false,
  "properties": {}
}`

func init() {
	checks.Register(checks.Definition{ID: "kafka.listener.plaintext", Title: "No listener answers cleartext Kafka requests", Severity: checks.High,
		Remediation: "Replace PLAINTEXT/SASL_PLAINTEXT listeners (controller listeners too) with SSL or SASL_SSL ones.",
		References:  []string{checks.RefSeedKafkaTLS}})
}

func (kafka) Metadata(_ context.Context, _ sdk.MetadataRequest, r *sdk.MetadataResponse) {
	r.Name, r.Version = "kafka", version
	r.Description = "Apache Kafka: verify that every listener refuses cleartext and enforces the TLS profile and mTLS"
}

func (kafka) Schema(_ context.Context, _ sdk.SchemaRequest, r *sdk.SchemaResponse) {
	r.Connection, r.Spec = []byte(connectionSchema), []byte(specSchema)
}
