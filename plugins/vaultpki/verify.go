package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/harden-dev/harden/shared/certlint"
	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

func init() {
	rot := []string{checks.RefSeedRotation}
	kms := []string{"seed: KMS: creates, stores, rotates, and audits keys; enable KMS audit logs"}
	checks.Register(
		checks.Definition{ID: "vaultpki.pki.ca_present", Title: "The root and intermediate CAs exist", Severity: checks.High, Remediation: "Run harden apply for the Vault target.", References: rot},
		checks.Definition{ID: "vaultpki.pki.ca_lifetime", Title: "CA validity left exceeds the longest leaf TTL plus the renewal window", Severity: checks.High,
			Remediation: "Renew the CA (a new intermediate signed by the root) before leaves outlive it.", References: rot},
		checks.Definition{ID: "vaultpki.pki.ca_key", Title: "CA keys are of a type the TLS profile allows", Severity: checks.Medium, Remediation: "Issue a new CA with an allowed key type.", References: []string{checks.RefMozillaTLS}},
		checks.Definition{ID: "vaultpki.pki.roles", Title: "PKI roles: max TTL within the rotation policy, no wildcard/glob/any-name issuing, profile key types", Severity: checks.High,
			Remediation: "Lower max_ttl, disable allow_any_name/allow_glob_domains/allow_wildcard_certificates (harden apply does for its roles).", References: rot},
		checks.Definition{ID: "vaultpki.pki.urls", Title: "Issuing-certificate and CRL distribution URLs are configured", Severity: checks.Medium, Remediation: "Set <mount>/config/urls.", References: rot},
		checks.Definition{ID: "vaultpki.pki.tidy", Title: "Automatic tidy of expired certificates is on", Severity: checks.Low, Remediation: "Enable <mount>/config/auto-tidy.", References: rot},
		checks.Definition{ID: "vaultpki.pki.lint", Title: "The CA chain and a freshly issued leaf pass the RFC 5280 lints", Severity: checks.Medium, Remediation: "Fix the role or CA fields the lint names.", References: rot},
		checks.Definition{ID: "vaultpki.pki.expiry", Title: "Certificates Vault issued are not close to expiry", Severity: checks.Medium, Remediation: "Renew the listed certificates (harden apply re-issues the policy's).", References: rot},
		checks.Definition{ID: "vaultpki.transit.keys", Title: "Transit KEKs: latest version within the rotation period, auto-rotate on, not exportable, no plaintext backup, deletion off", Severity: checks.High,
			Remediation: "Rotate the key, set auto_rotate_period, deletion_allowed=false; an exportable key needs replacing.", References: kms},
		checks.Definition{ID: "vaultpki.audit.enabled", Title: "A file audit device records requests (proven by a canary request found in the log)", Severity: checks.High,
			Remediation: "Enable a file audit device (harden apply does).", References: kms},
		checks.Definition{ID: "vaultpki.clients.policy", Title: "Each client delivered to Vault KV has its ACL policy harden-client-<name>, granting read on its bundle's path and nothing else", Severity: checks.Medium,
			Remediation: "Run harden apply for the Vault target (it writes the policy); keep other rules out of it.",
			References:  []string{"HashiCorp Vault policies: deny by default, grant only what is needed (https://developer.hashicorp.com/vault/docs/concepts/policies)"}},
		// Best effort: the count needs the audit log, and vaultpki.audit.enabled
		// already errors when the log cannot be read.
		checks.Definition{ID: "vaultpki.audit.denied", Title: "Permission-denied requests since the previous verify", Severity: checks.Info, Remediation: "Review who is being refused.", References: kms, BestEffort: true},
	)
}

