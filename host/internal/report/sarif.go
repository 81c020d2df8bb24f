package report

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"

	"github.com/harden-dev/harden/host/internal/inventory"
	"github.com/harden-dev/harden/shared/checks"
)

// ToolVersion is harden's version as the reports name it (SARIF's
// tool.driver.version). The CLI sets it from its build-time version; the
// report package cannot import the CLI.
var ToolVersion = "dev"

const (
	sarifSchemaURI      = "https://json.schemastore.org/sarif-2.1.0.json"
	sarifInformationURI = "https://github.com/harden-dev/harden#readme"

	// GitHub code scanning's documented limits ("SARIF support for code
	// scanning", "SARIF results exceed limits"): a file over any of them is
	// rejected as a whole, so WriteSARIF stays under every one.
	sarifMaxResults        = 25000
	sarifMaxRules          = 25000
	sarifMaxTags           = 20
	sarifMaxRuleName       = 255
	sarifMaxDescription    = 1024
	sarifMaxGzippedBytes   = 10 << 20
	sarifGzipSafetyPercent = 90
	// sarifMaxMessage is harden's own bound on one result's message, not
	// GitHub's: evidence is whatever a server said and can be of any
	// length; the JSON report keeps it whole.
	sarifMaxMessage = 4096

	// sarifScanURI stands in for the policy file of `harden scan`, which
	// has none: GitHub rejects a file whose results lack a physical
	// location (github/codeql-action#2459).
	sarifScanURI = "harden-scan"

	// SARIFFingerprint is the partialFingerprints key of harden's stable
	// result identity (see WriteSARIF).
	SARIFFingerprint = "harden/v1"
	// sarifGitHubFingerprint is the only partial fingerprint GitHub reads;
	// upload-sarif computes it from the text of the policy line when it is
	// missing, which changes whenever the policy is edited and is the same
	// for every check of a target.
	sarifGitHubFingerprint = "primaryLocationLineHash"

	// RuleTargetError is the rule of a target that failed as a whole.
	RuleTargetError = "harden.target.error"

	// sarifSourceRoot is the uriBaseId of the policy file's URI: the
	// checkout it is relative to, named as CodeQL and upload-sarif name
	// the source root.
	sarifSourceRoot = "%SRCROOT%"
	// sarifMaxTargetNotifications bounds the notifications of targets in
	// error (one each), which the size limit does not shrink.
	sarifMaxTargetNotifications = 100
)

// Inventory rules: one per way a certificate or key needs attention.
const (
	RuleCertificateExpired     = "inventory.certificate.expired"
	RuleCertificateNotYetValid = "inventory.certificate.not_yet_valid"
	RuleCertificateExpiring    = "inventory.certificate.expiring"
	RuleKeyRotationDisabled    = "inventory.key.rotation_disabled"
	RuleKeyRotationOverdue     = "inventory.key.rotation_overdue"
	RuleInventoryUnreadable    = "inventory.unreadable"
	RuleInventoryFinding       = "inventory.finding"
)

// syntheticRules are the rules harden reports that are not check IDs.
var syntheticRules = map[string]checks.Definition{
	RuleTargetError: {ID: RuleTargetError, Title: "Target could be verified", Severity: checks.High,
		Remediation: "The target failed as a whole (unreachable, refused harden's credentials, plugin or configuration error), " +
			"so its checks are missing or incomplete and nothing about it is known to pass. Fix the error in the message and run verify again."},
	RuleCertificateExpired: {ID: RuleCertificateExpired, Title: "Certificate is within its validity period", Severity: checks.Critical,
		Remediation: "The certificate has expired: clients that verify refuse the endpoint. Renew and deliver it (harden rotate) now.",
		References:  []string{checks.RefSeedRotation}},
	RuleCertificateNotYetValid: {ID: RuleCertificateNotYetValid, Title: "Certificate is already valid", Severity: checks.High,
		Remediation: "The certificate's NotBefore is in the future: check the clocks of the issuer and of this host, then reissue it.",
		References:  []string{checks.RefSeedRotation}},
	RuleCertificateExpiring: {ID: RuleCertificateExpiring, Title: "Certificate is outside the expiry alert tiers", Severity: checks.Medium,
		Remediation: "The certificate expires within one of the policy's alert tiers (rotation.alert_at, 30/14/7 days by default). " +
			"Renew and deliver it (harden rotate) before it expires.",
		References: []string{checks.RefSeedRotation}},
	RuleKeyRotationDisabled: {ID: RuleKeyRotationDisabled, Title: "Key rotates automatically", Severity: checks.Medium,
		Remediation: "The key has no automatic rotation period, so it is never rotated unless someone does it: set one " +
			"(e.g. Vault transit auto_rotate_period) or rotate it on a schedule.",
		References: []string{checks.RefSeedRotation, checks.RefSeedObjectStore}},
	RuleKeyRotationOverdue: {ID: RuleKeyRotationOverdue, Title: "Key rotation is not overdue", Severity: checks.Medium,
		Remediation: "The key's next automatic rotation was due and has not happened: check the key service's rotation job and rotate the key.",
		References:  []string{checks.RefSeedRotation, checks.RefSeedObjectStore}},
	RuleInventoryUnreadable: {ID: RuleInventoryUnreadable, Title: "Certificate or key could be read", Severity: checks.Medium,
		Remediation: "harden could not read this certificate or key, so the inventory is incomplete and its expiry or rotation is unknown. " +
			"Fix the access or the error in the message."},
	RuleInventoryFinding: {ID: RuleInventoryFinding, Title: "Certificate or key has no inventory finding", Severity: checks.Medium,
		Remediation: "The inventory found a problem besides the expiry tier (an untrusted chain, a listener serving another certificate " +
			"than harden holds, a refused session): see the message.",
		References: []string{checks.RefSeedRotation}},
}

