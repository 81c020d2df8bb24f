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
	"fmt"
	"maps"
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
)

func init() {
	rot := []string{checks.RefSeedRotation}
	kms := []string{"seed: KMS: creates, stores, rotates, and audits keys; enable KMS audit logs"}
	checks.Register(
		checks.Definition{ID: "vault.pki.ca_present", Title: "The root and intermediate CAs exist", Severity: checks.High, Remediation: "Run harden apply for the Vault target.", References: rot},
		checks.Definition{ID: "vault.pki.ca_lifetime", Title: "CA validity left exceeds the longest leaf TTL plus the renewal window", Severity: checks.High,
			Remediation: "Renew the CA (a new intermediate signed by the root) before leaves outlive it.", References: rot},
		checks.Definition{ID: "vault.pki.ca_key", Title: "CA keys are of a type the TLS profile allows", Severity: checks.Medium, Remediation: "Issue a new CA with an allowed key type.", References: []string{checks.RefMozillaTLS}},
		checks.Definition{ID: "vault.pki.roles", Title: "PKI roles: max TTL within the rotation policy, no wildcard/glob/any-name issuing, profile key types", Severity: checks.High,
			Remediation: "Lower max_ttl, disable allow_any_name/allow_glob_domains/allow_wildcard_certificates (harden apply does for its roles).", References: rot},
		checks.Definition{ID: "vault.pki.urls", Title: "Issuing-certificate and CRL distribution URLs are configured", Severity: checks.Medium, Remediation: "Set <mount>/config/urls.", References: rot},
		checks.Definition{ID: "vault.pki.tidy", Title: "Automatic tidy of expired certificates is on", Severity: checks.Low, Remediation: "Enable <mount>/config/auto-tidy.", References: rot},
		checks.Definition{ID: "vault.pki.lint", Title: "The CA chain and a freshly issued leaf pass the RFC 5280 lints", Severity: checks.Medium, Remediation: "Fix the role or CA fields the lint names.", References: rot},
		checks.Definition{ID: "vault.pki.expiry", Title: "Certificates Vault issued are not close to expiry", Severity: checks.Medium, Remediation: "Renew the listed certificates (harden apply re-issues the policy's).", References: rot},
		checks.Definition{ID: "vault.transit.keys", Title: "Transit KEKs: latest version within the rotation period, auto-rotate on, not exportable, no plaintext backup, deletion off", Severity: checks.High,
			Remediation: "Rotate the key, set auto_rotate_period, deletion_allowed=false; an exportable key needs replacing.", References: kms},
		checks.Definition{ID: "vault.audit.enabled", Title: "A file audit device records requests (proven by a canary request found in the log)", Severity: checks.High,
			Remediation: "Enable a file audit device (harden apply does).", References: kms},
		checks.Definition{ID: "vault.audit.denied", Title: "Permission-denied requests since the previous verify", Severity: checks.Info, Remediation: "Review who is being refused.", References: kms},
	)
}

