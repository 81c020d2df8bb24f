package report

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/harden-dev/harden/host/internal/inventory"
)

// What a CI system reads back, parsed independently of the writer's types.
type junitDoc struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	Skipped  int      `xml:"skipped,attr"`
	Time     string   `xml:"time,attr"`
	Suites   []struct {
		Name       string `xml:"name,attr"`
		Tests      int    `xml:"tests,attr"`
		Failures   int    `xml:"failures,attr"`
		Errors     int    `xml:"errors,attr"`
		Skipped    int    `xml:"skipped,attr"`
		Time       string `xml:"time,attr"`
		Properties []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"properties>property"`
		Cases []junitCaseDoc `xml:"testcase"`
	} `xml:"testsuite"`
}

type junitCaseDoc struct {
	Name      string `xml:"name,attr"`
	Classname string `xml:"classname,attr"`
	Time      string `xml:"time,attr"`
	Failure   *struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",chardata"`
	} `xml:"failure"`
	Error *struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",chardata"`
	} `xml:"error"`
	Skipped *struct {
		Message string `xml:"message,attr"`
	} `xml:"skipped"`
	SystemOut string `xml:"system-out"`
}

// parseJUnit reads the XML strictly and checks that every count attribute
// matches the elements.
func parseJUnit(t testing.TB, b []byte) *junitDoc {
	t.Helper()
	if !bytes.HasPrefix(b, []byte(xml.Header)) {
		t.Fatalf("no XML declaration: %.80q", b)
	}
	var doc junitDoc
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.Strict = true
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("JUnit does not parse: %v\n%s", err, b)
	}
	var tests, failures, errors, skipped int
	for _, s := range doc.Suites {
		var f, e, sk int
		for _, c := range s.Cases {
			if c.Time == "" || c.Classname == "" || c.Name == "" {
				t.Fatalf("testcase %+v lacks name, classname or time", c)
			}
			n := 0
			if c.Failure != nil {
				f, n = f+1, n+1
			}
			if c.Error != nil {
				e, n = e+1, n+1
			}
			if c.Skipped != nil {
				sk, n = sk+1, n+1
			}
			if n > 1 {
				t.Fatalf("testcase %s has %d outcomes", c.Name, n)
			}
		}
		if s.Tests != len(s.Cases) || s.Failures != f || s.Errors != e || s.Skipped != sk || s.Time == "" {
			t.Fatalf("suite %s says tests=%d failures=%d errors=%d skipped=%d, has %d/%d/%d/%d", s.Name, s.Tests, s.Failures, s.Errors, s.Skipped,
				len(s.Cases), f, e, sk)
		}
		tests, failures, errors, skipped = tests+s.Tests, failures+f, errors+e, skipped+sk
	}
	if doc.Tests != tests || doc.Failures != failures || doc.Errors != errors || doc.Skipped != skipped {
		t.Fatalf("testsuites says %d/%d/%d/%d, suites sum to %d/%d/%d/%d", doc.Tests, doc.Failures, doc.Errors, doc.Skipped, tests, failures, errors, skipped)
	}
	return &doc
}

func renderJUnit(t testing.TB, r *Run) *junitDoc {
	t.Helper()
	var buf bytes.Buffer
	if err := Render(&buf, "junit", r); err != nil {
		t.Fatal(err)
	}
	return parseJUnit(t, buf.Bytes())
}

func TestJUnitMapping(t *testing.T) {
	doc := renderJUnit(t, syntheticRun(""))
	if len(doc.Suites) != 3 || doc.Suites[0].Name != "pg" || doc.Suites[1].Name != "kafka" || doc.Suites[2].Name != "inventory" {
		t.Fatalf("suites %+v", doc.Suites)
	}
	if doc.Time != "0.812" {
		t.Errorf("testsuites time %q, want the run's 0.812 s", doc.Time)
	}
	pg := doc.Suites[0]
	if pg.Tests != 7 || pg.Failures != 3 || pg.Errors != 1 || pg.Skipped != 1 {
		t.Errorf("pg: tests %d failures %d errors %d skipped %d", pg.Tests, pg.Failures, pg.Errors, pg.Skipped)
	}
	cases := map[string]junitCaseDoc{}
	for _, c := range pg.Cases {
		if c.Classname != "harden.postgres.pg" {
			t.Errorf("classname %q", c.Classname)
		}
		cases[c.Name] = c
	}
	if c := cases["tls.protocol.versions 127.0.0.1:5432"]; c.Failure == nil || c.Failure.Type != "high" ||
		c.Failure.Message != "Only the profile's TLS versions are accepted: TLSv1 accepted" ||
		!strings.Contains(c.Failure.Text, "Observed: TLSv1 accepted") || !strings.Contains(c.Failure.Text, "Fix: Set ssl_min_protocol_version") ||
		!strings.Contains(c.Failure.Text, "- RFC 8996") {
		t.Errorf("failure: %+v", c.Failure)
	}
	if c := cases["tls.certificate.trusted 127.0.0.1:5432"]; c.Error == nil || c.Failure != nil || c.Error.Type != "error" ||
		!strings.Contains(c.Error.Message, "could not be verified (not a pass): read: connection reset") ||
		!strings.Contains(c.Error.Text, "Inconclusive observations: 2") {
		t.Errorf("error: %+v", c)
	}
	if c := cases["postgres.password_encryption pg_authid"]; c.Failure != nil || c.Error != nil || !strings.HasPrefix(c.SystemOut, "WARNING (medium)") {
		t.Errorf("warn: %+v", c)
	}
	if c := cases["tls.client_auth.required 127.0.0.1:5432"]; c.Skipped == nil || c.Skipped.Message != "mTLS not required by the policy" {
		t.Errorf("skip: %+v", c)
	}
	if c := cases["tls.enabled 127.0.0.1:5432"]; c.Failure != nil || c.Error != nil || c.Skipped != nil || c.SystemOut != "Observed: handshake completed" {
		t.Errorf("pass: %+v", c)
	}
	kafka := doc.Suites[1]
	if len(kafka.Cases) != 1 || kafka.Errors != 1 {
		t.Fatalf("kafka suite %+v", kafka)
	}
	if c := kafka.Cases[0]; c.Name != "harden.target.error kafka" || c.Classname != "harden.kafka.kafka" || c.Error.Type != "target_error" ||
		!strings.Contains(c.Error.Message, "connection refused") {
		t.Errorf("target error: %+v", c)
	}
	inv := doc.Suites[2]
	// verify --inventory exits on its checks alone, so the inventory does
	// not fail the CI gate either: no item fails, the expired, 7d, 30d,
	// rotation-off and unreadable ones say WARNING, and the expired and
	// unreadable ones are skipped — shown apart, never counted as passes.
	if inv.Tests != 7 || inv.Failures != 0 || inv.Errors != 0 || inv.Skipped != 2 {
		t.Errorf("inventory: tests %d failures %d errors %d skipped %d", inv.Tests, inv.Failures, inv.Errors, inv.Skipped)
	}
	if doc.Failures != 3 || doc.Errors != 2 {
		t.Errorf("testsuites: failures %d errors %d, want pg's 3 and 1 and kafka's target error", doc.Failures, doc.Errors)
	}
	warned := 0
	for _, c := range inv.Cases {
		if strings.HasPrefix(c.SystemOut, "WARNING (") {
			warned++
		}
		switch c.Name {
		case "served 127.0.0.1:5432 postgres":
			if c.Skipped == nil || !strings.HasPrefix(c.Skipped.Message, "WARNING (expired)") ||
				!strings.HasPrefix(c.SystemOut, "WARNING (expired): Certificate served on 127.0.0.1:5432 postgres (target pg): expired") ||
				!strings.Contains(c.SystemOut, "Fix: The certificate has expired") || c.Classname != "harden.inventory.pg" {
				t.Errorf("expired served certificate: %+v", c)
			}
		case "target kafka":
			if c.Skipped == nil || !strings.HasPrefix(c.SystemOut, "WARNING (unknown): ") || !strings.Contains(c.SystemOut, "Error: connection refused") {
				t.Errorf("unreadable target: %+v", c)
			}
		case "ca /etc/other-ca.pem":
			if strings.HasPrefix(c.SystemOut, "WARNING") || !strings.Contains(c.SystemOut, "the chain does not verify") {
				t.Errorf("CA with a finding: %+v", c)
			}
		}
	}
	if warned != 5 {
		t.Errorf("%d items say WARNING, want 5", warned)
	}
}

// TestJUnitInventoryCommand: `harden inventory --format junit` has no
// checks; its targets' empty suites are left out, the items are there, and
// they fail as the inventory's exit code does: expired, 7d, 30d and
// rotation off fail, the unreadable target and a tier this version does
// not know are errors, the two CAs pass (one with a finding in
// system-out).
func TestJUnitInventoryCommand(t *testing.T) {
	r := syntheticRun("")
	for i := range r.Targets {
		r.Targets[i].Checks, r.Targets[i].Status, r.Targets[i].Error = nil, "ok", ""
	}
	r.Inventory.Items = append(r.Inventory.Items, inventory.Item{Kind: inventory.KindServer, Target: "pg", Where: "/etc/pg/new.pem", Tier: "60d"})
	r.Finish("inventory")
	doc := renderJUnit(t, r)
	if len(doc.Suites) != 1 || doc.Suites[0].Name != "inventory" || doc.Tests != 8 {
		t.Fatalf("suites %+v", doc.Suites)
	}
	inv := doc.Suites[0]
	if inv.Failures != 4 || inv.Errors != 2 || inv.Skipped != 0 {
		t.Errorf("inventory: failures %d errors %d", inv.Failures, inv.Errors)
	}
	for _, c := range inv.Cases {
		switch c.Name {
		case "served 127.0.0.1:5432 postgres":
			if c.Failure == nil || c.Failure.Type != "expired" || c.Classname != "harden.inventory.pg" {
				t.Errorf("expired served certificate: %+v", c)
			}
		case "server /etc/pg/new.pem":
			if c.Error == nil || c.Error.Type != "60d" || !strings.Contains(c.Error.Message, "not a tier this version of harden judges") {
				t.Errorf("unknown tier: %+v", c)
			}
		case "ca /etc/other-ca.pem":
			if c.Failure != nil || c.Error != nil || !strings.Contains(c.SystemOut, "the chain does not verify") {
				t.Errorf("CA with a finding: %+v", c)
			}
		}
	}
}

func TestJUnitSampleVerify(t *testing.T) {
	doc := renderJUnit(t, loadSampleRun(t))
	if len(doc.Suites) != 2 || doc.Suites[0].Name != "warehouse-pg" || doc.Suites[0].Tests != 12 || doc.Failures+doc.Errors != 0 {
		t.Fatalf("%+v", doc)
	}
}

func TestXMLText(t *testing.T) {
	for in, want := range map[string]string{
		"plain <b>&</b>\t\n\r": "plain <b>&</b>\t\n\r",
		"\x1b[31mred\x00":      `\x1b[31mred\x00`,
		"bad \xff byte":        `bad \xff byte`,
		"ok \ufffd, é, 😀":      "ok \ufffd, é, 😀",
		"\ufffe\u0085\x7f":     `\ufffe\x85\x7f`,
	} {
		if got := xmlText(in); got != want {
			t.Errorf("xmlText(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzJUnit: whatever a server said, the JUnit parses back with
// encoding/xml (strictly), its counts match its elements, and the evidence
// arrives as xmlText made it.
func FuzzJUnit(f *testing.F) {
	f.Add("pg", "127.0.0.1:5432", "TLSv1 accepted", "title", byte(1))
	f.Add("", "", "", "", byte(0))
	f.Add("a]]>b", "<x y='1'>", "\x00\x1b\xff\xfe\r\n\u2028\ufffe", "&amp;", byte(5))
	f.Fuzz(func(t *testing.T, target, subject, evidence, title string, status byte) {
		statuses := []string{"pass", "fail", "warn", "skip", "error", "bogus"}
		r := &Run{FormatVersion: FormatVersion, Policy: target + ".yaml", Targets: []Target{
			{Name: target, Plugin: subject, Status: "ok", Checks: []Check{
				{ID: "tls.enabled", Status: statuses[int(status)%len(statuses)], Severity: "high", Title: title, Subject: subject, Evidence: evidence,
					Remediation: evidence, References: []string{evidence}},
				{ID: "tls.cipher_suites", Status: "fail", Severity: title, Subject: subject, Evidence: evidence}}},
			{Name: target, Plugin: "p", Status: "error", Error: evidence},
		}}
		r.Finish("verify")
		var buf bytes.Buffer
		if err := WriteJUnit(&buf, r); err != nil {
			t.Fatal(err)
		}
		if !utf8.Valid(buf.Bytes()) {
			t.Fatal("not UTF-8")
		}
		doc := parseJUnit(t, buf.Bytes())
		if doc.Tests != 3 || len(doc.Suites) != 2 || doc.Errors < 1 || doc.Failures < 1 {
			t.Fatalf("tests %d suites %d errors %d failures %d", doc.Tests, len(doc.Suites), doc.Errors, doc.Failures)
		}
		c := doc.Suites[0].Cases[1]
		if c.Failure == nil || !strings.Contains(c.Failure.Text, "Observed: "+xmlText(evidence)) {
			t.Fatalf("failure text %+v does not carry the evidence %q", c.Failure, xmlText(evidence))
		}
		if doc.Suites[0].Name != xmlText(target) {
			t.Fatalf("suite name %q, want %q", doc.Suites[0].Name, xmlText(target))
		}
	})
}
