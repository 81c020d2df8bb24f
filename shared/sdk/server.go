package sdk

import (
	"context"
	"fmt"
	"sync"

	pb "github.com/harden-dev/harden/shared/sdk/internal/targetv1"
)

// server adapts a Plugin to the wire protocol. It validates every request's
// target blocks against the plugin's schemas before the plugin sees them and
// cancels every in-flight request on Stop.
type server struct {
	pb.UnimplementedTargetServiceServer
	impl Plugin

	schemaOnce sync.Once
	connSchema *admission
	specSchema *admission
	schemaDiag Diagnostics

	mu       sync.Mutex
	stopCtx  context.Context
	stopFunc context.CancelFunc
}

func newServer(impl Plugin) *server {
	s := &server{impl: impl}
	s.stopCtx, s.stopFunc = context.WithCancel(context.Background())
	return s
}

// requestContext derives a context that ends when the gRPC call ends or Stop
// is called, whichever comes first.
func (s *server) requestContext(ctx context.Context) (context.Context, context.CancelFunc) {
	s.mu.Lock()
	stopCtx := s.stopCtx
	s.mu.Unlock()
	ctx, cancel := context.WithCancelCause(ctx)
	unregister := context.AfterFunc(stopCtx, func() { cancel(errStopped) })
	return ctx, func() { unregister(); cancel(nil) }
}

var errStopped = fmt.Errorf("stopped by the host")

func (s *server) Stop(context.Context, *pb.StopRequest) (*pb.StopResponse, error) {
	s.mu.Lock()
	s.stopFunc()
	s.stopCtx, s.stopFunc = context.WithCancel(context.Background())
	s.mu.Unlock()
	return &pb.StopResponse{}, nil
}

func (s *server) GetMetadata(ctx context.Context, _ *pb.GetMetadataRequest) (*pb.GetMetadataResponse, error) {
	ctx, done := s.requestContext(ctx)
	defer done()
	var resp MetadataResponse
	s.call(&resp.Diagnostics, func() { s.impl.Metadata(ctx, MetadataRequest{}, &resp) })
	var caps []pb.Capability
	for _, c := range CapabilitiesOf(s.impl) {
		caps = append(caps, capToPB[c])
	}
	return &pb.GetMetadataResponse{Name: resp.Name, Version: resp.Version, Description: validUTF8(resp.Description),
		Capabilities: caps, Diagnostics: diagsToPB(resp.Diagnostics)}, nil
}

func (s *server) schemas(ctx context.Context) (*SchemaResponse, Diagnostics) {
	var resp SchemaResponse
	s.call(&resp.Diagnostics, func() { s.impl.Schema(ctx, SchemaRequest{}, &resp) })
	return &resp, resp.Diagnostics
}

func (s *server) GetSchema(ctx context.Context, _ *pb.GetSchemaRequest) (*pb.GetSchemaResponse, error) {
	ctx, done := s.requestContext(ctx)
	defer done()
	resp, diags := s.schemas(ctx)
	return &pb.GetSchemaResponse{ConnectionSchema: resp.Connection, SpecSchema: resp.Spec, Diagnostics: diagsToPB(diags)}, nil
}

// compiledSchemas compiles the plugin's schemas once.
func (s *server) compiledSchemas(ctx context.Context) (*admission, *admission, Diagnostics) {
	s.schemaOnce.Do(func() {
		resp, diags := s.schemas(ctx)
		s.schemaDiag = diags
		var err error
		if s.connSchema, err = newAdmission("connection schema", resp.Connection); err != nil {
			s.schemaDiag.AddError("plugin declares an invalid connection schema", err.Error())
		}
		if s.specSchema, err = newAdmission("spec schema", resp.Spec); err != nil {
			s.schemaDiag.AddError("plugin declares an invalid spec schema", err.Error())
		}
	})
	return s.connSchema, s.specSchema, s.schemaDiag
}

// admit validates a request's target blocks; diagnostics with errors mean the
// plugin method must not be called.
func (s *server) admit(ctx context.Context, rc RequestContext) Diagnostics {
	conn, spec, diags := s.compiledSchemas(ctx)
	if diags.HasError() {
		return diags
	}
	diags = append(diags, conn.check(rc.Target.Connection, "connection")...)
	diags = append(diags, spec.check(rc.Target.Spec, "spec")...)
	if diags.HasError() {
		return diags
	}
	if v, ok := s.impl.(SpecValidator); ok {
		var resp ValidateSpecResponse
		s.call(&resp.Diagnostics, func() { v.ValidateSpec(ctx, ValidateSpecRequest{rc}, &resp) })
		diags = append(diags, resp.Diagnostics...)
	}
	return diags
}

