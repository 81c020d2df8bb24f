package hostclient

import (
	"time"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	pb "github.com/harden-dev/harden/shared/sdk/internal/targetv1"
	"github.com/harden-dev/harden/shared/sdk/internal/wire"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// Conversions between the author model and the wire model, host side:
// requests out, responses in. Package sdk has the other direction.

func diagsFromPB(in []*pb.Diagnostic) sdk.Diagnostics {
	var out sdk.Diagnostics
	for _, d := range in {
		sev := sdk.Error
		if d.GetSeverity() == pb.Diagnostic_SEVERITY_WARNING {
			sev = sdk.Warning
		}
		src := sdk.SourcePlugin
		switch d.GetSource() {
		case pb.Diagnostic_SOURCE_TARGET:
			src = sdk.SourceTarget
		case pb.Diagnostic_SOURCE_CONFIG:
			src = sdk.SourceConfig
		}
		out = append(out, sdk.Diagnostic{Severity: sev, Summary: d.GetSummary(), Detail: d.GetDetail(),
			Attribute: sdk.Path(d.GetAttribute()), Source: src, Code: d.GetCode()})
	}
	return out
}

func capsFromPB(in []pb.Capability) []sdk.Capability {
	var out []sdk.Capability
	for _, c := range in {
		for k, v := range capToPB {
			if v == c {
				out = append(out, k)
			}
		}
	}
	return out
}

func u32s(in []uint16) []uint32 {
	out := make([]uint32, len(in))
	for i, v := range in {
		out[i] = uint32(v)
	}
	return out
}

func profileToPB(p tlsprofile.Profile) *pb.TLSProfile {
	versions := make([]string, len(p.Versions))
	for i, v := range p.Versions {
		versions[i] = tlsprofile.VersionName(v)
	}
	return &pb.TLSProfile{
		Name: p.Name, Guideline: p.Guideline, Versions: versions,
		Tls12CipherSuites: u32s(p.TLS12Suites), Tls13CipherSuites: u32s(p.TLS13Suites),
		Groups: p.Groups, CertificateTypes: p.CertificateTypes,
		MaxCertificateLifespanDays:         uint32(p.MaxCertificateLifespanDays),
		RecommendedCertificateLifespanDays: uint32(p.RecommendedCertLifespanDays),
		ServerPreferredOrder:               p.ServerPreferredOrder,
		RsaMinKeyBits:                      uint32(p.RSAMinKeyBits), EcdhMinBits: uint32(p.ECDHMinBits), StrictGroups: p.StrictGroups,
		InsecureReason: p.InsecureReason,
	}
}

func policyToPB(p sdk.Policy) *pb.PolicyContext {
	targets := make([]*pb.TargetRef, 0, len(p.Targets))
	for _, t := range p.Targets {
		eps := make([]*pb.Endpoint, 0, len(t.Endpoints))
		for _, e := range t.Endpoints {
			eps = append(eps, &pb.Endpoint{Name: e.Name, Address: e.Address})
		}
		targets = append(targets, &pb.TargetRef{Name: t.Name, Plugin: t.Plugin, Endpoints: eps,
			CertificateNames: t.CertificateNames, Mtls: t.MTLS})
	}
	alerts := make([]int64, len(p.Rotation.AlertAt))
	for i, a := range p.Rotation.AlertAt {
		alerts[i] = int64(a / time.Second)
	}
	return &pb.PolicyContext{
		ApiVersion: p.APIVersion, Profile: profileToPB(p.Profile),
		Rotation: &pb.Rotation{MaxLifetimeSeconds: int64(p.Rotation.MaxLifetime / time.Second),
			RenewBeforeSeconds: int64(p.Rotation.RenewBefore / time.Second), AlertAtSeconds: alerts},
		MtlsScope: p.MTLSScope, Targets: targets, CertificateSource: p.CertificateSource, Clients: clientsToPB(p.Clients),
	}
}

func clientsToPB(in []sdk.ClientRef) []*pb.ClientRef {
	out := make([]*pb.ClientRef, 0, len(in))
	for _, c := range in {
		out = append(out, &pb.ClientRef{Name: c.Name, Targets: c.Targets, VaultKv: c.VaultKV, Dir: c.Dir})
	}
	return out
}

func targetToPB(t sdk.Target) *pb.TargetConfig {
	return &pb.TargetConfig{Name: t.Name, ConnectionJson: t.Connection, SpecJson: t.Spec, Secrets: wire.TargetSecrets(t)}
}

func certsToPB(c sdk.Certificates) *pb.CertificateMaterial {
	return &pb.CertificateMaterial{CertificateChainPem: c.ChainPEM, PrivateKeyPem: c.KeyPEM, CaBundlePem: c.CABundlePEM,
		ClientCertificateChainPem: c.ClientChainPEM, ClientPrivateKeyPem: c.ClientKeyPEM, CrlPem: c.CRLPEM}
}

func artifactsFromPB(in []*pb.Artifact) []sdk.Artifact {
	var out []sdk.Artifact
	for _, a := range in {
		out = append(out, sdk.Artifact{Path: a.GetPath(), Content: a.GetContent(), Mode: a.GetMode(), Sensitive: a.GetSensitive(), Description: a.GetDescription()})
	}
	return out
}

func changesFromPB(in []*pb.Change) []sdk.Change {
	var out []sdk.Change
	for _, c := range in {
		action := sdk.Action("")
		for k, v := range actionToPB {
			if v == c.GetAction() {
				action = k
			}
		}
		out = append(out, sdk.Change{Resource: c.GetResource(), Action: action, Before: c.GetBefore(), After: c.GetAfter(),
			Sensitive: c.GetSensitive(), RequiresRestart: c.GetRequiresRestart(), Description: c.GetDescription(), CertificateMaterial: c.GetCertificateMaterial()})
	}
	return out
}

func checksFromPB(in []*pb.Check) []sdk.Check {
	var out []sdk.Check
	for _, c := range in {
		out = append(out, sdk.Check{ID: c.GetId(), Status: checks.Status(c.GetStatus()), Severity: checks.Severity(c.GetSeverity()),
			Title: c.GetTitle(), Evidence: c.GetEvidence(), Remediation: c.GetRemediation(), References: c.GetReferences(),
			Subject: c.GetSubject(), Inconclusive: int(c.GetInconclusive()), ConfigurationOnly: c.GetConfigurationOnly()})
	}
	return out
}

var actionToPB = map[sdk.Action]pb.Change_Action{sdk.Create: pb.Change_ACTION_CREATE, sdk.Update: pb.Change_ACTION_UPDATE,
	sdk.Delete: pb.Change_ACTION_DELETE, sdk.NoOp: pb.Change_ACTION_NOOP}

var capToPB = map[sdk.Capability]pb.Capability{
	sdk.CapRender: pb.Capability_CAPABILITY_RENDER, sdk.CapPlan: pb.Capability_CAPABILITY_PLAN,
	sdk.CapApply: pb.Capability_CAPABILITY_APPLY, sdk.CapVerify: pb.Capability_CAPABILITY_VERIFY,
	sdk.CapIssuer: pb.Capability_CAPABILITY_ISSUER, sdk.CapInventory: pb.Capability_CAPABILITY_INVENTORY,
	sdk.CapSecretStore: pb.Capability_CAPABILITY_SECRET_STORE, sdk.CapClientConfig: pb.Capability_CAPABILITY_CLIENT_CONFIG, sdk.CapCARotation: pb.Capability_CAPABILITY_CA_ROTATION,
}

func certsFromPB(in *pb.CertificateMaterial) sdk.Certificates {
	return sdk.Certificates{ChainPEM: in.GetCertificateChainPem(), KeyPEM: in.GetPrivateKeyPem(), CABundlePEM: in.GetCaBundlePem(),
		ClientChainPEM: in.GetClientCertificateChainPem(), ClientKeyPEM: in.GetClientPrivateKeyPem(), CRLPEM: in.GetCrlPem()}
}

func listenersFromPB(in []*pb.ServedListener) []sdk.ServedListener {
	out := make([]sdk.ServedListener, 0, len(in))
	for _, l := range in {
		hs := make([]sdk.ServedHandshake, 0, len(l.GetHandshakes()))
		for _, h := range l.GetHandshakes() {
			hs = append(hs, sdk.ServedHandshake{ChainPEM: h.GetChainPem(), Version: h.GetVersion(), Outcome: h.GetOutcome(), Evidence: h.GetEvidence(),
				ClientCertRequested: h.GetClientCertificateRequested()})
		}
		out = append(out, sdk.ServedListener{Name: l.GetName(), Address: l.GetAddress(), Handshakes: hs, ReloadsOn: l.GetReloadsOn(), Error: l.GetError()})
	}
	return out
}

func storedFromPB(in []*pb.StoredItem) []sdk.StoredItem {
	out := make([]sdk.StoredItem, 0, len(in))
	for _, it := range in {
		var created time.Time
		if it.GetLatestCreatedUnix() != 0 {
			created = time.Unix(it.GetLatestCreatedUnix(), 0).UTC()
		}
		out = append(out, sdk.StoredItem{Kind: it.GetKind(), Name: it.GetName(), Location: it.GetLocation(), ChainPEM: it.GetChainPem(),
			LatestVersion: int(it.GetLatestVersion()), LatestCreated: created,
			AutoRotatePeriod: time.Duration(it.GetAutoRotatePeriodSeconds()) * time.Second, KeyType: it.GetKeyType(), Error: it.GetError(),
			Serial: it.GetSerial(), NotAfter: unixTime(it.GetNotAfterUnix())})
	}
	return out
}

func unixTime(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

func endpointScansFromPB(in []*pb.EndpointScan) []sdk.EndpointScan {
	out := make([]sdk.EndpointScan, 0, len(in))
	for _, e := range in {
		vs := make([]sdk.VersionObservation, 0, len(e.GetVersions()))
		for _, v := range e.GetVersions() {
			vs = append(vs, sdk.VersionObservation{Version: v.GetVersion(), Outcome: v.GetOutcome(), Evidence: v.GetEvidence(), SuitesIncomplete: v.GetSuitesIncomplete()})
		}
		ss := make([]sdk.SuiteObservation, 0, len(e.GetSuites()))
		for _, c := range e.GetSuites() {
			if c.GetId() > 0xffff {
				continue // not a TLS cipher suite id
			}
			ss = append(ss, sdk.SuiteObservation{Version: c.GetVersion(), ID: uint16(c.GetId()), Name: c.GetName()})
		}
		out = append(out, sdk.EndpointScan{Name: e.GetName(), Address: e.GetAddress(), Dialect: e.GetDialect(), Error: e.GetError(),
			Versions: vs, Suites: ss, Groups: e.GetGroups(), GroupsIncomplete: e.GetGroupsIncomplete(), ChainDER: e.GetChainDer(),
			TrustChecked: e.GetTrustChecked(), TrustError: e.GetTrustError(), ClientCertRequested: e.GetClientCertificateRequested(),
			NoClientCert: e.GetNoClientCertificate(), Plaintext: e.GetPlaintext(), Inconclusive: int(e.GetInconclusive())})
	}
	return out
}
