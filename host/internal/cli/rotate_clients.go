package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/harden-dev/harden/host/internal/certstore"
	"github.com/harden-dev/harden/host/internal/engine"
	"github.com/harden-dev/harden/host/internal/policy"
	"github.com/harden-dev/harden/host/internal/rotate"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// Client identities (the policy's clients:): harden makes each client's key
// here, has the certificate source sign its CSR, renders the client's
// configuration for each of its targets (through the target's plugin) and
// delivers the bundle — to Vault KV v2 through the certificate source's
// plugin, or to a directory. The store keeps the pair (and the one it
// replaced) under <store_dir>/clients/<name>. A bundle is due when its
// certificate is, when --force-renew says so, or when what is delivered
// is not the stored certificate (missing, older, changed by hand).

// clientCA: what a staged CA rotation asks of a client's step.
type clientCA struct {
	// dueCA: the certificate must chain to this root (nil: the bundle).
	dueCA []byte
	// redeliver: deliver the current pair again with the phase's bundle,
	// for this reason, even when nothing is due.
	redeliver string
}

func rotateClient(ctx context.Context, s *session, c policy.Client, o rotateOptions, io IO) rotateTargetReport {
	return rotateClientCA(ctx, s, c, o, clientCA{})
}

func rotateClientCA(ctx context.Context, s *session, c policy.Client, o rotateOptions, ca clientCA) rotateTargetReport {
	tctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	iss, err := s.eng.ClientIssuer(tctx, s.pol, c)
	if err != nil {
		return rotateTargetReport{Status: "error", Message: err.Error()}
	}
	store := iss.Store
	cur, err := store.Current("client")
	if err != nil {
		return rotateTargetReport{Status: "error", Message: err.Error()}
	}
	now := clock(s.eng)
	want := iss.ClientWant()
	if ca.dueCA != nil {
		want.CAPEM = ca.dueCA
	}
	why := rotate.Due(cur, want, store.RenewBefore, now)
	if why == "" && o.force {
		why = "--force-renew"
	}
	if why == "" && ca.redeliver != "" {
		why = "the delivered bundle: " + ca.redeliver
	}
	if why == "" {
		// The store is current; is it what the client was given?
		delivered, err := deliveredChain(tctx, s, c)
		switch {
		case err != nil:
			why = "the delivered bundle cannot be read back (" + err.Error() + ")"
		case !bytes.Equal(leafDER(delivered), leafDER(cur.Chain)):
			why = "the delivered bundle does not hold the stored certificate"
		}
	}
	rep := rotateTargetReport{}
	l := rotate.Leaf(cur)
	if why == "" {
		rep.Status = "not_due"
		rep.Message = fmt.Sprintf("client certificate serial %s valid until %s, renew at %s; delivered to %s", rotate.Serial(l),
			l.NotAfter.UTC().Format(time.RFC3339), l.NotAfter.Add(-store.RenewBefore).UTC().Format(time.RFC3339), deliveryName(c))
		return rep
	}
	n := renewalReport{Kind: "client", Reason: why, OldSerial: serialOf(cur)}
	if o.dryRun {
		rep.Status, rep.Renewed = "would_renew", []renewalReport{n}
		return rep
	}
	next := cur
	reissue := !strings.HasPrefix(why, "the delivered bundle") || !cur.Valid()
	if reissue {
		w, sign := iss.Want("client")
		key, csr, err := certstore.NewKeyAndCSR(w.CommonName, nil)
		if err != nil {
			return rotateTargetReport{Status: "error", Message: err.Error()}
		}
		chain, err := sign(csr)
		if err != nil {
			return rotateTargetReport{Status: "error", Message: "issuing the client certificate: " + err.Error()}
		}
		next = certstore.Pair{Chain: chain, Key: key}
		if bad := rotate.Due(next, w, 0, now); bad != "" {
			return rotateTargetReport{Status: "error", Message: "the issued client certificate is not usable: " + bad}
		}
	}
	bundle, meta, err := clientBundle(tctx, s, c, iss, next)
	if err != nil {
		return rotateTargetReport{Status: "error", Message: err.Error()}
	}
	version, err := deliver(tctx, s, c, bundle, meta)
	if err != nil {
		return rotateTargetReport{Status: "error", Message: "delivery to " + deliveryName(c) + " failed; the stored certificate is unchanged: " + err.Error()}
	}
	// Read back what was delivered: the client must find this certificate.
	got, err := deliveredChain(tctx, s, c)
	if err != nil || !bytes.Equal(leafDER(got), leafDER(next.Chain)) {
		msg := "the delivered bundle does not read back with the new certificate"
		if err != nil {
			msg += ": " + err.Error()
		}
		return rotateTargetReport{Status: "error", Message: msg}
	}
	if reissue {
		if err := store.Stage("client", next, cur); err != nil {
			return rotateTargetReport{Status: "error", Message: err.Error()}
		}
	}
	lf := rotate.Leaf(next)
	n.NewSerial, n.NotAfter, n.RenewAt = rotate.Serial(lf), lf.NotAfter, lf.NotAfter.Add(-store.RenewBefore)
	if !reissue {
		n.OldSerial = ""
	}
	rep.Status, rep.Renewed = "renewed", []renewalReport{n}
	rep.Message = "delivered to " + deliveryName(c)
	if version > 0 {
		rep.Message += fmt.Sprintf(" (version %d)", version)
	}
	rep.Message += fmt.Sprintf("; configurations for %s", strings.Join(c.Targets, ", "))
	return rep
}