// Verify checks the live Vault: CAs, roles, URLs, tidy, lints on the chain
// and a fresh leaf, issued certificates' expiry, transit keys, the audit
// device (a canary request found in its log) and Vault's own listener.
func (vaultPKI) Verify(ctx context.Context, q sdk.VerifyRequest, r *sdk.VerifyResponse) {
	st, ok := load(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	// Vault's own listener, scanned like any endpoint (its own CA).
	listener := make(chan []checks.Check, 1)
	go func() { listener <- scanListener(ctx, q.RequestContext, st) }()
	cl, err := client(ctx, q.RequestContext, st.conn)
	if err != nil {
		r.Diagnostics.AddTargetError("vault.login", "cannot log in to Vault", err)
		return
	}
	v := &verifier{ctx: ctx, cl: cl, st: st, targets: q.Policy.Targets, self: q.Target.Name}
	v.audit()
	v.pki()
	v.transit()
	r.Checks = append(v.out, <-listener...)
}

type verifier struct {
	ctx     context.Context
	cl      *vault.Client
	st      *settings
	targets []sdk.TargetRef
	self    string
	out     []checks.Check
}

func (v *verifier) add(id string, ok bool, subject, evidence string) {
	if ok {
		v.out = append(v.out, checks.Passed(id, subject, evidence))
	} else {
		v.out = append(v.out, checks.Failed(id, subject, evidence))
	}
}

func scanListener(ctx context.Context, q sdk.RequestContext, st *settings) []checks.Check {
	u, err := url.Parse(st.conn.Address)
	if err != nil || u.Scheme != "https" {
		return []checks.Check{checks.Failed("tls.enabled", st.conn.Address, "Vault's API is not served over https")}
	}
	target, exp, err := probe.ForRequest(q, probe.HTTP)
	if err != nil {
		return []checks.Check{checks.Errored("tls.enabled", st.conn.Address, err)}
	}
	target.ClientCert, exp.RequireClientAuth = nil, false
	target.RootCAs = nil
	if st.conn.CAFile != "" {
		if pemData, err := os.ReadFile(st.conn.CAFile); err == nil {
			target.RootCAs = x509.NewCertPool()
			target.RootCAs.AppendCertsFromPEM(pemData)
		}
	}
	target.Address = u.Host
	res, err := probe.Scan(ctx, target, probe.Options{})
	if err != nil {
		return []checks.Check{checks.Errored("tls.enabled", u.Host, err)}
	}
	out := res.Checks(exp)
	for i := range out {
		out[i].Subject = "Vault listener " + u.Host
	}
	return out
}

// audit: a canary request (a read of a path named by a random nonce) must
// appear in the file audit log; permission-denied entries since the
// previous verify's canary are counted.
func (v *verifier) audit() {
	if v.st.auditFile == "" {
		devices, err := v.cl.Sys().ListAuditWithContext(v.ctx)
		if err != nil {
			v.out = append(v.out, checks.Errored("vault.audit.enabled", "audit devices", err))
			return
		}
		v.add("vault.audit.enabled", len(devices) > 0, "audit devices", fmt.Sprintf("%d audit device(s) enabled; no spec.audit.file to prove one records", len(devices)))
		return
	}
	subject := "file audit device " + v.st.auditFile
	devices, err := v.cl.Sys().ListAuditWithContext(v.ctx)
	if err != nil {
		v.out = append(v.out, checks.Errored("vault.audit.enabled", subject, err))
		return
	}
	if !slices.ContainsFunc(slices.Collect(maps.Values(devices)), func(a *vault.Audit) bool { return a.Type == "file" && a.Options["file_path"] == v.st.auditFile }) {
		v.add("vault.audit.enabled", false, subject, fmt.Sprintf("no file audit device writes %s (%d device(s) enabled)", v.st.auditFile, len(devices)))
		return
	}
	nonceB := make([]byte, 12)
	_, _ = rand.Read(nonceB)
	nonce := "harden-canary-" + hex.EncodeToString(nonceB)
	_, _ = v.cl.Logical().ReadWithContext(v.ctx, "sys/policy/"+nonce) // 404 or 403: either is audited
	deadline := time.Now().Add(3 * time.Second)
	for {
		found, denied, prev, err := scanAuditLog(v.st.auditFile, nonce)
		if err != nil {
			v.out = append(v.out, checks.New("vault.audit.enabled", checks.Warn, subject, "the audit log is not readable here ("+err.Error()+"): run verify on the Vault host to prove the device records"))
			return
		}
		if found {
			v.add("vault.audit.enabled", true, subject, "canary request "+nonce+" found in the audit log")
			ev := fmt.Sprintf("%d permission-denied request(s) since the previous verify", denied)
			if !prev {
				ev = fmt.Sprintf("%d permission-denied request(s) in the log (no earlier verify canary)", denied)
			}
			st := checks.Pass
			if denied > 0 {
				st = checks.Warn
			}
			v.out = append(v.out, checks.New("vault.audit.denied", st, subject, ev))
			return
		}
		if time.Now().After(deadline) {
			v.add("vault.audit.enabled", false, subject, "canary request "+nonce+" not found in the audit log within 3 s: the device does not record requests")
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
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
			v.out = append(v.out, checks.Errored("vault.pki.ca_present", m, err))
			return
		}
		if pemData == "" {
			v.add("vault.pki.ca_present", false, m, "no CA certificate in mount "+m)
			continue
		}
		c, err := parsePEMCert(pemData)
		if err != nil {
			v.out = append(v.out, checks.Errored("vault.pki.ca_present", m, err))
			continue
		}
		chain[m] = c
		v.add("vault.pki.ca_present", true, m, fmt.Sprintf("%q, valid to %s", c.Subject.CommonName, c.NotAfter.UTC().Format(time.DateOnly)))
		// Validity left vs the longest leaf TTL + renewal window.
		need := v.longestRoleTTL() + st.renewBefore
		left := time.Until(c.NotAfter)
		v.add("vault.pki.ca_lifetime", left > need, m, fmt.Sprintf("%s left; longest role max_ttl + renew_before = %s", left.Round(time.Hour), need))
		kt, ok := keyAllowed(c, st)
		v.add("vault.pki.ca_key", ok, m, kt+" (profile "+st.profile.Name+" allows "+strings.Join(st.profile.CertificateTypes, ", ")+")")
		urls, err := v.cl.Logical().ReadWithContext(v.ctx, m+"/config/urls")
		ok = err == nil && urls != nil && len(asList(urls.Data["issuing_certificates"])) > 0 && len(asList(urls.Data["crl_distribution_points"])) > 0
		ev := "issuing_certificates and crl_distribution_points set"
		if urls != nil {
			ev = fmt.Sprintf("issuing_certificates=%v crl_distribution_points=%v", urls.Data["issuing_certificates"], urls.Data["crl_distribution_points"])
		}
		v.add("vault.pki.urls", ok, m, ev)
	}
	if chain[st.intMount] == nil {
		return
	}
	tidy, err := v.cl.Logical().ReadWithContext(v.ctx, st.intMount+"/config/auto-tidy")
	enabled := err == nil && tidy != nil && tidy.Data["enabled"] == true && tidy.Data["tidy_cert_store"] == true
	v.add("vault.pki.tidy", enabled, st.intMount, fmt.Sprintf("auto-tidy enabled=%v", tidy != nil && tidy.Data["enabled"] == true))
	v.roles()
	v.lintAndInventory(chain)
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

// roleList reads every role of the intermediate mount.
func (v *verifier) roleList() map[string]map[string]any {
	out := map[string]map[string]any{}
	s, err := v.cl.Logical().ListWithContext(v.ctx, v.st.intMount+"/roles")
	if err != nil || s == nil {
		return out
	}
	for _, n := range asList(s.Data["keys"]) {
		name := fmt.Sprint(n)
		if r, err := v.cl.Logical().ReadWithContext(v.ctx, v.st.intMount+"/roles/"+name); err == nil && r != nil {
			out[name] = r.Data
		}
	}
	return out
}

func seconds(v any) time.Duration {
	n, _ := strconv.ParseInt(fmt.Sprint(v), 10, 64)
	return time.Duration(n) * time.Second
}

func (v *verifier) longestRoleTTL() time.Duration {
	longest := v.st.maxTTL
	for _, r := range v.roleList() {
		if d := seconds(r["max_ttl"]); d > longest {
			longest = d
		}
	}
	return longest
}

// roles: every role of the mount, harden's or not, is held to the policy.
func (v *verifier) roles() {
	roles := v.roleList()
	if len(roles) == 0 {
		v.add("vault.pki.roles", false, v.st.intMount, "no roles: nothing can be issued")
		return
	}
	names := keys(func() map[string]any {
		m := map[string]any{}
		for k := range roles {
			m[k] = nil
		}
		return m
	}())
	for _, name := range names {
		r := roles[name]
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
			v.add("vault.pki.roles", false, subject, strings.Join(bad, "; "))
		} else {
			v.add("vault.pki.roles", true, subject, fmt.Sprintf("max_ttl %s, key_type %s, server_flag=%v client_flag=%v, no wildcard/glob/any-name", seconds(r["max_ttl"]), kt, r["server_flag"], r["client_flag"]))
		}
	}
}

// lintAndInventory lints the chain and a fresh 5-minute leaf signed by the
// server role (key made here, only the CSR goes to Vault), and lists issued
// certificates close to expiry.
func (v *verifier) lintAndInventory(chain map[string]*x509.Certificate) {
	st := v.st
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	name := st.serverNames[0]
	csrDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}, DNSNames: []string{name}}, key)
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER}))
	s, err := v.cl.Logical().WriteWithContext(v.ctx, st.intMount+"/sign/"+st.serverRole, map[string]any{"csr": csr, "ttl": "5m"})
	lintChain := []*x509.Certificate{chain[st.intMount], chain[st.rootMount]}
	subject := st.intMount + " chain + a fresh leaf from role " + st.serverRole
	if err != nil {
		v.add("vault.pki.lint", false, subject, "the server role refused to sign a CSR for "+name+": "+err.Error())
	} else if leaf, perr := parsePEMCert(fmt.Sprint(s.Data["certificate"])); perr == nil {
		lintChain = append([]*x509.Certificate{leaf}, lintChain...)
	}
	if lintChain[len(lintChain)-1] == nil {
		lintChain = lintChain[:len(lintChain)-1]
	}
	findings, err := certlint.Lint(lintChain)
	switch {
	case err != nil:
		v.out = append(v.out, checks.Errored("vault.pki.lint", subject, err))
	case len(findings) == 0:
		v.add("vault.pki.lint", true, subject, fmt.Sprintf("%d certificate(s): no RFC 5280/5480/5891/8813 lint errors or warnings", len(lintChain)))
	default:
		status := checks.Warn
		for _, f := range findings {
			if f.Status == "error" || f.Status == "fatal" {
				status = checks.Fail
			}
		}
		v.out = append(v.out, checks.New("vault.pki.lint", status, subject, certlint.Summary(findings)))
	}
	// Inventory: what Vault stored (short-lived leaves such as the lint
	// leaf above are left out).
	list, err := v.cl.Logical().ListWithContext(v.ctx, st.intMount+"/certs")
	if err != nil || list == nil {
		return
	}
	var soon []string
	total := 0
	stored := map[string]bool{}
	alerts := []time.Duration{30 * 24 * time.Hour, 14 * 24 * time.Hour, 7 * 24 * time.Hour}
	for _, serial := range asList(list.Data["keys"]) {
		c, err := v.cl.Logical().ReadWithContext(v.ctx, st.intMount+"/cert/"+fmt.Sprint(serial))
		if err != nil || c == nil {
			continue
		}
		cert, err := parsePEMCert(fmt.Sprint(c.Data["certificate"]))
		if err != nil || cert.IsCA || cert.NotAfter.Sub(cert.NotBefore) < time.Hour || time.Now().After(cert.NotAfter) {
			continue
		}
		total++
		stored[serialHex(cert)] = true
		left := time.Until(cert.NotAfter)
		for _, a := range alerts {
			if left < a {
				soon = append(soon, fmt.Sprintf("%s (serial %s) expires in %s (< %d days)", cert.Subject.CommonName, serial, left.Round(time.Hour), int(a.Hours()/24)))
				break
			}
		}
	}
	// ... united with what the policy's endpoints actually serve (roles with
	// no_store leave no record in Vault).
	served, reached := v.servedCertificates(chain[st.intMount])
	for serial, cert := range served {
		if stored[serial] {
			continue
		}
		total++
		left := time.Until(cert.NotAfter)
		for _, a := range alerts {
			if left < a {
				soon = append(soon, fmt.Sprintf("%s (served, serial %s) expires in %s (< %d days)", cert.Subject.CommonName, serial, left.Round(time.Hour), int(a.Hours()/24)))
				break
			}
		}
	}
	v.add("vault.pki.expiry", len(soon) == 0, st.intMount+" issued certificates",
		orAll(soon, fmt.Sprintf("%d valid certificate(s) (stored in Vault or served by %d endpoint(s) of the policy), none within 30 days of expiry", total, reached)))
}