// call runs a plugin method and turns a panic into an error diagnostic, so one
// bad request does not take down the plugin process with its other work.
func (s *server) call(diags *Diagnostics, f func()) {
	defer func() {
		if r := recover(); r != nil {
			diags.AddError("plugin panicked", fmt.Sprint(r))
		}
	}()
	f()
}

func (s *server) ValidateSpec(ctx context.Context, req *pb.ValidateSpecRequest) (*pb.ValidateSpecResponse, error) {
	ctx, done := s.requestContext(ctx)
	defer done()
	rc := requestContextFromPB(req, nil)
	return &pb.ValidateSpecResponse{Diagnostics: diagsToPB(s.admit(ctx, rc))}, nil
}

func unsupported(what string) Diagnostics {
	return Diagnostics{{Severity: Error, Source: SourcePlugin, Code: "plugin.unsupported", Summary: "plugin does not support " + what}}
}

func (s *server) Render(ctx context.Context, req *pb.RenderRequest) (*pb.RenderResponse, error) {
	ctx, done := s.requestContext(ctx)
	defer done()
	r, ok := s.impl.(Renderer)
	if !ok {
		return &pb.RenderResponse{Diagnostics: diagsToPB(unsupported("render"))}, nil
	}
	rc := requestContextFromPB(req, req.GetCertificates())
	resp := RenderResponse{Diagnostics: s.admit(ctx, rc)}
	if !resp.Diagnostics.HasError() {
		if cl := req.GetClient(); cl != nil {
			ci := &ClientIdentity{Name: cl.GetName(), CertFile: cl.GetCertFile(), KeyFile: cl.GetKeyFile(), CAFile: cl.GetCaFile(),
				KeystoreFile: cl.GetKeystoreFile(), KeystorePasswordFile: cl.GetKeystorePasswordFile(), TruststoreFile: cl.GetTruststoreFile()}
			cr, ok := s.impl.(ClientRenderer)
			if !ok {
				resp.Diagnostics = append(resp.Diagnostics, unsupported("client configuration rendering")...)
			} else {
				s.call(&resp.Diagnostics, func() { cr.RenderClient(ctx, RenderRequest{RequestContext: rc, Client: ci}, &resp) })
			}
		} else {
			s.call(&resp.Diagnostics, func() { r.Render(ctx, RenderRequest{RequestContext: rc}, &resp) })
		}
	}
	return &pb.RenderResponse{Artifacts: artifactsToPB(resp.Artifacts), Diagnostics: diagsToPB(resp.Diagnostics)}, nil
}

func (s *server) Plan(ctx context.Context, req *pb.PlanRequest) (*pb.PlanResponse, error) {
	ctx, done := s.requestContext(ctx)
	defer done()
	p, ok := s.impl.(Planner)
	if !ok {
		return &pb.PlanResponse{Diagnostics: diagsToPB(unsupported("plan"))}, nil
	}
	rc := requestContextFromPB(req, req.GetCertificates())
	resp := PlanResponse{Diagnostics: s.admit(ctx, rc)}
	if !resp.Diagnostics.HasError() {
		s.call(&resp.Diagnostics, func() { p.Plan(ctx, PlanRequest{rc}, &resp) })
	}
	return &pb.PlanResponse{Changes: changesToPB(resp.Changes), PlanToken: resp.PlanToken, Diagnostics: diagsToPB(resp.Diagnostics)}, nil
}

func (s *server) Apply(ctx context.Context, req *pb.ApplyRequest) (*pb.ApplyResponse, error) {
	ctx, done := s.requestContext(ctx)
	defer done()
	a, ok := s.impl.(Applier)
	if !ok {
		return &pb.ApplyResponse{Diagnostics: diagsToPB(unsupported("apply"))}, nil
	}
	rc := requestContextFromPB(req, req.GetCertificates())
	resp := ApplyResponse{Diagnostics: s.admit(ctx, rc)}
	if !resp.Diagnostics.HasError() {
		s.call(&resp.Diagnostics, func() {
			a.Apply(ctx, ApplyRequest{RequestContext: rc, PlanToken: req.GetPlanToken(), Force: req.GetForce()}, &resp)
		})
	}
	return &pb.ApplyResponse{Applied: changesToPB(resp.Applied), Diagnostics: diagsToPB(resp.Diagnostics)}, nil
}

