// Metadata, configuration types and schemas, connection.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/harden-dev/harden/shared/sdk"
)

const version = "0.1.0"

type objectStore struct{}

type connection struct {
	// Endpoint is the HTTPS S3 endpoint; HTTPEndpoint the plaintext one, if
	// the server has one (verify proves requests over it are refused).
	Endpoint     string `json:"endpoint" schema:"required,pattern=^https://" jsonschema:"HTTPS S3 endpoint"`
	HTTPEndpoint string `json:"http_endpoint" schema:"pattern=^http://" jsonschema:"the server's plaintext endpoint, if any: verify proves it refuses requests"`
	CAFile       string `json:"ca_file" jsonschema:"PEM CA that verifies the HTTPS endpoint (default: the system's roots)"`
	Region       string `json:"region" jsonschema:"S3 region of the bucket"`
	// DataDir is the server's data directory when harden runs on the same
	// host: verify proves a canary is not stored in plaintext there.
	DataDir       string `json:"data_dir" jsonschema:"server data directory, when harden runs on its host: at-rest canary"`
	AccessKeyEnv  string `json:"access_key_env" jsonschema:"environment variable holding the S3 access key"`
	AccessKeyFile string `json:"access_key_file" jsonschema:"file holding the S3 access key"`
	SecretKeyEnv  string `json:"secret_key_env" jsonschema:"environment variable holding the S3 secret key"`
	SecretKeyFile string `json:"secret_key_file" jsonschema:"file holding the S3 secret key"`
}

type spec struct {
	Bucket string  `json:"bucket" schema:"required,minLength=3"`
	SSE    sseSpec `json:"sse"`
	// SensitivePrefixes require SSE-KMS whatever the default (e.g. pii/).
	SensitivePrefixes []string `json:"sensitive_prefixes" schema:"items.pattern=^[^*?]+/$" jsonschema:"prefixes whose uploads must use SSE-KMS (e.g. pii/)"`
	// Sample: how many objects verify inspects with HeadObject (default 100).
	Sample    int    `json:"sample" schema:"minimum=0" jsonschema:"objects verify inspects with HeadObject (default 100)"`
	BackupDir string `json:"backup_dir" jsonschema:"where apply keeps the previous policy and encryption config (default ~/.local/state/harden/backups)"`
	// Envelope: objects under Prefix must be envelope-encrypted with KEK.
	Envelope *envelopeSpec `json:"envelope" jsonschema:"objects under prefix must be envelope-encrypted (harden objectstore put)"`
}

type envelopeSpec struct {
	KEK    string `json:"kek" schema:"required" jsonschema:"KEK id in the records, e.g. vault:transit/lake-kek"`
	Prefix string `json:"prefix" jsonschema:"key prefix whose objects must be envelope-encrypted, e.g. curated/"`
}

type sseSpec struct {
	// Algorithm: aws:kms (with KMSKeyID) or AES256 (SSE-S3).
	Algorithm string `json:"algorithm" schema:"enum=aws:kms|AES256" jsonschema:"default bucket encryption: aws:kms (SSE-KMS, with kms_key_id) or AES256 (SSE-S3; the default)"`
	KMSKeyID  string `json:"kms_key_id" jsonschema:"KMS key id for aws:kms (not the envelope KEK)"`
}

// The schemas are derived from the types the requests decode into.
var (
	connectionSchema = sdk.LazySchemaFor[connection]("S3 connection")
	specSchema       = sdk.LazySchemaFor[spec]("Object store spec")
)

func (objectStore) Metadata(_ context.Context, _ sdk.MetadataRequest, r *sdk.MetadataResponse) {
	r.Name, r.Version = "objectstore", version
	r.Description = "S3-compatible object stores: default encryption and deny policies applied, proven by refused requests and encrypted bytes on disk"
}

func (objectStore) Schema(_ context.Context, _ sdk.SchemaRequest, r *sdk.SchemaResponse) {
	r.Connection, r.Spec = connectionSchema(), specSchema()
}

func (objectStore) ValidateSpec(_ context.Context, q sdk.ValidateSpecRequest, r *sdk.ValidateSpecResponse) {
	_, s, ok := sdk.Decode[connection, spec](q.Target, &r.Diagnostics)
	if !ok {
		return
	}
	if s.SSE.algorithm() == "aws:kms" && s.SSE.KMSKeyID == "" {
		r.Diagnostics.AddAttributeError(sdk.Path{"spec", "sse", "kms_key_id"}, "SSE-KMS needs a key id", "")
	}
}

func (s sseSpec) algorithm() string {
	if s.Algorithm == "" {
		return "AES256"
	}
	return s.Algorithm
}

type target struct {
	conn connection
	spec spec
	cl   *minio.Client
	// dataFS is connection.data_dir as the at-rest search reads it (nil:
	// os.DirFS; tests put a file system that refuses some files here).
	dataFS fs.FS
}

// open decodes the target and makes an S3 client for url (the HTTPS
// endpoint unless another is given).
func open(q sdk.RequestContext, d *sdk.Diagnostics) (*target, bool) {
	c, s, ok := sdk.Decode[connection, spec](q.Target, d)
	if !ok {
		return nil, false
	}
	t := &target{conn: c, spec: s}
	cl, err := t.client(q, t.conn.Endpoint)
	if err != nil {
		d.AddTargetError("objectstore.connect", "cannot set up the S3 client", err)
		return nil, false
	}
	t.cl = cl
	return t, true
}

// clientTLS is the S3 client's TLS (sdk.ClientTLS): connection.ca_file
// when set, else the system's roots — an S3 endpoint is often a public
// service, so the policy's CA is trusted for it only through ca_file — and
// no client certificate. A ca_file that cannot be read or holds anything
// that is not a whole certificate is an error naming it.
func clientTLS(caFile string) (*tls.Config, error) {
	cfg, err := sdk.ClientTLS(sdk.Certificates{}, sdk.ClientTLSOptions{CAFile: caFile, SystemRoots: true, NoClientCertificate: true})
	switch {
	case err != nil && caFile != "":
		return nil, fmt.Errorf("connection.ca_file %s: %w", caFile, err)
	case err != nil:
		return nil, err
	}
	return cfg, nil
}

// caPool is connection.ca_file as a pool (see clientTLS).
func caPool(file string) (*x509.CertPool, error) {
	cfg, err := clientTLS(file)
	if err != nil {
		return nil, err
	}
	return cfg.RootCAs, nil
}

func (t *target) client(q sdk.RequestContext, endpoint string) (*minio.Client, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	ak, _ := q.Target.Secret("access_key")
	sk, _ := q.Target.Secret("secret_key")
	if ak == "" || sk == "" {
		return nil, fmt.Errorf("no S3 credentials: set connection.access_key_env/_file and secret_key_env/_file")
	}
	tcfg, err := clientTLS(t.conn.CAFile)
	if err != nil {
		return nil, err
	}
	return minio.New(u.Host, &minio.Options{
		Creds:     credentials.NewStaticV4(strings.TrimSpace(ak), strings.TrimSpace(sk), ""),
		Secure:    u.Scheme == "https",
		Region:    t.conn.Region,
		Transport: &http.Transport{TLSClientConfig: tcfg, ResponseHeaderTimeout: 15 * time.Second, MaxIdleConnsPerHost: 16},
	})
}
