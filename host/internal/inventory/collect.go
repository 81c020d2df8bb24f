package inventory

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/harden-dev/harden/host/internal/certstore"
	"github.com/harden-dev/harden/host/internal/engine"
	"github.com/harden-dev/harden/host/internal/policy"
	"github.com/harden-dev/harden/shared/sdk"
)

// Target is one target's raw inventory: the material harden holds for it
// (the request's certificates) and what its plugin reported.
type Target struct {
	Name string
	// Certificates harden holds for the target, as the request carried them.
	Certificates sdk.Certificates
	Response     sdk.InventoryResponse
	// RequestErr: the request could not be built, or came without what
	// the certificate source could not provide (engine.Request).
	RequestErr error
	// Errors: what else kept parts of the target's inventory from being
	// read (the plugin call, a plugin without the inventory capability).
	// Each error is an item of its own.
	Errors []error
	// VerifyOnly: the plugin changes nothing (engine.Plugin.VerifyOnly:
	// service), so harden deploys and holds no server certificate for the
	// target.
	VerifyOnly bool
}

// Ask is the target's Inventory call: one fresh handshake per listener, and
// what the target stores. A plugin without the capability is an error of the
// target (what it serves is unknown), not an empty inventory.
func Ask(ctx context.Context, p *engine.Plugin, rc sdk.RequestContext) Target {
	t := Target{Name: rc.Target.Name, Certificates: rc.Certificates, VerifyOnly: p.VerifyOnly()}
	if !slices.Contains(p.Meta.Capabilities, sdk.CapInventory) {
		t.Errors = append(t.Errors, fmt.Errorf("plugin %s does not report an inventory: what target %s serves and stores is not listed", p.Meta.Name, t.Name))
		return t
	}
	resp, err := p.Client.Inventory(ctx, rc, 1)
	if err != nil {
		t.Errors = append(t.Errors, fmt.Errorf("target %s: inventory: %w", t.Name, err))
	}
	t.Response = resp
	return t
}

// Collect judges every target's raw inventory at now by the policy's
// rotation settings. It reads nothing and calls nothing.
func Collect(pol *policy.Policy, targets []Target, now time.Time) *Report {
	return CollectWith(pol, targets, nil, now)
}

// HeldClient is a client identity's certificate as harden's store holds it.
type HeldClient struct {
	Name, Where string
	Chain       []byte
	Err         error
}

// ReadClients reads every client identity's stored certificate.
func ReadClients(pol *policy.Policy) []HeldClient {
	var out []HeldClient
	for _, cl := range pol.Clients {
		store := certstore.Store{Dir: filepath.Join(pol.Certificates.VaultStoreDir, "clients", cl.Name), Target: "client " + cl.Name}
		where, _ := store.Paths("client")
		p, err := store.Current("client")
		out = append(out, HeldClient{Name: cl.Name, Where: where, Chain: p.Chain, Err: err})
	}
	return out
}

// CollectWith is Collect with the client identities harden holds.
func CollectWith(pol *policy.Policy, targets []Target, clients []HeldClient, now time.Time) *Report {
	rot := pol.Certificates.Rotation
	c := collector{rules: NewRules(rot.RenewBefore, rot.AlertAt), now: now, cas: map[string]int{}}
	rep := &Report{FormatVersion: FormatVersion, GeneratedAt: now.UTC(), Policy: pol.File, RenewBefore: DurationName(rot.RenewBefore),
		AlertAt: c.rules.TierNames(), Targets: []string{}, Items: []Item{}, Notes: []Note{}}
	for _, t := range targets {
		rep.Targets = append(rep.Targets, t.Name)
		pt, _ := pol.Target(t.Name)
		c.target(t, sourcesOf(pol, pt))
		for _, d := range t.Response.Diagnostics {
			if d.Severity != sdk.Error {
				rep.Notes = append(rep.Notes, Note{Target: t.Name, Message: d.Error()})
			}
		}
	}
	for _, cl := range clients {
		switch {
		case cl.Err != nil:
			c.unreadable(KindClientIdentity, cl.Name, cl.Where, cl.Name, "%v", cl.Err)
		case len(cl.Chain) == 0:
			c.unreadable(KindClientIdentity, cl.Name, cl.Where, cl.Name, "client %s has no certificate yet (harden rotate issues and delivers it)", cl.Name)
		default:
			c.held(KindClientIdentity, cl.Name, cl.Where, cl.Chain, true)
		}
	}
	rep.Items = append(c.items, c.caItems...)
	rep.Summary = c.rules.summarize(rep.Items)
	return rep
}