// securitySeverity maps harden's severities onto GitHub's bands (over 9.0
// critical, 7.0–8.9 high, 4.0–6.9 medium, 0.1–3.9 low).
var securitySeverity = map[checks.Severity]string{
	checks.Critical: "9.5", checks.High: "8.0", checks.Medium: "5.5", checks.Low: "3.0", checks.Info: "1.0",
}

// sarifFinding is one result before it is rendered.
type sarifFinding struct {
	rule    string
	level   string
	message string
	// uri, line, column: the physical location (line >= 1).
	uri          string
	line, column int
	// name, qualified: the logical location (the endpoint or resource).
	name, qualified string
	// identity is hashed into the fingerprint: what the finding is about,
	// never what was observed (evidence changes between runs).
	identity string
	priority int
	props    sarif.Properties
}

// WriteSARIF writes the Run as SARIF 2.1.0 for GitHub code scanning (and
// any SARIF viewer).
//
// Rules: one per check ID that occurs in the run (title, remediation as
// help, references, the first URL among them as helpUri, tags and
// security-severity in GitHub's bands), plus harden.target.error and the
// inventory.* rules when they are used.
//
// Results: one per check that is not a pass. fail: level error for
// critical and high, warning for medium, note for low and info. error (the
// check could not run or was inconclusive): level warning with a message
// that says it could not be verified — a check that could not run is not a
// pass, and GitHub shows only results. warn: level warning. pass and skip
// are omitted: GitHub treats every result as an alert and displays only
// the top 5,000, so passes would crowd out findings; run.properties counts
// every status. A target in error is one harden.target.error result; with
// an inventory (inventory, verify --inventory), every item that is not ok
// or has findings is one inventory.* result.
//
// Locations: every result has a physical location, because GitHub rejects
// the whole file otherwise (github/codeql-action#2459): the policy file and
// the target's line; `harden scan` has no policy, so its results point at
// "harden-scan" line 1. GitHub resolves a relative URI against the root of
// the repository, not against the directory harden ran in, so the policy's
// URI is relative (forward slashes) to $GITHUB_WORKSPACE when it is set
// and holds the file, else to the top of the git checkout holding it (the
// nearest directory up with a .git), else to the working directory; its
// uriBaseId is %SRCROOT% and run.originalUriBaseIds says which directory
// that was. A policy outside all three is an absolute file URI. A logical
// location names the endpoint or resource.
//
// Fingerprints: partialFingerprints["harden/v1"] (and GitHub's
// primaryLocationLineHash, the only key GitHub reads) is the hex SHA-256 of
// rule ID, target and subject (endpoint) — never evidence, which changes
// between runs — so an alert keeps its identity across runs and policy
// edits; a repeated identity within one run gets ":2", ":3"….
//
// Category: GitHub keeps one analysis per automationDetails.id (and tool),
// and each upload replaces the last one of its category, closing every
// alert it does not repeat; the id also takes precedence over
// upload-sarif's category input. So the id names what one analysis
// covers: "harden/<command>/<policy URI>/" (the URI as in the results,
// without a leading "./"; an absolute one keeps its path:
// "harden/verify//etc/harden/policy.yaml/"), then "shard-I-of-N/" for a
// shard (verify --shard); `harden scan` has no policy:
// "harden/scan/<first 12 hex digits of the SHA-256 of its sorted
// addresses>/". Two policies, the verify and the inventory of one policy,
// and scans of other endpoints thus never replace each other's alerts, and
// one policy and command keep their category from run to run.
//
// Incomplete runs: a target in error sends no checks, so an upload that
// replaced the last analysis would close its alerts as "Fixed" — an outage
// read as remediation. Such a run says it is incomplete the SARIF way:
// invocations[0].executionSuccessful is false and
// toolExecutionNotifications has one error per target in error (up to
// 100, then one that counts the rest), besides its harden.target.error
// result. GitHub code scanning does not document either field for
// uploaded SARIF and cannot be relied on to honour them: it refused such
// uploads for a day in 2022 and reverted (github/codeql-action#1316); it
// answers CodeQL's own failed-run uploads with an "unsuccessful execution"
// processing error so that they close nothing (github/codeql-action#1393),
// which is not promised for other tools. So a run that exits 3 should not
// be uploaded at all (README); the fields tell any other consumer, and a
// reader of the file, why alerts are missing.
//
// Limits: at most 25,000 results and rules per run, 20 tags per rule, 255
// characters of rule name, 1,024 of descriptions and 10 MB gzip-compressed
// (GitHub's documented maxima); beyond them the most urgent results are
// kept and a tool notification says how many were left out.
func WriteSARIF(w io.Writer, r *Run) error {
	b, err := renderSARIF(r)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func renderSARIF(r *Run) ([]byte, error) {
	rules := map[string]checks.Definition{}
	policy := r.Policy
	if policy != "" && r.PolicyPath != "" {
		policy = r.PolicyPath // where verify found it, wherever this renders
	}
	uri, root := policyURI(policy)
	findings := sarifFindings(r, uri, rules)
	total := len(findings)
	keep := min(total, sarifMaxResults)
	for {
		kept := mostUrgent(findings, keep)
		rep := buildSARIF(r, uri, root, rules, kept, total)
		var buf bytes.Buffer
		if err := rep.Write(&buf); err != nil {
			return nil, fmt.Errorf("sarif: %w", err)
		}
		buf.WriteByte('\n')
		size, err := gzippedSize(buf.Bytes())
		if err != nil {
			return nil, fmt.Errorf("sarif: %w", err)
		}
		if size <= sarifMaxGzippedBytes*sarifGzipSafetyPercent/100 || keep == 0 {
			return buf.Bytes(), nil
		}
		// Shrink in proportion, with a margin, and measure again.
		keep = int(int64(keep) * sarifMaxGzippedBytes * sarifGzipSafetyPercent / 100 / size * 9 / 10)
	}
}

// gzippedSize is what GitHub's 10 MB limit measures; below it uncompressed,
// nothing needs compressing.
func gzippedSize(b []byte) (int64, error) {
	if len(b) <= sarifMaxGzippedBytes*sarifGzipSafetyPercent/100 {
		return int64(len(b)), nil
	}
	var n countingWriter
	// BestSpeed compresses less than the uploader does: a safe estimate.
	zw, err := gzip.NewWriterLevel(&n, gzip.BestSpeed)
	if err != nil {
		return 0, err
	}
	if _, err := zw.Write(b); err != nil {
		return 0, err
	}
	if err := zw.Close(); err != nil {
		return 0, err
	}
	return int64(n), nil
}

type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

// mostUrgent keeps the n most urgent findings in their original order.
func mostUrgent(fs []sarifFinding, n int) []sarifFinding {
	if n >= len(fs) {
		return fs
	}
	idx := make([]int, len(fs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return fs[idx[a]].priority > fs[idx[b]].priority })
	idx = idx[:n]
	sort.Ints(idx)
	out := make([]sarifFinding, 0, n)
	for _, i := range idx {
		out = append(out, fs[i])
	}
	return out
}

// sarifFindings collects the results and the definitions of every rule
// that occurs.
func sarifFindings(r *Run, uri string, rules map[string]checks.Definition) []sarifFinding {
	lines := map[string][2]int{}
	var out []sarifFinding
	for i := range r.Targets {
		t := &r.Targets[i]
		line, col := max(t.Line, 1), max(t.Column, 0)
		lines[t.Name] = [2]int{line, col}
		if t.Status == "error" {
			rules[RuleTargetError] = syntheticRules[RuleTargetError]
			msg := fmt.Sprintf("Target %s (%s) could not be verified as a whole, so its checks are missing or incomplete. Error: %s",
				t.Name, t.Plugin, orNone(t.Error))
			out = append(out, sarifFinding{rule: RuleTargetError, level: sarif.LevelError, message: msg, uri: uri, line: line, column: col,
				name: orUnnamed(t.Name), qualified: orUnnamed(t.Name), identity: t.Name, priority: priority(sarif.LevelError, checks.High),
				props: sarif.Properties{"harden/target": t.Name, "harden/plugin": t.Plugin, "harden/status": "error"}})
		}
		for _, c := range t.Checks {
			if _, ok := rules[c.ID]; !ok {
				rules[c.ID] = checkRule(c)
			}
			level, verdict, ok := checkLevel(c)
			if !ok {
				continue
			}
			sev := parseSeverity(c.Severity)
			title := c.Title
			if title == "" {
				title = rules[c.ID].Title
			}
			subject := c.Subject
			if subject == "" {
				subject = t.Name
			}
			if subject == "" {
				subject = "(unnamed)"
			}
			where := subject
			if subject != t.Name {
				where += " (target " + t.Name + ")"
			}
			msg := fmt.Sprintf(verdict, title, where, c.Evidence)
			props := sarif.Properties{"harden/target": t.Name, "harden/status": c.Status, "harden/severity": c.Severity}
			if c.Inconclusive > 0 {
				props["harden/inconclusive"] = c.Inconclusive
			}
			if c.ConfigurationOnly {
				props["harden/configurationOnly"] = true
			}
			out = append(out, sarifFinding{rule: c.ID, level: level, message: msg, uri: uri, line: line, column: col,
				name: subject, qualified: t.Name + "/" + subject, identity: t.Name + "\x00" + subject,
				priority: priority(level, sev), props: props})
		}
	}
	if r.Inventory != nil {
		out = append(out, inventoryFindings(r.Inventory, uri, lines, rules)...)
	}
	return out
}

// checkLevel is the SARIF level of a check's result and its message
// (title, where, evidence); ok is false for statuses that are not reported.
func checkLevel(c Check) (level, verdict string, ok bool) {
	switch c.Status {
	case checks.Pass.String(), checks.Skip.String():
		return "", "", false
	case checks.Fail.String():
		switch parseSeverity(c.Severity) {
		case checks.Critical, checks.High:
			return sarif.LevelError, failed, true
		case checks.Low, checks.Info:
			return sarif.LevelNote, failed, true
		}
		return sarif.LevelWarning, failed, true
	case checks.Warn.String():
		return sarif.LevelWarning, "%s — warning on %s. Observed: %s", true
	}
	// error, or a status this version does not know: not a pass either.
	return sarif.LevelWarning, "%s — could not be verified on %s, so it is not a pass. Why: %s", true
}

const failed = "%s — fails on %s. Observed: %s"

// priority orders findings for truncation: level first (GitHub keeps the
// most severe), then severity.
func priority(level string, sev checks.Severity) int {
	rank := map[string]int{sarif.LevelError: 3, sarif.LevelWarning: 2, sarif.LevelNote: 1}[level]
	return rank*10 + int(sev)
}

// parseSeverity reads a severity; an unknown one counts as medium.
func parseSeverity(s string) checks.Severity {
	sev, err := checks.ParseSeverity(s)
	if err != nil || sev < checks.Info {
		return checks.Medium
	}
	return sev
}

// checkRule is the rule of a check ID: what the plugin said about it,
// completed from the registry.
func checkRule(c Check) checks.Definition {
	d := checks.Definition{ID: c.ID, Title: c.Title, Severity: parseSeverity(c.Severity), Remediation: c.Remediation, References: c.References}
	if reg, ok := checks.Lookup(c.ID); ok {
		if d.Title == "" {
			d.Title = reg.Title
		}
		if d.Remediation == "" {
			d.Remediation = reg.Remediation
		}
		if len(d.References) == 0 {
			d.References = reg.References
		}
		if c.Severity == "" {
			d.Severity = reg.Severity
		}
	}
	return d
}

// inventoryFindings: one result per item that is not ok or has findings.
func inventoryFindings(inv *inventory.Report, uri string, lines map[string][2]int, rules map[string]checks.Definition) []sarifFinding {
	narrowest := ""
	if n := len(inv.AlertAt); n > 0 {
		narrowest = inv.AlertAt[n-1]
	}
	var out []sarifFinding
	for _, it := range inv.Items {
		if it.Tier == inventory.TierOK && len(it.Findings) == 0 && it.Error == "" {
			continue
		}
		rule, state := inventoryRule(it, inv.AlertAt)
		def := syntheticRules[rule]
		rules[rule] = def
		level := map[checks.Severity]string{checks.Critical: sarif.LevelError, checks.High: sarif.LevelError}[def.Severity]
		if level == "" {
			level = sarif.LevelWarning
		}
		if rule == RuleCertificateExpiring && it.Tier == narrowest {
			level = sarif.LevelError
		}
		target := it.Target
		if target == "" && len(it.Targets) > 0 {
			target = it.Targets[0]
		}
		pos, ok := lines[target]
		if !ok {
			pos = [2]int{1, 0}
		}
		name := orUnnamed(strings.Join(nonEmpty(it.Where, it.Name), " "))
		qualified := orUnnamed(strings.Join(nonEmpty(target, it.Where, it.Name), "/"))
		var msg strings.Builder
		fmt.Fprintf(&msg, "%s: %s.", strings.Join(nonEmpty(describeItem(it), forTargets(it)), " "), state)
		if it.Error != "" {
			fmt.Fprintf(&msg, " Error: %s.", it.Error)
		}
		if len(it.Findings) > 0 {
			fmt.Fprintf(&msg, " Findings: %s.", strings.Join(it.Findings, "; "))
		}
		props := sarif.Properties{"harden/kind": it.Kind, "harden/tier": it.Tier}
		if target != "" {
			props["harden/target"] = target
		}
		if c := it.Certificate; c != nil {
			props["harden/notAfter"] = c.NotAfter.UTC().Format(time.RFC3339)
			props["harden/daysLeft"] = c.DaysLeft
			props["harden/serial"] = c.Serial
		}
		out = append(out, sarifFinding{rule: rule, level: level, message: msg.String(), uri: uri, line: pos[0], column: pos[1],
			name: name, qualified: qualified, identity: it.Kind + "\x00" + target + "\x00" + it.Where + "\x00" + it.Name,
			priority: priority(level, def.Severity), props: props})
	}
	return out
}

// inventoryRule picks an item's rule and says its state.
func inventoryRule(it inventory.Item, alertAt []string) (rule, state string) {
	days := ""
	if c := it.Certificate; c != nil {
		days = fmt.Sprintf(" (not after %s, %s)", c.NotAfter.UTC().Format(time.RFC3339), daysLeft(c.DaysLeft))
	}
	switch {
	case it.Tier == inventory.TierUnknown || it.Error != "":
		return RuleInventoryUnreadable, "could not be read"
	case it.Tier == inventory.TierExpired:
		return RuleCertificateExpired, "expired" + days
	case it.Tier == inventory.TierNotYetValid:
		return RuleCertificateNotYetValid, "not valid yet" + days
	case it.Tier == inventory.TierRotationDisabled:
		return RuleKeyRotationDisabled, "automatic rotation is disabled"
	case it.Tier == inventory.TierOverdue:
		next := ""
		if it.Key != nil && it.Key.NextRotation != nil {
			next = " (was due " + it.Key.NextRotation.UTC().Format(time.RFC3339) + ")"
		}
		return RuleKeyRotationOverdue, "rotation is overdue" + next
	case slices.Contains(alertAt, it.Tier):
		return RuleCertificateExpiring, "expires within the " + it.Tier + " alert tier" + days
	}
	if it.Tier == inventory.TierOK {
		return RuleInventoryFinding, "ok, with findings"
	}
	return RuleInventoryFinding, "tier " + it.Tier
}

func daysLeft(n int) string {
	if n < 0 {
		return fmt.Sprintf("%d days ago", -n)
	}
	return fmt.Sprintf("%d days left", n)
}

func describeItem(it inventory.Item) string {
	what := map[string]string{
		inventory.KindServed: "Certificate served on", inventory.KindServer: "Server certificate",
		inventory.KindClient: "Client certificate", inventory.KindCA: "CA certificate", inventory.KindStoredCA: "Stored CA",
		inventory.KindStoredCertificate: "Stored certificate", inventory.KindKey: "Key", inventory.KindTarget: "Target inventory",
		inventory.KindClientIdentity: "Client identity",
	}[it.Kind]
	if what == "" {
		what = "Item " + it.Kind
	}
	return strings.Join(nonEmpty(what, it.Where, it.Name), " ")
}

func forTargets(it inventory.Item) string {
	if it.Target != "" {
		return "(target " + it.Target + ")"
	}
	if len(it.Targets) > 0 {
		return "(targets " + strings.Join(it.Targets, ", ") + ")"
	}
	return ""
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func orUnnamed(s string) string {
	if s == "" {
		return "(unnamed)"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "(none given)"
	}
	return s
}

// buildSARIF renders the kept findings; total counts every finding. uri
// is the policy's (policyURI), root the directory (file URI) it is
// relative to, "" when it is not.
func buildSARIF(r *Run, uri, root string, defs map[string]checks.Definition, kept []sarifFinding, total int) *sarif.Report {
	rep := sarif.NewReport()
	rep.Schema = sarifSchemaURI
	run := sarif.NewRunWithInformationURI("harden", sarifInformationURI)
	version := ToolVersion
	run.Tool.Driver.Version = &version

	// Rules: every rule that occurs, by ID; past GitHub's limit only the
	// ones a kept result uses.
	used := map[string]bool{}
	for _, f := range kept {
		used[f.rule] = true
	}
	ids := make([]string, 0, len(defs))
	for id := range defs {
		if len(defs) <= sarifMaxRules || used[id] {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	ruleIndex := map[string]int{}
	for i, id := range ids {
		ruleIndex[id] = i
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sarifRule(defs[id]))
	}

	if root != "" {
		base := sarif.NewArtifactLocation()
		base.URI = &root
		run.OriginalUriBaseIds = map[string]sarif.ArtifactLocation{sarifSourceRoot: *base}
	}

	seen := map[string]int{}
	for _, f := range kept {
		sum := sha256.Sum256([]byte(f.rule + "\x00" + f.identity))
		fp := hex.EncodeToString(sum[:])
		seen[fp]++
		if n := seen[fp]; n > 1 {
			fp = fmt.Sprintf("%s:%d", fp, n)
		}
		region := sarif.NewRegion()
		line := f.line
		region.StartLine, region.EndLine = &line, &line
		if f.column > 0 {
			col := f.column
			region.StartColumn = &col
		}
		loc := sarif.NewLocation()
		loc.PhysicalLocation = sarif.NewPhysicalLocation()
		art := sarif.NewArtifactLocation()
		furi := f.uri
		art.URI = &furi
		if root != "" {
			art = art.WithURIBaseID(sarifSourceRoot)
		}
		loc.PhysicalLocation.ArtifactLocation = art
		loc.PhysicalLocation.Region = region
		ll := sarif.NewLogicalLocation()
		name, qualified, kind := f.name, f.qualified, "resource"
		ll.Name, ll.FullyQualifiedName, ll.Kind = &name, &qualified, &kind
		loc.LogicalLocations = []*sarif.LogicalLocation{ll}

		res := sarif.NewRuleResult(f.rule).WithRuleIndex(ruleIndex[f.rule]).WithKind("fail").WithLevel(f.level).
			WithMessage(sarif.NewTextMessage(clip(f.message, sarifMaxMessage))).
			WithPartialFingerprints(map[string]string{SARIFFingerprint: fp, sarifGitHubFingerprint: fp})
		res.Locations = []*sarif.Location{loc}
		props := sarif.NewPropertyBag()
		props.Properties = f.props
		res.Properties = props
		run.AddResult(res)
	}

	id := sarifCategory(r, uri)
	run.AutomationDetails = sarif.NewRunAutomationDetails()
	run.AutomationDetails.ID = &id

	inv := sarif.NewInvocation()
	ok := r.TargetErrors() == 0
	inv.ExecutionSuccessful = &ok
	if !r.GeneratedAt.IsZero() {
		start := r.GeneratedAt.UTC().Format(time.RFC3339Nano)
		inv.StartTimeUtc = &start
	}
	inv.ToolExecutionNotifications = targetErrorNotifications(r, ruleIndex, uri, root)
	if omitted := total - len(kept); omitted > 0 {
		n := sarif.NewNotification()
		n.Level = sarif.LevelWarning
		n.Message = sarif.NewTextMessage(fmt.Sprintf("harden kept the %d most urgent of %d results: GitHub code scanning rejects a run over "+
			"%d results or %d MB gzip-compressed. The JSON report (--format json) has every result.", len(kept), total, sarifMaxResults, sarifMaxGzippedBytes>>20))
		inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, n)
	}
	run.Invocations = []*sarif.Invocation{inv}

	props := sarif.NewPropertyBag()
	props.Add("harden/command", r.Command).Add("harden/profile", r.Profile).Add("harden/results", total).
		Add("harden/omittedResults", total-len(kept))
	if r.Summary != nil {
		props.Add("harden/summary", r.Summary)
	} else {
		props.Add("harden/summary", statusCounts(r))
	}
	if r.Shard != "" {
		props.Add("harden/shard", r.Shard)
	}
	run.Properties = props
	rep.AddRun(run)
	return rep
}

// statusCounts: checks by status, for runs that were not Finished as verify.
func statusCounts(r *Run) map[string]int {
	m := map[string]int{"target_error": r.TargetErrors()}
	for _, t := range r.Targets {
		for _, c := range t.Checks {
			m[c.Status]++
		}
	}
	return m
}

// sarifRule renders a rule, within GitHub's limits; GitHub does not accept
// empty strings in required fields.
func sarifRule(d checks.Definition) *sarif.ReportingDescriptor {
	title := d.Title
	if title == "" {
		title = d.ID
	}
	remediation := d.Remediation
	if remediation == "" {
		remediation = "No remediation is registered for " + d.ID + "; see the result's evidence."
	}
	rule := sarif.NewRule(d.ID)
	name := clip(d.ID, sarifMaxRuleName)
	rule.Name = &name
	rule.ShortDescription = sarif.NewMultiformatMessageString().WithText(clip(title, sarifMaxDescription))
	rule.FullDescription = sarif.NewMultiformatMessageString().WithText(clip(remediation, sarifMaxDescription))
	text, md := remediation, "**Fix:** "+remediation
	if len(d.References) > 0 {
		text += "\n\nReferences:\n- " + strings.Join(d.References, "\n- ")
		md += "\n\n**References:**\n\n- " + strings.Join(d.References, "\n- ")
	}
	help := sarif.NewMultiformatMessageString().WithText(text)
	help.Markdown = &md
	rule.Help = help
	for _, ref := range d.References {
		if u := urlPattern.FindString(ref); u != "" {
			rule.HelpURI = &u
			break
		}
	}
	level := map[checks.Severity]string{checks.Critical: sarif.LevelError, checks.High: sarif.LevelError, checks.Medium: sarif.LevelWarning}[d.Severity]
	if level == "" {
		level = sarif.LevelNote
	}
	cfg := sarif.NewReportingConfiguration()
	cfg.Level = level
	rule.DefaultConfiguration = cfg
	sev := d.Severity
	if _, ok := securitySeverity[sev]; !ok {
		sev = checks.Medium
	}
	tags := slices.Compact([]string{"security", "harden", strings.SplitN(d.ID, ".", 2)[0], sev.String()})
	props := sarif.NewPropertyBag().WithTags(tags[:min(len(tags), sarifMaxTags)])
	props.Add("security-severity", securitySeverity[sev]).Add("precision", "high").Add("harden/severity", sev.String())
	rule.Properties = props
	return rule
}

var urlPattern = regexp.MustCompile(`https?://[^\s)>\]]+`)

// clip shortens s to at most n bytes on a rune boundary, saying so.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const more = "… (truncated)"
	cut := n - len(more)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + more
}

// policyURI is the policy file as a URI reference GitHub matches against
// the repository, and root, the directory (as a file URI ending in "/")
// the reference is relative to: $GITHUB_WORKSPACE when set and holding the
// file (the checkout in GitHub Actions), else the top of the git checkout
// holding it, else the working directory. A file outside all of them is
// an absolute file URI (root ""), which GitHub makes relative to the
// checkout itself; `harden scan` has the stand-in "harden-scan" (root "").
func policyURI(policy string) (uri, root string) {
	if policy == "" {
		return sarifScanURI, ""
	}
	p, err := filepath.Abs(policy)
	if err != nil {
		return (&url.URL{Path: filepath.ToSlash(filepath.Clean(policy))}).String(), ""
	}
	for _, dir := range sourceRoots(filepath.Dir(p)) {
		if rel, ok := relInside(dir, p); ok {
			root := filepath.ToSlash(dir)
			if !strings.HasSuffix(root, "/") {
				root += "/"
			}
			return (&url.URL{Path: filepath.ToSlash(rel)}).String(), (&url.URL{Scheme: "file", Path: root}).String()
		}
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(p)}).String(), ""
}

