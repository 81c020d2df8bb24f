package report

import (
	"time"

	"github.com/harden-dev/harden/host/internal/inventory"
)

// FormatVersion of the JSON reports; bumped only on incompatible changes.
// Fields are only ever added within a version.
const FormatVersion = 1

// Run is one command's findings over a policy.
type Run struct {
	FormatVersion int    `json:"format_version"`
	Command       string `json:"command"`
	// Policy is the policy file as given on the command line; Profile the
	// TLS profile's name and ProfileDetail what it allows (the matrix the
	// dashboard draws accepted suites against).
	Policy        string         `json:"policy"`
	Profile       string         `json:"profile"`
	ProfileDetail *Profile       `json:"profile_detail,omitempty"`
	GeneratedAt   time.Time      `json:"generated_at,omitzero"`
	DurationMS    float64        `json:"duration_ms,omitempty"`
	Targets       []Target       `json:"targets"`
	Summary       map[string]int `json:"summary,omitempty"`
	// Inconclusive (verify) sums the inconclusive observations of every
	// check: what could not be told apart from a refusal or an acceptance.
	Inconclusive *int `json:"inconclusive,omitempty"`
	// PolicyPath is the policy file's absolute path, so a report rendered
	// later from elsewhere (harden report) names the same file.
	PolicyPath string `json:"policy_path,omitempty"`
	// Selection: the --target names when the run covered only those
	// (sorted); a SARIF category per selection keeps a per-target CI
	// matrix's uploads from closing each other's alerts.
	Selection []string `json:"selection,omitempty"`
	// Shard is "i/N" when the run covered a stable share of the targets
	// and endpoints (verify --shard); "" for a whole run.
	Shard string `json:"shard,omitempty"`
	// RunID names the fleet run a shard belongs to (verify --run-id or
	// $HARDEN_RUN_ID; "" when not given) and PolicySHA256 the policy
	// version verified (hex SHA-256 of the file's bytes as loaded):
	// harden report merges only shards that agree on both, so a shard
	// left from another run or a policy update that reached the shards
	// at different times is refused, never merged.
	RunID        string `json:"run_id,omitempty"`
	PolicySHA256 string `json:"policy_sha256,omitempty"`
	// Inventory: every certificate and key the policy touches, when the
	// run collected it (verify --inventory, the exporter, inventory).
	Inventory *inventory.Report `json:"inventory,omitempty"`
	// History (harden report over runs of one policy at different times):
	// every run given, oldest first, with its counts and failing checks;
	// the Run itself is the latest. Renderers show the trend of failing
	// checks when it is present (RunSummary).
	History []RunSummary `json:"history,omitempty"`
}

// Profile is what the policy's TLS profile allows.
type Profile struct {
	Name     string   `json:"name"`
	Versions []string `json:"versions"`
	// Suites: IANA names, TLS 1.2 and below first, then TLS 1.3.
	Suites []string `json:"suites"`
	Groups []string `json:"groups"`
}

// Target is one target's findings.
type Target struct {
	Name   string `json:"name"`
	Plugin string `json:"plugin"`
	// Line and Column: where the target is written in the policy file (0:
	// unknown, e.g. scan's endpoints given on the command line).
	Line        int          `json:"line,omitempty"`
	Column      int          `json:"column,omitempty"`
	Status      string       `json:"status"`
	Error       string       `json:"error,omitempty"`
	Checks      []Check      `json:"checks,omitempty"`
	Endpoints   []Endpoint   `json:"endpoints,omitempty"`
	Changes     []Change     `json:"changes,omitempty"`
	Artifacts   []Artifact   `json:"artifacts,omitempty"`
	Diagnostics []Diagnostic `json:"diagnostics,omitempty"`
	// Inconclusive (verify): the target's checks' inconclusive observations.
	Inconclusive *int `json:"inconclusive,omitempty"`
	// ConfigError: the target failed for a configuration problem (exit 1
	// rather than 3). Not part of the JSON.
	ConfigError bool `json:"-"`
}

// Check is one check's verdict with its evidence.
type Check struct {
	ID          string   `json:"id"`
	Status      string   `json:"status"`
	Severity    string   `json:"severity"`
	Title       string   `json:"title,omitempty"`
	Subject     string   `json:"subject,omitempty"`
	Evidence    string   `json:"evidence"`
	Remediation string   `json:"remediation,omitempty"`
	References  []string `json:"references"`
	// Inconclusive observations behind the check (checks.Reduce).
	Inconclusive int `json:"inconclusive"`
	// ConfigurationOnly: the evidence was read from configuration, not
	// observed on the live system (checks.Configured).
	ConfigurationOnly bool `json:"configuration_only"`
}