// Summarize counts items as Collect does: harden report recomputes the
// summary of inventories it merged.
func (r Rules) Summarize(items []Item) Summary { return r.summarize(items) }

func (r Rules) summarize(items []Item) Summary {
	s := Summary{Items: len(items), Tiers: map[string]int{}}
	for _, it := range items {
		s.Tiers[it.Tier]++
		if it.Tier == TierUnknown {
			s.Incomplete++
		}
		if len(it.Findings) > 0 {
			s.Findings++
		}
		s.ExitCode = max(s.ExitCode, r.ExitCode(it.Tier))
	}
	return s
}

// sources says where harden's material for a target comes from.
type sources struct {
	server, client, ca string
	// issued: the certificate source vault-pki issues the target's
	// certificates into harden's store (its client certificate too when
	// the target is in the mTLS scope: issuedClient).
	issued, issuedClient bool
}

func sourcesOf(pol *policy.Policy, t policy.Target) sources {
	cert := pol.Certificates
	if t.CertFile != "" {
		return sources{server: t.CertFile, client: t.ClientCertFile, ca: cert.CAFile}
	}
	if cert.Source == "vault-pki" && t.Name != cert.VaultTarget {
		// The engine's store for the target (engine.issue).
		store := certstore.Store{Dir: filepath.Join(cert.VaultStoreDir, t.Name)}
		server, _ := store.Paths("server")
		client, _ := store.Paths("client")
		return sources{server: server, client: client, ca: "certificate source vault-pki (target " + cert.VaultTarget + ")", issued: true,
			issuedClient: slices.Contains(pol.MTLSScope, t.Name)}
	}
	return sources{ca: cert.CAFile}
}

type collector struct {
	rules Rules
	now   time.Time
	items []Item
	// caItems are deduplicated across targets by sha256 (cas: index).
	caItems []Item
	cas     map[string]int
}

func (c *collector) add(it Item) { c.items = append(c.items, it) }

func (c *collector) unreadable(kind, target, where, name, format string, args ...any) {
	c.add(Item{Kind: kind, Target: target, Where: where, Name: name, Tier: TierUnknown, Error: fmt.Sprintf(format, args...)})
}

func (c *collector) target(t Target, src sources) {
	for _, err := range append([]error{t.RequestErr}, t.Errors...) {
		if err == nil {
			continue
		}
		c.unreadable(KindTarget, t.Name, "target "+t.Name, "", "%v", err)
	}
	for _, d := range t.Response.Diagnostics {
		if d.Severity == sdk.Error {
			c.unreadable(KindTarget, t.Name, "target "+t.Name, "", "inventory: %s", d.Error())
		}
	}
	held := c.leafSHA(t.Certificates.ChainPEM)
	roots, rootsErr := pool(t.Certificates.CABundlePEM)
	for _, l := range t.Response.Listeners {
		c.listener(t.Name, l, held, roots, rootsErr)
	}
	// A failed request lacks what the store holds: its error is the item,
	// not a missing certificate.
	c.held(KindServer, t.Name, src.server, t.Certificates.ChainPEM, src.issued && !t.VerifyOnly && t.RequestErr == nil)
	c.held(KindClient, t.Name, src.client, t.Certificates.ClientChainPEM, src.issuedClient && t.RequestErr == nil)
	if len(t.Certificates.CABundlePEM) > 0 {
		c.bundle(t.Name, src.ca, t.Certificates.CABundlePEM)
	}
	// A stored CA's chain repeats its parents, which are often issuers of
	// their own: each certificate is listed once per target, as the issuer
	// it is where it is one.
	issuers := map[string]bool{}
	for _, s := range t.Response.Stored {
		if s.Kind == sdk.StoredCA && s.Error == "" {
			if sha := c.leafSHA(s.ChainPEM); sha != "" {
				issuers[sha] = true
			}
		}
	}
	listed := map[string]bool{}
	for _, s := range t.Response.Stored {
		c.stored(t.Name, s, issuers, listed)
	}
}

