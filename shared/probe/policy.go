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
		// Strict: a bundle with a block that does not parse is refused,
		// not trusted as far as it parses (sdk.ClientTLS's rule).
		cas, err := sdk.ParseCertificatesPEM(q.Certificates.CABundlePEM)
		if err != nil {
			return t, Expectations{}, fmt.Errorf("the policy's CA bundle: %w", err)
		}
		t.RootCAs = x509.NewCertPool()
		for _, c := range cas {
			t.RootCAs.AddCert(c)
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
