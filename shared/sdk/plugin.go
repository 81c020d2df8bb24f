package sdk

import "context"

// Plugin is what every target plugin implements.
type Plugin interface {
	Metadata(ctx context.Context, req MetadataRequest, resp *MetadataResponse)
	Schema(ctx context.Context, req SchemaRequest, resp *SchemaResponse)
}

// Renderer produces hardened configuration without touching the network.
type Renderer interface {
	Render(ctx context.Context, req RenderRequest, resp *RenderResponse)
}

// Planner reads the live target and lists the changes Apply would make.
type Planner interface {
	Plan(ctx context.Context, req PlanRequest, resp *PlanResponse)
}

// Applier changes the live target safely: it never half-applies and never
// locks the operator out; a second Apply changes nothing.
type Applier interface {
	Apply(ctx context.Context, req ApplyRequest, resp *ApplyResponse)
}

// Verifier observes the live target and reports checks with evidence.
type Verifier interface {
	Verify(ctx context.Context, req VerifyRequest, resp *VerifyResponse)
}

// SpecValidator checks a spec beyond what its JSON Schema expresses (no network).
type SpecValidator interface {
	ValidateSpec(ctx context.Context, req ValidateSpecRequest, resp *ValidateSpecResponse)
}

// Issuer issues certificates for other targets (a CA source such as Vault PKI).
type Issuer interface {
	IssueCertificate(ctx context.Context, req IssueCertificateRequest, resp *IssueCertificateResponse)
}

// Capability names an optional feature a plugin offers.
type Capability string

const (
	CapRender Capability = "render"
	CapPlan   Capability = "plan"
	CapApply  Capability = "apply"
	CapVerify Capability = "verify"
	CapIssuer Capability = "issuer"
	// CapInventory: the plugin implements Inventorier.
	CapInventory Capability = "inventory"
	// CapSecretStore: the plugin implements SecretStore.
	CapSecretStore Capability = "secret_store"
	// CapClientConfig: the plugin implements ClientRenderer.
	CapClientConfig Capability = "client_config"
	// CapCARotation: the plugin implements CARotator.
	CapCARotation Capability = "ca_rotation"
)

// CapabilitiesOf derives the capabilities from the interfaces p implements.
func CapabilitiesOf(p Plugin) []Capability {
	var caps []Capability
	if _, ok := p.(Renderer); ok {
		caps = append(caps, CapRender)
	}
	if _, ok := p.(Planner); ok {
		caps = append(caps, CapPlan)
	}
	if _, ok := p.(Applier); ok {
		caps = append(caps, CapApply)
	}
	if _, ok := p.(Verifier); ok {
		caps = append(caps, CapVerify)
	}
	if _, ok := p.(Issuer); ok {
		caps = append(caps, CapIssuer)
	}
	if _, ok := p.(Inventorier); ok {
		caps = append(caps, CapInventory)
	}
	if _, ok := p.(SecretStore); ok {
		caps = append(caps, CapSecretStore)
	}
	if _, ok := p.(ClientRenderer); ok {
		caps = append(caps, CapClientConfig)
	}
	if _, ok := p.(CARotator); ok {
		caps = append(caps, CapCARotation)
	}
	return caps
}