// leafSHA is the hex sha256 of chain's first certificate ("" if none).
func (c *collector) leafSHA(chain []byte) string {
	certs, err := sdk.ParseCertificatesPEM(chain)
	if err != nil {
		return ""
	}
	return fingerprint(certs[0])
}

func fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// pool is the bundle's CAs (nil, nil without a bundle).
func pool(bundle []byte) (*x509.CertPool, error) {
	if len(bundle) == 0 {
		return nil, nil
	}
	certs, err := sdk.ParseCertificatesPEM(bundle)
	if err != nil {
		return nil, fmt.Errorf("the CA bundle: %w", err)
	}
	p := x509.NewCertPool()
	for _, cert := range certs {
		p.AddCert(cert)
	}
	return p, nil
}

func (c *collector) certificate(cert *x509.Certificate) *Certificate {
	na := cert.NotAfter.UTC()
	return &Certificate{Subject: cert.Subject.String(), Issuer: cert.Issuer.String(), Serial: fmt.Sprintf("%x", cert.SerialNumber),
		SHA256: fingerprint(cert), NotBefore: cert.NotBefore.UTC(), NotAfter: na, DaysLeft: daysBetween(c.now, na),
		RenewAt: na.Add(-c.rules.RenewBefore)}
}

// leafItem is a certificate harden renews (served or held): its tier, and a
// finding once it is due for renewal while still outside the alert tiers
// (renew_before longer than the widest alert_at).
func (c *collector) leafItem(kind, target, where, name string, cert *x509.Certificate) Item {
	it := Item{Kind: kind, Target: target, Where: where, Name: name, Certificate: c.certificate(cert),
		Tier: c.rules.CertificateTier(cert.NotBefore, cert.NotAfter, c.now)}
	if it.Tier == TierOK && !c.now.Before(it.Certificate.RenewAt) {
		it.Findings = append(it.Findings, "due for renewal since "+it.Certificate.RenewAt.Format(time.RFC3339)+" (renew_before "+DurationName(c.rules.RenewBefore)+")")
	}
	return it
}

