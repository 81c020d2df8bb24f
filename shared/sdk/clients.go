package sdk

import "context"

// ClientRef is a client identity the policy declares (clients:): harden
// issues its certificate (CN = Name) and delivers its bundle to VaultKV (a
// KV v2 path as the API names it, mount/data/path) or Dir.
type ClientRef struct {
	Name    string
	Targets []string
	VaultKV string
	Dir     string
}

// Client returns the policy's client of that name.
func (p Policy) Client(name string) (ClientRef, bool) {
	for _, c := range p.Clients {
		if c.Name == name {
			return c, true
		}
	}
	return ClientRef{}, false
}

// ClientIdentity names a client's files as the client will hold them: the
// paths rendered client configurations refer to.
type ClientIdentity struct {
	Name string
	// PEM files: certificate chain, key, CA bundle.
	CertFile, KeyFile, CAFile string
	// PKCS#12 keystore (certificate and key) and truststore (the CA), both
	// with the password in KeystorePasswordFile.
	KeystoreFile, KeystorePasswordFile, TruststoreFile string
}

// ClientRenderer renders what a client needs to connect to the target
// (CapClientConfig): e.g. Kafka client.properties and Spark options, a
// libpq/JDBC connection string. req.Client is set; artifacts name the
// client's files, never embed its key.
type ClientRenderer interface {
	RenderClient(ctx context.Context, req RenderRequest, resp *RenderResponse)
}

// SecretStore stores client bundles (CapSecretStore), e.g. in Vault KV v2,
// readable by that client alone.
type SecretStore interface {
	DeliverSecret(ctx context.Context, req DeliverSecretRequest, resp *DeliverSecretResponse)
}

// DeliverSecretRequest: the store's own target in RequestContext; the
// bundle for Client at Path.
type DeliverSecretRequest struct {
	RequestContext
	Client string
	Path   string
	// Data: file name -> content. It holds a private key: never log it.
	Data map[string][]byte
	// Metadata stored beside it (KV v2 custom_metadata).
	Metadata map[string]string
}

// DeliverSecretResponse: the version the store gave the bundle.
type DeliverSecretResponse struct {
	Version     int
	Diagnostics Diagnostics
}

// CARotator is the issuer's side of a staged CA rotation (CapCARotation).
type CARotator interface {
	RotateCA(ctx context.Context, req RotateCARequest, resp *RotateCAResponse)
}

// RotateCA operations (see the proto for what each does; all idempotent).
const (
	CAStatus     = "status"
	CAPrepare    = "prepare"
	CAActivate   = "activate"
	CADeactivate = "deactivate"
	CAFinish     = "finish"
	CADiscard    = "discard"
)

// RotateCARequest: the issuer's own target in RequestContext.
type RotateCARequest struct {
	RequestContext
	Operation string
}

// RotateCAResponse: the current and the prepared next root (PEM), and
// which intermediate signs now ("current" or "next").
type RotateCAResponse struct {
	CurrentRootPEM, NextRootPEM []byte
	Signing                     string
	Diagnostics                 Diagnostics
}
