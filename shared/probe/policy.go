package probe

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"

	"github.com/harden-dev/harden/shared/sdk"
)

// ForRequest prepares a target and the expectations for a plugin request:
// the policy's CA verifies the server, harden's client identity (when the
// policy gives one) proves a trusted client gets in, and the profile,
// rotation windows and mTLS scope of the request's target set the bar.
func ForRequest(q sdk.RequestContext, dialect Dialect) (Target, Expectations, error) {
	t := Target{Dialect: dialect}
	if len(q.Certificates.CABundlePEM) > 0 {
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(q.Certificates.CABundlePEM) {
			return t, Expectations{}, fmt.Errorf("CA bundle holds no certificates")
		}
	}
	if len(q.Certificates.ClientChainPEM) > 0 {
		cert, err := tls.X509KeyPair(q.Certificates.ClientChainPEM, q.Certificates.ClientKeyPEM)
		if err != nil {
			return t, Expectations{}, fmt.Errorf("client certificate: %w", err)
		}
		t.ClientCert = &cert
	}
	return t, Expectations{Profile: q.Policy.Profile, RenewBefore: q.Policy.Rotation.RenewBefore,
		AlertAt: q.Policy.Rotation.AlertAt, RequireClientAuth: q.Policy.InMTLSScope(q.Target.Name)}, nil
}