// listener lists the leaves a listener's handshakes saw (one item each;
// handshakes that saw none are a finding, or the item's error when none
// saw a certificate at all).
func (c *collector) listener(target string, l sdk.ServedListener, held string, roots *x509.CertPool, rootsErr error) {
	if l.Error != "" {
		c.unreadable(KindServed, target, l.Address, l.Name, "listener %s: %s", l.Address, l.Error)
		return
	}
	if len(l.Handshakes) == 0 {
		c.unreadable(KindServed, target, l.Address, l.Name, "listener %s: the plugin reported no handshake", l.Address)
		return
	}
	var order []string
	byLeaf := map[string]*Item{}
	var blind []string
	for _, h := range l.Handshakes {
		if len(h.ChainPEM) == 0 {
			blind = append(blind, outcomeText(h))
			continue
		}
		chain, err := sdk.ParseCertificatesPEM(h.ChainPEM)
		if err != nil {
			blind = append(blind, "the chain the plugin reported does not parse: "+err.Error())
			continue
		}
		sha := fingerprint(chain[0])
		it, ok := byLeaf[sha]
		if !ok {
			v := c.leafItem(KindServed, target, l.Address, l.Name, chain[0])
			v.Served = &Served{Address: l.Address, ReloadsOn: l.ReloadsOn}
			c.trust(&v, chain, roots, rootsErr)
			if held != "" {
				m := sha == held
				v.Served.MatchesHeld = &m
				// A listener harden does not deploy to (reloads_on never:
				// an object store's own TLS) serves its operator's
				// certificate, not the one harden holds: no finding.
				if !m && l.ReloadsOn != sdk.ReloadsNever {
					v.Findings = append(v.Findings, "serves a certificate other than the one harden holds for the target")
				}
			}
			it = &v
			byLeaf[sha] = it
			order = append(order, sha)
		}
		it.Served.Handshakes++
		it.Served.Version, it.Served.Outcome, it.Served.Evidence = h.Version, h.Outcome, h.Evidence
	}
	if len(order) == 0 {
		c.unreadable(KindServed, target, l.Address, l.Name, "listener %s: no certificate seen: %s", l.Address, strings.Join(slices.Compact(blind), "; "))
		return
	}
	for i, sha := range order {
		it := byLeaf[sha]
		switch it.Served.Outcome {
		case sdk.OutcomeRefused:
			it.Findings = append(it.Findings, "harden's client was refused: "+it.Served.Evidence)
		case sdk.OutcomeInconclusive:
			it.Findings = append(it.Findings, "the session was inconclusive: "+it.Served.Evidence)
		}
		if i == 0 && len(blind) > 0 {
			it.Findings = append(it.Findings, fmt.Sprintf("%d of %d handshakes saw no certificate: %s", len(blind), len(l.Handshakes), strings.Join(slices.Compact(blind), "; ")))
		}
		if len(order) > 1 {
			it.Findings = append(it.Findings, fmt.Sprintf("the listener served %d different certificates in %d handshakes", len(order), len(l.Handshakes)))
		}
		c.add(*it)
	}
}

func outcomeText(h sdk.ServedHandshake) string {
	if h.Evidence == "" {
		return h.Outcome
	}
	return h.Outcome + ": " + h.Evidence
}

// trust verifies the served chain against the bundle harden holds, now, for
// any key usage: whether clients holding that bundle get in is a chain
// question here; names and usages are verify's checks.
func (c *collector) trust(it *Item, chain []*x509.Certificate, roots *x509.CertPool, rootsErr error) {
	if roots == nil && rootsErr == nil {
		// Harden holds no bundle for the target (the certificate source's
		// own target, whose plugin trusts its API by a CA of its own):
		// not judged, and no finding — harden has nothing to judge by.
		it.Served.TrustError = "not judged: harden holds no CA bundle for the target"
		return
	}
	err := rootsErr
	if err == nil {
		inter := x509.NewCertPool()
		for _, cert := range chain[1:] {
			inter.AddCert(cert)
		}
		_, err = chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: c.now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	}
	if err != nil {
		it.Served.TrustError = err.Error()
		it.Findings = append(it.Findings, "the chain does not verify against the CA bundle harden holds: "+err.Error())
		return
	}
	it.Served.Trusted = true
}

// held lists harden's own certificate of kind for the target. expected:
// harden should hold one (vault-pki issues it into the store), so none is
// an unreadable item pointing at apply.
func (c *collector) held(kind, target, where string, chain []byte, expected bool) {
	if len(chain) == 0 {
		if expected {
			c.unreadable(kind, target, where, "", "harden holds no %s certificate for target %s yet (%s not there; harden apply issues it)", kind, target, where)
		}
		return
	}
	certs, err := sdk.ParseCertificatesPEM(chain)
	if err != nil {
		c.unreadable(kind, target, where, "", "%s: %v", where, err)
		return
	}
	c.add(c.leafItem(kind, target, where, "", certs[0]))
}

func (c *collector) bundle(target, where string, bundle []byte) {
	certs, err := sdk.ParseCertificatesPEM(bundle)
	if err != nil {
		c.unreadable(KindCA, target, where, "", "CA bundle %s: %v", where, err)
		return
	}
	for _, cert := range certs {
		sha := fingerprint(cert)
		if i, ok := c.cas[sha]; ok {
			it := &c.caItems[i]
			if !slices.Contains(it.Targets, target) {
				it.Targets = append(it.Targets, target)
			}
			if !slices.Contains(strings.Split(it.Where, "; "), where) {
				it.Where += "; " + where
			}
			continue
		}
		c.cas[sha] = len(c.caItems)
		c.caItems = append(c.caItems, Item{Kind: KindCA, Targets: []string{target}, Where: where, Certificate: c.certificate(cert),
			Tier: c.rules.CertificateTier(cert.NotBefore, cert.NotAfter, c.now)})
	}
}