// sourceRoots are the directories a policy in dir may be relative to, in
// order of preference.
func sourceRoots(dir string) []string {
	var roots []string
	if ws := os.Getenv("GITHUB_WORKSPACE"); ws != "" {
		if abs, err := filepath.Abs(ws); err == nil {
			roots = append(roots, abs)
		}
	}
	if top := gitTopLevel(dir); top != "" {
		roots = append(roots, top)
	}
	if wd, err := os.Getwd(); err == nil {
		roots = append(roots, wd)
	}
	return roots
}

// gitTopLevel is the nearest directory from dir up that has a .git (a
// directory, or the file of a worktree or submodule); "" when none. It
// reads the file system only: harden runs no git.
func gitTopLevel(dir string) string {
	for {
		if _, err := os.Lstat(filepath.Join(dir, ".git")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// relInside is p relative to root when p is inside root, also when one of
// them is reached through a symbolic link (a workspace under /tmp on a
// system where /tmp is a link).
func relInside(root, p string) (string, bool) {
	if rel, ok := relBelow(root, p); ok {
		return rel, true
	}
	r, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", false
	}
	d, err := filepath.EvalSymlinks(filepath.Dir(p))
	if err != nil {
		return "", false
	}
	return relBelow(r, filepath.Join(d, filepath.Base(p)))
}

func relBelow(root, p string) (string, bool) {
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", false
	}
	return rel, true
}

// sarifCategory is the run's automationDetails.id (see WriteSARIF).
func sarifCategory(r *Run, uri string) string {
	command := r.Command
	if command == "" {
		command = "run"
	}
	id := "harden/" + url.PathEscape(command) + "/"
	if r.Policy == "" {
		addrs := make([]string, 0, len(r.Targets))
		for _, t := range r.Targets {
			addrs = append(addrs, t.Name)
		}
		sort.Strings(addrs)
		addrs = slices.Compact(addrs)
		sum := sha256.Sum256([]byte(strings.Join(addrs, "\n")))
		id += hex.EncodeToString(sum[:6]) + "/"
	} else {
		id += strings.TrimPrefix(strings.TrimPrefix(uri, "./"), "file://") + "/"
	}
	if len(r.Selection) > 0 {
		sel := slices.Sorted(slices.Values(r.Selection))
		sum := sha256.Sum256([]byte(strings.Join(slices.Compact(sel), "\n")))
		id += "targets-" + hex.EncodeToString(sum[:6]) + "/"
	}
	if r.Shard != "" {
		id += "shard-" + url.PathEscape(strings.ReplaceAll(r.Shard, "/", "-of-")) + "/"
	}
	return id
}

// targetErrorNotifications: one error per target in error, at its line of
// the policy, up to sarifMaxTargetNotifications.
func targetErrorNotifications(r *Run, ruleIndex map[string]int, uri, root string) []*sarif.Notification {
	out := []*sarif.Notification{}
	errs := r.TargetErrors()
	for _, t := range r.Targets {
		if t.Status != "error" {
			continue
		}
		if len(out) == sarifMaxTargetNotifications {
			n := sarif.NewNotification()
			n.Level = sarif.LevelError
			n.Message = sarif.NewTextMessage(fmt.Sprintf("%d more targets could not be verified (the harden.target.error results name them): "+
				"their checks are missing too.", errs-len(out)))
			n.Descriptor = sarif.NewReportingDescriptorReference().WithID(RuleTargetError)
			return append(out, n)
		}
		n := sarif.NewNotification()
		n.Level = sarif.LevelError
		n.Message = sarif.NewTextMessage(clip(fmt.Sprintf("Target %s (%s) could not be verified, so this analysis is incomplete: its checks are missing, "+
			"and an alert of this target that this run does not repeat is not fixed. Error: %s", orUnnamed(t.Name), t.Plugin, orNone(t.Error)), sarifMaxMessage))
		n.Descriptor = sarif.NewReportingDescriptorReference().WithID(RuleTargetError)
		if i, ok := ruleIndex[RuleTargetError]; ok {
			n.AssociatedRule = sarif.NewReportingDescriptorReference().WithID(RuleTargetError).WithIndex(i)
		}
		art := sarif.NewArtifactLocation()
		u := uri
		art.URI = &u
		if root != "" {
			art = art.WithURIBaseID(sarifSourceRoot)
		}
		region := sarif.NewRegion()
		line := max(t.Line, 1)
		region.StartLine = &line
		loc := sarif.NewLocation()
		loc.PhysicalLocation = sarif.NewPhysicalLocation()
		loc.PhysicalLocation.ArtifactLocation = art
		loc.PhysicalLocation.Region = region
		n.Locations = []*sarif.Location{loc}
		n.Properties = sarif.NewPropertyBag().Add("harden/target", t.Name).Add("harden/plugin", t.Plugin)
		out = append(out, n)
	}
	return out
}