func (s *server) Verify(ctx context.Context, req *pb.VerifyRequest) (*pb.VerifyResponse, error) {
	ctx, done := s.requestContext(ctx)
	defer done()
	v, ok := s.impl.(Verifier)
	if !ok {
		return &pb.VerifyResponse{Diagnostics: diagsToPB(unsupported("verify"))}, nil
	}
	rc := requestContextFromPB(req, req.GetCertificates())
	resp := VerifyResponse{Diagnostics: s.admit(ctx, rc)}
	if !resp.Diagnostics.HasError() {
		s.call(&resp.Diagnostics, func() { v.Verify(ctx, VerifyRequest{rc}, &resp) })
	}
	return &pb.VerifyResponse{Checks: checksToPB(resp.Checks), Diagnostics: diagsToPB(resp.Diagnostics), Endpoints: endpointScansToPB(resp.Endpoints)}, nil
}

func (s *server) IssueCertificate(ctx context.Context, req *pb.IssueCertificateRequest) (*pb.IssueCertificateResponse, error) {
	ctx, done := s.requestContext(ctx)
	defer done()
	is, ok := s.impl.(Issuer)
	if !ok {
		return &pb.IssueCertificateResponse{Diagnostics: diagsToPB(unsupported("certificate issuing"))}, nil
	}
	rc := requestContextFromPB(req, nil)
	resp := IssueCertificateResponse{Diagnostics: s.admit(ctx, rc)}
	if !resp.Diagnostics.HasError() {
		q := IssueCertificateRequest{RequestContext: rc, ForTarget: req.GetForTarget(), Usage: req.GetUsage(),
			CommonName: req.GetCommonName(), Names: req.GetNames(), TTL: secondsToDuration(req.GetTtlSeconds()), CSRPEM: req.GetCsrPem(), Issuer: req.GetIssuer()}
		s.call(&resp.Diagnostics, func() { is.IssueCertificate(ctx, q, &resp) })
	}
	return &pb.IssueCertificateResponse{Certificate: certsToPB(resp.Certificate), Diagnostics: diagsToPB(resp.Diagnostics)}, nil
}

func (s *server) Inventory(ctx context.Context, req *pb.InventoryRequest) (*pb.InventoryResponse, error) {
	ctx, done := s.requestContext(ctx)
	defer done()
	inv, ok := s.impl.(Inventorier)
	if !ok {
		return &pb.InventoryResponse{Diagnostics: diagsToPB(unsupported("inventory"))}, nil
	}
	rc := requestContextFromPB(req, req.GetCertificates())
	resp := InventoryResponse{Diagnostics: s.admit(ctx, rc)}
	if !resp.Diagnostics.HasError() {
		q := InventoryRequest{RequestContext: rc, Handshakes: max(1, int(req.GetHandshakes()))}
		s.call(&resp.Diagnostics, func() { inv.Inventory(ctx, q, &resp) })
	}
	return &pb.InventoryResponse{Listeners: listenersToPB(resp.Listeners), Stored: storedToPB(resp.Stored), Diagnostics: diagsToPB(resp.Diagnostics)}, nil
}

func (s *server) DeliverSecret(ctx context.Context, req *pb.DeliverSecretRequest) (*pb.DeliverSecretResponse, error) {
	ctx, done := s.requestContext(ctx)
	defer done()
	st, ok := s.impl.(SecretStore)
	if !ok {
		return &pb.DeliverSecretResponse{Diagnostics: diagsToPB(unsupported("secret delivery"))}, nil
	}
	rc := requestContextFromPB(req, nil)
	resp := DeliverSecretResponse{Diagnostics: s.admit(ctx, rc)}
	if !resp.Diagnostics.HasError() {
		q := DeliverSecretRequest{RequestContext: rc, Client: req.GetClient(), Path: req.GetPath(), Data: req.GetData(), Metadata: req.GetMetadata()}
		s.call(&resp.Diagnostics, func() { st.DeliverSecret(ctx, q, &resp) })
	}
	return &pb.DeliverSecretResponse{Version: int64(resp.Version), Diagnostics: diagsToPB(resp.Diagnostics)}, nil
}

func (s *server) RotateCA(ctx context.Context, req *pb.RotateCARequest) (*pb.RotateCAResponse, error) {
	ctx, done := s.requestContext(ctx)
	defer done()
	ro, ok := s.impl.(CARotator)
	if !ok {
		return &pb.RotateCAResponse{Diagnostics: diagsToPB(unsupported("CA rotation"))}, nil
	}
	rc := requestContextFromPB(req, nil)
	resp := RotateCAResponse{Diagnostics: s.admit(ctx, rc)}
	if !resp.Diagnostics.HasError() {
		s.call(&resp.Diagnostics, func() { ro.RotateCA(ctx, RotateCARequest{RequestContext: rc, Operation: req.GetOperation()}, &resp) })
	}
	return &pb.RotateCAResponse{CurrentRootPem: resp.CurrentRootPEM, NextRootPem: resp.NextRootPEM, Signing: validUTF8(resp.Signing), Diagnostics: diagsToPB(resp.Diagnostics)}, nil
}
