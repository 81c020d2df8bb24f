package rotate

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/harden-dev/harden/host/internal/certstore"
	"github.com/harden-dev/harden/host/internal/policy"
	"github.com/harden-dev/harden/shared/sdk"
)

// `harden rotate --schedule`: when the next unattended run is worth
// making. rotate renews only what is due, so the schedule is a check-in
// time, not a renewal promise: for each certificate the earlier of 2/3 of
// its remaining lifetime and the start of its renew_before window, the
// earliest of those over every certificate, pulled forward by a random
// jitter (up to 10 % of the time until it) so that many hosts with
// certificates from one issuance do not all call the issuer at the same
// second. The 2/3 point is what makes a run look again before a
// renew_before that is short against the lifetime (or a files certificate
// someone forgot) runs out; a run there usually renews nothing, and the
// next schedule moves closer.

// Held is one certificate a rotation covers, as harden holds it now.
type Held struct {
	// Target or Client owns it (exactly one is set).
	Target string `json:"target,omitempty"`
	Client string `json:"client,omitempty"`
	// Kind: "server" (a target's server certificate) or "client"
	// (harden's client certificate for a target, or a client identity's).
	Kind string `json:"kind"`
	// Source: "store" (issued by certificates.source vault-pki into the
	// store; rotate renews it) or "files" (a target's cert_file or
	// client_cert_file: harden cannot renew it, the run says it is due).
	Source string `json:"source"`
	File   string `json:"file"`
	Serial string `json:"serial,omitempty"`
	// Subject is the leaf's subject (empty when unreadable).
	Subject   string    `json:"subject,omitempty"`
	NotBefore time.Time `json:"not_before,omitzero"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	// Problem: a stored pair rotate renews whatever its dates say (key
	// and certificate do not match — a crash between the two writes — or
	// an unreadable certificate).
	Problem string `json:"problem,omitempty"`
}

// Owner names the certificate for messages: "target pg server
// certificate", "client spark-etl certificate".
func (h Held) Owner() string {
	if h.Client != "" {
		return "client " + h.Client + " certificate"
	}
	if h.Kind == "client" {
		return "target " + h.Target + " harden client certificate"
	}
	return "target " + h.Target + " server certificate"
}

// Due rules: which one set a certificate's due time.
const (
	RuleTwoThirds   = "two_thirds"    // now + 2/3 of the remaining lifetime
	RuleRenewBefore = "renew_before"  // not_after - renew_before
	RuleExpired     = "expired"       // not_after has passed
	RuleNotYetValid = "not_yet_valid" // a stored certificate before its not_before (clocks)
	RuleUnusable    = "unusable"      // Problem is set
)

// Scheduled is a certificate with the time it is due.
type Scheduled struct {
	Held
	Due  time.Time `json:"due"`
	Rule string    `json:"rule"`
}

// Schedule is NextRun's answer.
type Schedule struct {
	// Next is when rotate should run next: never before now.
	Next time.Time
	// Jitter is how far Next was pulled before the deciding due time.
	Jitter time.Duration
	// DueNow: a certificate is already due (Next is now, no jitter).
	DueNow bool
	// DecidedBy is the certificate with the earliest due time (the first
	// in policy order on a tie).
	DecidedBy Scheduled
	// Certificates: every certificate, in policy order, with its due time.
	Certificates []Scheduled
}

// ErrNothingToSchedule: no certificate is held for anything the rotation
// covers (nothing issued yet, or a policy without certificates).
var ErrNothingToSchedule = errors.New("nothing to schedule: harden holds no certificate for what harden rotate covers (run harden apply first, which issues them)")

// MaxJitter is the share of the time until the due time that the jitter
// may take at most.
const MaxJitter = 0.10

// NextRun computes the schedule for held at now. jitter returns a number in
// [0, 1) (nil: crypto/rand); values outside are clamped, so a broken source
// can never move the run before now or after the due time.
func NextRun(held []Held, renewBefore time.Duration, now time.Time, jitter func() float64) (Schedule, error) {
	if len(held) == 0 {
		return Schedule{}, ErrNothingToSchedule
	}
	if jitter == nil {
		jitter = CryptoJitter
	}
	var s Schedule
	for _, h := range held {
		s.Certificates = append(s.Certificates, due(h, renewBefore, now))
	}
	s.DecidedBy = s.Certificates[0]
	for _, c := range s.Certificates[1:] {
		if c.Due.Before(s.DecidedBy.Due) {
			s.DecidedBy = c
		}
	}
	until := s.DecidedBy.Due.Sub(now)
	if until <= 0 {
		s.Next, s.DueNow = now, true
		return s, nil
	}
	j := jitter()
	if !(j >= 0) { // NaN too
		j = 0
	}
	j = min(j, 1)
	s.Jitter = time.Duration(float64(until) * MaxJitter * j)
	s.Next = s.DecidedBy.Due.Add(-s.Jitter)
	return s, nil
}

// due is one certificate's due time: now for one that is unusable, expired,
// not valid yet (stored ones: rotate renews those) or inside renew_before;
// else the earlier of now + 2/3 of the remaining lifetime and the start of
// the renew_before window (renew_before on a tie: that rule is the one
// that renews).
func due(h Held, renewBefore time.Duration, now time.Time) Scheduled {
	s := Scheduled{Held: h}
	left := h.NotAfter.Sub(now)
	switch {
	case h.Problem != "":
		s.Due, s.Rule = now, RuleUnusable
		return s
	case left <= 0:
		s.Due, s.Rule = now, RuleExpired
		return s
	case h.Source == "store" && now.Before(h.NotBefore):
		s.Due, s.Rule = now, RuleNotYetValid
		return s
	}
	// left - left/3 rather than left*2/3: no overflow for a certificate
	// that ends centuries from now.
	twoThirds := now.Add(left - left/3)
	window := h.NotAfter.Add(-renewBefore)
	if !window.After(twoThirds) {
		s.Due, s.Rule = window, RuleRenewBefore
	} else {
		s.Due, s.Rule = twoThirds, RuleTwoThirds
	}
	if s.Due.Before(now) {
		s.Due = now
	}
	return s
}

// Why says in words why the schedule is what it is.
func (s Schedule) Why(renewBefore time.Duration) string {
	d := s.DecidedBy
	what := d.Owner()
	if d.Serial != "" {
		what += " serial " + d.Serial
	}
	stamp := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	var why string
	switch d.Rule {
	case RuleUnusable:
		why = fmt.Sprintf("due now: %s (%s): %s", what, d.File, d.Problem)
	case RuleExpired:
		why = fmt.Sprintf("due now: %s expired on %s", what, stamp(d.NotAfter))
	case RuleNotYetValid:
		why = fmt.Sprintf("due now: %s is not valid before %s (check the clocks)", what, stamp(d.NotBefore))
	case RuleRenewBefore:
		if s.DueNow {
			why = fmt.Sprintf("due now: %s is within renew_before (%s) of its end on %s", what, Human(renewBefore), stamp(d.NotAfter))
		} else {
			why = fmt.Sprintf("%s enters renew_before (%s) on %s (valid until %s)", what, Human(renewBefore), stamp(d.Due), stamp(d.NotAfter))
		}
	default:
		why = fmt.Sprintf("%s reaches 2/3 of its remaining lifetime on %s (valid until %s, renew_before window from %s): a check-in, rotate renews only what is due then",
			what, stamp(d.Due), stamp(d.NotAfter), stamp(d.NotAfter.Add(-renewBefore)))
	}
	if d.Source == "files" {
		why += "; it comes from a file harden cannot renew: put a renewed file there before it is due"
	}
	if s.Jitter > 0 {
		why += fmt.Sprintf("; jitter %s earlier", Human(s.Jitter))
	}
	return why
}

// Human prints a duration in days, hours and minutes ("59d23h5m", "0s"),
// as operators read certificate lifetimes; below a minute in seconds.
func Human(d time.Duration) string {
	if d < 0 {
		return "-" + Human(-d)
	}
	if d < time.Minute {
		return d.Round(time.Second).String()
	}
	d = d.Round(time.Minute)
	days, rest := d/(24*time.Hour), d%(24*time.Hour)
	h, m := rest/time.Hour, (rest%time.Hour)/time.Minute
	var b strings.Builder
	if days > 0 {
		fmt.Fprintf(&b, "%dd", days)
	}
	if h > 0 {
		fmt.Fprintf(&b, "%dh", h)
	}
	if m > 0 {
		fmt.Fprintf(&b, "%dm", m)
	}
	return b.String()
}

// CryptoJitter is a uniform number in [0, 1) from crypto/rand: hosts
// started from one image must not share a seed.
func CryptoJitter() float64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0 // no jitter rather than a run after the due time
	}
	return float64(binary.BigEndian.Uint64(b[:])>>11) / (1 << 53)
}

// Collect reads, without contacting anything, every certificate `harden
// rotate` covers for targets and clients: each target's server and (in the
// mTLS scope) harden client certificate in the certificate store, the
// cert_file and client_cert_file of targets with certificates from files,
// and every client identity's certificate. The certificate source's own
// target is not covered (harden does not issue its listener certificate).
// missing names what the store should hold and does not (nothing issued
// yet: rotate refuses those targets until apply has run); a file that
// cannot be read or parsed is an error naming it. verifyOnly (nil: none)
// tells the targets of verify-only plugins (engine.Plugin.VerifyOnly):
// harden issues no server certificate for them, so only its client
// certificate (mTLS scope) is expected and scheduled there.
func Collect(pol *policy.Policy, targets []policy.Target, clients []policy.Client, verifyOnly func(policy.Target) bool) (held []Held, missing []string, err error) {
	cert := pol.Certificates
	var errs []error
	for _, t := range targets {
		switch {
		case t.CertFile != "":
			for _, f := range []struct{ kind, file string }{{"server", t.CertFile}, {"client", t.ClientCertFile}} {
				if f.file == "" {
					continue
				}
				h, err := fromFile(Held{Target: t.Name, Kind: f.kind, Source: "files", File: f.file})
				if err != nil {
					errs = append(errs, fmt.Errorf("target %s: %w", t.Name, err))
					continue
				}
				held = append(held, h)
			}
		case cert.Source == "vault-pki" && t.Name != cert.VaultTarget:
			store := certstore.Store{Dir: filepath.Join(cert.VaultStoreDir, t.Name), Target: t.Name}
			var kinds []string
			if verifyOnly == nil || !verifyOnly(t) {
				kinds = append(kinds, "server")
			}
			if slices.Contains(pol.MTLSScope, t.Name) {
				kinds = append(kinds, "client")
			}
			for _, kind := range kinds {
				h, ok, err := fromStore(store, Held{Target: t.Name, Kind: kind, Source: "store"})
				switch {
				case err != nil:
					errs = append(errs, err)
				case !ok:
					missing = append(missing, h.Owner()+" ("+h.File+")")
				default:
					held = append(held, h)
				}
			}
		}
	}
	if cert.Source == "vault-pki" {
		for _, c := range clients {
			store := certstore.Store{Dir: filepath.Join(cert.VaultStoreDir, "clients", c.Name), Target: "client " + c.Name}
			h, ok, err := fromStore(store, Held{Client: c.Name, Kind: "client", Source: "store"})
			switch {
			case err != nil:
				errs = append(errs, err)
			case !ok:
				missing = append(missing, h.Owner()+" ("+h.File+")")
			default:
				held = append(held, h)
			}
		}
	}
	return held, missing, errors.Join(errs...)
}

// fromStore reads kind's current pair; ok is false when nothing is stored.
// A pair rotate would renew regardless of its dates has Problem set.
func fromStore(store certstore.Store, h Held) (Held, bool, error) {
	h.File, _ = store.Paths(h.Kind)
	p, err := store.Current(h.Kind)
	if err != nil {
		return h, false, err
	}
	if len(p.Chain) == 0 && len(p.Key) == 0 {
		return h, false, nil
	}
	certs, perr := sdk.ParseCertificatesPEM(p.Chain)
	switch {
	case perr != nil || len(certs) == 0:
		h.Problem = "unreadable certificate"
		return h, true, nil
	case !p.Valid():
		h.Problem = "certificate and key do not match"
	}
	fill(&h, certs[0].Subject.String(), Serial(certs[0]), certs[0].NotBefore, certs[0].NotAfter)
	return h, true, nil
}

// fromFile reads a files certificate's leaf (its key is apply's business).
func fromFile(h Held) (Held, error) {
	data, err := policy.ReadBounded(h.File, policy.Public)
	if err != nil {
		return h, err
	}
	certs, err := sdk.ParseCertificatesPEM(data)
	if err != nil {
		return h, fmt.Errorf("%s: %w", h.File, err)
	}
	if len(certs) == 0 {
		return h, fmt.Errorf("%s: no certificate in it", h.File)
	}
	fill(&h, certs[0].Subject.String(), Serial(certs[0]), certs[0].NotBefore, certs[0].NotAfter)
	return h, nil
}

func fill(h *Held, subject, serial string, notBefore, notAfter time.Time) {
	h.Subject, h.Serial, h.NotBefore, h.NotAfter = subject, serial, notBefore, notAfter
}
