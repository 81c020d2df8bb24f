package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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
	unlock, err := store.Lock()
	if err != nil {
		return rotateTargetReport{Status: "refused", Message: err.Error()}
	}
	defer unlock()
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
		case !delivered.holds(cur.Chain):
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
	if !o.yes {
		fmt.Fprintf(s.io.Stdout, "Renew and deliver client %s (%s)? Only 'yes' is accepted: ", c.Name, why)
		answer := make(chan string, 1)
		go func() { line, _ := bufio.NewReader(s.io.Stdin).ReadString('\n'); answer <- line }()
		select {
		case <-ctx.Done():
			return rotateTargetReport{Status: "refused", Message: "interrupted at the confirmation; nothing was changed"}
		case line := <-answer:
			if strings.TrimSpace(line) != "yes" {
				return rotateTargetReport{Status: "refused", Message: "cancelled; nothing was changed"}
			}
		}
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
		if bad := rotate.Due(next, w, store.RenewBefore, now); bad != "" {
			return rotateTargetReport{Status: "error", Message: "the issued client certificate is due at once (" + bad + "): the issuing CA ends too soon; rotate the CA (harden rotate --ca)"}
		}
	}
	// Before anything is delivered: every target that requires client
	// certificates lets the new one in (the server's own acceptance).
	if proof, err := clientLetIn(tctx, s, c, iss, next); err != nil {
		return rotateTargetReport{Status: "error", Message: err.Error() + "; nothing was delivered"}
	} else if proof != "" {
		rep.Gate = proof
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
	if err != nil || !got.holds(next.Chain) {
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

// clientLetIn presents the client's pair in a fresh handshake on every
// listener of each of its targets in the mTLS scope: each must accept.
func clientLetIn(ctx context.Context, s *session, c policy.Client, iss *engine.Issuer, pair certstore.Pair) (string, error) {
	n := 0
	for _, tn := range c.Targets {
		if !s.pol.Context().InMTLSScope(tn) {
			continue
		}
		t, _ := s.pol.Target(tn)
		p := s.eng.Plugins[t.Plugin]
		if !slices.Contains(p.Meta.Capabilities, sdk.CapInventory) {
			return "", fmt.Errorf("client %s: target %s requires client certificates, and its plugin %s reports no inventory to prove it lets the new one in", c.Name, tn, t.Plugin)
		}
		rc, err := s.eng.BaseRequest(s.pol, t, s.io.Getenv)
		if err != nil {
			return "", err
		}
		rc.Certificates = sdk.Certificates{CABundlePEM: iss.CA.CABundlePEM, ClientChainPEM: pair.Chain, ClientKeyPEM: pair.Key}
		inv, err := p.Client.Inventory(ctx, rc, 1)
		if err == nil && inv.Diagnostics.HasError() {
			err = inv.Diagnostics.Err()
		}
		if err != nil {
			return "", fmt.Errorf("client %s: checking that %s lets the new certificate in: %w", c.Name, tn, err)
		}
		if len(inv.Listeners) == 0 {
			return "", fmt.Errorf("client %s: target %s reported no listener to prove it lets the new certificate in", c.Name, tn)
		}
		for _, l := range inv.Listeners {
			if l.Error != "" {
				return "", fmt.Errorf("client %s: %s listener %s: %s", c.Name, tn, l.Name, l.Error)
			}
			if len(l.Handshakes) == 0 {
				return "", fmt.Errorf("client %s: %s listener %s: no handshake observed", c.Name, tn, l.Name)
			}
			for _, h := range l.Handshakes {
				if h.Outcome != sdk.OutcomeAccepted {
					return "", fmt.Errorf("client %s: %s listener %s at %s does not let the new certificate in (%s: %s)", c.Name, tn, l.Name, l.Address, h.Outcome, h.Evidence)
				}
				n++
			}
		}
	}
	if n == 0 {
		return "", nil
	}
	return fmt.Sprintf("the new client certificate was accepted in %d handshake(s) on the targets that require one", n), nil
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
	configs, err := renderClientConfigs(ctx, s, c, iss.CA.CABundlePEM, password)
	if err != nil {
		return nil, nil, err
	}
	for name, content := range configs {
		bundle[name] = content
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
	return 0, deliverDir(c.Dir, bundle, meta["serial"])
}

// deliverDir makes dir show the whole new bundle at once: the files are
// written (0600) into a fresh version directory beside it
// (.<name>.bundles/<serial>-<time>, 0700), then dir — a symbolic link to
// the version — is switched with one rename. A reader sees the old bundle
// or the new one, never a key from one and a certificate from the other;
// a failure before the switch leaves the old bundle. The version before
// is kept (the previous bundle), older ones are removed.
func deliverDir(dir string, bundle map[string][]byte, serial string) error {
	dir = filepath.Clean(dir)
	parent, base := filepath.Split(dir)
	versions := filepath.Join(parent, "."+base+".bundles")
	if err := os.MkdirAll(versions, 0o700); err != nil {
		return err
	}
	if fi, err := os.Lstat(dir); err == nil && fi.Mode()&fs.ModeSymlink == 0 {
		entries, _ := os.ReadDir(dir)
		if !fi.IsDir() || len(entries) > 0 {
			return fmt.Errorf("%s exists and is not harden's delivery link: move it away (harden keeps a link there to the current bundle)", dir)
		}
		if err := os.Remove(dir); err != nil {
			return err
		}
	}
	version := filepath.Join(versions, fmt.Sprintf("%s-%d", strings.ReplaceAll(serial, ":", ""), time.Now().UnixNano()))
	if err := os.Mkdir(version, 0o700); err != nil {
		return err
	}
	for n, content := range bundle {
		p := filepath.Join(version, filepath.FromSlash(n))
		if !strings.HasPrefix(p, version+string(filepath.Separator)) {
			os.RemoveAll(version)
			return fmt.Errorf("bundle file %q leaves %s", n, dir)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			os.RemoveAll(version)
			return err
		}
		if err := applykit.WriteFile(p, content, 0o600, nil); err != nil {
			os.RemoveAll(version)
			return err
		}
	}
	before, _ := os.Readlink(dir)
	link := dir + ".harden-tmp"
	os.Remove(link)
	if err := os.Symlink(version, link); err != nil {
		os.RemoveAll(version)
		return err
	}
	if err := os.Rename(link, dir); err != nil {
		os.Remove(link)
		os.RemoveAll(version)
		return err
	}
	if d, err := os.Open(parent); err == nil {
		d.Sync()
		d.Close()
	}
	// Keep the new and the one before; drop the rest.
	entries, _ := os.ReadDir(versions)
	for _, e := range entries {
		p := filepath.Join(versions, e.Name())
		if p != version && p != before {
			os.RemoveAll(p)
		}
	}
	return nil
}

// delivered is what a client was given, as read back: the chain, or (a
// store that lets harden read only the bundle's metadata) the serial.
type delivered struct {
	chain  []byte
	serial string
}

// holds: the delivered certificate is chain's leaf.
func (d delivered) holds(chain []byte) bool {
	if len(d.chain) > 0 {
		return bytes.Equal(leafDER(d.chain), leafDER(chain))
	}
	l := rotate.Leaf(certstore.Pair{Chain: chain})
	return d.serial != "" && l != nil && strings.EqualFold(d.serial, rotate.Serial(l))
}

// deliveredChain reads back the certificate the client was given: from the
// directory, or from Vault (the certificate source's inventory).
func deliveredChain(ctx context.Context, s *session, c policy.Client) (delivered, error) {
	if c.VaultKV == "" {
		data, err := os.ReadFile(filepath.Join(c.Dir, policy.ClientFiles.Cert))
		if errors.Is(err, fs.ErrNotExist) {
			return delivered{}, errors.New("nothing delivered yet")
		}
		return delivered{chain: data}, err
	}
	vt, _ := s.pol.Target(s.pol.Certificates.VaultTarget)
	p := s.eng.Plugins[vt.Plugin]
	if !slices.Contains(p.Meta.Capabilities, sdk.CapInventory) {
		return delivered{}, fmt.Errorf("plugin %s does not report an inventory", vt.Plugin)
	}
	rc, err := s.eng.Request(ctx, s.pol, vt, s.io.Getenv)
	if err != nil {
		return delivered{}, err
	}
	inv, err := p.Client.Inventory(ctx, rc, 1)
	if err != nil {
		return delivered{}, err
	}
	for _, it := range inv.Stored {
		if it.Name == "client/"+c.Name {
			if it.Error != "" {
				return delivered{}, errors.New(it.Error)
			}
			return delivered{chain: it.ChainPEM, serial: it.Serial}, nil
		}
	}
	return delivered{}, fmt.Errorf("%s does not list client %s", vt.Name, c.Name)
}