// servedCertificates handshakes with every other target's endpoints (in
// its plugin's dialect) and keeps the leaves the intermediate issued, by
// serial; it also says how many endpoints answered.
func (v *verifier) servedCertificates(inter *x509.Certificate) (map[string]*x509.Certificate, int) {
	out := map[string]*x509.Certificate{}
	reached := 0
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
			if err != nil || len(cs.PeerCertificates) == 0 {
				continue
			}
			reached++
			leaf := cs.PeerCertificates[0]
			if leaf.CheckSignatureFrom(inter) == nil {
				out[serialHex(leaf)] = leaf
			}
		}
	}
	return out, reached
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

func orAll(items []string, ok string) string {
	if len(items) == 0 {
		return ok
	}
	return strings.Join(items, "; ")
}

// transit checks every KEK the spec names.
func (v *verifier) transit() {
	if v.st.spec.Transit == nil {
		return
	}
	for _, k := range v.st.spec.Transit.Keys {
		path := v.st.transitMount + "/keys/" + k
		s, err := v.cl.Logical().ReadWithContext(v.ctx, path)
		if err != nil || s == nil {
			v.add("vault.transit.keys", false, path, fmt.Sprintf("key missing or unreadable: %v", err))
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
		if created.IsZero() || age > v.st.maxTTL {
			bad = append(bad, fmt.Sprintf("latest version %s is %s old (policy %s)", latest, age.Round(time.Hour), v.st.maxTTL))
		}
		if len(bad) > 0 {
			v.add("vault.transit.keys", false, path, strings.Join(bad, "; "))
		} else {
			v.add("vault.transit.keys", true, path, fmt.Sprintf("aes256-gcm96, latest version %s created %s ago, auto-rotate every %s, not exportable, no plaintext backup, deletion off", latest, age.Round(time.Minute), period))
		}
	}
}