func (c *collector) stored(target string, s sdk.StoredItem, issuers, listed map[string]bool) {
	kind := map[string]string{sdk.StoredCA: KindStoredCA, sdk.StoredCertificate: KindStoredCertificate, sdk.StoredKey: KindKey}[s.Kind]
	if kind == "" {
		c.unreadable(KindTarget, target, s.Location, s.Name, "the plugin reported a stored item of unknown kind %q", s.Kind)
		return
	}
	if s.Error != "" {
		c.unreadable(kind, target, s.Location, s.Name, "%s", s.Error)
		return
	}
	if kind == KindKey {
		c.key(target, s)
		return
	}
	if kind == KindStoredCertificate && len(s.ChainPEM) == 0 && !s.NotAfter.IsZero() {
		// Known from its metadata alone (the store's data holds a key the
		// reading token may not see): its serial and end are enough for a
		// tier.
		days := daysBetween(c.now, s.NotAfter)
		c.add(Item{Kind: kind, Target: target, Where: s.Location, Name: s.Name,
			Certificate: &Certificate{Serial: strings.ReplaceAll(strings.ToLower(s.Serial), ":", ""), NotAfter: s.NotAfter.UTC(), DaysLeft: days,
				RenewAt: s.NotAfter.Add(-c.rules.RenewBefore).UTC()},
			Tier: c.rules.CertificateTier(time.Time{}, s.NotAfter, c.now)})
		return
	}
	certs, err := sdk.ParseCertificatesPEM(s.ChainPEM)
	if err != nil {
		c.unreadable(kind, target, s.Location, s.Name, "%s %s: %v", s.Kind, s.Name, err)
		return
	}
	if kind == KindStoredCertificate {
		c.add(c.leafItem(kind, target, s.Location, s.Name, certs[0]))
		return
	}
	// A CA's chain: every certificate in it expires on its own; a parent
	// that is an issuer itself is listed as that issuer.
	for i, cert := range certs {
		sha := fingerprint(cert)
		if i > 0 && (issuers[sha] || listed[sha]) {
			continue
		}
		listed[sha] = true
		c.add(Item{Kind: kind, Target: target, Where: s.Location, Name: s.Name, Certificate: c.certificate(cert),
			Tier: c.rules.CertificateTier(cert.NotBefore, cert.NotAfter, c.now)})
	}
}

func (c *collector) key(target string, s sdk.StoredItem) {
	k := &Key{Type: s.KeyType, LatestVersion: s.LatestVersion, AutoRotatePeriodSeconds: int64(s.AutoRotatePeriod / time.Second)}
	if s.AutoRotatePeriod > 0 {
		k.AutoRotatePeriod = DurationName(s.AutoRotatePeriod)
	}
	if !s.LatestCreated.IsZero() {
		created := s.LatestCreated.UTC()
		age := daysBetween(created, c.now)
		k.LatestCreated, k.AgeDays = &created, &age
	}
	tier, next := KeyTier(s.LatestCreated, s.AutoRotatePeriod, c.now)
	it := Item{Kind: KindKey, Target: target, Where: s.Location, Name: s.Name, Key: k, Tier: tier}
	if !next.IsZero() {
		n := next.UTC()
		k.NextRotation = &n
	}
	switch tier {
	case TierRotationDisabled:
		it.Findings = append(it.Findings, "rotation disabled: the key has no automatic rotation period, so it is never rotated unless someone does it")
	case TierOverdue:
		it.Findings = append(it.Findings, "overdue: the next rotation was due "+next.UTC().Format(time.RFC3339))
	case TierUnknown:
		it.Error = "the plugin did not report when the latest version was made: no next rotation date"
	}
	c.add(it)
}