func deliveryName(c policy.Client) string {
	if c.VaultKV != "" {
		return "Vault KV " + c.VaultKV
	}
	return c.Dir
}

func leafDER(chainPEM []byte) []byte {
	certs, err := sdk.ParseCertificatesPEM(chainPEM)
	if err != nil || len(certs) == 0 {
		return nil
	}
	return certs[0].Raw
}

// clientBundle builds the files a client gets: its chain and key, the CA,
// PKCS#12 key- and truststore with a fresh password, and its configuration
// for each of its targets, rendered by that target's plugin with the
// paths under the client's install_dir.
func clientBundle(ctx context.Context, s *session, c policy.Client, iss *engine.Issuer, pair certstore.Pair) (map[string][]byte, map[string]string, error) {
	f := policy.ClientFiles
	tc, err := tls.X509KeyPair(pair.Chain, pair.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("client %s: %w", c.Name, err)
	}
	certs, err := sdk.ParseCertificatesPEM(pair.Chain)
	if err != nil {
		return nil, nil, err
	}
	cas, err := sdk.ParseCertificatesPEM(iss.CA.CABundlePEM)
	if err != nil {
		return nil, nil, err
	}
	pw := make([]byte, 24)
	rand.Read(pw)
	password := base64.RawURLEncoding.EncodeToString(pw)
	ks, err := pkcs12.Modern.Encode(tc.PrivateKey, certs[0], certs[1:], password)
	if err != nil {
		return nil, nil, fmt.Errorf("client %s: keystore: %w", c.Name, err)
	}
	ts, err := pkcs12.Modern.EncodeTrustStore(cas, password)
	if err != nil {
		return nil, nil, fmt.Errorf("client %s: truststore: %w", c.Name, err)
	}
	bundle := map[string][]byte{f.Cert: pair.Chain, f.Key: pair.Key, f.CA: iss.CA.CABundlePEM, f.Keystore: ks, f.Truststore: ts, f.Password: []byte(password)}
	in := func(name string) string { return path.Join(c.InstallDir, name) }
	ci := sdk.ClientIdentity{Name: c.Name, CertFile: in(f.Cert), KeyFile: in(f.Key), CAFile: in(f.CA), KeystoreFile: in(f.Keystore),
		KeystorePasswordFile: in(f.Password), TruststoreFile: in(f.Truststore)}
	for _, tn := range c.Targets {
		t, _ := s.pol.Target(tn)
		p := s.eng.Plugins[t.Plugin]
		if !slices.Contains(p.Meta.Capabilities, sdk.CapClientConfig) {
			return nil, nil, fmt.Errorf("client %s: plugin %s of target %s does not render client configurations", c.Name, t.Plugin, tn)
		}
		rc, err := s.eng.BaseRequest(s.pol, t, s.io.Getenv)
		if err != nil {
			return nil, nil, err
		}
		rc.Certificates = sdk.Certificates{CABundlePEM: iss.CA.CABundlePEM}
		r, err := p.Client.RenderClient(ctx, rc, ci)
		if err == nil && r.Diagnostics.HasError() {
			err = r.Diagnostics.Err()
		}
		if err != nil {
			return nil, nil, fmt.Errorf("client %s: configuration for %s: %w", c.Name, tn, err)
		}
		for _, a := range r.Artifacts {
			if a.Sensitive || bytes.Contains(a.Content, []byte("PRIVATE KEY")) || bytes.Contains(a.Content, []byte(password)) {
				return nil, nil, fmt.Errorf("client %s: plugin %s put secret material into the client configuration %s; refused", c.Name, t.Plugin, a.Path)
			}
			bundle[tn+"/"+a.Path] = a.Content
		}
	}
	leaf := certs[0]
	meta := map[string]string{"serial": rotate.Serial(leaf), "not_after": leaf.NotAfter.UTC().Format(time.RFC3339),
		"renew_at": leaf.NotAfter.Add(-s.pol.Certificates.Rotation.RenewBefore).UTC().Format(time.RFC3339), "issuer": leaf.Issuer.CommonName,
		"subject": leaf.Subject.CommonName}
	return bundle, meta, nil
}

