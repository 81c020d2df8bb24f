// Package wire is what both ends of the plugin protocol share: the
// go-plugin handshake, message limits, the one-time channel certificates and
// the gRPC glue. It is internal to the SDK module: plugins reach it through
// package sdk (Serve), hosts through package hostclient.
package wire

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pb "github.com/harden-dev/harden/shared/sdk/internal/targetv1"
)

// ProtocolVersion is the major version of proto/harden/target/v1; the SDK
// module's major version follows it.
const ProtocolVersion = 1

// MaxMessageSize bounds one gRPC message. Rendered artifacts (certificate
// bundles, keystores, config files) and verify reports of large object-store
// samples exceed gRPC's 4 MiB default; 64 MiB keeps headroom while still
// bounding what a broken plugin can make the host allocate.
const MaxMessageSize = 64 << 20

// Handshake is go-plugin's UX guard against running a plugin by hand; it is
// not a security measure (SecureConfig and the mutual TLS channel are).
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "HARDEN_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "6f1d0b7e-harden-target-plugin",
}

// PluginKey names the one plugin in the go-plugin set.
const PluginKey = "target"

// EnvTLSFD names the inherited file descriptor carrying the plugin's
// one-time TLS material.
const EnvTLSFD = "HARDEN_PLUGIN_TLS_FD"

// TLSServerName is the name in the plugin's one-time server certificate.
const TLSServerName = "localhost"

// GRPCTarget is the go-plugin glue for protocol v1. Impl is nil on the
// host side.
type GRPCTarget struct {
	plugin.NetRPCUnsupportedPlugin
	Impl pb.TargetServiceServer
}

func (p *GRPCTarget) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterTargetServiceServer(s, p.Impl)
	return nil
}

func (p *GRPCTarget) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return pb.NewTargetServiceClient(c), nil
}

// Plugins is the versioned plugin set; server is nil on the host side.
func Plugins(server pb.TargetServiceServer) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{ProtocolVersion: {PluginKey: &GRPCTarget{Impl: server}}}
}

// NewServer adapts a plugin (an sdk.Plugin) to the wire; package sdk sets it
// so hostclient.InProcess can serve a plugin without linking the other way.
var NewServer func(impl any) pb.TargetServiceServer

// TargetSecrets returns an sdk.Target's resolved secrets for the wire; set
// by package sdk (the field is unexported to plugins).
var TargetSecrets func(target any) map[string][]byte

// ValidUTF8 forces text to valid UTF-8: protobuf refuses to marshal invalid
// strings and the whole response would be lost for one bad byte of evidence.
func ValidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// OneTimeCert is one side of the host-plugin channel.
type OneTimeCert struct {
	PEMCert, PEMKey []byte
	Cert            *x509.Certificate
}

// NewOneTimeCert makes a self-signed P-256 certificate for the channel.
func NewOneTimeCert(cn string, usage x509.ExtKeyUsage) (OneTimeCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return OneTimeCert{}, err
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return OneTimeCert{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: sn, Subject: pkix.Name{CommonName: cn, Organization: []string{"harden one-time plugin channel"}},
		DNSNames: []string{TLSServerName}, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(48 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return OneTimeCert{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return OneTimeCert{}, err
	}
	cert, _ := x509.ParseCertificate(der)
	return OneTimeCert{PEMCert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		PEMKey: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), Cert: cert}, nil
}
