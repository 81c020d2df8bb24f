package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// The issuer's side of a staged CA rotation (sdk.CARotator). The host
// drives the phases and keeps its own state; everything this side needs
// to know lives in Vault itself, in the names of the issuers and keys of
// the two PKI mounts (Vault 1.11+ multi-issuer PKI), so a run killed
// anywhere is understood by the next one from Vault's answers alone:
//
//   - the next root: issuer and key "harden-next" in the root mount;
//   - the next intermediate: issuer and key "harden-next" in the
//     intermediate mount, signed by the next root (found by that
//     signature, whatever its name, so an import that was not yet named is
//     recognised), and the copy of the next root Vault imports beside it:
//     "harden-next-root";
//   - the current root is the root mount's default issuer (what usage "ca"
//     returns); the current intermediate is the intermediate mount's
//     issuer with a key that the current root signed (the default one
//     until activate).
//
// Nothing is ever deleted. finish renames the old root and intermediate
// "retired-<date>" and takes issuing-certificates out of their usage (CRL
// and OCSP signing stay, so what they issued can still be revoked), and
// renames the next ones to what apply makes: the root "harden-root", the
// intermediate, its root copy and the keys unnamed. discard renames a next
// CA that does not sign "discarded-<date>" and takes issuing out of its
// usage too. Every operation is a loop of one Vault write at a time, each
// decided from a fresh read of both mounts, so a second run of any of them
// does what the first left undone and nothing else.

// Names of the issuers and keys a rotation makes.
const (
	nextName     = "harden-next"
	nextRootCopy = "harden-next-root"
	// what apply names the root issuer of the root mount
	currentRootName = "harden-root"
	// A retired or discarded issuer keeps its key and signs CRLs and OCSP
	// answers for what it issued, but issues nothing any more.
	setAsideUsage = "read-only,crl-signing,ocsp-signing"
	retiredPrefix = "retired-"
	discardPrefix = "discarded-"
)

// Rotation phases as read from Vault.
const (
	phaseIdle       = "idle"       // no next CA
	phasePartial    = "partial"    // prepare did not complete
	phasePrepared   = "prepared"   // the next CA exists (signing or not)
	phaseFinishing  = "finishing"  // a finish was interrupted
	phaseDiscarding = "discarding" // a discard was interrupted
)

// Vault's issuer and key ids go into request paths: anything but an id
// (a UUID in every Vault version) is refused as an answer.
var vaultIDRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// issuerInfo is one issuer of a PKI mount as Vault lists and serves it.
type issuerInfo struct {
	id, name, keyID string
	isDefault       bool
	cert            *x509.Certificate
	pem             string
}

// mountIssuers is every issuer of one PKI mount, and (read only for the
// operations that write) the names of its keys by key id.
type mountIssuers struct {
	mount string
	all   []*issuerInfo
	def   *issuerInfo
	keys  map[string]string
}

func (m *mountIssuers) named(name string) *issuerInfo {
	for _, i := range m.all {
		if i.name == name {
			return i
		}
	}
	return nil
}

// keyNamed is the id of the key called name ("" when there is none).
func (m *mountIssuers) keyNamed(name string) string {
	for id, n := range m.keys {
		if n == name {
			return id
		}
	}
	return ""
}

// issuerList decodes a LIST <mount>/issuers answer: ids, names, key ids
// and the default marker. Vault's answer is input: an id that is not an id,
// or two defaults, is an error, never a path to write to.
func issuerList(data map[string]any) ([]*issuerInfo, error) {
	info, _ := data["key_info"].(map[string]any)
	var out []*issuerInfo
	seen := map[string]bool{}
	defaults := 0
	for _, raw := range asList(data["keys"]) {
		id, _ := raw.(string)
		if !vaultIDRE.MatchString(id) {
			return nil, fmt.Errorf("the issuer list names %q, which is not an issuer id", fmt.Sprint(raw))
		}
		if seen[id] {
			return nil, fmt.Errorf("the issuer list names %s twice", id)
		}
		seen[id] = true
		ki, _ := info[id].(map[string]any)
		it := &issuerInfo{id: id}
		it.name, _ = ki["issuer_name"].(string)
		it.keyID, _ = ki["key_id"].(string)
		it.isDefault = ki["is_default"] == true
		if it.keyID != "" && !vaultIDRE.MatchString(it.keyID) {
			return nil, fmt.Errorf("issuer %s: key id %q is not a key id", id, it.keyID)
		}
		if it.isDefault {
			defaults++
		}
		out = append(out, it)
	}
	if defaults > 1 {
		return nil, fmt.Errorf("the issuer list marks %d issuers as the default", defaults)
	}
	return out, nil
}

