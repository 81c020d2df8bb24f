package report

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"

	"github.com/harden-dev/harden/host/internal/inventory"
)

// sarifDoc is what the tests read back: the fields GitHub uses.
type sarifDoc struct {
	Schema  string `json:"$schema"`
	Version string `json:"version"`
	Runs    []struct {
		Tool struct {
			Driver struct {
				Name           string         `json:"name"`
				Version        string         `json:"version"`
				InformationURI string         `json:"informationUri"`
				Rules          []sarifRuleDoc `json:"rules"`
			} `json:"driver"`
		} `json:"tool"`
		Results           []sarifResultDoc `json:"results"`
		AutomationDetails struct {
			ID string `json:"id"`
		} `json:"automationDetails"`
		OriginalURIBaseIDs map[string]struct {
			URI string `json:"uri"`
		} `json:"originalUriBaseIds"`
		Invocations []struct {
			ExecutionSuccessful        bool `json:"executionSuccessful"`
			ToolExecutionNotifications []struct {
				Level   string `json:"level"`
				Message struct {
					Text string `json:"text"`
				} `json:"message"`
				Descriptor struct {
					ID string `json:"id"`
				} `json:"descriptor"`
				Locations  []sarifLocationDoc `json:"locations"`
				Properties map[string]any     `json:"properties"`
			} `json:"toolExecutionNotifications"`
		} `json:"invocations"`
		Properties map[string]any `json:"properties"`
	} `json:"runs"`
}

type sarifText struct {
	Text     string `json:"text"`
	Markdown string `json:"markdown"`
}

type sarifRuleDoc struct {
	ID                   string    `json:"id"`
	Name                 string    `json:"name"`
	ShortDescription     sarifText `json:"shortDescription"`
	FullDescription      sarifText `json:"fullDescription"`
	Help                 sarifText `json:"help"`
	HelpURI              string    `json:"helpUri"`
	DefaultConfiguration struct {
		Level string `json:"level"`
	} `json:"defaultConfiguration"`
	Properties map[string]any `json:"properties"`
}

type sarifResultDoc struct {
	RuleID              string             `json:"ruleId"`
	RuleIndex           int                `json:"ruleIndex"`
	Level               string             `json:"level"`
	Kind                string             `json:"kind"`
	Message             sarifText          `json:"message"`
	Locations           []sarifLocationDoc `json:"locations"`
	PartialFingerprints map[string]string  `json:"partialFingerprints"`
	Properties          map[string]any     `json:"properties"`
}

type sarifLocationDoc struct {
	PhysicalLocation *struct {
		ArtifactLocation struct {
			URI       string `json:"uri"`
			URIBaseID string `json:"uriBaseId"`
		} `json:"artifactLocation"`
		Region struct {
			StartLine   int `json:"startLine"`
			StartColumn int `json:"startColumn"`
		} `json:"region"`
	} `json:"physicalLocation"`
	LogicalLocations []struct {
		Name               string `json:"name"`
		FullyQualifiedName string `json:"fullyQualifiedName"`
		Kind               string `json:"kind"`
	} `json:"logicalLocations"`
}

// renderSARIFDoc renders r, validates it against the SARIF 2.1.0 schema
// with go-sarif and checks what GitHub code scanning requires of it.
func renderSARIFDoc(t testing.TB, r *Run) (*sarifDoc, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := Render(&buf, "sarif", r); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	rep, err := sarif.FromBytes(b, sarif.WithStrictValidation())
	if err != nil {
		t.Fatalf("go-sarif cannot read the SARIF: %v", err)
	}
	if err := rep.Validate(); err != nil {
		t.Fatalf("schema validation: %v", err)
	}
	var doc sarifDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	checkGitHubAccepts(t, &doc, b)
	return &doc, b
}

