package sdk

import (
	"time"

	pb "github.com/harden-dev/harden/shared/sdk/internal/targetv1"
	"github.com/harden-dev/harden/shared/sdk/internal/wire"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// Conversions between the author model and the wire model, plugin side:
// requests in, responses out. hostclient has the other direction.

func validUTF8(s string) string { return wire.ValidUTF8(s) }

func diagsToPB(ds Diagnostics) []*pb.Diagnostic {
	out := make([]*pb.Diagnostic, 0, len(ds))
	for _, d := range ds {
		sev := pb.Diagnostic_SEVERITY_ERROR
		if d.Severity == Warning {
			sev = pb.Diagnostic_SEVERITY_WARNING
		}
		src := pb.Diagnostic_SOURCE_PLUGIN
		switch d.Source {
		case SourceTarget:
			src = pb.Diagnostic_SOURCE_TARGET
		case SourceConfig:
			src = pb.Diagnostic_SOURCE_CONFIG
		}
		attr := make([]string, len(d.Attribute))
		for i, a := range d.Attribute {
			attr[i] = validUTF8(a)
		}
		out = append(out, &pb.Diagnostic{Severity: sev, Summary: validUTF8(d.Summary), Detail: validUTF8(d.Detail),
			Attribute: attr, Source: src, Code: validUTF8(d.Code)})
	}
	return out
}

var capToPB = map[Capability]pb.Capability{
	CapRender: pb.Capability_CAPABILITY_RENDER, CapPlan: pb.Capability_CAPABILITY_PLAN,
	CapApply: pb.Capability_CAPABILITY_APPLY, CapVerify: pb.Capability_CAPABILITY_VERIFY,
	CapIssuer: pb.Capability_CAPABILITY_ISSUER, CapInventory: pb.Capability_CAPABILITY_INVENTORY,
	CapSecretStore: pb.Capability_CAPABILITY_SECRET_STORE, CapClientConfig: pb.Capability_CAPABILITY_CLIENT_CONFIG, CapCARotation: pb.Capability_CAPABILITY_CA_ROTATION,
}

func u16s(in []uint32) []uint16 {
	out := make([]uint16, len(in))
	for i, v := range in {
		out[i] = uint16(v)
	}
	return out
}

func profileFromPB(in *pb.TLSProfile) tlsprofile.Profile {
	var versions []uint16
	for _, v := range in.GetVersions() {
		if pv, err := tlsprofile.ParseVersion(v); err == nil {
			versions = append(versions, pv)
		}
	}
	p := tlsprofile.Profile{
		Name: in.GetName(), Guideline: in.GetGuideline(), Versions: versions,
		TLS12Suites: u16s(in.GetTls12CipherSuites()), TLS13Suites: u16s(in.GetTls13CipherSuites()),
		Groups: in.GetGroups(), CertificateTypes: in.GetCertificateTypes(),
		MaxCertificateLifespanDays:  int(in.GetMaxCertificateLifespanDays()),
		RecommendedCertLifespanDays: int(in.GetRecommendedCertificateLifespanDays()),
		ServerPreferredOrder:        in.GetServerPreferredOrder(),
		RSAMinKeyBits:               int(in.GetRsaMinKeyBits()), ECDHMinBits: int(in.GetEcdhMinBits()),
		InsecureReason: in.GetInsecureReason(), StrictGroups: in.GetStrictGroups(),
	}
	if base, ok := tlsprofile.Named(p.Name); ok {
		p.CertificateCurves = base.CertificateCurves
	}
	return p
}

func policyFromPB(in *pb.PolicyContext) Policy {
	var targets []TargetRef
	for _, t := range in.GetTargets() {
		var eps []Endpoint
		for _, e := range t.GetEndpoints() {
			eps = append(eps, Endpoint{Name: e.GetName(), Address: e.GetAddress()})
		}
		targets = append(targets, TargetRef{Name: t.GetName(), Plugin: t.GetPlugin(), Endpoints: eps,
			CertificateNames: t.GetCertificateNames(), MTLS: t.GetMtls()})
	}
	var alerts []time.Duration
	for _, a := range in.GetRotation().GetAlertAtSeconds() {
		alerts = append(alerts, time.Duration(a)*time.Second)
	}
	return Policy{
		APIVersion: in.GetApiVersion(), Profile: profileFromPB(in.GetProfile()),
		Rotation: Rotation{MaxLifetime: time.Duration(in.GetRotation().GetMaxLifetimeSeconds()) * time.Second,
			RenewBefore: time.Duration(in.GetRotation().GetRenewBeforeSeconds()) * time.Second, AlertAt: alerts},
		MTLSScope: in.GetMtlsScope(), Targets: targets, CertificateSource: in.GetCertificateSource(), Clients: clientsFromPB(in.GetClients()),
	}
}

func clientsFromPB(in []*pb.ClientRef) []ClientRef {
	var out []ClientRef
	for _, c := range in {
		out = append(out, ClientRef{Name: c.GetName(), Targets: c.GetTargets(), VaultKV: c.GetVaultKv(), Dir: c.GetDir()})
	}
	return out
}

func targetFromPB(in *pb.TargetConfig) Target {
	return NewTarget(in.GetName(), in.GetConnectionJson(), in.GetSpecJson(), in.GetSecrets())
}

func certsToPB(c Certificates) *pb.CertificateMaterial {
	return &pb.CertificateMaterial{CertificateChainPem: c.ChainPEM, PrivateKeyPem: c.KeyPEM, CaBundlePem: c.CABundlePEM,
		ClientCertificateChainPem: c.ClientChainPEM, ClientPrivateKeyPem: c.ClientKeyPEM, CrlPem: c.CRLPEM}
}

func certsFromPB(in *pb.CertificateMaterial) Certificates {
	return Certificates{ChainPEM: in.GetCertificateChainPem(), KeyPEM: in.GetPrivateKeyPem(), CABundlePEM: in.GetCaBundlePem(),
		ClientChainPEM: in.GetClientCertificateChainPem(), ClientKeyPEM: in.GetClientPrivateKeyPem(), CRLPEM: in.GetCrlPem()}
}

type requestPB interface {
	GetPolicy() *pb.PolicyContext
	GetTarget() *pb.TargetConfig
}

func requestContextFromPB(in requestPB, certs *pb.CertificateMaterial) RequestContext {
	return RequestContext{Policy: policyFromPB(in.GetPolicy()), Target: targetFromPB(in.GetTarget()), Certificates: certsFromPB(certs)}
}

func artifactsToPB(in []Artifact) []*pb.Artifact {
	out := make([]*pb.Artifact, 0, len(in))
	for _, a := range in {
		out = append(out, &pb.Artifact{Path: validUTF8(a.Path), Content: a.Content, Mode: a.Mode, Sensitive: a.Sensitive, Description: validUTF8(a.Description)})
	}
	return out
}

var actionToPB = map[Action]pb.Change_Action{Create: pb.Change_ACTION_CREATE, Update: pb.Change_ACTION_UPDATE,
	Delete: pb.Change_ACTION_DELETE, NoOp: pb.Change_ACTION_NOOP}

func changesToPB(in []Change) []*pb.Change {
	out := make([]*pb.Change, 0, len(in))
	for _, c := range in {
		out = append(out, &pb.Change{Resource: validUTF8(c.Resource), Action: actionToPB[c.Action], Before: validUTF8(c.Before),
			After: validUTF8(c.After), Sensitive: c.Sensitive, RequiresRestart: c.RequiresRestart, Description: validUTF8(c.Description),
			CertificateMaterial: c.CertificateMaterial})
	}
	return out
}

func checksToPB(in []Check) []*pb.Check {
	out := make([]*pb.Check, 0, len(in))
	for _, c := range in {
		out = append(out, &pb.Check{Id: validUTF8(c.ID), Status: pb.Check_Status(c.Status), Severity: pb.Check_Severity(c.Severity),
			Title: validUTF8(c.Title), Evidence: validUTF8(c.Evidence), Remediation: validUTF8(c.Remediation),
			References: c.References, Subject: validUTF8(c.Subject), Inconclusive: int32(c.Inconclusive),
			ConfigurationOnly: c.ConfigurationOnly})
	}
	return out
}

func secondsToDuration(s int64) time.Duration { return time.Duration(s) * time.Second }

func listenersToPB(in []ServedListener) []*pb.ServedListener {
	out := make([]*pb.ServedListener, 0, len(in))
	for _, l := range in {
		hs := make([]*pb.ServedHandshake, 0, len(l.Handshakes))
		for _, h := range l.Handshakes {
			hs = append(hs, &pb.ServedHandshake{ChainPem: h.ChainPEM, Version: validUTF8(h.Version), Outcome: validUTF8(h.Outcome), Evidence: validUTF8(h.Evidence),
				ClientCertificateRequested: h.ClientCertRequested})
		}
		out = append(out, &pb.ServedListener{Name: validUTF8(l.Name), Address: validUTF8(l.Address), Handshakes: hs,
			ReloadsOn: validUTF8(l.ReloadsOn), Error: validUTF8(l.Error)})
	}
	return out
}

func storedToPB(in []StoredItem) []*pb.StoredItem {
	out := make([]*pb.StoredItem, 0, len(in))
	for _, it := range in {
		var created int64
		if !it.LatestCreated.IsZero() {
			created = it.LatestCreated.Unix()
		}
		out = append(out, &pb.StoredItem{Kind: validUTF8(it.Kind), Name: validUTF8(it.Name), Location: validUTF8(it.Location),
			ChainPem: it.ChainPEM, LatestVersion: int64(it.LatestVersion), LatestCreatedUnix: created,
			AutoRotatePeriodSeconds: int64(it.AutoRotatePeriod / time.Second), KeyType: validUTF8(it.KeyType), Error: validUTF8(it.Error),
			Serial: validUTF8(it.Serial), NotAfterUnix: unixOrZero(it.NotAfter)})
	}
	return out
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// endpointScansToPB converts endpoint scans for the wire.
func endpointScansToPB(in []EndpointScan) []*pb.EndpointScan {
	out := make([]*pb.EndpointScan, 0, len(in))
	for _, e := range in {
		vs := make([]*pb.VersionObservation, 0, len(e.Versions))
		for _, v := range e.Versions {
			vs = append(vs, &pb.VersionObservation{Version: validUTF8(v.Version), Outcome: validUTF8(v.Outcome), Evidence: validUTF8(v.Evidence),
				SuitesIncomplete: validUTF8(v.SuitesIncomplete)})
		}
		ss := make([]*pb.SuiteObservation, 0, len(e.Suites))
		for _, c := range e.Suites {
			ss = append(ss, &pb.SuiteObservation{Version: validUTF8(c.Version), Id: uint32(c.ID), Name: validUTF8(c.Name)})
		}
		gs := make([]string, 0, len(e.Groups))
		for _, g := range e.Groups {
			gs = append(gs, validUTF8(g))
		}
		out = append(out, &pb.EndpointScan{Name: validUTF8(e.Name), Address: validUTF8(e.Address), Dialect: validUTF8(e.Dialect),
			Error: validUTF8(e.Error), Versions: vs, Suites: ss, Groups: gs, GroupsIncomplete: validUTF8(e.GroupsIncomplete),
			ChainDer: e.ChainDER, TrustChecked: e.TrustChecked, TrustError: validUTF8(e.TrustError),
			ClientCertificateRequested: e.ClientCertRequested, NoClientCertificate: validUTF8(e.NoClientCert),
			Plaintext: validUTF8(e.Plaintext), Inconclusive: int32(e.Inconclusive)})
	}
	return out
}