// Endpoint is what the probe observed on one endpoint of a target (from
// the plugin's sdk.EndpointScan, or scan's own probe).
type Endpoint struct {
	Name    string `json:"name,omitempty"`
	Address string `json:"address"`
	Dialect string `json:"dialect,omitempty"`
	// Error: the endpoint could not be scanned at all.
	Error    string    `json:"error,omitempty"`
	Versions []Version `json:"versions"`
	Suites   []Suite   `json:"suites"`
	// Groups accepted for key exchange (IANA names).
	Groups           []string `json:"groups"`
	GroupsIncomplete string   `json:"groups_incomplete,omitempty"`
	// Chain the server presented, leaf first.
	Chain        []ChainCert `json:"chain"`
	TrustChecked bool        `json:"trust_checked"`
	TrustError   string      `json:"trust_error,omitempty"`
	// ClientCertRequested: the server sent a CertificateRequest;
	// NoClientCert: a session without a client certificate was accepted,
	// refused or inconclusive ("" not attempted).
	ClientCertRequested bool   `json:"client_certificate_requested"`
	NoClientCert        string `json:"no_client_certificate,omitempty"`
	// Plaintext: a plaintext session was accepted, refused or inconclusive
	// ("" not attempted).
	Plaintext    string `json:"plaintext,omitempty"`
	Inconclusive int    `json:"inconclusive"`
}

// Version is one protocol version's outcome on an endpoint.
type Version struct {
	Version          string `json:"version"`
	Outcome          string `json:"outcome"`
	Evidence         string `json:"evidence,omitempty"`
	SuitesIncomplete string `json:"suites_incomplete,omitempty"`
}

// Suite is one accepted cipher suite.
type Suite struct {
	Version string `json:"version"`
	// ID "0x1301"; Name the IANA name.
	ID   string `json:"id"`
	Name string `json:"name"`
}

// ChainCert is one certificate of a served chain.
type ChainCert struct {
	Subject            string    `json:"subject"`
	Issuer             string    `json:"issuer"`
	Serial             string    `json:"serial"`
	SHA256             string    `json:"sha256"`
	NotBefore          time.Time `json:"not_before"`
	NotAfter           time.Time `json:"not_after"`
	DNSNames           []string  `json:"dns_names,omitempty"`
	IPAddresses        []string  `json:"ip_addresses,omitempty"`
	Key                string    `json:"key,omitempty"`
	SignatureAlgorithm string    `json:"signature_algorithm,omitempty"`
	// Unparsable: the DER could not be parsed (the reason); the rest is
	// then empty.
	Unparsable string `json:"unparsable,omitempty"`
}

// Change is one planned or applied change.
type Change struct {
	Resource        string `json:"resource"`
	Action          string `json:"action"`
	Before          string `json:"before,omitempty"`
	After           string `json:"after,omitempty"`
	Sensitive       bool   `json:"sensitive,omitempty"`
	RequiresRestart bool   `json:"requires_restart,omitempty"`
	Description     string `json:"description,omitempty"`
}

// Artifact is one rendered file.
type Artifact struct {
	Path        string `json:"path"`
	Mode        string `json:"mode"`
	Size        int    `json:"size"`
	Sensitive   bool   `json:"sensitive,omitempty"`
	Description string `json:"description,omitempty"`
	// Binary artifacts (keystores, PKCS#12) are written only with --out.
	Binary bool `json:"binary,omitempty"`
	// Content is omitted for sensitive and binary artifacts: keys never
	// reach stdout, nor do bytes that are not text for a terminal.
	Content string `json:"content,omitempty"`
}

// Diagnostic is a plugin's or the host's diagnostic about a target.
type Diagnostic struct {
	Severity  string `json:"severity"`
	Source    string `json:"source"`
	Code      string `json:"code,omitempty"`
	Summary   string `json:"summary"`
	Detail    string `json:"detail,omitempty"`
	Attribute string `json:"attribute,omitempty"`
	// Location is file:line:column in the policy for config problems.
	Location string `json:"location,omitempty"`
}
