package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// MetadataRequest asks for the plugin's identity. No network.
type MetadataRequest struct{}

// MetadataResponse names the plugin. Capabilities are filled in by Serve.
type MetadataResponse struct {
	// Name must equal the binary name without "harden-plugin-".
	Name         string
	Version      string
	Description  string
	Capabilities []Capability
	Diagnostics  Diagnostics
}

// SchemaRequest asks for the JSON Schemas of the target blocks.
type SchemaRequest struct{}

// SchemaResponse holds JSON Schema 2020-12 documents. Declare
// "additionalProperties": false so unknown keys are rejected.
type SchemaResponse struct {
	Connection  []byte
	Spec        []byte
	Diagnostics Diagnostics
}

// Endpoint is one network address of a target.
type Endpoint struct {
	Name    string
	Address string
}

// TargetRef describes one target of the policy (no secrets).
type TargetRef struct {
	Name             string
	Plugin           string
	Endpoints        []Endpoint
	CertificateNames []string
	MTLS             bool
}

// Rotation is the policy's certificate rotation cadence.
type Rotation struct {
	MaxLifetime time.Duration
	RenewBefore time.Duration
	AlertAt     []time.Duration
}

// Policy is the read-only policy context sent with every request.
type Policy struct {
	APIVersion        string
	Profile           tlsprofile.Profile
	Rotation          Rotation
	MTLSScope         []string
	Targets           []TargetRef
	CertificateSource string
	// Clients are the client identities the policy declares.
	Clients []ClientRef
}

// InMTLSScope reports whether the named target must require client certificates.
func (p Policy) InMTLSScope(target string) bool { return slices.Contains(p.MTLSScope, target) }

// Target is the request's own target: its blocks and its resolved secrets.
type Target struct {
	Name string
	// Connection and Spec are JSON objects validated against the schemas.
	Connection json.RawMessage
	Spec       json.RawMessage
	secrets    map[string][]byte
}

// NewTarget builds a Target; secrets are keyed by reference name without the
// _env/_file suffix (password_env -> "password").
func NewTarget(name string, connection, spec json.RawMessage, secrets map[string][]byte) Target {
	return Target{Name: name, Connection: connection, Spec: spec, secrets: secrets}
}

// Secret returns a resolved secret of this target. Never log it.
func (t Target) Secret(name string) (string, bool) {
	v, ok := t.secrets[name]
	return string(v), ok
}

// SecretNames lists the names of the resolved secrets (not their values).
func (t Target) SecretNames() []string {
	names := make([]string, 0, len(t.secrets))
	for k := range t.secrets {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// DecodeSpec decodes the spec strictly (unknown fields are an error).
func (t Target) DecodeSpec(v any) error { return decodeStrict("spec", t.Spec, v) }

// DecodeConnection decodes the connection block strictly.
func (t Target) DecodeConnection(v any) error {
	return decodeStrict("connection", t.Connection, v)
}

func decodeStrict(what string, raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		raw = json.RawMessage("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode %s: %w", what, err)
	}
	return nil
}

// Certificates is certificate material handed to a plugin by the host.
type Certificates struct {
	// ChainPEM: leaf first, then intermediates.
	ChainPEM []byte
	// KeyPEM is the private key. Never log it; write it 0600.
	KeyPEM []byte
	// CABundlePEM holds the trust anchors.
	CABundlePEM []byte
	// ClientChainPEM and ClientKeyPEM are harden's client identity for the
	// target (mTLS), when the policy gives one. Never log the key.
	ClientChainPEM []byte
	ClientKeyPEM   []byte
	// CRLPEM is the CA's revocation list, when the policy names one.
	CRLPEM []byte
}

// RequestContext is common to every target request.
type RequestContext struct {
	Policy       Policy
	Target       Target
	Certificates Certificates
}

// ValidateSpecRequest asks for semantic validation of the target's spec.
type ValidateSpecRequest struct{ RequestContext }

// ValidateSpecResponse carries the validation diagnostics.
type ValidateSpecResponse struct{ Diagnostics Diagnostics }

// RenderRequest asks for hardened configuration (pure function). With
// Client set (a ClientRenderer), only that client's configuration.
type RenderRequest struct {
	RequestContext
	Client *ClientIdentity
}

// Artifact is one rendered file.
type Artifact struct {
	// Path is relative and slash-separated.
	Path    string
	Content []byte
	// Mode is the file mode; private keys use 0600.
	Mode        uint32
	Sensitive   bool
	Description string
}

// RenderResponse lists artifacts in a deterministic order.
type RenderResponse struct {
	Artifacts   []Artifact
	Diagnostics Diagnostics
}

// Action of a planned change.
type Action string

const (
	Create Action = "create"
	Update Action = "update"
	Delete Action = "delete"
	NoOp   Action = "no-op"
)

// Change is one planned or applied modification of the live target.
type Change struct {
	Resource        string
	Action          Action
	Before, After   string
	Sensitive       bool
	RequiresRestart bool
	Description     string
	// CertificateMaterial: only a certificate, key, CA bundle, CRL, key-
	// or truststore (or the setting naming one) changes. harden rotate
	// pushes such changes with a renewal and refuses any other.
	CertificateMaterial bool
}

// PlanRequest asks for the changes apply would make.
type PlanRequest struct{ RequestContext }

// PlanResponse lists the changes. PlanToken fingerprints the live state read.
type PlanResponse struct {
	Changes     []Change
	PlanToken   []byte
	Diagnostics Diagnostics
}

// ApplyRequest asks the plugin to apply; PlanToken is from the plan the
// operator approved (empty when none).
type ApplyRequest struct {
	RequestContext
	PlanToken []byte
	// Force: the operator overrides safety guards (harden apply --force).
	Force bool
}

// ApplyResponse lists what was changed.
type ApplyResponse struct {
	Applied     []Change
	Diagnostics Diagnostics
}

// VerifyRequest asks for checks of the live target.
type VerifyRequest struct{ RequestContext }

// Check is the shared check model.
type Check = checks.Check

// VerifyResponse carries the checks; zero checks is an error for the host.
type VerifyResponse struct {
	Checks      []Check
	Diagnostics Diagnostics
	// Endpoints: what the probe observed on each endpoint (optional; for
	// reports, see EndpointScan).
	Endpoints []EndpointScan
}

// IssueCertificateRequest asks an Issuer for a certificate for another target.
type IssueCertificateRequest struct {
	RequestContext
	ForTarget  string
	Usage      string // "server", "client", "peer" (both) or "ca" (CA bundle and CRL only)
	CommonName string
	Names      []string
	TTL        time.Duration
	// CSRPEM is the PKCS#10 request: the key stays where it was made.
	CSRPEM []byte
	// Issuer: "" the CA that signs now, "next" or "current" during a staged
	// CA rotation (CapCARotation).
	Issuer string
}

// IssueCertificateResponse carries the issued material.
type IssueCertificateResponse struct {
	Certificate Certificates
	Diagnostics Diagnostics
}