// deliver writes the bundle to the client's Vault KV path (through the
// certificate source's plugin) or directory.
func deliver(ctx context.Context, s *session, c policy.Client, bundle map[string][]byte, meta map[string]string) (int, error) {
	if c.VaultKV != "" {
		vt, _ := s.pol.Target(s.pol.Certificates.VaultTarget)
		p := s.eng.Plugins[vt.Plugin]
		if !slices.Contains(p.Meta.Capabilities, sdk.CapSecretStore) {
			return 0, fmt.Errorf("plugin %s of target %s does not store secrets", vt.Plugin, vt.Name)
		}
		rc, err := s.eng.Request(ctx, s.pol, vt, s.io.Getenv)
		if err != nil {
			return 0, err
		}
		r, err := p.Client.DeliverSecret(ctx, sdk.DeliverSecretRequest{RequestContext: rc, Client: c.Name, Path: c.VaultKV, Data: bundle, Metadata: meta})
		if err == nil && r.Diagnostics.HasError() {
			err = r.Diagnostics.Err()
		}
		return r.Version, err
	}
	return 0, deliverDir(c.Dir, bundle)
}

// deliverDir writes the bundle into dir (0700, every file 0600), each file
// atomically; the certificate last, so a reader that sees the new
// certificate also finds its key.
func deliverDir(dir string, bundle map[string][]byte) error {
	names := make([]string, 0, len(bundle))
	for n := range bundle {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == policy.ClientFiles.Cert) != (names[j] == policy.ClientFiles.Cert) {
			return names[j] == policy.ClientFiles.Cert
		}
		return names[i] < names[j]
	})
	for _, n := range names {
		p := filepath.Join(dir, filepath.FromSlash(n))
		if !strings.HasPrefix(p, filepath.Clean(dir)+string(filepath.Separator)) {
			return fmt.Errorf("bundle file %q leaves %s", n, dir)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if err := applykit.WriteFile(p, bundle[n], 0o600, nil); err != nil {
			return err
		}
	}
	return nil
}

// deliveredChain reads back the certificate the client was given: from the
// directory, or from Vault (the certificate source's inventory).
func deliveredChain(ctx context.Context, s *session, c policy.Client) ([]byte, error) {
	if c.VaultKV == "" {
		data, err := os.ReadFile(filepath.Join(c.Dir, policy.ClientFiles.Cert))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errors.New("nothing delivered yet")
		}
		return data, err
	}
	vt, _ := s.pol.Target(s.pol.Certificates.VaultTarget)
	p := s.eng.Plugins[vt.Plugin]
	if !slices.Contains(p.Meta.Capabilities, sdk.CapInventory) {
		return nil, fmt.Errorf("plugin %s does not report an inventory", vt.Plugin)
	}
	rc, err := s.eng.Request(ctx, s.pol, vt, s.io.Getenv)
	if err != nil {
		return nil, err
	}
	inv, err := p.Client.Inventory(ctx, rc, 1)
	if err != nil {
		return nil, err
	}
	for _, it := range inv.Stored {
		if it.Name == "client/"+c.Name {
			if it.Error != "" {
				return nil, errors.New(it.Error)
			}
			return it.ChainPEM, nil
		}
	}
	return nil, fmt.Errorf("%s does not list client %s", vt.Name, c.Name)
}
