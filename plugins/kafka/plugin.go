package main

import (
	"context"
	"strconv"
	"strings"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
)

type kafka struct{}

type connection struct {
	Bootstrap  []string `json:"bootstrap" schema:"required,minItems=1" jsonschema:"host:port of the brokers"`
	ConfigFile string   `json:"config_file" jsonschema:"the broker's server.properties: verify probes every listener it declares, controller listeners included; plan and apply merge into it"`
	// RestartCommand restarts the broker (argv, no shell): a static apply
	// runs it and verifies the restarted broker before declaring success.
	RestartCommand []string `json:"restart_command" schema:"minItems=1" jsonschema:"argv that restarts the broker (e.g. [systemctl, restart, kafka]); needed by apply when a change needs a restart"`
	// RestartTimeout bounds the restart and the wait for the broker to
	// answer again (Go duration, default 3m).
	RestartTimeout string `json:"restart_timeout" schema:"pattern=^[0-9]+(ms|s|m|h)$" jsonschema:"bound for the restart and the wait until the broker answers (default 3m)"`
	// Brokers: a cluster target, one entry per broker (rolling apply).
	Brokers []brokerConn `json:"brokers" schema:"minItems=1" jsonschema:"a cluster: every broker with its file and restart command; apply rolls through them one by one"`
	// ProbeCredentialsFile names a PEM file with a certificate chain from
	// the policy CA and its private key, for an identity that has no ACLs
	// and is no super user: verify presents it to prove live that the
	// authorizer denies by default. The host reads it as the secret
	// "probe_credentials" (it travels only in this target's requests).
	ProbeCredentialsFile string `json:"probe_credentials_file" schema:"minLength=1" jsonschema:"PEM file with a certificate chain from the policy CA and its private key, for an identity WITHOUT ACLs that is no super user: verify proves with it that the authorizer denies by default (without it kafka.config.authorizer rests on configuration and warns)"`
}

// The schemas are derived from the types the requests decode into.
var (
	connectionSchema = sdk.LazySchemaFor[connection]("Kafka connection")
	specSchema       = sdk.LazySchemaFor[spec]("Kafka spec")
)

func init() {
	checks.Register(checks.Definition{ID: "kafka.listener.plaintext", Title: "No listener answers cleartext Kafka requests", Severity: checks.High,
		Remediation: "Replace PLAINTEXT/SASL_PLAINTEXT listeners (controller listeners too) with SSL or SASL_SSL ones.",
		References:  []string{checks.RefSeedKafkaTLS}})
}

func (kafka) Metadata(_ context.Context, _ sdk.MetadataRequest, r *sdk.MetadataResponse) {
	r.Name, r.Version = "kafka", version
	r.Description = "Apache Kafka: SSL listeners, mTLS and authorizer rendered, applied (static with restart, or KIP-226 rotation) and verified live"
}

func (kafka) ValidateSpec(_ context.Context, q sdk.ValidateSpecRequest, r *sdk.ValidateSpecResponse) {
	c, s, ok := sdk.Decode[connection, spec](q.Target, &r.Diagnostics)
	if !ok {
		return
	}
	if _, err := brokersOf(c, s); err != nil {
		r.Diagnostics.AddAttributeError(sdk.Path{"connection", "brokers"}, "brokers do not match", err.Error())
	}
	addGrammarProblems(c, s, &r.Diagnostics)
	validateListeners(s.Listeners, sdk.Path{"spec", "listeners"}, s.InterBrokerListener, &r.Diagnostics)
	for i, b := range s.Brokers {
		validateListeners(b.Listeners, sdk.Path{"spec", "brokers", strconv.Itoa(i), "listeners"}, s.InterBrokerListener, &r.Diagnostics)
	}
}

func validateListeners(ls []listenerSpec, at sdk.Path, inter string, d *sdk.Diagnostics) {
	seen := map[string]bool{}
	broker := false
	for i, l := range ls {
		at := append(append(sdk.Path{}, at...), strconv.Itoa(i))
		if seen[strings.ToUpper(l.Name)] {
			d.AddAttributeError(append(at, "name"), "listener name used twice", "")
		}
		seen[strings.ToUpper(l.Name)] = true
		broker = broker || !l.Controller
	}
	if len(ls) > 0 && !broker {
		d.AddAttributeError(at, "no broker listener (all are controller listeners)", "")
	}
	// A malformed name is reported by the grammar check alone.
	if len(ls) > 0 && inter != "" && listenerNameRE.MatchString(inter) && !seen[strings.ToUpper(inter)] {
		d.AddAttributeError(sdk.Path{"spec", "inter_broker_listener"}, "not one of the listeners", "")
	}
}

func (kafka) Schema(_ context.Context, _ sdk.SchemaRequest, r *sdk.SchemaResponse) {
	r.Connection, r.Spec = connectionSchema(), specSchema()
}
