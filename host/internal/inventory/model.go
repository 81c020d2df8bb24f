package inventory

import "time"

// FormatVersion of the JSON report; bumped only on incompatible changes.
const FormatVersion = 1

// Kinds of an Item.
const (
	// KindServed: the leaf a listener served in a fresh handshake.
	KindServed = "served"
	// KindServer: the server certificate harden holds for the target
	// (cert_file, or the vault-pki store).
	KindServer = "server"
	// KindClient: harden's client certificate for the target.
	KindClient = "client"
	// KindCA: a certificate of the CA bundle harden trusts (one item per
	// CA across targets, Targets lists who uses it).
	KindCA = "ca"
	// KindStoredCA, KindStoredCertificate, KindKey: what the target itself
	// stores (a Vault PKI issuer, a transit KEK).
	KindStoredCA          = "stored_ca"
	KindStoredCertificate = "stored_certificate"
	KindKey               = "key"
	// KindTarget: a problem with the target as a whole (the request, the
	// plugin, its diagnostics): what it would have listed is missing.
	KindTarget = "target"
	// KindClientIdentity: a client identity of the policy's clients:, as
	// harden holds it (<store_dir>/clients/<name>/client.pem); what was
	// delivered to Vault is the certificate source's stored_certificate
	// "client/<name>".
	KindClientIdentity = "client_identity"
)

// Tiers besides the policy's alert tiers (named after each alert_at value,
// "30d", "14d", "7d").
const (
	TierOK               = "ok"
	TierExpired          = "expired"
	TierNotYetValid      = "not_yet_valid"
	TierRotationDisabled = "rotation_disabled"
	TierOverdue          = "overdue"
	// TierUnknown: the item could not be read; the inventory is incomplete.
	TierUnknown = "unknown"
)

// Exit codes of `harden inventory` (README "Exit codes"): the most urgent
// item decides, 7 > 6 > 5 > 4 > 3 > 0.
const (
	ExitOK = 0
	// ExitIncomplete: something could not be read and nothing more urgent
	// was found.
	ExitIncomplete = 3
	// ExitWidestTier: a certificate inside the widest alert tier (30d by
	// default) but no narrower one; also a key with rotation disabled or
	// overdue.
	ExitWidestTier = 4
	// ExitMiddleTier: inside a tier between the widest and the narrowest
	// (14d by default).
	ExitMiddleTier = 5
	// ExitNarrowestTier: inside the narrowest tier (7d by default).
	ExitNarrowestTier = 6
	// ExitExpired: a certificate expired or not valid yet.
	ExitExpired = 7
)

// Report is one inventory of a policy.
type Report struct {
	FormatVersion int       `json:"format_version"`
	GeneratedAt   time.Time `json:"generated_at"`
	// Policy is the policy file.
	Policy string `json:"policy"`
	// RenewBefore and AlertAt are the policy's rotation settings the tiers
	// were judged by (AlertAt widest first, as tier names).
	RenewBefore string   `json:"renew_before"`
	AlertAt     []string `json:"alert_at"`
	Targets     []string `json:"targets"`
	Items       []Item   `json:"items"`
	// Notes are the plugins' warnings (e.g. an interrupted apply).
	Notes   []Note  `json:"notes"`
	Summary Summary `json:"summary"`
}

// Item is one certificate or key, or one thing that could not be read.
type Item struct {
	Kind string `json:"kind"`
	// Target is the target the item belongs to ("" for a CA, see Targets).
	Target string `json:"target,omitempty"`
	// Targets: every target whose CA bundle holds this CA.
	Targets []string `json:"targets,omitempty"`
	// Where: the listener's address, the file, the store or the location
	// inside the target (a Vault mount).
	Where string `json:"where"`
	// Name: the listener's or stored item's name.
	Name        string       `json:"name,omitempty"`
	Certificate *Certificate `json:"certificate,omitempty"`
	Served      *Served      `json:"served,omitempty"`
	Key         *Key         `json:"key,omitempty"`
	Tier        string       `json:"tier"`
	// Findings: what is wrong beside the tier (an untrusted chain, a
	// listener serving something else than harden holds, rotation off).
	Findings []string `json:"findings,omitempty"`
	// Error: why the item could not be read (Tier is then "unknown").
	Error string `json:"error,omitempty"`
}

// Certificate is what the inventory reads from one X.509 certificate.
type Certificate struct {
	Subject string `json:"subject"`
	Issuer  string `json:"issuer"`
	// Serial in lower-case hex, SHA256 of the DER in lower-case hex.
	Serial    string    `json:"serial"`
	SHA256    string    `json:"sha256"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// DaysLeft: whole days until NotAfter (negative once expired).
	DaysLeft int `json:"days_left"`
	// RenewAt: NotAfter - rotation.renew_before.
	RenewAt time.Time `json:"renew_at"`
}

// Served is what one listener's handshakes showed with this leaf.
type Served struct {
	Address string `json:"address"`
	// Handshakes that saw this leaf.
	Handshakes int `json:"handshakes"`
	// Version of the last of them ("TLSv1.3").
	Version string `json:"version,omitempty"`
	// Outcome of the last of them: accepted, refused or inconclusive, with
	// the server's words or why nothing conclusive was seen.
	Outcome  string `json:"outcome"`
	Evidence string `json:"evidence,omitempty"`
	// Trusted: the chain verifies against the CA bundle harden holds for
	// the target (now, any key usage; names are verify's business).
	Trusted    bool   `json:"trusted"`
	TrustError string `json:"trust_error,omitempty"`
	// MatchesHeld: the leaf is harden's held server certificate for the
	// target; null when harden holds none.
	MatchesHeld *bool `json:"matches_held"`
	// ReloadsOn: "" when the listener takes new material live, else when
	// ("restart").
	ReloadsOn string `json:"reloads_on"`
}

// Key is a stored key's rotation state.
type Key struct {
	Type          string     `json:"type,omitempty"`
	LatestVersion int        `json:"latest_version"`
	LatestCreated *time.Time `json:"latest_created"`
	// AgeDays: whole days since LatestCreated.
	AgeDays *int `json:"age_days"`
	// AutoRotatePeriod ("30d"; "" when off) and in seconds (0: off).
	AutoRotatePeriod        string `json:"auto_rotate_period"`
	AutoRotatePeriodSeconds int64  `json:"auto_rotate_period_seconds"`
	// NextRotation: LatestCreated + AutoRotatePeriod; null when rotation is
	// off or the creation time is unknown.
	NextRotation *time.Time `json:"next_rotation"`
}

// Note is a plugin's warning about a target.
type Note struct {
	Target  string `json:"target"`
	Message string `json:"message"`
}

// Summary counts the items per tier and gives the exit code they mean.
type Summary struct {
	Items int `json:"items"`
	// Tiers: items per tier (only tiers that occur).
	Tiers map[string]int `json:"tiers"`
	// Incomplete: items that could not be read.
	Incomplete int `json:"incomplete"`
	// Findings: items with at least one finding.
	Findings int `json:"findings"`
	ExitCode int `json:"exit_code"`
}