// Verify checks the live Vault: CAs, roles, URLs, tidy, lints on the chain
// and a fresh leaf, issued certificates' expiry, transit keys, the audit
// device (a canary request found in its log) and Vault's own listener.
// Every check rests on what Vault answered: a read that fails (403,
// timeout, reset) is an inconclusive observation, never a pass or a
// silent omission (checks.Reduce).
func (vaultPKI) Verify(ctx context.Context, q sdk.VerifyRequest, r *sdk.VerifyResponse) {
	st, ok := load(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	verifyJournal(st, &r.Diagnostics)
	// Vault's own listener, scanned like any endpoint (its own CA); the
	// listener file is judged with what the scan saw.
	listener := make(chan listenerScan, 1)
	go func() { listener <- scanListenerJudged(ctx, q.RequestContext, st) }()
	cl, err := client(ctx, q.RequestContext, st.conn)
	if err != nil {
		r.Diagnostics.AddTargetError("vaultpki.login", "cannot log in to Vault", err)
		// The listener needs no login: what it showed stands.
		sc := <-listener
		r.Checks, r.Endpoints = append(sc.checks, listenerConfigCheck(q.RequestContext, st, sc)...), describedOf(sc.desc)
		return
	}
	v := &verifier{ctx: ctx, cl: cl, st: st, targets: q.Policy.Targets, self: q.Target.Name}
	v.audit()
	v.pki()
	v.transit()
	v.clientPolicies()
	sc := <-listener
	r.Checks, r.Endpoints = append(append(v.out, sc.checks...), listenerConfigCheck(q.RequestContext, st, sc)...), describedOf(sc.desc)
}

type verifier struct {
	ctx     context.Context
	cl      *vault.Client
	st      *settings
	targets []sdk.TargetRef
	self    string
	out     []checks.Check
	// roles of the intermediate mount, read once (roleInventory).
	inv *roleInventory
}

func (v *verifier) add(id string, ok bool, subject, evidence string) {
	if ok {
		v.out = append(v.out, checks.Passed(id, subject, evidence))
	} else {
		v.out = append(v.out, checks.Failed(id, subject, evidence))
	}
}

func (v *verifier) reduce(id, subject string, obs ...checks.Observation) {
	v.out = append(v.out, checks.Reduce(id, subject, obs...))
}

// unknown records a check that could not observe: attempt failed with err.
func (v *verifier) unknown(id, subject, attempt string, err error) {
	v.reduce(id, subject, checks.Unknown(attempt, err.Error()))
}

// answered reports whether err (from a Vault API call) is Vault's own
// answer (an HTTP status with Vault's errors), not a transport failure.
func answered(err error) bool {
	var re *vault.ResponseError
	return err == nil || errors.As(err, &re)
}

func scanListener(ctx context.Context, q sdk.RequestContext, st *settings) ([]checks.Check, *sdk.EndpointScan) {
	ls := scanListenerJudged(ctx, q, st)
	return ls.checks, ls.desc
}

// listenerScan is one scan of Vault's listener, judged twice.
type listenerScan struct {
	// checks are what verify reports: the policy's profile as it is.
	checks []checks.Check
	// decided are the checks the listener file decides (listenerCheckIDs),
	// judged with the TLS 1.3 suites Go always offers allowed: Vault has no
	// setting for them, so no file and no restart can leave them out, and
	// they must not make a restart look due (or an apply fail) forever.
	// Every other suite, version and client-auth verdict is the same.
	decided []checks.Check
	// tls13Only: checks' tls.cipher_suites fails, decided's does not — the
	// only suites outside the profile are those TLS 1.3 ones.
	tls13Only bool
	desc      *sdk.EndpointScan
}

// listenerDecidable is p with the TLS 1.3 suites Go offers whatever the
// configuration (when p allows TLS 1.3 at all).
func listenerDecidable(p tlsprofile.Profile) tlsprofile.Profile {
	if p.MaxVersion() < tls.VersionTLS13 {
		return p
	}
	p.TLS13Suites = slices.Clone(p.TLS13Suites)
	for _, id := range goTLS13Suites {
		if !slices.Contains(p.TLS13Suites, id) {
			p.TLS13Suites = append(p.TLS13Suites, id)
		}
	}
	return p
}

func scanListenerJudged(ctx context.Context, q sdk.RequestContext, st *settings) listenerScan {
	decidedIDs := listenerCheckIDs(st.spec.Listener != nil && q.Policy.InMTLSScope(q.Target.Name))
	only := func(cs []checks.Check) listenerScan {
		ls := listenerScan{checks: cs}
		for _, c := range cs {
			if slices.Contains(decidedIDs, c.ID) {
				ls.decided = append(ls.decided, c)
			}
		}
		return ls
	}
	u, err := url.Parse(st.conn.Address)
	if err != nil || u.Scheme != "https" {
		return only([]checks.Check{checks.Failed("tls.enabled", st.conn.Address, "Vault's API is not served over https")})
	}
	subject := "Vault listener " + u.Host
	target, exp, err := probe.ForRequest(q, probe.HTTP)
	if err != nil {
		return only([]checks.Check{checks.Errored("tls.enabled", subject, err)})
	}
	var noClientAuth *checks.Check
	if st.spec.Listener == nil || !q.Policy.InMTLSScope(q.Target.Name) {
		// Client auth is judged where harden manages the listener. A target
		// in the mTLS scope without spec.listener says so, never silently.
		if exp.RequireClientAuth {
			c := checks.New("tls.client_auth.required", checks.Warn, subject,
				"not judged: the target is in the policy's mTLS scope, but without spec.listener harden does not manage Vault's listener, so whether Vault requires client certificates (tls_require_and_verify_client_cert) is up to its operator: set spec.listener for harden to enforce and verify it")
			noClientAuth = &c
		}
		exp.RequireClientAuth = false
	}
	// The listener is judged with the CAs harden's API client trusts. An
	// unreadable ca_file is an error naming the file, never "no CA given".
	roots, rootsErr := st.conn.roots()
	target.RootCAs = roots
	target.Address = u.Host
	res, err := probe.Scan(ctx, target, probe.Options{})
	if err != nil {
		return only([]checks.Check{checks.Errored("tls.enabled", subject, err)})
	}
	out := res.Checks(exp)
	desc := res.Describe("vault")
	replaced := false
	for i := range out {
		out[i].Subject = subject
		if rootsErr != nil && out[i].ID == "tls.certificate.trusted" && out[i].Status != checks.Fail {
			out[i] = checks.Errored("tls.certificate.trusted", subject, fmt.Errorf("the listener's certificate cannot be judged: %w", rootsErr))
			replaced = true
		}
	}
	if rootsErr != nil && !replaced {
		out = append(out, checks.Errored("tls.certificate.trusted", subject, fmt.Errorf("the listener's certificate cannot be judged: %w", rootsErr)))
	}
	if noClientAuth != nil {
		out = append(out, *noClientAuth)
	}
	ls := listenerScan{checks: out, desc: &desc}
	dexp := exp
	dexp.Profile = listenerDecidable(exp.Profile)
	reported := map[string]checks.Status{}
	for _, c := range out {
		reported[c.ID] = c.Status
	}
	for _, c := range res.Checks(dexp) {
		if slices.Contains(decidedIDs, c.ID) {
			c.Subject = subject
			ls.decided = append(ls.decided, c)
			if c.ID == "tls.cipher_suites" && c.Status != checks.Fail && reported[c.ID] == checks.Fail {
				ls.tls13Only = true
			}
		}
	}
	return ls
}

// audit: a canary request (a read of a path named by a random nonce) must
// appear in the file audit log; permission-denied entries since the
// previous verify's canary are counted. Without spec.audit.file there is no
// log to look in: the device list is configuration only, which never
// passes this high-severity check (checks.Configured: a warning at best).
func (v *verifier) audit() {
	devices, err := v.cl.Sys().ListAuditWithContext(v.ctx)
	if v.st.auditFile == "" {
		subject := "audit devices"
		if err != nil {
			v.unknown("vaultpki.audit.enabled", subject, "list audit devices", err)
			return
		}
		var names []string
		for path, a := range devices {
			names = append(names, path+" ("+a.Type+")")
		}
		slices.Sort(names)
		ev := fmt.Sprintf("%d audit device(s) enabled%s; no spec.audit.file, so no canary request can prove one records: set it and run verify on the Vault host",
			len(devices), orEmpty(": ", strings.Join(names, ", ")))
		v.out = append(v.out, checks.Configured("vaultpki.audit.enabled", subject, ev, len(devices) > 0))
		return
	}
	subject := "file audit device " + v.st.auditFile
	if err != nil {
		v.unknown("vaultpki.audit.enabled", subject, "list audit devices", err)
		return
	}
	if !slices.ContainsFunc(slices.Collect(maps.Values(devices)), func(a *vault.Audit) bool { return a.Type == "file" && a.Options["file_path"] == v.st.auditFile }) {
		v.add("vaultpki.audit.enabled", false, subject, fmt.Sprintf("no file audit device writes %s (%d device(s) enabled)", v.st.auditFile, len(devices)))
		return
	}
	nonceB := make([]byte, 12)
	_, _ = rand.Read(nonceB)
	nonce := "harden-canary-" + hex.EncodeToString(nonceB)
	// 404 or 403: either is Vault's answer, and audited before it is sent.
	// No answer at all (timeout, reset) proves nothing about the log.
	if _, err := v.cl.Logical().ReadWithContext(v.ctx, "sys/policy/"+nonce); !answered(err) {
		v.unknown("vaultpki.audit.enabled", subject, "canary request "+nonce, fmt.Errorf("no answer from Vault: %w", err))
		return
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		found, denied, prev, err := scanAuditLog(v.st.auditFile, nonce)
		if err != nil {
			reason := "the audit log is not readable here (" + err.Error() + "): run verify on the Vault host with read access to the log"
			v.reduce("vaultpki.audit.enabled", subject, checks.Unknown("canary request "+nonce+" answered by Vault", reason))
			v.reduce("vaultpki.audit.denied", subject, checks.Unknown("count of permission-denied requests", reason))
			return
		}
		if found {
			v.add("vaultpki.audit.enabled", true, subject, "canary request "+nonce+" found in the audit log")
			ev := fmt.Sprintf("%d permission-denied request(s) since the previous verify", denied)
			if !prev {
				ev = fmt.Sprintf("%d permission-denied request(s) in the log (no earlier verify canary)", denied)
			}
			st := checks.Pass
			if denied > 0 {
				st = checks.Warn
			}
			v.out = append(v.out, checks.New("vaultpki.audit.denied", st, subject, ev))
			return
		}
		if time.Now().After(deadline) {
			v.add("vaultpki.audit.enabled", false, subject, "canary request "+nonce+" (answered by Vault) not found in the audit log within 3 s: the device does not record requests")
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func orEmpty(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

// scanAuditLog reads the JSON-lines audit log: whether nonce appears, and
// how many permission-denied responses stand between the previous harden
// canary and it.
func scanAuditLog(file, nonce string) (found bool, denied int, prev bool, err error) {
	f, err := os.Open(file)
	if err != nil {
		return false, 0, false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	count := 0
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, nonce) {
			found = true
			break
		}
		if strings.Contains(line, "harden-canary-") {
			prev, count = true, 0
			continue
		}
		var e struct {
			Type  string `json:"type"`
			Error string `json:"error"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Type == "response" && strings.Contains(e.Error, "permission denied") {
			count++
		}
	}
	return found, count, prev, sc.Err()
}

// pki checks the CAs, roles, URLs, tidy, lints and the issued inventory.
func (v *verifier) pki() {
	st := v.st
	chain := map[string]*x509.Certificate{}
	for _, m := range st.pkiMounts() {
		pemData, err := caPEM(v.ctx, v.cl, m)
		if err != nil {
			v.unknown("vaultpki.pki.ca_present", m, "read the CA of "+m, err)
			continue
		}
		if pemData == "" {
			v.add("vaultpki.pki.ca_present", false, m, "no CA certificate in mount "+m)
			continue
		}
		c, err := parsePEMCert(pemData)
		if err != nil {
			v.unknown("vaultpki.pki.ca_present", m, "parse the CA certificate of "+m, err)
			continue
		}
		chain[m] = c
		v.add("vaultpki.pki.ca_present", true, m, fmt.Sprintf("%q, valid to %s", c.Subject.CommonName, c.NotAfter.UTC().Format(time.DateOnly)))
		v.caLifetime(m, c)
		kt, ok := keyAllowed(c, st)
		v.add("vaultpki.pki.ca_key", ok, m, kt+" (profile "+st.profile.Name+" allows "+strings.Join(st.profile.CertificateTypes, ", ")+")")
		urls, err := v.cl.Logical().ReadWithContext(v.ctx, m+"/config/urls")
		if err != nil {
			v.unknown("vaultpki.pki.urls", m, "read "+m+"/config/urls", err)
			continue
		}
		ok = urls != nil && len(asList(urls.Data["issuing_certificates"])) > 0 && len(asList(urls.Data["crl_distribution_points"])) > 0
		ev := "no issuing_certificates or crl_distribution_points (" + m + "/config/urls is empty)"
		if urls != nil {
			ev = fmt.Sprintf("issuing_certificates=%v crl_distribution_points=%v", urls.Data["issuing_certificates"], urls.Data["crl_distribution_points"])
		}
		v.add("vaultpki.pki.urls", ok, m, ev)
	}
	if chain[st.intMount] == nil {
		return
	}
	tidy, err := v.cl.Logical().ReadWithContext(v.ctx, st.intMount+"/config/auto-tidy")
	if err != nil {
		v.unknown("vaultpki.pki.tidy", st.intMount, "read "+st.intMount+"/config/auto-tidy", err)
	} else {
		enabled := tidy != nil && tidy.Data["enabled"] == true && tidy.Data["tidy_cert_store"] == true
		v.add("vaultpki.pki.tidy", enabled, st.intMount, fmt.Sprintf("auto-tidy enabled=%v tidy_cert_store=%v", tidy != nil && tidy.Data["enabled"] == true, tidy != nil && tidy.Data["tidy_cert_store"] == true))
	}
	v.roles()
	v.lint(chain)
	v.expiry(chain[st.intMount])
}

// caLifetime: validity left vs the longest leaf TTL + the renewal window.
// A role that cannot be read has an unknown max_ttl: unless the CA is
// already too short for the roles that were read, that is inconclusive.
func (v *verifier) caLifetime(mount string, c *x509.Certificate) {
	inv := v.roleInventory()
	need := inv.longestTTL(v.st.maxTTL) + v.st.renewBefore
	left := time.Until(c.NotAfter)
	ev := fmt.Sprintf("%s left; longest role max_ttl + renew_before = %s", left.Round(time.Hour), need)
	obs := []checks.Observation{checks.Good(ev)}
	if left <= need {
		obs[0] = checks.Bad(ev)
	}
	if u, ok := inv.unknownTTL(v.st.intMount); ok {
		obs = append(obs, u)
	}
	v.reduce("vaultpki.pki.ca_lifetime", mount, obs...)
}

func parsePEMCert(s string) (*x509.Certificate, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		return nil, fmt.Errorf("no PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func keyAllowed(c *x509.Certificate, st *settings) (string, bool) {
	switch k := c.PublicKey.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name, slices.Contains(st.profile.CertificateTypes, "ecdsa")
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen()), slices.Contains(st.profile.CertificateTypes, "rsa") && k.N.BitLen() >= 2048
	}
	return fmt.Sprintf("%T", c.PublicKey), false
}

// roleInventory is every role of the intermediate mount as Vault answered:
// the roles read, the ones listed but not readable (with why), or why the
// list itself failed.
type roleInventory struct {
	roles      map[string]map[string]any
	unreadable map[string]string
	listErr    error
}

// roleInventory reads the roles of the intermediate mount once per verify.
func (v *verifier) roleInventory() *roleInventory {
	if v.inv != nil {
		return v.inv
	}
	inv := &roleInventory{roles: map[string]map[string]any{}, unreadable: map[string]string{}}
	v.inv = inv
	s, err := v.cl.Logical().ListWithContext(v.ctx, v.st.intMount+"/roles")
	if err != nil {
		inv.listErr = fmt.Errorf("list %s/roles: %w", v.st.intMount, err)
		return inv
	}
	if s == nil {
		return inv // 404: the mount has no roles
	}
	for _, n := range asList(s.Data["keys"]) {
		name := fmt.Sprint(n)
		r, err := v.cl.Logical().ReadWithContext(v.ctx, v.st.intMount+"/roles/"+name)
		switch {
		case err != nil:
			inv.unreadable[name] = err.Error()
		case r == nil:
			inv.unreadable[name] = "listed, but not found when read"
		default:
			inv.roles[name] = r.Data
		}
	}
	return inv
}

// longestTTL is the longest max_ttl of the roles read (at least floor).
func (inv *roleInventory) longestTTL(floor time.Duration) time.Duration {
	longest := floor
	for _, r := range inv.roles {
		longest = max(longest, seconds(r["max_ttl"]))
	}
	return longest
}

// unknownTTL is the inconclusive observation of the roles whose max_ttl
// could not be read, if any.
func (inv *roleInventory) unknownTTL(mount string) (checks.Observation, bool) {
	if inv.listErr != nil {
		return checks.Unknown("the longest role max_ttl of "+mount, inv.listErr.Error()), true
	}
	if len(inv.unreadable) == 0 {
		return checks.Observation{}, false
	}
	return checks.Unknown("the longest role max_ttl of "+mount, fmt.Sprintf("%d role(s) not readable, their max_ttl unknown: %s", len(inv.unreadable), strings.Join(slices.Sorted(maps.Keys(inv.unreadable)), ", "))), true
}

func seconds(v any) time.Duration {
	n, _ := strconv.ParseInt(fmt.Sprint(v), 10, 64)
	return time.Duration(n) * time.Second
}

// roles: every role of the mount, harden's or not, is held to the policy;
// a role that cannot be read is an inconclusive check of its own.
func (v *verifier) roles() {
	inv := v.roleInventory()
	if inv.listErr != nil {
		v.unknown("vaultpki.pki.roles", v.st.intMount, "list the roles", inv.listErr)
		return
	}
	if len(inv.roles) == 0 && len(inv.unreadable) == 0 {
		v.add("vaultpki.pki.roles", false, v.st.intMount, "no roles: nothing can be issued")
		return
	}
	for _, name := range slices.Sorted(maps.Keys(inv.unreadable)) {
		path := v.st.intMount + "/roles/" + name
		v.reduce("vaultpki.pki.roles", "role "+path, checks.Unknown("read "+path, inv.unreadable[name]))
	}
	for _, name := range slices.Sorted(maps.Keys(inv.roles)) {
		r := inv.roles[name]
		var bad []string
		if d := seconds(r["max_ttl"]); d == 0 || d > v.st.maxTTL {
			bad = append(bad, fmt.Sprintf("max_ttl %s exceeds the rotation policy's %s", d, v.st.maxTTL))
		}
		for _, flag := range []string{"allow_any_name", "allow_glob_domains"} {
			if r[flag] == true {
				bad = append(bad, flag+"=true")
			}
		}
		if r["allow_wildcard_certificates"] == true && !v.st.spec.PKI.AllowWildcards {
			bad = append(bad, "allow_wildcard_certificates=true")
		}
		kt := fmt.Sprint(r["key_type"])
		if kt == "rsa" && !slices.Contains(v.st.profile.CertificateTypes, "rsa") || kt == "ec" && !slices.Contains(v.st.profile.CertificateTypes, "ecdsa") {
			bad = append(bad, "key_type "+kt+" not in the "+v.st.profile.Name+" profile")
		}
		subject := "role " + v.st.intMount + "/roles/" + name
		if len(bad) > 0 {
			v.add("vaultpki.pki.roles", false, subject, strings.Join(bad, "; "))
		} else {
			v.add("vaultpki.pki.roles", true, subject, fmt.Sprintf("max_ttl %s, key_type %s, server_flag=%v client_flag=%v, no wildcard/glob/any-name", seconds(r["max_ttl"]), kt, r["server_flag"], r["client_flag"]))
		}
	}
}

// lint lints the chain and a fresh 5-minute leaf signed by the server role
// (key made here, only the CSR goes to Vault).
func (v *verifier) lint(chain map[string]*x509.Certificate) {
	st := v.st
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	name := st.serverNames[0]
	csrDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}, DNSNames: []string{name}}, key)
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER}))
	s, err := v.cl.Logical().WriteWithContext(v.ctx, st.intMount+"/sign/"+st.serverRole, map[string]any{"csr": csr, "ttl": "5m"})
	lintChain := []*x509.Certificate{chain[st.intMount], v.signerOf(chain[st.intMount], chain[st.rootMount])}
	subject := st.intMount + " chain + a fresh leaf from role " + st.serverRole
	var re *vault.ResponseError
	leafOK := false
	switch {
	case err != nil && errors.As(err, &re) && re.StatusCode == http.StatusForbidden:
		// harden's token may not sign: that says nothing about the role.
		v.unknown("vaultpki.pki.lint", subject, "sign a CSR for "+name+" with role "+st.serverRole, fmt.Errorf("permission denied: %w", err))
	case err != nil && answered(err):
		v.add("vaultpki.pki.lint", false, subject, "the server role refused to sign a CSR for "+name+": "+err.Error())
	case err != nil:
		v.unknown("vaultpki.pki.lint", subject, "sign a CSR for "+name+" with role "+st.serverRole, err)
	case s == nil:
		v.unknown("vaultpki.pki.lint", subject, "sign a CSR for "+name+" with role "+st.serverRole, errors.New("the answer from Vault held no certificate"))
	default:
		leaf, perr := parsePEMCert(fmt.Sprint(s.Data["certificate"]))
		if perr != nil {
			v.unknown("vaultpki.pki.lint", subject, "parse the leaf Vault signed", perr)
		} else {
			lintChain = append([]*x509.Certificate{leaf}, lintChain...)
			leafOK = true
		}
	}
	if lintChain[len(lintChain)-1] == nil {
		lintChain = lintChain[:len(lintChain)-1]
	}
	findings, err := certlint.Lint(lintChain)
	switch {
	case err != nil:
		v.out = append(v.out, checks.Errored("vaultpki.pki.lint", subject, err))
	case len(findings) == 0 && !leafOK:
		// The chain alone is clean, but "chain + a fresh leaf" was not
		// observed: the sign step's check stands alone, no pass beside it.
	case len(findings) == 0:
		v.add("vaultpki.pki.lint", true, subject, fmt.Sprintf("%d certificate(s): no RFC 5280/5480/5891/8813 lint errors or warnings", len(lintChain)))
	default:
		status := checks.Warn
		for _, f := range findings {
			if f.Status == "error" || f.Status == "fatal" {
				status = checks.Fail
			}
		}
		v.out = append(v.out, checks.New("vaultpki.pki.lint", status, subject, certlint.Summary(findings)))
	}
}

// expiry lists the certificates the intermediate issued that are close to
// expiry: what Vault stored, united with what the policy's endpoints serve
// (roles with no_store leave no record in Vault). A certificate listed but
// not readable makes it inconclusive, as do unreachable endpoints while a
// role does not store what it issues (or the roles could not all be read).
// A certificate list that is conclusively empty of certificates to judge
// (none, or only CAs, verify's own short-lived lint leaves and expired ones)
// is not applicable, with the counts as the reason; it never passes.
func (v *verifier) expiry(inter *x509.Certificate) {
	st := v.st
	subject := st.intMount + " issued certificates"
	list, err := v.cl.Logical().ListWithContext(v.ctx, st.intMount+"/certs")
	if err != nil {
		v.unknown("vaultpki.pki.expiry", subject, "list "+st.intMount+"/certs", err)
		return
	}
	var serials []any
	if list != nil { // nil: 404, nothing stored
		serials = asList(list.Data["keys"])
	}
	var soon, unreadable []string
	total, cas, short, expired := 0, 0, 0, 0
	stored := map[string]bool{}
	// "Close to expiry" is the policy's renewal window (rotation.
	// renew_before, default 30 days): what harden rotate renews. A 30-day
	// certificate with renew_before 10d is not close at issue. Tightest
	// window first: a certificate 1 day from expiry is "< 7 days".
	alerts := expiryWindows(st.renewBefore)
	window := alerts[len(alerts)-1]
	judge := func(cert *x509.Certificate, what string) {
		total++
		left := time.Until(cert.NotAfter)
		for _, a := range alerts {
			if left < a {
				soon = append(soon, fmt.Sprintf("%s (%s) expires in %s (< %s)", cert.Subject.CommonName, what, left.Round(time.Hour), days(a)))
				break
			}
		}
	}
	for _, serial := range serials {
		path := st.intMount + "/cert/" + fmt.Sprint(serial)
		c, err := v.cl.Logical().ReadWithContext(v.ctx, path)
		if err != nil || c == nil {
			unreadable = append(unreadable, fmt.Sprintf("%s (%v)", path, orNotFound(err)))
			continue
		}
		cert, err := parsePEMCert(fmt.Sprint(c.Data["certificate"]))
		switch {
		case err != nil:
			unreadable = append(unreadable, fmt.Sprintf("%s (not a certificate: %v)", path, err))
		case cert.IsCA:
			cas++
		case cert.NotAfter.Sub(cert.NotBefore) < time.Hour: // verify's own lint leaves
			short++
		case time.Now().After(cert.NotAfter): // left for tidy
			expired++
		default:
			stored[serialHex(cert)] = true
			judge(cert, "serial "+fmt.Sprint(serial))
		}
	}
	served, reached, unreached := v.servedCertificates(inter)
	for serial, cert := range served {
		if !stored[serial] {
			judge(cert, "served, serial "+serial)
		}
	}
	var obs []checks.Observation
	switch {
	case len(soon) > 0:
		obs = append(obs, checks.Bad(strings.Join(soon, "; ")))
	case total > 0:
		obs = append(obs, checks.Good(fmt.Sprintf("%d valid certificate(s) (stored in Vault or served by %d endpoint(s) of the policy), none within %s of expiry (the renewal window)", total, reached, days(window))))
	}
	if len(unreadable) > 0 {
		obs = append(obs, checks.Unknown(fmt.Sprintf("%d of %d listed certificate(s)", len(unreadable), len(serials)), "not readable: "+firstOf(unreadable, 5)))
	}
	if len(unreached) > 0 {
		if noStore, unsure := v.rolesWithoutStore(); len(noStore) > 0 || unsure {
			why := "role(s) " + strings.Join(noStore, ", ") + " do not store what they issue (no_store)"
			if len(noStore) == 0 {
				why = "not every role could be read, so some may not store what they issue"
			}
			obs = append(obs, checks.Unknown(fmt.Sprintf("%d endpoint(s) of the policy not reached", len(unreached)), why+", and what these endpoints serve is unknown: "+firstOf(unreached, 5)))
		}
	}
	if len(obs) == 0 {
		v.out = append(v.out, checks.NotApplicable("vaultpki.pki.expiry", subject, fmt.Sprintf(
			"no issued certificate to judge: %s lists %d certificate(s) (%d CA, %d short-lived < 1 h such as verify's lint leaves, %d expired) and none of the %d endpoint(s) reached serves one from it",
			st.intMount, len(serials), cas, short, expired, reached)))
		return
	}
	v.reduce("vaultpki.pki.expiry", subject, obs...)
}

func orNotFound(err error) any {
	if err == nil {
		return "listed, but not found when read"
	}
	return err
}

// firstOf joins the first n items and says how many more there are.
func firstOf(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(items[:n], "; "), len(items)-n)
}

// rolesWithoutStore names the roles with no_store on; unsure when not
// every role could be read.
func (v *verifier) rolesWithoutStore() (names []string, unsure bool) {
	inv := v.roleInventory()
	for _, name := range slices.Sorted(maps.Keys(inv.roles)) {
		if inv.roles[name]["no_store"] == true {
			names = append(names, name)
		}
	}
	return names, inv.listErr != nil || len(inv.unreadable) > 0
}

// servedCertificates handshakes with every other target's endpoints (in
// its plugin's dialect) and keeps the leaves the intermediate issued, by
// serial; it also says how many endpoints answered and which did not
// (each of them is also scanned, lifetime included, by its own target).
func (v *verifier) servedCertificates(inter *x509.Certificate) (out map[string]*x509.Certificate, reached int, unreached []string) {
	out = map[string]*x509.Certificate{}
	dialects := map[string]probe.Dialect{"postgres": probe.Postgres, "kafka": probe.Kafka}
	for _, t := range v.targets {
		if t.Name == v.self {
			continue
		}
		d := dialects[t.Plugin]
		if d == nil {
			d = probe.TLS
		}
		for _, e := range t.Endpoints {
			addr := strings.TrimPrefix(strings.TrimPrefix(e.Address, "https://"), "http://")
			ctx, cancel := context.WithTimeout(v.ctx, 3*time.Second)
			cs, err := probe.Handshake(ctx, probe.Target{Address: addr, Dialect: d}, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, probe.Options{}) //nolint:gosec // reading what is served
			cancel()
			if err == nil && len(cs.PeerCertificates) == 0 {
				err = errors.New("no certificate presented")
			}
			if err != nil {
				unreached = append(unreached, fmt.Sprintf("%s %s (%v)", t.Name, addr, err))
				continue
			}
			reached++
			leaf := cs.PeerCertificates[0]
			if leaf.CheckSignatureFrom(inter) == nil {
				out[serialHex(leaf)] = leaf
			}
		}
	}
	return out, reached, unreached
}

// serialHex formats a serial as Vault does (colon-separated hex).
func serialHex(c *x509.Certificate) string {
	b := c.SerialNumber.Bytes()
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = fmt.Sprintf("%02x", x)
	}
	return strings.Join(parts, ":")
}

// transit checks every KEK the spec names: a key Vault says is missing
// fails; a key it would not show (403, no answer) is inconclusive.
func (v *verifier) transit() {
	if v.st.spec.Transit == nil {
		return
	}
	for _, k := range v.st.spec.Transit.Keys {
		path := v.st.transitMount + "/keys/" + k
		s, err := v.cl.Logical().ReadWithContext(v.ctx, path)
		if err != nil {
			v.unknown("vaultpki.transit.keys", path, "read "+path, err)
			continue
		}
		if s == nil {
			v.add("vaultpki.transit.keys", false, path, "key missing (Vault answered 404)")
			continue
		}
		d := s.Data
		var bad []string
		if d["type"] != "aes256-gcm96" {
			bad = append(bad, fmt.Sprintf("type %v", d["type"]))
		}
		period := seconds(d["auto_rotate_period"])
		if period == 0 || period > v.st.maxTTL {
			bad = append(bad, fmt.Sprintf("auto_rotate_period %s (policy %s)", period, v.st.maxTTL))
		}
		for _, flag := range []string{"exportable", "allow_plaintext_backup", "deletion_allowed"} {
			if d[flag] == true {
				bad = append(bad, flag+"=true")
			}
		}
		latest := fmt.Sprint(d["latest_version"])
		var created time.Time
		if ks, ok := d["keys"].(map[string]any); ok {
			switch t := ks[latest].(type) {
			case string:
				created, _ = time.Parse(time.RFC3339Nano, t)
			case json.Number:
				n, _ := t.Int64()
				created = time.Unix(n, 0)
			}
		}
		age := time.Since(created)
		var obs []checks.Observation
		switch {
		case created.IsZero():
			obs = append(obs, checks.Unknown("age of latest version "+latest, "Vault's answer has no creation time for it"))
		case age > v.st.maxTTL:
			bad = append(bad, fmt.Sprintf("latest version %s is %s old (policy %s)", latest, age.Round(time.Hour), v.st.maxTTL))
		}
		switch {
		case len(bad) > 0:
			obs = append(obs, checks.Bad(strings.Join(bad, "; ")))
		case len(obs) == 0:
			obs = append(obs, checks.Good(fmt.Sprintf("aes256-gcm96, latest version %s created %s ago, auto-rotate every %s, not exportable, no plaintext backup, deletion off", latest, age.Round(time.Minute), period)))
		}
		v.reduce("vaultpki.transit.keys", path, obs...)
	}
}

// describedOf: the listener scan's description, when there was a scan.
func describedOf(d *sdk.EndpointScan) []sdk.EndpointScan {
	if d == nil {
		return nil
	}
	return []sdk.EndpointScan{*d}
}

// days writes a duration of whole days as "N days" (else as Go does).
func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	}
	return d.String()
}

// expiryWindows are the "close to expiry" tiers, tightest first, ending
// with the renewal window (renew_before; 30 days when the policy has none).
func expiryWindows(renewBefore time.Duration) []time.Duration {
	window := renewBefore
	if window <= 0 {
		window = 30 * 24 * time.Hour
	}
	var alerts []time.Duration
	for _, a := range []time.Duration{7 * 24 * time.Hour, 14 * 24 * time.Hour} {
		if a < window {
			alerts = append(alerts, a)
		}
	}
	return append(alerts, window)
}