// readIssuers lists a PKI mount's issuers and reads each one's
// certificate (both unauthenticated reads in Vault); withKeys also lists
// the mount's keys (which needs list on <mount>/keys).
func readIssuers(ctx context.Context, cl *vault.Client, mount string, withKeys bool) (*mountIssuers, error) {
	m := &mountIssuers{mount: mount, keys: map[string]string{}}
	s, err := cl.Logical().ListWithContext(ctx, mount+"/issuers")
	if err != nil {
		return nil, fmt.Errorf("list %s/issuers: %w", mount, err)
	}
	if s != nil {
		if m.all, err = issuerList(s.Data); err != nil {
			return nil, fmt.Errorf("list %s/issuers: %w", mount, err)
		}
	}
	for _, it := range m.all {
		path := mount + "/issuer/" + it.id + "/json"
		r, err := cl.Logical().ReadWithContext(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if r == nil {
			return nil, fmt.Errorf("read %s: listed, but Vault answered 404", path)
		}
		certPEM, _ := r.Data["certificate"].(string)
		certs, err := sdk.ParseCertificatesPEM([]byte(certPEM))
		if err != nil || len(certs) != 1 {
			return nil, fmt.Errorf("read %s: not one certificate (%v)", path, err)
		}
		it.cert, it.pem = certs[0], strings.TrimSpace(certPEM)
		if it.isDefault {
			m.def = it
		}
	}
	if !withKeys {
		return m, nil
	}
	k, err := cl.Logical().ListWithContext(ctx, mount+"/keys")
	if err != nil {
		return nil, fmt.Errorf("list %s/keys: %w", mount, err)
	}
	if k != nil {
		info, _ := k.Data["key_info"].(map[string]any)
		for _, raw := range asList(k.Data["keys"]) {
			id, _ := raw.(string)
			if !vaultIDRE.MatchString(id) {
				return nil, fmt.Errorf("list %s/keys: %q is not a key id", mount, fmt.Sprint(raw))
			}
			ki, _ := info[id].(map[string]any)
			m.keys[id], _ = ki["key_name"].(string)
		}
	}
	return m, nil
}

// rotation is what a staged CA rotation looks like in Vault right now.
type rotation struct {
	root, inter *mountIssuers
	phase       string
	// The roots: current is the root mount's default issuer (what usage
	// "ca" returns), next the one named harden-next (the same issuer once
	// an interrupted finish made it the default).
	current, next *issuerInfo
	// The intermediates: the one signed by the next root, and the one
	// signed by the current root (nil when none or not one can be told;
	// curIntErr then says why).
	curInt, nextInt *issuerInfo
	curIntErr       error
	// oldInts: every intermediate with its key the current root signed that
	// is not retired or discarded (finish retires them all).
	oldInts []*issuerInfo
	// The copies of the roots Vault imported into the intermediate mount
	// beside each intermediate (keyless issuers).
	curCopy, nextCopy *issuerInfo
}

// signedBy: c is a certificate other than parent that parent's key signed.
func signedBy(c, parent *issuerInfo) bool {
	return c != nil && parent != nil && !bytes.Equal(c.cert.Raw, parent.cert.Raw) && c.cert.CheckSignatureFrom(parent.cert) == nil
}

func setAside(name string) bool {
	return strings.HasPrefix(name, retiredPrefix) || strings.HasPrefix(name, discardPrefix)
}

// classify reads the phase of a rotation from the two mounts' issuers.
func classify(root, inter *mountIssuers) (*rotation, error) {
	r := &rotation{root: root, inter: inter, current: root.def, next: root.named(nextName)}
	old := r.current
	if old == r.next {
		old = nil // an interrupted finish made the next root the default
	}
	copyOf := func(of *issuerInfo) *issuerInfo {
		for _, i := range inter.all {
			if of != nil && i.keyID == "" && bytes.Equal(i.cert.Raw, of.cert.Raw) {
				return i
			}
		}
		return nil
	}
	if r.next != nil {
		for _, i := range inter.all {
			if i.keyID != "" && signedBy(i, r.next) && (r.nextInt == nil || i.name == nextName) {
				r.nextInt = i
			}
		}
		r.nextCopy = copyOf(r.next)
	}
	if old != nil {
		for _, i := range inter.all {
			if i.keyID != "" && i != r.nextInt && i.name != nextName && !setAside(i.name) && signedBy(i, old) {
				r.oldInts = append(r.oldInts, i)
			}
		}
		cands := r.oldInts
		switch {
		case len(cands) == 1:
			r.curInt = cands[0]
		case len(cands) > 1 && slices.Contains(cands, inter.def):
			r.curInt = inter.def
		case len(cands) > 1:
			names := make([]string, len(cands))
			for i, c := range cands {
				names[i] = inter.mount + "/issuer/" + c.id
			}
			r.curIntErr = fmt.Errorf("%d intermediates in %s are signed by the current root and none is the default: %s", len(cands), inter.mount, strings.Join(names, ", "))
		default:
			r.curIntErr = fmt.Errorf("no intermediate in %s (with its key, not retired or discarded) is signed by the current root %s/issuer/%s", inter.mount, root.mount, old.id)
		}
		if c := copyOf(old); c != nil && !setAside(c.name) {
			r.curCopy = c
		}
	} else {
		r.curIntErr = fmt.Errorf("%s has no current root", root.mount)
	}
	y := r.nextInt
	switch {
	case r.next == nil:
		r.phase = phaseIdle
	case root.def == r.next:
		r.phase = phaseFinishing
	case y == nil:
		r.phase = phasePartial
	case y.name == nextName:
		r.phase = phasePrepared
	case y.name == "" && inter.def == y:
		r.phase = phaseFinishing
	case y.name == "":
		r.phase = phasePartial
	case strings.HasPrefix(y.name, discardPrefix):
		r.phase = phaseDiscarding
	default:
		return nil, fmt.Errorf("%s/issuer/%s is signed by the next root %s/%s but is named %q: harden cannot tell which phase the rotation is in (rename it %s, or discard the next CA by hand)",
			inter.mount, y.id, root.mount, nextName, y.name, nextName)
	}
	return r, nil
}

// signing says which intermediate signs new leaves: "next" while the next
// intermediate is the intermediate mount's default.
func (r *rotation) signing() string {
	if (r.phase == phasePrepared || r.phase == phaseFinishing) && r.nextInt != nil && r.inter.def == r.nextInt {
		return "next"
	}
	return "current"
}

// observe reads both mounts (withKeys: their keys too) and classifies.
func observe(ctx context.Context, cl *vault.Client, st *settings, withKeys bool) (*rotation, error) {
	root, err := readIssuers(ctx, cl, st.rootMount, withKeys)
	if err != nil {
		return nil, err
	}
	inter, err := readIssuers(ctx, cl, st.intMount, withKeys)
	if err != nil {
		return nil, err
	}
	return classify(root, inter)
}

var caOperations = []string{sdk.CAStatus, sdk.CAPrepare, sdk.CAActivate, sdk.CADeactivate, sdk.CAFinish, sdk.CADiscard}

// RotateCA is the issuer's side of a staged CA rotation: status reads,
// prepare makes the next root and intermediate beside the current ones,
// activate and deactivate choose which intermediate the intermediate
// mount's default is (the roles sign with issuer_ref "default"), finish
// makes the next CA the current one and retires the old one, discard sets
// an unused next CA aside. The operations that write take apply's lock for
// this Vault (no apply runs in between) and refuse to start after a killed
// apply. The response is what Vault holds afterwards, read again.
func (vaultPKI) RotateCA(ctx context.Context, q sdk.RotateCARequest, r *sdk.RotateCAResponse) {
	st, ok := load(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	op := q.Operation
	if !slices.Contains(caOperations, op) {
		r.Diagnostics.AddError("unknown CA rotation operation "+strconv.Quote(op), "use one of "+strings.Join(caOperations, ", ")+"; nothing was changed")
		return
	}
	if st.external() {
		r.Diagnostics.AddError("target "+q.Target.Name+": no CA rotation for an intermediate signed outside Vault",
			"spec.pki.external_intermediate: the root is not in Vault; rotate it with the CA that signs it (a new chain in certificate_file)")
		return
	}
	cl, err := client(ctx, q.RequestContext, st.conn)
	if err != nil {
		r.Diagnostics.AddTargetError("vaultpki.login", "cannot log in to Vault", err)
		return
	}
	if op != sdk.CAStatus {
		sess, ok := applykit.AcquireAt("vaultpki", "this Vault", st.journalPaths, &r.Diagnostics)
		if !ok {
			return
		}
		defer sess.Release()
		if sess.Interrupted != nil {
			r.Diagnostics.AddTargetError("vaultpki.apply.interrupted", "CA rotation "+op+" refused; nothing was changed",
				errors.New(applykit.Describe(*sess.Interrupted)+": run harden apply for this target to complete it first"))
			return
		}
	}
	ro := &rotator{ctx: ctx, cl: cl, st: st, op: op, date: time.Now().UTC().Format(time.DateOnly)}
	rot, runErr := ro.run()
	var readErr error
	if rot == nil && context.Cause(ctx) == nil {
		// After a failed write: what Vault holds now.
		rot, readErr = observe(ctx, cl, st, false)
	}
	switch {
	case runErr != nil:
		var re *vault.ResponseError
		code := "vaultpki.rotate_ca"
		if errors.As(runErr, &re) && re.StatusCode == 403 {
			code = "vaultpki.capabilities"
		}
		summary := "CA rotation " + op + " failed"
		if ro.changed > 0 {
			summary += fmt.Sprintf(" after %d change(s) to Vault (they stay; run %s again to continue)", ro.changed, op)
		} else {
			summary += "; nothing was changed"
		}
		r.Diagnostics.AddTargetError(code, summary, runErr)
	case readErr != nil:
		r.Diagnostics.AddTargetError("vaultpki.rotate_ca", "CA rotation "+op+": cannot read the CA state back", readErr)
	}
	if rot == nil {
		return
	}
	if rot.current == nil && runErr == nil {
		r.Diagnostics.AddTargetError("vaultpki.rotate_ca", "no CA to rotate",
			fmt.Errorf("mount %s has no default issuer: run harden apply --target %s first", st.rootMount, q.Target.Name))
		return
	}
	if rot.current != nil {
		r.CurrentRootPEM = []byte(rot.current.pem + "\n")
	}
	if rot.next != nil && rot.next != rot.current && (rot.phase == phasePrepared || rot.phase == phaseFinishing) {
		r.NextRootPEM = []byte(rot.next.pem + "\n")
	}
	r.Signing = rot.signing()
	if runErr == nil {
		switch rot.phase {
		case phasePartial:
			r.Diagnostics.AddWarning("the next CA of "+st.rootMount+"/"+st.intMount+" is not complete", "a prepare did not finish: run prepare again to complete it, or discard to set it aside")
		case phaseFinishing:
			r.Diagnostics.AddWarning("a finish of the CA rotation was interrupted", "run finish again to complete it")
		case phaseDiscarding:
			r.Diagnostics.AddWarning("a discard of the next CA was interrupted", "run discard again to complete it")
		}
	}
}

// rotator runs one operation: a loop of one write at a time, each chosen
// from a fresh read of both mounts.
type rotator struct {
	ctx  context.Context
	cl   *vault.Client
	st   *settings
	op   string
	date string
	// changed counts the writes this run made (for the error's words).
	changed int
}

// action is one write and the words that name it in errors.
type action struct {
	what string
	do   func(context.Context) error
}

// maxActions bounds the loop: no operation needs more writes than this;
// more means Vault does not keep what it was told.
const maxActions = 16

// run returns the state it last read: after the last write when it
// succeeds (nil when a read failed).
func (ro *rotator) run() (*rotation, error) {
	withKeys := ro.op == sdk.CAPrepare || ro.op == sdk.CAFinish || ro.op == sdk.CADiscard
	preflown := false
	for range maxActions {
		rot, err := observe(ro.ctx, ro.cl, ro.st, withKeys)
		if err != nil {
			return nil, fmt.Errorf("read the CA state: %w", err)
		}
		var next *action
		switch ro.op {
		case sdk.CAStatus:
			return rot, nil
		case sdk.CAPrepare:
			next, err = ro.prepare(rot)
		case sdk.CAActivate:
			next, err = ro.activate(rot)
		case sdk.CADeactivate:
			next, err = ro.deactivate(rot)
		case sdk.CAFinish:
			next, err = ro.finish(rot)
		case sdk.CADiscard:
			next, err = ro.discard(rot)
		}
		if err != nil {
			return rot, err
		}
		if next == nil {
			return rot, nil
		}
		if !preflown {
			// Before the first write: a token that lacks what this
			// operation writes changes nothing.
			if err := ro.preflight(rot); err != nil {
				return rot, err
			}
			preflown = true
		}
		if stepHook != nil {
			stepHook("rotate_ca " + ro.op + ": " + next.what)
		}
		if err := context.Cause(ro.ctx); err != nil {
			return nil, fmt.Errorf("%s: not started: %w", next.what, err)
		}
		if err := next.do(ro.ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", next.what, err)
		}
		ro.changed++
	}
	return nil, fmt.Errorf("%s did not converge after %d writes to Vault: it does not keep what it is told", ro.op, maxActions)
}

// preflight checks with sys/capabilities-self the paths the operation
// writes (issuer and key paths by the ids known now).
func (ro *rotator) preflight(rot *rotation) error {
	rm, im := ro.st.rootMount, ro.st.intMount
	needs := map[string]string{}
	issuer := func(m string, i *issuerInfo) {
		if i != nil {
			needs[m+"/issuer/"+i.id] = "patch"
			if i.keyID != "" {
				needs[m+"/key/"+i.keyID] = "update"
			}
		}
	}
	switch ro.op {
	case sdk.CAPrepare:
		needs[rm+"/root/generate/internal"] = "update"
		needs[im+"/intermediate/generate/internal"] = "update"
		needs[im+"/intermediate/set-signed"] = "update"
		needs[im+"/issuer/"+nextName] = "patch"
		if rot.next != nil {
			needs[rm+"/issuer/"+rot.next.id+"/sign-intermediate"] = "update"
		}
	case sdk.CAActivate, sdk.CADeactivate:
		needs[im+"/config/issuers"] = "update"
	case sdk.CAFinish:
		needs[rm+"/config/issuers"], needs[im+"/config/issuers"] = "update", "update"
		issuer(rm, rot.current)
		issuer(im, rot.nextInt)
		for _, i := range rot.oldInts {
			issuer(im, i)
		}
		issuer(rm, rot.next)
	case sdk.CADiscard:
		issuer(im, rot.nextInt)
		issuer(rm, rot.next)
	}
	if err := checkCapabilities(ro.ctx, ro.cl, []step{{needs: needs}}); err != nil {
		return fmt.Errorf("pre-flight: %w", err)
	}
	return nil
}

// prepare: the next root, then the next intermediate signed by it and
// imported, then their names; nothing becomes the default.
func (ro *rotator) prepare(rot *rotation) (*action, error) {
	st := ro.st
	switch rot.phase {
	case phasePrepared:
		return nil, nil
	case phaseFinishing:
		return nil, errors.New("a finish of the previous rotation was interrupted: run finish again before preparing another CA")
	case phaseDiscarding:
		return nil, errors.New("a discard of the previous next CA was interrupted: run discard again before preparing another CA")
	}
	if rot.current == nil {
		return nil, fmt.Errorf("mount %s has no default issuer (the current root): run harden apply first", st.rootMount)
	}
	if rot.curInt == nil {
		return nil, fmt.Errorf("no current intermediate to rotate: %w", rot.curIntErr)
	}
	if rot.next == nil {
		// Both mounts must keep their default when an issuer is added.
		for _, m := range []string{st.rootMount, st.intMount} {
			s, err := ro.cl.Logical().ReadWithContext(ro.ctx, m+"/config/issuers")
			if err != nil {
				return nil, fmt.Errorf("read %s/config/issuers: %w", m, err)
			}
			if s != nil && s.Data["default_follows_latest_issuer"] == true {
				return nil, fmt.Errorf("%s/config/issuers has default_follows_latest_issuer on: the next CA would sign the moment it is made; turn it off to stage a rotation", m)
			}
		}
		gen := len(rot.root.all) + 1
		cn := fmt.Sprintf("%s G%d", st.rootCN, gen)
		return &action{"make the next root (" + st.rootMount + "/root/generate/internal, issuer " + nextName + ")", func(ctx context.Context) error {
			_, err := ro.cl.Logical().WriteWithContext(ctx, st.rootMount+"/root/generate/internal", map[string]any{"common_name": cn,
				"key_type": st.keyType, "key_bits": st.keyBits, "ttl": fmt.Sprintf("%dh", int(st.rootTTL.Hours())), "issuer_name": nextName, "key_name": nextName})
			return err
		}}, nil
	}
	if rot.nextInt == nil {
		return ro.makeNextIntermediate(rot)
	}
	if c := rot.nextCopy; c != nil && c.name != nextRootCopy {
		return ro.rename(st.intMount, c, nextRootCopy, ""), nil
	}
	return ro.rename(st.intMount, rot.nextInt, nextName, ""), nil
}

// makeNextIntermediate: a key and CSR made inside the intermediate mount
// (key "harden-next"; a key left by an interrupted prepare is reused, one
// an issuer already uses never), signed by the next root, and the signed
// certificate with that root imported.
func (ro *rotator) makeNextIntermediate(rot *rotation) (*action, error) {
	st := ro.st
	keyID := rot.inter.keyNamed(nextName)
	if keyID != "" {
		for _, i := range rot.inter.all {
			if i.keyID == keyID {
				return nil, fmt.Errorf("key %s/key/%s is named %s but issuer %s/issuer/%s (%q), which the next root did not sign, uses it: rename that key by hand",
					st.intMount, keyID, nextName, st.intMount, i.id, i.name)
			}
		}
	}
	cn := st.intCN
	if m := regexp.MustCompile(` (G[0-9]+)$`).FindStringSubmatch(rot.next.cert.Subject.CommonName); m != nil {
		cn += " " + m[1]
	}
	return &action{"make the next intermediate (" + st.intMount + "/intermediate/generate, " + st.rootMount + "/issuer/" + rot.next.id + "/sign-intermediate, " + st.intMount + "/intermediate/set-signed)", func(ctx context.Context) error {
		lg := ro.cl.Logical()
		path, body := st.intMount+"/intermediate/generate/internal", map[string]any{"common_name": cn, "key_type": st.keyType, "key_bits": st.keyBits, "key_name": nextName}
		if keyID != "" {
			path, body = st.intMount+"/intermediate/generate/existing", map[string]any{"common_name": cn, "key_ref": keyID}
		}
		s, err := lg.WriteWithContext(ctx, path, body)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		csr, _ := s.Data["csr"].(string)
		sign := st.rootMount + "/issuer/" + rot.next.id + "/sign-intermediate"
		s, err = lg.WriteWithContext(ctx, sign, map[string]any{"csr": csr, "common_name": cn,
			"ttl": fmt.Sprintf("%dh", int(st.intTTL.Hours())), "format": "pem_bundle", "use_csr_values": false})
		if err != nil {
			return fmt.Errorf("%s: %w", sign, err)
		}
		cert, _ := s.Data["certificate"].(string)
		if _, err := lg.WriteWithContext(ctx, st.intMount+"/intermediate/set-signed", map[string]any{"certificate": cert}); err != nil {
			return fmt.Errorf("%s/intermediate/set-signed: %w", st.intMount, err)
		}
		return nil
	}}, nil
}

// activate: the next intermediate becomes the intermediate mount's
// default, so every role that signs with issuer_ref "default" (harden's
// roles do) signs with it.
func (ro *rotator) activate(rot *rotation) (*action, error) {
	switch rot.phase {
	case phasePrepared:
	case phaseFinishing:
		return nil, errors.New("a finish was interrupted: run finish again")
	default:
		return nil, fmt.Errorf("no next CA to activate (%s): run prepare first", rot.phase)
	}
	if rot.inter.def == rot.nextInt {
		return nil, nil
	}
	// A harden role pinned to an issuer would keep signing with it.
	var pinned []string
	for _, r := range roleSpecs(ro.st) {
		path := ro.st.intMount + "/roles/" + r.name
		s, err := ro.cl.Logical().ReadWithContext(ro.ctx, path)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if s == nil {
			continue
		}
		if ref, _ := s.Data["issuer_ref"].(string); ref != "" && ref != "default" {
			pinned = append(pinned, path+" (issuer_ref "+ref+")")
		}
	}
	if len(pinned) > 0 {
		return nil, fmt.Errorf("role(s) pinned to an issuer would not sign with the next intermediate: %s; set their issuer_ref to default", strings.Join(pinned, ", "))
	}
	return ro.setDefault(ro.st.intMount, rot.nextInt), nil
}

// deactivate: the current intermediate is the default again.
func (ro *rotator) deactivate(rot *rotation) (*action, error) {
	switch rot.phase {
	case phaseIdle, phasePartial, phaseDiscarding:
		return nil, nil // the next intermediate never became the default
	case phaseFinishing:
		return nil, errors.New("a finish was interrupted (the old CA may be retired already): run finish again")
	}
	if rot.inter.def != rot.nextInt {
		return nil, nil
	}
	if rot.curInt == nil {
		return nil, fmt.Errorf("no current intermediate to sign again: %w", rot.curIntErr)
	}
	return ro.setDefault(ro.st.intMount, rot.curInt), nil
}

// finish: the next intermediate signs, the old intermediate and its root
// copy are retired, the next ones get apply's names; then the same in the
// root mount, where the next root becomes the default last but one and is
// renamed harden-root last (after that, no next CA remains).
func (ro *rotator) finish(rot *rotation) (*action, error) {
	st := ro.st
	switch rot.phase {
	case phaseIdle:
		return nil, nil
	case phasePartial:
		return nil, errors.New("the next CA is not complete: run prepare (or discard) first")
	case phaseDiscarding:
		return nil, errors.New("a discard of the next CA was interrupted: run discard again")
	}
	y, b := rot.nextInt, rot.next
	old := rot.current
	if old == b {
		old = nil
	}
	switch {
	case y != nil && rot.inter.def != y:
		return ro.setDefault(st.intMount, y), nil
	case len(rot.oldInts) > 0:
		return ro.rename(st.intMount, rot.oldInts[0], ro.freeName(rot.inter, retiredPrefix+ro.date), setAsideUsage), nil
	case rot.curCopy != nil:
		return ro.rename(st.intMount, rot.curCopy, ro.freeName(rot.inter, retiredPrefix+ro.date+"-root"), ""), nil
	case rot.nextCopy != nil && rot.nextCopy.name != "":
		return ro.rename(st.intMount, rot.nextCopy, "", ""), nil
	case y != nil && y.name != "":
		return ro.rename(st.intMount, y, "", ""), nil
	case y != nil && rot.inter.keys[y.keyID] == nextName:
		return ro.renameKey(st.intMount, y.keyID, ""), nil
	case old != nil && !setAside(old.name):
		return ro.rename(st.rootMount, old, ro.freeName(rot.root, retiredPrefix+ro.date), setAsideUsage), nil
	case old != nil:
		return ro.setDefault(st.rootMount, b), nil
	case rot.root.keys[b.keyID] == nextName:
		return ro.renameKey(st.rootMount, b.keyID, ""), nil
	}
	if holder := rot.root.named(currentRootName); holder != nil && holder != b {
		return nil, fmt.Errorf("cannot name the new root %s: %s/issuer/%s holds that name", currentRootName, st.rootMount, holder.id)
	}
	return ro.rename(st.rootMount, b, currentRootName, ""), nil
}

// discard: a next CA that does not sign is renamed discarded-<date>, its
// issuers lose issuing-certificates, its keys are renamed; the next root
// is renamed last (after that, no next CA remains).
func (ro *rotator) discard(rot *rotation) (*action, error) {
	st := ro.st
	switch rot.phase {
	case phaseIdle:
		return nil, nil
	case phaseFinishing:
		return nil, errors.New("a finish was interrupted: the next CA is becoming the current one and cannot be discarded; run finish again")
	}
	y, b := rot.nextInt, rot.next
	if y != nil && rot.inter.def == y {
		return nil, fmt.Errorf("the next intermediate %s/issuer/%s signs new leaves: run deactivate first (nothing was discarded)", st.intMount, y.id)
	}
	base := discardPrefix + ro.date
	switch {
	case y != nil && !strings.HasPrefix(y.name, discardPrefix):
		return ro.rename(st.intMount, y, ro.freeName(rot.inter, base), setAsideUsage), nil
	case rot.nextCopy != nil && !strings.HasPrefix(rot.nextCopy.name, discardPrefix):
		return ro.rename(st.intMount, rot.nextCopy, ro.freeName(rot.inter, base+"-root"), ""), nil
	}
	for _, m := range []*mountIssuers{rot.inter, rot.root} {
		if id := m.keyNamed(nextName); id != "" {
			return ro.renameKey(m.mount, id, ro.freeKeyName(m, base)), nil
		}
	}
	return ro.rename(st.rootMount, b, ro.freeName(rot.root, base), setAsideUsage), nil
}

// rename gives an issuer a name (and a usage, when not ""), by PATCH: the
// issuer's other fields stay as they are.
func (ro *rotator) rename(mount string, i *issuerInfo, name, usage string) *action {
	path := mount + "/issuer/" + i.id
	body := map[string]any{"issuer_name": name}
	what := fmt.Sprintf("rename issuer %s (%q) to %q", path, i.name, name)
	if usage != "" {
		body["usage"] = usage
		what += " with usage " + usage
	}
	return &action{what, func(ctx context.Context) error {
		_, err := ro.cl.Logical().JSONMergePatch(ctx, path, body)
		return err
	}}
}

func (ro *rotator) renameKey(mount, id, name string) *action {
	path := mount + "/key/" + id
	return &action{fmt.Sprintf("rename key %s to %q", path, name), func(ctx context.Context) error {
		_, err := ro.cl.Logical().WriteWithContext(ctx, path, map[string]any{"key_name": name})
		return err
	}}
}

func (ro *rotator) setDefault(mount string, i *issuerInfo) *action {
	path := mount + "/config/issuers"
	return &action{fmt.Sprintf("make %s/issuer/%s (%q) the default issuer of %s (%s)", mount, i.id, i.name, mount, path), func(ctx context.Context) error {
		_, err := ro.cl.Logical().WriteWithContext(ctx, path, map[string]any{"default": i.id})
		return err
	}}
}

// freeName is base, or base-2, base-3 … when an issuer of m holds it (a
// second rotation on one day).
func (ro *rotator) freeName(m *mountIssuers, base string) string {
	return firstFree(base, func(n string) bool { return m.named(n) != nil })
}

func (ro *rotator) freeKeyName(m *mountIssuers, base string) string {
	return firstFree(base, func(n string) bool { return m.keyNamed(n) != "" })
}

func firstFree(base string, taken func(string) bool) string {
	name := base
	for n := 2; taken(name); n++ {
		name = base + "-" + strconv.Itoa(n)
	}
	return name
}

// issuerFor resolves IssueCertificateRequest.Issuer: the path that signs
// with role, and the CRLs that belong with it. "" is the mount's default
// issuer (the plain sign path); "next" the next intermediate of a prepared
// rotation (refused without one); "current" the intermediate the current
// root signed. While a next CA exists, the CRLs are those of all four CAs
// (a leaf of either chain is checked against its CAs' CRLs); otherwise the
// two mounts' default CRLs.
func issuerFor(ctx context.Context, cl *vault.Client, st *settings, issuer string) (signPath func(role string) string, crlPaths []string, err error) {
	plain := func(role string) string { return st.intMount + "/sign/" + role }
	defaultCRLs := []string{}
	for _, m := range st.pkiMounts() {
		defaultCRLs = append(defaultCRLs, m+"/crl/pem")
	}
	if issuer != "" && issuer != "next" && issuer != "current" {
		return nil, nil, fmt.Errorf("issuer %q: use \"next\", \"current\" or leave it empty", issuer)
	}
	if st.external() {
		if issuer != "" {
			return nil, nil, fmt.Errorf("issuer %q: no CA rotation for an intermediate signed outside Vault", issuer)
		}
		return plain, defaultCRLs, nil
	}
	if issuer == "" {
		// One list says whether a rotation runs; only then is more read.
		s, err := cl.Logical().ListWithContext(ctx, st.rootMount+"/issuers")
		if err != nil {
			return nil, nil, fmt.Errorf("list %s/issuers: %w", st.rootMount, err)
		}
		rotating := false
		if s != nil {
			list, err := issuerList(s.Data)
			if err != nil {
				return nil, nil, fmt.Errorf("list %s/issuers: %w", st.rootMount, err)
			}
			rotating = slices.ContainsFunc(list, func(i *issuerInfo) bool { return i.name == nextName })
		}
		if !rotating {
			return plain, defaultCRLs, nil
		}
	}
	rot, err := observe(ctx, cl, st, false)
	if err != nil {
		return nil, nil, err
	}
	prepared := rot.phase == phasePrepared
	crls := defaultCRLs
	if prepared && rot.curInt != nil {
		crls = []string{st.rootMount + "/issuer/" + rot.current.id + "/crl/pem", st.intMount + "/issuer/" + rot.curInt.id + "/crl/pem",
			st.rootMount + "/issuer/" + rot.next.id + "/crl/pem", st.intMount + "/issuer/" + rot.nextInt.id + "/crl/pem"}
	}
	var with *issuerInfo
	switch issuer {
	case "":
		return plain, crls, nil
	case "next":
		if !prepared {
			return nil, nil, fmt.Errorf("issuer \"next\": %s", noNext(rot))
		}
		with = rot.nextInt
	case "current":
		switch rot.phase {
		case phaseFinishing:
			return nil, nil, errors.New("issuer \"current\": a finish of the CA rotation was interrupted (run RotateCA finish again)")
		case phaseIdle, phasePartial, phaseDiscarding:
			if rot.inter.def == nil {
				return nil, nil, fmt.Errorf("issuer \"current\": %s has no default issuer", st.intMount)
			}
			return plain, crls, nil
		}
		if rot.curInt == nil {
			return nil, nil, fmt.Errorf("issuer \"current\": %w", rot.curIntErr)
		}
		with = rot.curInt
	}
	if with == rot.inter.def {
		return plain, crls, nil
	}
	return func(role string) string { return st.intMount + "/issuer/" + with.id + "/sign/" + role }, crls, nil
}

func noNext(rot *rotation) string {
	switch rot.phase {
	case phasePartial:
		return "the next CA is not complete (run RotateCA prepare again)"
	case phaseFinishing:
		return "a finish of the CA rotation was interrupted (run RotateCA finish again)"
	case phaseDiscarding:
		return "the next CA is being discarded"
	}
	return "there is no next CA (RotateCA prepare makes one)"
}

// signerOf is the root mount's issuer whose key signed inter: the default
// root, or while the next intermediate signs (a staged CA rotation) the
// next root. The default root when none is found (the lint then still
// lints both certificates).
func (v *verifier) signerOf(inter, root *x509.Certificate) *x509.Certificate {
	if inter == nil || root == nil || inter.CheckSignatureFrom(root) == nil {
		return root
	}
	m, err := readIssuers(v.ctx, v.cl, v.st.rootMount, false)
	if err != nil {
		return root
	}
	for _, i := range m.all {
		if inter.CheckSignatureFrom(i.cert) == nil {
			return i.cert
		}
	}
	return root
}