// checkGitHubAccepts asserts GitHub's documented requirements and limits.
func checkGitHubAccepts(t testing.TB, doc *sarifDoc, raw []byte) {
	t.Helper()
	if doc.Version != "2.1.0" || doc.Schema == "" || len(doc.Runs) != 1 {
		t.Fatalf("version %q schema %q runs %d", doc.Version, doc.Schema, len(doc.Runs))
	}
	run := doc.Runs[0]
	if run.Tool.Driver.Name != "harden" || run.Tool.Driver.Version == "" || run.Tool.Driver.InformationURI == "" {
		t.Fatalf("driver %+v", run.Tool.Driver)
	}
	if !strings.HasPrefix(run.AutomationDetails.ID, "harden/") || !strings.HasSuffix(run.AutomationDetails.ID, "/") {
		t.Fatalf("automationDetails.id %q", run.AutomationDetails.ID)
	}
	for _, c := range run.AutomationDetails.ID {
		if c <= ' ' || c >= 0x7f {
			t.Fatalf("automationDetails.id %q has a character %q outside printable ASCII", run.AutomationDetails.ID, c)
		}
	}
	// A relative policy URI names its base, and the base is a directory.
	base, hasBase := run.OriginalURIBaseIDs[sarifSourceRoot]
	if hasBase && (!strings.HasPrefix(base.URI, "file:///") || !strings.HasSuffix(base.URI, "/")) {
		t.Fatalf("originalUriBaseIds %+v", run.OriginalURIBaseIDs)
	}
	if n := len(run.Results); n > sarifMaxResults {
		t.Fatalf("%d results, GitHub accepts at most %d", n, sarifMaxResults)
	}
	if n := len(run.Tool.Driver.Rules); n > sarifMaxRules {
		t.Fatalf("%d rules", n)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(raw)
	zw.Close()
	if z.Len() > sarifMaxGzippedBytes {
		t.Fatalf("%d bytes gzip-compressed, GitHub accepts at most %d", z.Len(), sarifMaxGzippedBytes)
	}
	rules := map[string]int{}
	for i, r := range run.Tool.Driver.Rules {
		if _, dup := rules[r.ID]; dup {
			t.Fatalf("rule %s twice", r.ID)
		}
		rules[r.ID] = i
		if r.ID == "" || r.ShortDescription.Text == "" || r.FullDescription.Text == "" || r.Help.Text == "" {
			t.Fatalf("rule %+v lacks a required text", r)
		}
		if len(r.ShortDescription.Text) > sarifMaxDescription || len(r.FullDescription.Text) > sarifMaxDescription || len(r.Name) > sarifMaxRuleName {
			t.Fatalf("rule %s over GitHub's text limits", r.ID)
		}
		sev, err := strconv.ParseFloat(fmt.Sprint(r.Properties["security-severity"]), 64)
		if err != nil || sev <= 0 || sev > 10 {
			t.Fatalf("rule %s security-severity %v", r.ID, r.Properties["security-severity"])
		}
		tags, _ := r.Properties["tags"].([]any)
		if len(tags) == 0 || len(tags) > sarifMaxTags || tags[0] != "security" {
			t.Fatalf("rule %s tags %v", r.ID, tags)
		}
		if lv := r.DefaultConfiguration.Level; lv != "error" && lv != "warning" && lv != "note" {
			t.Fatalf("rule %s level %q", r.ID, lv)
		}
	}
	for _, res := range run.Results {
		i, ok := rules[res.RuleID]
		if !ok || res.RuleIndex != i {
			t.Fatalf("result %q has no rule (index %d)", res.RuleID, res.RuleIndex)
		}
		if len(res.Locations) != 1 || res.Locations[0].PhysicalLocation == nil {
			t.Fatalf("result %s without exactly one physical location", res.RuleID)
		}
		pl := res.Locations[0].PhysicalLocation
		if pl.ArtifactLocation.URI == "" || pl.Region.StartLine < 1 {
			t.Fatalf("result %s location %+v", res.RuleID, pl)
		}
		abs := strings.HasPrefix(pl.ArtifactLocation.URI, "file:")
		scan := pl.ArtifactLocation.URI == sarifScanURI && !hasBase
		if want := map[bool]string{true: sarifSourceRoot}[!abs && !scan]; pl.ArtifactLocation.URIBaseID != want || hasBase == (abs || scan) {
			t.Fatalf("result %s: uri %q with uriBaseId %q (originalUriBaseIds %+v)", res.RuleID, pl.ArtifactLocation.URI,
				pl.ArtifactLocation.URIBaseID, run.OriginalURIBaseIDs)
		}
		if ll := res.Locations[0].LogicalLocations; len(ll) != 1 || ll[0].Name == "" || ll[0].FullyQualifiedName == "" || ll[0].Kind != "resource" {
			t.Fatalf("result %s logical location %+v", res.RuleID, ll)
		}
		if res.Message.Text == "" || len(res.Message.Text) > sarifMaxMessage {
			t.Fatalf("result %s message of %d bytes", res.RuleID, len(res.Message.Text))
		}
		fp := res.PartialFingerprints[SARIFFingerprint]
		if len(fp) < 64 || res.PartialFingerprints["primaryLocationLineHash"] != fp {
			t.Fatalf("result %s fingerprints %v", res.RuleID, res.PartialFingerprints)
		}
		if res.Kind != "fail" || (res.Level != "error" && res.Level != "warning" && res.Level != "note") {
			t.Fatalf("result %s kind %q level %q", res.RuleID, res.Kind, res.Level)
		}
	}
}

func loadSampleRun(t testing.TB) *Run {
	t.Helper()
	b, err := os.ReadFile("testdata/sarif-sample-verify.json")
	if err != nil {
		t.Fatal(err)
	}
	var r Run
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

// syntheticRun has one check of every status, a registered and an
// unregistered check ID, a target in error and an inventory. evidence is
// appended to every evidence text (runs that observed different things).
func syntheticRun(evidence string) *Run {
	now := time.Date(2027, 1, 10, 12, 0, 0, 0, time.UTC)
	cert := func(days int) *inventory.Certificate {
		return &inventory.Certificate{Subject: "CN=pg", Issuer: "CN=ca", Serial: "0a1b", NotAfter: now.AddDate(0, 0, days), DaysLeft: days}
	}
	ep := "127.0.0.1:5432"
	r := &Run{FormatVersion: FormatVersion, Policy: "deploy/prod.yaml", Profile: "intermediate", GeneratedAt: now, DurationMS: 812,
		Targets: []Target{
			{Name: "pg", Plugin: "postgres", Status: "ok", Line: 7, Column: 5, Checks: []Check{
				{ID: "tls.enabled", Status: "pass", Severity: "high", Title: "Endpoint offers TLS", Subject: ep, Evidence: "handshake completed" + evidence},
				{ID: "tls.protocol.versions", Status: "fail", Severity: "high", Title: "Only the profile's TLS versions are accepted", Subject: ep,
					Evidence: "TLSv1 accepted" + evidence, Remediation: "Set ssl_min_protocol_version = 'TLSv1.2'.", References: []string{"RFC 8996"}},
				{ID: "tls.key_exchange.groups", Status: "fail", Severity: "low", Subject: ep, Evidence: "x448 accepted" + evidence},
				{ID: "tls.certificate.trusted", Status: "error", Severity: "high", Subject: ep, Evidence: "read: connection reset by peer" + evidence, Inconclusive: 2},
				{ID: "postgres.password_encryption", Status: "warn", Severity: "medium", Subject: "pg_authid", Evidence: "pg_authid not readable" + evidence},
				{ID: "tls.client_auth.required", Status: "skip", Severity: "high", Subject: ep, Evidence: "mTLS not required by the policy" + evidence},
				{ID: "acme.custom.check", Status: "fail", Severity: "critical", Title: "A third-party plugin's check", Subject: "acme-1",
					Evidence: "bad" + evidence, Remediation: "Fix it.", References: []string{"vendor note", "Guide (https://example.com/acme#fix)"}},
			}},
			{Name: "kafka", Plugin: "kafka", Status: "error", Line: 20, Column: 5, Error: "dial tcp 127.0.0.1:9093: connection refused" + evidence},
		},
		Inventory: &inventory.Report{FormatVersion: 1, GeneratedAt: now, Policy: "deploy/prod.yaml", RenewBefore: "30d", AlertAt: []string{"30d", "14d", "7d"},
			Items: []inventory.Item{
				{Kind: inventory.KindServed, Target: "pg", Where: ep, Name: "postgres", Certificate: cert(-2), Tier: inventory.TierExpired},
				{Kind: inventory.KindServer, Target: "pg", Where: "/etc/pg/server.pem", Certificate: cert(5), Tier: "7d"},
				{Kind: inventory.KindClient, Target: "pg", Where: "/etc/harden/client.pem", Certificate: cert(25), Tier: "30d"},
				{Kind: inventory.KindCA, Targets: []string{"kafka", "pg"}, Where: "/etc/harden/ca.pem", Certificate: cert(300), Tier: inventory.TierOK},
				{Kind: inventory.KindKey, Target: "vault", Where: "transit", Name: "kek", Key: &inventory.Key{LatestVersion: 3}, Tier: inventory.TierRotationDisabled,
					Findings: []string{"rotation disabled"}},
				{Kind: inventory.KindTarget, Target: "kafka", Where: "kafka", Tier: inventory.TierUnknown, Error: "connection refused" + evidence},
				{Kind: inventory.KindCA, Where: "/etc/other-ca.pem", Certificate: cert(200), Tier: inventory.TierOK, Findings: []string{"the chain does not verify" + evidence}},
			}},
	}
	r.Finish("verify")
	return r
}

func resultsByRule(doc *sarifDoc) map[string][]sarifResultDoc {
	m := map[string][]sarifResultDoc{}
	for _, res := range doc.Runs[0].Results {
		m[res.RuleID] = append(m[res.RuleID], res)
	}
	return m
}

// isolateSourceRoots makes policyURI's answer independent of where the
// tests run: no $GITHUB_WORKSPACE, and a working directory in no checkout.
func isolateSourceRoots(t *testing.T) string {
	t.Helper()
	t.Setenv("GITHUB_WORKSPACE", "")
	dir := t.TempDir()
	if top := gitTopLevel(dir); top != "" {
		t.Skipf("the temporary directory %s is inside a git checkout (%s)", dir, top)
	}
	t.Chdir(dir)
	return dir
}

func TestSARIFSampleVerify(t *testing.T) {
	r := loadSampleRun(t)
	isolateSourceRoots(t)
	doc, _ := renderSARIFDoc(t, r)
	run := doc.Runs[0]
	// Every check passed and the inventory is all ok: no results, one rule
	// per check ID.
	if len(run.Results) != 0 {
		t.Fatalf("%d results for an all-pass run: %+v", len(run.Results), run.Results)
	}
	if len(run.Tool.Driver.Rules) != len(r.Targets[0].Checks) {
		t.Fatalf("%d rules for %d checks", len(run.Tool.Driver.Rules), len(r.Targets[0].Checks))
	}
	// The sample's policy (/tmp/te1/policy.yaml) is in no checkout.
	if run.AutomationDetails.ID != "harden/verify//tmp/te1/policy.yaml/" {
		t.Fatalf("automationDetails.id %q", run.AutomationDetails.ID)
	}
	if inv := run.Invocations; len(inv) != 1 || !inv[0].ExecutionSuccessful || len(inv[0].ToolExecutionNotifications) != 0 {
		t.Fatalf("invocations %+v, want one successful without notifications", inv)
	}

	// The same run with two checks failing and one in error.
	r.Targets[0].Checks[2].Status = "fail" // tls.protocol.versions, high
	r.Targets[0].Checks[3].Status = "fail" // tls.cipher_suites, medium
	r.Targets[0].Checks[5].Status = "error"
	doc, _ = renderSARIFDoc(t, r)
	got := resultsByRule(doc)
	for id, level := range map[string]string{"tls.protocol.versions": "error", "tls.cipher_suites": "warning", r.Targets[0].Checks[5].ID: "warning"} {
		if len(got[id]) != 1 || got[id][0].Level != level {
			t.Fatalf("%s: results %+v, want one at level %s", id, got[id], level)
		}
		loc := got[id][0].Locations[0]
		if loc.PhysicalLocation.Region.StartLine != 10 || loc.PhysicalLocation.Region.StartColumn != 5 {
			t.Fatalf("%s at %+v, want the target's line 10 column 5", id, loc.PhysicalLocation.Region)
		}
		if loc.LogicalLocations[0].Name != "127.0.0.1:42437" || loc.LogicalLocations[0].FullyQualifiedName != "warehouse-pg/127.0.0.1:42437" {
			t.Fatalf("%s logical location %+v", id, loc.LogicalLocations)
		}
	}
	if len(doc.Runs[0].Results) != 3 {
		t.Fatalf("%d results, want 3", len(doc.Runs[0].Results))
	}
}

func TestSARIFStatuses(t *testing.T) {
	dir := isolateSourceRoots(t)
	ToolVersion = "1.2.3-test"
	defer func() { ToolVersion = "dev" }()
	doc, _ := renderSARIFDoc(t, syntheticRun(""))
	run := doc.Runs[0]
	if run.Tool.Driver.Version != "1.2.3-test" {
		t.Fatalf("driver version %q", run.Tool.Driver.Version)
	}
	got := resultsByRule(doc)
	for id, want := range map[string]struct{ level, says string }{
		"tls.protocol.versions":        {"error", "fails on 127.0.0.1:5432 (target pg). Observed: TLSv1 accepted"},
		"tls.key_exchange.groups":      {"note", "fails"},
		"tls.certificate.trusted":      {"warning", "could not be verified on 127.0.0.1:5432 (target pg), so it is not a pass. Why: read: connection reset"},
		"postgres.password_encryption": {"warning", "warning on pg_authid (target pg)"},
		"acme.custom.check":            {"error", "A third-party plugin's check — fails on acme-1"},
		RuleTargetError:                {"error", "Target kafka (kafka) could not be verified as a whole"},
		RuleCertificateExpired:         {"error", "expired"},
		RuleKeyRotationDisabled:        {"warning", "Key transit kek (target vault): automatic rotation is disabled"},
		RuleInventoryUnreadable:        {"warning", "could not be read. Error: connection refused"},
		RuleInventoryFinding:           {"warning", "the chain does not verify"},
	} {
		if len(got[id]) != 1 || got[id][0].Level != want.level || !strings.Contains(got[id][0].Message.Text, want.says) {
			t.Errorf("%s: %+v, want one result at level %s saying %q", id, got[id], want.level, want.says)
		}
	}
	// The two alert-tier certificates: the narrowest tier is an error.
	exp := got[RuleCertificateExpiring]
	if len(exp) != 2 || exp[0].Level != "error" || !strings.Contains(exp[0].Message.Text, "7d alert tier") ||
		exp[1].Level != "warning" || !strings.Contains(exp[1].Message.Text, "30d alert tier") {
		t.Errorf("expiring: %+v", exp)
	}
	// pass and skip are omitted; the ok CA without findings too.
	for _, id := range []string{"tls.enabled", "tls.client_auth.required"} {
		if len(got[id]) != 0 {
			t.Errorf("%s (pass or skip) reported: %+v", id, got[id])
		}
	}
	if n := len(run.Results); n != 12 {
		t.Errorf("%d results, want 12", n)
	}
	// Every check ID that occurs has a rule, passes and skips included.
	rules := map[string]sarifRuleDoc{}
	for _, r := range run.Tool.Driver.Rules {
		rules[r.ID] = r
	}
	for _, id := range []string{"tls.enabled", "tls.client_auth.required", "tls.protocol.versions", RuleTargetError, RuleCertificateExpiring} {
		if _, ok := rules[id]; !ok {
			t.Errorf("no rule %s", id)
		}
	}
	// The plugin's words win, the registry fills in, the first URL is the help.
	if r := rules["acme.custom.check"]; r.HelpURI != "https://example.com/acme#fix" || r.Properties["security-severity"] != "9.5" ||
		r.DefaultConfiguration.Level != "error" || !strings.Contains(r.Help.Markdown, "vendor note") {
		t.Errorf("acme rule %+v", r)
	}
	if r := rules["tls.key_exchange.groups"]; r.ShortDescription.Text != "Only the profile's key-exchange groups, or stronger ones, are accepted" ||
		r.Properties["security-severity"] != "3.0" || r.DefaultConfiguration.Level != "note" {
		t.Errorf("registry rule %+v", r)
	}
	if r := rules["tls.protocol.versions"]; r.FullDescription.Text != "Set ssl_min_protocol_version = 'TLSv1.2'." || r.Properties["security-severity"] != "8.0" {
		t.Errorf("rule %+v", r)
	}
	// Inventory results sit on their target's line; an item of no known
	// target on line 1; a CA on the line of the first target using it.
	for id, line := range map[string]int{RuleCertificateExpired: 7, RuleInventoryUnreadable: 20, RuleKeyRotationDisabled: 1, RuleInventoryFinding: 1, RuleTargetError: 20} {
		if l := got[id][0].Locations[0].PhysicalLocation.Region.StartLine; l != line {
			t.Errorf("%s on line %d, want %d", id, l, line)
		}
	}
	// The kafka target in error: the run says it is incomplete, with one
	// error notification at the target's line (nothing was truncated).
	if inv := run.Invocations; len(inv) != 1 || inv[0].ExecutionSuccessful || len(inv[0].ToolExecutionNotifications) != 1 {
		t.Errorf("invocations %+v (a target error: not successful, one notification)", inv)
	} else {
		n := inv[0].ToolExecutionNotifications[0]
		if n.Level != "error" || n.Descriptor.ID != RuleTargetError || n.Properties["harden/target"] != "kafka" ||
			!strings.Contains(n.Message.Text, "Target kafka (kafka) could not be verified, so this analysis is incomplete") ||
			!strings.Contains(n.Message.Text, "Error: dial tcp 127.0.0.1:9093: connection refused") {
			t.Errorf("notification %+v", n)
		}
		if len(n.Locations) != 1 || n.Locations[0].PhysicalLocation.Region.StartLine != 20 ||
			n.Locations[0].PhysicalLocation.ArtifactLocation.URI != "deploy/prod.yaml" ||
			n.Locations[0].PhysicalLocation.ArtifactLocation.URIBaseID != sarifSourceRoot {
			t.Errorf("notification locations %+v", n.Locations)
		}
	}
	// The harden.target.error result stays beside it.
	if len(got[RuleTargetError]) != 1 {
		t.Errorf("target error results %+v", got[RuleTargetError])
	}
	if run.AutomationDetails.ID != "harden/verify/deploy/prod.yaml/" {
		t.Errorf("automationDetails.id %q", run.AutomationDetails.ID)
	}
	if base := run.OriginalURIBaseIDs[sarifSourceRoot].URI; base != "file://"+filepath.ToSlash(dir)+"/" {
		t.Errorf("%%SRCROOT%% is %q, want the working directory %s", base, dir)
	}
	if uri := got["tls.protocol.versions"][0].Locations[0].PhysicalLocation.ArtifactLocation; uri.URI != "deploy/prod.yaml" || uri.URIBaseID != sarifSourceRoot {
		t.Errorf("artifact location %+v", uri)
	}
	if s, _ := run.Properties["harden/summary"].(map[string]any); s["fail"] != 3.0 || s["target_error"] != 1.0 {
		t.Errorf("summary %v", run.Properties["harden/summary"])
	}
}

// TestSARIFFingerprintsStable: two runs that observed different evidence,
// at other times, with the policy edited so the targets moved, give every
// result the same fingerprint; distinct results have distinct ones.
func TestSARIFFingerprintsStable(t *testing.T) {
	a := syntheticRun("")
	b := syntheticRun(" — and something else this time (1.234 s)")
	b.GeneratedAt, b.DurationMS = b.GeneratedAt.Add(24*time.Hour), 1900
	for i := range b.Targets {
		b.Targets[i].Line += 3
	}
	b.Inventory.Items[0].Certificate.DaysLeft = -3
	fps := func(r *Run) map[string]string {
		doc, _ := renderSARIFDoc(t, r)
		m := map[string]string{}
		for _, res := range doc.Runs[0].Results {
			key := res.RuleID + " " + res.Locations[0].LogicalLocations[0].FullyQualifiedName
			if _, dup := m[key]; dup {
				t.Fatalf("two results %s", key)
			}
			m[key] = res.PartialFingerprints[SARIFFingerprint]
		}
		return m
	}
	fa, fb := fps(a), fps(b)
	if len(fa) != 12 || len(fa) != len(fb) {
		t.Fatalf("%d and %d results", len(fa), len(fb))
	}
	seen := map[string]string{}
	for k, v := range fa {
		if fb[k] != v {
			t.Errorf("%s: fingerprint %s, then %s", k, v, fb[k])
		}
		if other, dup := seen[v]; dup {
			t.Errorf("%s and %s share fingerprint %s", k, other, v)
		}
		seen[v] = k
	}
	// The same render twice is byte for byte the same.
	var x, y bytes.Buffer
	WriteSARIF(&x, a)
	WriteSARIF(&y, a)
	if !bytes.Equal(x.Bytes(), y.Bytes()) {
		t.Error("two renders of one run differ")
	}
}

// TestSARIFScanRun: harden scan has no policy file; its results still have
// a physical location GitHub accepts.
func TestSARIFScanRun(t *testing.T) {
	isolateSourceRoots(t)
	r := &Run{FormatVersion: FormatVersion, Profile: "intermediate", Targets: []Target{
		{Name: "127.0.0.1:8443", Plugin: "scan", Status: "ok", Checks: []Check{
			{ID: "tls.protocol.versions", Status: "fail", Severity: "high", Subject: "127.0.0.1:8443", Evidence: "TLSv1.1 accepted"}}},
		{Name: "127.0.0.1:1", Plugin: "scan", Status: "error", Error: "connection refused"},
	}}
	r.Finish("scan")
	doc, _ := renderSARIFDoc(t, r)
	run := doc.Runs[0]
	if len(run.Results) != 2 {
		t.Fatalf("%d results", len(run.Results))
	}
	for _, res := range run.Results {
		pl := res.Locations[0].PhysicalLocation
		if pl.ArtifactLocation.URI != "harden-scan" || pl.Region.StartLine != 1 || pl.Region.StartColumn != 0 {
			t.Errorf("%s at %+v", res.RuleID, pl)
		}
	}
	if res := run.Results[0]; res.Locations[0].LogicalLocations[0].Name != "127.0.0.1:8443" || !strings.Contains(res.Message.Text, "fails on 127.0.0.1:8443.") {
		t.Errorf("scan result %+v", res)
	}
	// The category: a short hash of the sorted addresses.
	sum := sha256.Sum256([]byte("127.0.0.1:1\n127.0.0.1:8443"))
	if want := "harden/scan/" + hex.EncodeToString(sum[:6]) + "/"; run.AutomationDetails.ID != want {
		t.Errorf("automationDetails.id %q, want %q", run.AutomationDetails.ID, want)
	}
	if len(run.OriginalURIBaseIDs) != 0 || run.Results[0].Locations[0].PhysicalLocation.ArtifactLocation.URIBaseID != "" {
		t.Errorf("harden-scan is no file of a checkout: %+v", run.OriginalURIBaseIDs)
	}
	if run.Invocations[0].ExecutionSuccessful || len(run.Invocations[0].ToolExecutionNotifications) != 1 {
		t.Errorf("a scan with an address in error: %+v", run.Invocations)
	}
}

// TestSARIFPolicyURI: the policy's URI is relative to $GITHUB_WORKSPACE
// when it holds the file, else to the git checkout holding it, else to the
// working directory, else absolute; wherever harden was started from.
func TestSARIFPolicyURI(t *testing.T) {
	tmp := isolateSourceRoots(t)
	mkdir := func(parts ...string) string {
		d := filepath.Join(append([]string{tmp}, parts...)...)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	repo := mkdir("repo")
	mkdir("repo", ".git")
	deploy := mkdir("repo", "deploy")
	wt := mkdir("worktree")
	if err := os.WriteFile(filepath.Join(wt, ".git"), []byte("gitdir: "+filepath.Join(repo, ".git")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mkdir("worktree", "ci")
	plain := mkdir("plain")
	mkdir("plain", "sub")
	other := mkdir("other")
	fileURI := func(p string) string { return "file://" + filepath.ToSlash(p) }
	root := func(p string) string { return fileURI(p) + "/" }
	link := filepath.Join(tmp, "link")
	if err := os.Symlink(repo, link); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name, workspace, wd, policy string
		uri, root                   string
	}{
		// The reviewer's case: cd deploy && harden verify -f policy.yaml.
		{"git, from a subdirectory", "", deploy, "policy.yaml", "deploy/policy.yaml", root(repo)},
		{"git, from the top", "", repo, "deploy/policy.yaml", "deploy/policy.yaml", root(repo)},
		{"git, from outside the checkout", "", plain, filepath.Join(deploy, "policy.yaml"), "deploy/policy.yaml", root(repo)},
		{"git, ../ from another directory", "", plain, "../repo/deploy/../deploy/policy.yaml", "deploy/policy.yaml", root(repo)},
		{"git worktree (.git is a file)", "", plain, filepath.Join(wt, "ci", "p.yaml"), "ci/p.yaml", root(wt)},
		{"workspace wins over the checkout", repo, deploy, "policy.yaml", "deploy/policy.yaml", root(repo)},
		{"workspace wins over a nested checkout", tmp, deploy, "policy.yaml", "repo/deploy/policy.yaml", root(tmp)},
		{"workspace not holding the file: the checkout", other, deploy, "policy.yaml", "deploy/policy.yaml", root(repo)},
		{"workspace through a symbolic link", link, deploy, "policy.yaml", "deploy/policy.yaml", root(link)},
		{"no checkout: the working directory", "", plain, "sub/p.yaml", "sub/p.yaml", root(plain)},
		{"no checkout: ./ and ..", "", plain, "./sub/../sub/p.yaml", "sub/p.yaml", root(plain)},
		{"space in the name", "", plain, "sub/prod policy.yaml", "sub/prod%20policy.yaml", root(plain)},
		{"colon in the first segment", "", plain, "a:b.yaml", "./a:b.yaml", root(plain)},
		{"a name starting with ..", "", plain, "..x/p.yaml", "..x/p.yaml", root(plain)},
		{"outside everything", "", plain, "../other/p.yaml", fileURI(filepath.Join(other, "p.yaml")), ""},
		{"outside everything, escaped", other, plain, filepath.Join(other, "..", "harden #1", "p.yaml"),
			fileURI(filepath.Join(tmp, "harden%20%231", "p.yaml")), ""},
		{"scan", "", plain, "", "harden-scan", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("GITHUB_WORKSPACE", c.workspace)
			t.Chdir(c.wd)
			uri, r := policyURI(c.policy)
			if uri != c.uri || r != c.root {
				t.Errorf("policyURI(%q) in %s with GITHUB_WORKSPACE=%q = %q, %q; want %q, %q", c.policy, c.wd, c.workspace, uri, r, c.uri, c.root)
			}
		})
	}
}

// TestSARIFCategories: two policies, two commands on one policy, two
// shards and two scans of other endpoints each get their own GitHub
// analysis category; one policy and command keep theirs from run to run
// and from wherever harden is started in the checkout.
func TestSARIFCategories(t *testing.T) {
	tmp := isolateSourceRoots(t)
	for _, d := range []string{".git", "deploy/prod", "deploy/staging"} {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	run := func(command, policy, shard, evidence string, targets ...string) *Run {
		r := &Run{FormatVersion: FormatVersion, Policy: policy, Shard: shard}
		for i, name := range targets {
			r.Targets = append(r.Targets, Target{Name: name, Plugin: "postgres", Status: "ok", Line: 3 + i, Checks: []Check{
				{ID: "tls.enabled", Status: "fail", Severity: "high", Subject: name, Evidence: "plaintext accepted" + evidence}}})
		}
		r.Finish(command)
		return r
	}
	id := func(r *Run) string {
		doc, _ := renderSARIFDoc(t, r)
		return doc.Runs[0].AutomationDetails.ID
	}
	t.Chdir(tmp)
	prod := id(run("verify", "deploy/prod/policy.yaml", "", "", "pg"))
	if prod != "harden/verify/deploy/prod/policy.yaml/" {
		t.Errorf("prod: %q", prod)
	}
	distinct := map[string]string{"prod verify": prod}
	for name, r := range map[string]*Run{
		"staging verify": run("verify", "deploy/staging/policy.yaml", "", "", "pg"),
		"prod inventory": run("inventory", "deploy/prod/policy.yaml", "", "", "pg"),
		"prod shard 1/3": run("verify", "deploy/prod/policy.yaml", "1/3", "", "pg"),
		"prod shard 2/3": run("verify", "deploy/prod/policy.yaml", "2/3", "", "pg"),
		"scan a":         run("scan", "", "", "", "127.0.0.1:8443"),
		"scan a b":       run("scan", "", "", "", "127.0.0.1:8443", "127.0.0.1:9443"),
		"scan c":         run("scan", "", "", "", "127.0.0.1:9443"),
	} {
		got := id(r)
		for other, oid := range distinct {
			if got == oid {
				t.Errorf("%s and %s share the category %q", name, other, got)
			}
		}
		distinct[name] = got
	}
	if s := distinct["prod shard 2/3"]; s != "harden/verify/deploy/prod/policy.yaml/shard-2-of-3/" {
		t.Errorf("shard: %q", s)
	}
	// Stable: another run of the same policy and command (other evidence,
	// from the policy's own directory, the policy given absolutely) and
	// a scan of the same addresses in another order.
	t.Chdir(filepath.Join(tmp, "deploy", "prod"))
	for _, r := range []*Run{
		run("verify", "policy.yaml", "", " (again)", "pg"),
		run("verify", filepath.Join(tmp, "deploy", "prod", "policy.yaml"), "", " (again)", "pg", "pg2"),
	} {
		if got := id(r); got != prod {
			t.Errorf("the same policy and command: %q, then %q", prod, got)
		}
	}
	if got := id(run("scan", "", "", " (again)", "127.0.0.1:9443", "127.0.0.1:8443")); got != distinct["scan a b"] {
		t.Errorf("scan a b: %q, then %q", distinct["scan a b"], got)
	}
}

// TestSARIFLimits: a run of 30,000 failing checks stays valid and within
// GitHub's limits: the 25,000 most urgent are kept (every high one) and a
// notification says how many were left out.
func TestSARIFLimits(t *testing.T) {
	r := &Run{FormatVersion: FormatVersion, Policy: "fleet.yaml", Profile: "modern"}
	for i := 0; i < 1000; i++ {
		tg := Target{Name: fmt.Sprintf("pg-%03d", i), Plugin: "postgres", Status: "ok", Line: 3 + 4*i, Column: 5}
		for j := 0; j < 30; j++ {
			sev := "low"
			if j < 10 {
				sev = "high"
			}
			tg.Checks = append(tg.Checks, Check{ID: fmt.Sprintf("tls.check%02d", j%15), Status: "fail", Severity: sev,
				Subject: fmt.Sprintf("10.0.%d.%d:5432", i/250, j), Evidence: "TLSv1 accepted (alert none) after 12.5 ms"})
		}
		r.Targets = append(r.Targets, tg)
	}
	r.Finish("verify")
	doc, raw := renderSARIFDoc(t, r)
	run := doc.Runs[0]
	if len(run.Results) != sarifMaxResults {
		t.Fatalf("%d results, want %d", len(run.Results), sarifMaxResults)
	}
	high := 0
	for _, res := range run.Results {
		if res.Level == "error" {
			high++
		}
	}
	if high != 10000 {
		t.Errorf("%d of the 10,000 high-severity failures kept", high)
	}
	n := run.Invocations[0].ToolExecutionNotifications
	if len(n) != 1 || !strings.Contains(n[0].Message.Text, "kept the 25000 most urgent of 30000 results") {
		t.Errorf("notifications %+v", n)
	}
	if run.Properties["harden/omittedResults"] != 5000.0 {
		t.Errorf("omitted %v", run.Properties["harden/omittedResults"])
	}
	t.Logf("30,000 findings: %d bytes of SARIF", len(raw))
}

// TestSARIFCompressedSizeLimit: evidence that does not compress pushes the
// file past GitHub's 10 MB (gzip-compressed) before the result limit:
// fewer results are kept and the file stays under the limit.
func TestSARIFCompressedSizeLimit(t *testing.T) {
	r := &Run{FormatVersion: FormatVersion, Policy: "fleet.yaml"}
	noise := make([]byte, 6000)
	for i := 0; i < 4000; i++ {
		rand.Read(noise)
		r.Targets = append(r.Targets, Target{Name: fmt.Sprintf("t%d", i), Plugin: "kafka", Status: "ok", Line: i + 1, Checks: []Check{
			{ID: "kafka.listener.plaintext", Status: "fail", Severity: "high", Subject: "b", Evidence: base64.StdEncoding.EncodeToString(noise)}}})
	}
	r.Finish("verify")
	var buf bytes.Buffer
	if err := WriteSARIF(&buf, r); err != nil {
		t.Fatal(err)
	}
	var doc sarifDoc
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	checkGitHubAccepts(t, &doc, buf.Bytes())
	run := doc.Runs[0]
	if len(run.Results) >= 4000 || len(run.Results) < 1000 {
		t.Fatalf("%d results kept of 4,000", len(run.Results))
	}
	if n := run.Invocations[0].ToolExecutionNotifications; len(n) != 1 || !strings.Contains(n[0].Message.Text, "10 MB gzip-compressed") {
		t.Fatalf("notifications %+v", n)
	}
	if m := run.Results[0].Message.Text; !strings.HasSuffix(m, "… (truncated)") {
		t.Fatalf("a 8 KB evidence was not clipped: %d bytes", len(m))
	}
	t.Logf("kept %d results, %d bytes uncompressed", len(run.Results), buf.Len())
}

// FuzzSARIF: whatever the targets and servers said, the SARIF is valid
// JSON, every result has a location and a logical location, and the
// fingerprints do not depend on the evidence.
func FuzzSARIF(f *testing.F) {
	f.Add("pg", "127.0.0.1:5432", "TLSv1 accepted", "policy.yaml", 7)
	f.Add("", "", "", "", 0)
	f.Add("a\x00b", "\xff\xfe", "\x1b[31mred\u2028\ufffd", "dir/p \"q\".yaml", -3)
	f.Fuzz(func(t *testing.T, target, subject, evidence, policy string, line int) {
		mk := func(ev string) *Run {
			r := &Run{FormatVersion: FormatVersion, Policy: policy, Targets: []Target{
				{Name: target, Plugin: "p", Status: "ok", Line: line, Checks: []Check{
					{ID: "tls.enabled", Status: "fail", Severity: "high", Subject: subject, Title: ev, Evidence: ev},
					{ID: "tls.cipher_suites", Status: "error", Severity: "medium", Subject: subject, Evidence: ev}}},
				{Name: target + "2", Plugin: "p", Status: "error", Error: ev},
			}}
			r.Finish("verify")
			return r
		}
		var fps [2][]string
		for i, ev := range []string{evidence, evidence + " and more"} {
			var buf bytes.Buffer
			if err := WriteSARIF(&buf, mk(ev)); err != nil {
				t.Fatal(err)
			}
			var doc sarifDoc
			if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			checkGitHubAccepts(t, &doc, buf.Bytes())
			if len(doc.Runs[0].Results) != 3 {
				t.Fatalf("%d results", len(doc.Runs[0].Results))
			}
			for _, res := range doc.Runs[0].Results {
				fps[i] = append(fps[i], res.PartialFingerprints[SARIFFingerprint])
			}
		}
		if strings.Join(fps[0], ",") != strings.Join(fps[1], ",") {
			t.Fatalf("fingerprints changed with the evidence: %v %v", fps[0], fps[1])
		}
	})
}

// TestSARIFSelectionAndRenderPlace: a run of some --target names gets its
// own category (a per-target CI matrix must not close the other targets'
// alerts), and a run rendered later from another directory (harden report)
// names the same policy file and category as verify did, by PolicyPath.
func TestSARIFSelectionAndRenderPlace(t *testing.T) {
	tmp := isolateSourceRoots(t)
	for _, d := range []string{".git", "deploy"} {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	abs := filepath.Join(tmp, "deploy", "policy.yaml")
	run := func(selection ...string) *Run {
		r := &Run{FormatVersion: FormatVersion, Policy: "policy.yaml", PolicyPath: abs, Selection: selection, Targets: []Target{{Name: "pg", Plugin: "postgres", Status: "ok", Line: 3,
			Checks: []Check{{ID: "tls.enabled", Status: "fail", Severity: "high", Subject: "pg", Evidence: "plaintext accepted"}}}}}
		r.Finish("verify")
		return r
	}
	render := func(r *Run) (id, uri string) {
		doc, _ := renderSARIFDoc(t, r)
		return doc.Runs[0].AutomationDetails.ID, doc.Runs[0].Results[0].Locations[0].PhysicalLocation.ArtifactLocation.URI
	}
	t.Chdir(filepath.Join(tmp, "deploy")) // as verify ran: -f policy.yaml here
	whole, uri := render(run())
	if whole != "harden/verify/deploy/policy.yaml/" || uri != "deploy/policy.yaml" {
		t.Fatalf("verify: category %q, uri %q", whole, uri)
	}
	t.Chdir(tmp) // harden report from the top of the checkout
	if id, u := render(run()); id != whole || u != uri {
		t.Errorf("rendered elsewhere: category %q, uri %q; verify gave %q, %q", id, u, whole, uri)
	}
	pg, _ := render(run("pg"))
	other, _ := render(run("kafka"))
	again, _ := render(run("pg"))
	if pg == whole || pg == other || pg != again || !strings.HasPrefix(pg, whole+"targets-") {
		t.Errorf("categories: whole %q, --target pg %q (again %q), --target kafka %q", whole, pg, again, other)
	}
}
