package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/harden-dev/harden/host/internal/inventory"
	"github.com/harden-dev/harden/shared/checks"
)

// The JUnit XML that Jenkins, GitLab, Azure DevOps and the GitHub test
// reporters read (the Ant/Surefire dialect).
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut junitText     `xml:"system-out,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:"-"`
}

// MarshalXML writes the text as character data with its newlines as they
// are (a ",chardata" field would write them as &#xA;).
func (p junitProblem) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	start.Attr = []xml.Attr{{Name: xml.Name{Local: "message"}, Value: p.Message}, {Name: xml.Name{Local: "type"}, Value: p.Type}}
	return junitText(p.Text).MarshalXML(e, start)
}

// junitText is an element of text only.
type junitText string

func (t junitText) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	if err := e.EncodeToken(xml.CharData(t)); err != nil {
		return err
	}
	return e.EncodeToken(start.End())
}

type junitSkipped struct {
	Message string `xml:"message,attr,omitempty"`
}

// junitMaxMessage bounds the message attribute, which CI systems show on
// one line; the element's text keeps the whole evidence.
const junitMaxMessage = 1024

// WriteJUnit writes the Run as JUnit XML: one <testsuite> per target (name
// the target), one <testcase> per check (classname
// "harden.<plugin>.<target>", name "<check ID> <subject>").
//
// fail is a <failure> (type the severity; the text has the evidence, the
// fix and the references); error — the check could not run or was
// inconclusive — is an <error>, never a pass; skip is <skipped>; warn is a
// passing testcase whose <system-out> starts with WARNING, because harden
// does not fail a run on a warning and a CI gate must agree with its exit
// code; pass keeps its evidence in <system-out> for the audit trail. A
// target in error is a testcase "harden.target.error <target>" with an
// <error>. With an inventory, a suite "inventory" has one testcase per
// certificate or key, judged as the run's exit code judges it, because a
// CI gate must agree with it: `harden inventory` (Command "inventory",
// exit codes 3–7) writes a failure for an expired, not yet valid or
// alert-tier certificate and a key whose rotation is off or overdue, an
// error for what could not be read or sits in a tier this version does
// not know, and a pass with the findings in <system-out> otherwise;
// `verify --inventory` exits on its checks alone, so there every item is a
// passing testcase and one that needs attention says WARNING in
// <system-out>, expired certificates included.
//
// harden does not time checks one by one (targets run concurrently), so
// testcases and suites carry time="0" and <testsuites> the run's duration.
// Text is what servers said: characters XML 1.0 cannot carry are written
// as visible escapes (\x1b) rather than dropped or left to break the file.
func WriteJUnit(w io.Writer, r *Run) error {
	doc := junitSuites{Name: xmlText(strings.Join(nonEmpty("harden", r.Command, r.Policy), " ")),
		Time: seconds(r.DurationMS / 1000)}
	stamp := ""
	if !r.GeneratedAt.IsZero() {
		stamp = r.GeneratedAt.UTC().Format("2006-01-02T15:04:05")
	}
	for _, t := range r.Targets {
		s := junitSuite{Name: xmlText(t.Name), Time: seconds(0), Timestamp: stamp,
			Properties: []junitProperty{{"plugin", xmlText(t.Plugin)}, {"status", xmlText(t.Status)}}}
		if t.Line > 0 {
			s.Properties = append(s.Properties, junitProperty{"policy_line", fmt.Sprint(t.Line)})
		}
		if r.Profile != "" {
			s.Properties = append(s.Properties, junitProperty{"profile", xmlText(r.Profile)})
		}
		class := xmlText("harden." + t.Plugin + "." + t.Name)
		if t.Status == "error" {
			s.add(junitCase{Name: xmlText(RuleTargetError + " " + t.Name), Classname: class, Time: seconds(0),
				Error: &junitProblem{Message: xmlText(clip("target error: "+orNone(t.Error), junitMaxMessage)), Type: "target_error",
					Text: xmlText("The target failed as a whole, so its checks are missing or incomplete.\nError: " + orNone(t.Error))}})
		}
		for _, c := range t.Checks {
			s.add(checkCase(c, class))
		}
		if len(s.Cases) == 0 && r.Command == "inventory" {
			// inventory asks no checks: its items are in the inventory suite.
			continue
		}
		doc.add(s)
	}
	if r.Inventory != nil {
		doc.add(inventorySuite(r.Inventory, stamp, r.Command == "inventory"))
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func (s *junitSuite) add(c junitCase) {
	s.Tests++
	switch {
	case c.Failure != nil:
		s.Failures++
	case c.Error != nil:
		s.Errors++
	case c.Skipped != nil:
		s.Skipped++
	}
	s.Cases = append(s.Cases, c)
}

func (d *junitSuites) add(s junitSuite) {
	d.Tests += s.Tests
	d.Failures += s.Failures
	d.Errors += s.Errors
	d.Skipped += s.Skipped
	d.Suites = append(d.Suites, s)
}

// checkCase is one check as a testcase.
func checkCase(c Check, class string) junitCase {
	// What the plugin said, completed from the registry (as SARIF's rules).
	d := checkRule(c)
	title := d.Title
	if title == "" {
		title = c.ID
	}
	tc := junitCase{Name: xmlText(strings.TrimSpace(c.ID + " " + c.Subject)), Classname: class, Time: seconds(0)}
	details := "Observed: " + c.Evidence
	if c.ConfigurationOnly {
		details += "\n(read from configuration, not observed live)"
	}
	if c.Inconclusive > 0 {
		details += fmt.Sprintf("\nInconclusive observations: %d", c.Inconclusive)
	}
	fix := ""
	if d.Remediation != "" {
		fix = "\nFix: " + d.Remediation
	}
	if len(d.References) > 0 {
		fix += "\nReferences:\n- " + strings.Join(d.References, "\n- ")
	}
	switch c.Status {
	case checks.Pass.String():
		tc.SystemOut = junitText(xmlText(details))
	case checks.Warn.String():
		tc.SystemOut = junitText(xmlText("WARNING (" + c.Severity + "): " + title + "\n" + details + fix))
	case checks.Skip.String():
		tc.Skipped = &junitSkipped{Message: xmlText(clip(c.Evidence, junitMaxMessage))}
	case checks.Fail.String():
		tc.Failure = &junitProblem{Message: xmlText(clip(title+": "+c.Evidence, junitMaxMessage)), Type: xmlText(c.Severity),
			Text: xmlText("Severity: " + c.Severity + "\n" + details + fix)}
	default:
		// error, or a status this version does not know: not a pass.
		tc.Error = &junitProblem{Message: xmlText(clip("could not be verified (not a pass): "+c.Evidence, junitMaxMessage)),
			Type: xmlText(c.Status), Text: xmlText(title + " could not be verified.\n" + details + fix)}
	}
	return tc
}

// inventorySuite: one testcase per inventory item. gate: the run's exit
// code is the inventory's (harden inventory), so items fail as it does;
// otherwise they warn.
func inventorySuite(inv *inventory.Report, stamp string, gate bool) junitSuite {
	s := junitSuite{Name: "inventory", Time: seconds(0), Timestamp: stamp,
		Properties: []junitProperty{{"renew_before", xmlText(inv.RenewBefore)}, {"alert_at", xmlText(strings.Join(inv.AlertAt, ","))}}}
	for _, it := range inv.Items {
		owner := it.Target
		if owner == "" {
			owner = strings.Join(it.Targets, ",")
		}
		if owner == "" {
			owner = it.Kind
		}
		tc := junitCase{Name: xmlText(strings.Join(nonEmpty(it.Kind, it.Where, it.Name), " ")),
			Classname: xmlText("harden.inventory." + owner), Time: seconds(0)}
		desc := describeItem(it)
		if f := forTargets(it); f != "" {
			desc += " " + f
		}
		findings := ""
		if len(it.Findings) > 0 {
			findings = "\nFindings:\n- " + strings.Join(it.Findings, "\n- ")
		}
		rule, state := inventoryRule(it, inv.AlertAt)
		switch {
		case it.Tier == inventory.TierOK && it.Error == "":
			tc.SystemOut = junitText(xmlText(strings.TrimSpace(desc + ": ok" + certLine(it) + findings)))
		case !gate:
			// verify's exit code does not judge the inventory: warn.
			text := "WARNING (" + it.Tier + "): " + desc + ": " + state + certLine(it) + findings
			if it.Error != "" {
				text += "\nError: " + it.Error
			}
			if rule != RuleInventoryFinding {
				text += "\nFix: " + syntheticRules[rule].Remediation
			}
			tc.SystemOut = junitText(xmlText(text))
			if rule == RuleInventoryUnreadable || it.Tier == inventory.TierExpired || it.Tier == inventory.TierNotYetValid {
				// Not a failure of the build, and not a pass either: a
				// CI viewer shows it apart.
				tc.Skipped = &junitSkipped{Message: xmlText(clip("WARNING ("+it.Tier+"): "+desc+": "+state, junitMaxMessage))}
			}
		case rule == RuleInventoryUnreadable:
			tc.Error = &junitProblem{Message: xmlText(clip(desc+": "+state+": "+orNone(it.Error), junitMaxMessage)), Type: xmlText(it.Tier),
				Text: xmlText(desc + ": " + state + "\nError: " + orNone(it.Error) + findings)}
		case rule == RuleInventoryFinding:
			// A tier this version does not judge (ok is judged above): the
			// inventory's exit code calls it incomplete (3), never ok.
			tc.Error = &junitProblem{Message: xmlText(clip(desc+": "+state+" (not a tier this version of harden judges)", junitMaxMessage)),
				Type: xmlText(it.Tier), Text: xmlText(desc + ": " + state + certLine(it) + findings)}
		default:
			tc.Failure = &junitProblem{Message: xmlText(clip(desc+": "+state, junitMaxMessage)), Type: xmlText(it.Tier),
				Text: xmlText(desc + ": " + state + certLine(it) + findings + "\nFix: " + syntheticRules[rule].Remediation)}
		}
		s.add(tc)
	}
	return s
}

func certLine(it inventory.Item) string {
	var b strings.Builder
	if c := it.Certificate; c != nil {
		fmt.Fprintf(&b, "\nCertificate: %s, issuer %s, serial %s, not after %s (%s)", c.Subject, c.Issuer, c.Serial,
			c.NotAfter.UTC().Format(time.RFC3339), daysLeft(c.DaysLeft))
	}
	if k := it.Key; k != nil {
		fmt.Fprintf(&b, "\nKey: version %d", k.LatestVersion)
		if k.AgeDays != nil {
			fmt.Fprintf(&b, ", %d days old", *k.AgeDays)
		}
		if k.NextRotation != nil {
			fmt.Fprintf(&b, ", next rotation %s", k.NextRotation.UTC().Format(time.RFC3339))
		}
	}
	return b.String()
}

func seconds(s float64) string { return fmt.Sprintf("%.3f", s) }

// xmlText makes s safe for XML 1.0: invalid UTF-8 and the characters XML
// cannot carry (C0 controls but tab, newline and carriage return; the
// non-characters U+FFFE and U+FFFF) become visible \xNN or \uNNNN escapes;
// DEL and the C1 controls too, which XML allows but no CI page should
// render. encoding/xml escapes the markup characters itself.
func xmlText(s string) string {
	clean := utf8.ValidString(s)
	for _, r := range s {
		if !xmlPlain(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case !xmlPlain(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case !xmlPlain(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += n
	}
	return b.String()
}

// xmlPlain: r may be written as it is.
func xmlPlain(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r':
		return true
	case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
		return false
	case r >= 0xd800 && r <= 0xdfff, r == 0xfffe, r == 0xffff:
		return false
	}
	return r <= utf8.MaxRune
}
