package report

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/harden-dev/harden/host/internal/inventory"
)

// htmlLoadRun reads a JSON run from testdata (testenv-before/after.json: real
// `harden verify --format json --inventory` runs against testenv's
// PostgreSQL, Kafka, Vault and SeaweedFS, before and after `harden apply`).
func htmlLoadRun(t testing.TB, name string) *Run {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var r Run
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("testdata/%s: %v", name, err)
	}
	return &r
}

const htmlXss = `<script>alert(1)</script>`

var htmlSynthNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func htmlDays(n float64) time.Time {
	return htmlSynthNow.Add(time.Duration(n * 24 * float64(time.Hour)))
}

func htmlPtr[T any](v T) *T { return &v }

// htmlSyntheticRun has what the real runs lack: a suite and a version outside
// the profile, inconclusive observations, a certificate in every tier, an
// expired one, a key without rotation, a target in error — and hostile
// text from servers in evidence, subjects and names.
func htmlSyntheticRun() *Run {
	prof := &Profile{Name: "intermediate", Versions: []string{"TLSv1.2", "TLSv1.3"},
		Suites: []string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"},
		Groups: []string{"x25519", "secp256r1"}}
	ca := ChainCert{Subject: "CN=Fleet Root CA,O=Example", Issuer: "CN=Fleet Root CA,O=Example", Serial: "01", SHA256: "aa01",
		NotBefore: htmlDays(-400), NotAfter: htmlDays(3250), Key: "ECDSA P-384"}
	inter := ChainCert{Subject: "CN=Fleet Issuing CA,O=Example", Issuer: ca.Subject, Serial: "02", SHA256: "aa02",
		NotBefore: htmlDays(-100), NotAfter: htmlDays(620), Key: "ECDSA P-256"}
	leaf := func(sha, cn string, left float64) ChainCert {
		return ChainCert{Subject: "CN=" + cn, Issuer: inter.Subject, Serial: "1f" + sha, SHA256: sha, NotBefore: htmlDays(left - 90),
			NotAfter: htmlDays(left), DNSNames: []string{cn}, Key: "ECDSA P-256", SignatureAlgorithm: "ECDSA-SHA256"}
	}
	tls := func(v, outcome string) Version {
		return Version{Version: v, Outcome: outcome, Evidence: v + " " + outcome}
	}
	r := &Run{FormatVersion: FormatVersion, Command: "verify", Policy: "fleet/policy.yaml", Profile: "intermediate",
		ProfileDetail: prof, GeneratedAt: htmlSynthNow, DurationMS: 4210,
		Targets: []Target{
			{Name: "orders-db", Plugin: "postgres", Line: 12, Column: 5, Status: "ok",
				Endpoints: []Endpoint{
					{Name: "primary", Address: "127.0.0.1:5432", Dialect: "postgres",
						Versions: []Version{tls("TLSv1", "refused"), tls("TLSv1.1", "accepted"), tls("TLSv1.2", "accepted"), tls("TLSv1.3", "inconclusive")},
						Suites: []Suite{{"TLSv1.1", "0xC013", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"}, {"TLSv1.2", "0xC013", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"},
							{"TLSv1.2", "0xC02F", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}},
						Groups: []string{"x25519", "ffdhe2048"}, Chain: []ChainCert{leaf("bb01", "orders-db.internal", 5), inter, ca},
						TrustChecked: true, ClientCertRequested: true, NoClientCert: "refused", Plaintext: "refused", Inconclusive: 1},
					{Name: "replica " + htmlXss, Address: "127.0.0.1:5433", Dialect: "postgres",
						Versions: []Version{tls("TLSv1.2", "accepted"), tls("TLSv1.3", "accepted")},
						Suites:   []Suite{{"TLSv1.2", "0xC030", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"}, {"TLSv1.3", "0x1301", "TLS_AES_128_GCM_SHA256"}},
						Groups:   []string{"x25519"}, Chain: []ChainCert{leaf("bb02", "replica "+htmlXss, 12), inter},
						TrustChecked: true, TrustError: "x509: certificate signed by unknown authority " + htmlXss, NoClientCert: "inconclusive", Plaintext: "accepted"},
				},
				Checks: []Check{
					{ID: "tls.protocol.versions", Status: "fail", Severity: "high", Title: "Only the profile's TLS versions are accepted",
						Subject: "127.0.0.1:5432", Evidence: "TLSv1.1 accepted; 1 inconclusive: TLSv1.3: not tested: connection reset " + htmlXss,
						Remediation: "Set the minimum protocol version.", References: []string{"RFC 8996"}, Inconclusive: 1},
					{ID: "tls.cipher_suites", Status: "fail", Severity: "medium", Title: "Only the profile's cipher suites are accepted",
						Subject: "127.0.0.1:5432", Evidence: "accepted outside the intermediate profile: TLSv1.2 TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA (0xC013)",
						Remediation: "Restrict the cipher list.", References: []string{"Mozilla Server Side TLS 6.0 (https://ssl-config.mozilla.org/guidelines/6.0.json)"}},
					{ID: "tls.enabled", Status: "pass", Severity: "high", Subject: "127.0.0.1:5432", Evidence: "TLS handshake completed (TLSv1.2)", References: []string{}},
					{ID: "tls.plaintext.refused", Status: "fail", Severity: "high", Subject: "127.0.0.1:5433",
						Evidence: "server answered the plaintext StartupMessage: " + htmlXss, Remediation: "Require TLS.", References: []string{}},
					{ID: "tls.client_auth.required", Status: "error", Severity: "high", Subject: "127.0.0.1:5433",
						Evidence: "2 of 2 observations inconclusive: session without a client certificate: not tested: timeout", References: []string{}, Inconclusive: 2},
					{ID: "postgres.ssl.settings", Status: "warn", Severity: "high", Subject: "postgresql.conf",
						Evidence: "configuration only (not observed live): ssl = on — a high-severity check needs live evidence to pass", References: []string{}, ConfigurationOnly: true},
					{ID: "postgres.objects.sampled", Status: "skip", Severity: "low", Subject: "orders", Evidence: "no tables to sample", References: []string{}},
				}},
			{Name: "events " + htmlXss, Plugin: "kafka", Line: 30, Status: "ok",
				Endpoints: []Endpoint{
					{Name: "SSL", Address: "127.0.0.1:9093", Versions: []Version{tls("TLSv1.2", "accepted"), tls("TLSv1.3", "accepted")},
						Suites: []Suite{{"TLSv1.3", "0x1302", "TLS_AES_256_GCM_SHA384"}, {"TLSv1.3", "0x1303", "TLS_CHACHA20_POLY1305_SHA256"}},
						Groups: []string{"secp256r1"}, Chain: []ChainCert{leaf("bb03", "kafka", -3), {SHA256: "ff00", Unparsable: "x509: malformed " + htmlXss}},
						TrustChecked: true, ClientCertRequested: true, NoClientCert: "refused", Plaintext: "refused"},
					{Name: "CONTROLLER", Address: "127.0.0.1:9094", Error: "dial tcp 127.0.0.1:9094: connection refused", Versions: []Version{}, Suites: []Suite{}},
				},
				Checks: []Check{
					{ID: "tls.certificate.lifetime", Status: "fail", Severity: "critical", Subject: "SSL listener 127.0.0.1:9093",
						Evidence: "expired 2026-11-28, 3 days ago", Remediation: "Renew the certificate.", References: []string{"CA/B Forum BR 6.3.2"}},
					{ID: "kafka.listener.plaintext", Status: "pass", Severity: "high", Subject: "SSL listener 127.0.0.1:9093", Evidence: "broker refused a plaintext ApiVersions request", References: []string{}},
				}},
			{Name: "archive", Plugin: "objectstore", Line: 44, Status: "error", Error: "target archive: dial https://127.0.0.1:9000: " + htmlXss},
		},
		Inventory: &inventory.Report{FormatVersion: 1, GeneratedAt: htmlSynthNow, Policy: "fleet/policy.yaml", RenewBefore: "30d",
			AlertAt: []string{"30d", "14d", "7d"}, Targets: []string{"orders-db", "events", "archive"},
			Items: []inventory.Item{
				{Kind: "served", Target: "orders-db", Where: "127.0.0.1:5432", Name: "primary", Tier: "7d",
					Certificate: &inventory.Certificate{Subject: "CN=orders-db.internal", SHA256: "bb01", Serial: "1fbb01", NotAfter: htmlDays(5), DaysLeft: 5}},
				{Kind: "client", Target: "orders-db", Where: "/etc/harden/orders-db/client.pem", Tier: "14d",
					Certificate: &inventory.Certificate{Subject: "CN=harden_admin " + htmlXss, Issuer: inter.Subject, SHA256: "cc01", Serial: "cc01", NotBefore: htmlDays(-78), NotAfter: htmlDays(12), DaysLeft: 12}},
				{Kind: "server", Target: "events", Where: "/etc/harden/events/server.pem", Tier: "30d",
					Certificate: &inventory.Certificate{Subject: "CN=kafka", Issuer: inter.Subject, SHA256: "cc02", Serial: "cc02", NotBefore: htmlDays(-60), NotAfter: htmlDays(25), DaysLeft: 25}},
				{Kind: "key", Target: "vault", Where: "transit/keys/orders-kek", Name: "orders-kek", Tier: "ok",
					Key: &inventory.Key{Type: "aes256-gcm96", LatestVersion: 4, LatestCreated: htmlPtr(htmlDays(-12)), AgeDays: htmlPtr(12), AutoRotatePeriod: "90d",
						AutoRotatePeriodSeconds: 7776000, NextRotation: htmlPtr(htmlDays(78))}},
				{Kind: "key", Target: "vault", Where: "transit/keys/legacy-kek", Name: "legacy-kek", Tier: "rotation_disabled",
					Key:      &inventory.Key{Type: "aes256-gcm96", LatestVersion: 1, LatestCreated: htmlPtr(htmlDays(-400)), AgeDays: htmlPtr(400)},
					Findings: []string{"auto-rotation is off " + htmlXss}},
				{Kind: "stored_certificate", Target: "archive", Where: "s3://archive", Tier: "unknown", Error: "permission denied " + htmlXss},
			},
			Summary: inventory.Summary{Items: 6, ExitCode: inventory.ExitNarrowestTier}},
	}
	r.Finish("verify")
	return r
}

// htmlRender writes r to a string, failing the test on an error.
func htmlRender(t testing.TB, r *Run) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// htmlScanOnlyRun is what `harden scan` renders: no policy, positions unknown.
func htmlScanOnlyRun() *Run {
	r := &Run{FormatVersion: FormatVersion, Profile: "modern", GeneratedAt: htmlSynthNow,
		ProfileDetail: &Profile{Name: "modern", Versions: []string{"TLSv1.3"}, Suites: []string{"TLS_AES_128_GCM_SHA256"}, Groups: []string{"x25519"}},
		Targets: []Target{{Name: "127.0.0.1:8443", Plugin: "scan", Status: "ok",
			Endpoints: []Endpoint{{Address: "127.0.0.1:8443", Versions: []Version{{Version: "TLSv1.3", Outcome: "accepted"}},
				Suites: []Suite{{"TLSv1.3", "0x1301", "TLS_AES_128_GCM_SHA256"}}, Groups: []string{"x25519"}}},
			Checks: []Check{{ID: "tls.enabled", Status: "pass", Severity: "high", Subject: "127.0.0.1:8443", Evidence: "TLS handshake completed", References: []string{}},
				{ID: "tls.certificate.trusted", Status: "fail", Severity: "high", Subject: "127.0.0.1:8443", Evidence: "self-signed", References: []string{}}}}}}
	r.Finish("scan")
	return r
}

// htmlInventoryOnlyRun is `harden inventory --format html`: targets without
// checks, and the inventory.
func htmlInventoryOnlyRun() *Run {
	s := htmlSyntheticRun()
	r := &Run{FormatVersion: FormatVersion, Policy: s.Policy, Profile: s.Profile, GeneratedAt: htmlSynthNow, Inventory: s.Inventory}
	for _, t := range s.Targets {
		r.Targets = append(r.Targets, Target{Name: t.Name, Plugin: t.Plugin, Line: t.Line, Status: "ok"})
	}
	r.Finish("inventory")
	return r
}

// htmlAllRuns: every kind of run the dashboard draws.
func htmlAllRuns(t testing.TB) map[string]*Run {
	merged := htmlSyntheticRun()
	// `harden report` of two shards: Summary and counts as the merge left
	// them (the dashboard counts for itself).
	merged.Summary, merged.Inconclusive, merged.Shard = nil, nil, ""
	merged.Targets = append(merged.Targets, htmlLoadRun(t, "testenv-after.json").Targets...)
	return map[string]*Run{
		"sample-verify":  htmlLoadRun(t, "sample-verify.json"),
		"testenv-before": htmlLoadRun(t, "testenv-before.json"),
		"testenv-after":  htmlLoadRun(t, "testenv-after.json"),
		"synthetic":      htmlSyntheticRun(),
		"scan":           htmlScanOnlyRun(),
		"inventory":      htmlInventoryOnlyRun(),
		"merged":         merged,
		"empty":          {FormatVersion: FormatVersion, Command: "verify"},
	}
}

// node helpers over golang.org/x/net/html's tree.
func htmlAttr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func htmlHasClass(n *html.Node, class string) bool {
	v, _ := htmlAttr(n, "class")
	return slices.Contains(strings.Fields(v), class)
}

func htmlWalk(n *html.Node, fn func(*html.Node)) {
	fn(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		htmlWalk(c, fn)
	}
}

func htmlFind(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	htmlWalk(n, func(x *html.Node) {
		if x.Type == html.ElementNode && match(x) {
			out = append(out, x)
		}
	})
	return out
}

func htmlText(n *html.Node) string {
	var b strings.Builder
	htmlWalk(n, func(x *html.Node) {
		if x.Type == html.TextNode {
			b.WriteString(x.Data)
		}
	})
	return b.String()
}

func htmlParse(t testing.TB, page string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestHTMLSelfContained: nothing in any dashboard can load anything: no
// script, no link, no source of any element, no link but to an anchor of
// the page, no url() in the CSS; and a CSP that forbids it anyway.
func TestHTMLSelfContained(t *testing.T) {
	for name, r := range htmlAllRuns(t) {
		t.Run(name, func(t *testing.T) {
			page := htmlRender(t, r)
			z := html.NewTokenizer(strings.NewReader(page))
			csp, styles := false, 0
			for {
				tt := z.Next()
				if tt == html.ErrorToken {
					if z.Err() != io.EOF {
						t.Fatal(z.Err())
					}
					break
				}
				tok := z.Token()
				if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
					continue
				}
				switch tok.Data {
				case "script", "link", "iframe", "frame", "object", "embed", "img", "image", "audio", "video", "source", "base", "form", "use", "foreignobject", "picture", "track", "input", "button":
					t.Errorf("<%s> in the dashboard", tok.Data)
				case "style":
					styles++
					if tt == html.StartTagToken && z.Next() == html.TextToken {
						css := strings.ToLower(string(z.Text()))
						for _, bad := range []string{"url(", "@import", "@font-face", "image-set(", "expression("} {
							if strings.Contains(css, bad) {
								t.Errorf("%s in the stylesheet", bad)
							}
						}
					}
				case "meta":
					if v, _ := htmlAttrOf(tok, "http-equiv"); strings.EqualFold(v, "refresh") {
						t.Error("meta refresh")
					}
					if v, _ := htmlAttrOf(tok, "http-equiv"); v == "Content-Security-Policy" {
						c, _ := htmlAttrOf(tok, "content")
						csp = strings.Contains(c, "default-src 'none'")
					}
				}
				for _, a := range tok.Attr {
					k := strings.ToLower(a.Key)
					switch {
					case k == "href" || strings.HasSuffix(k, ":href"):
						if !strings.HasPrefix(a.Val, "#") {
							t.Errorf("<%s %s=%q>: a link leaving the page", tok.Data, a.Key, a.Val)
						}
					case k == "src" || k == "srcset" || k == "poster" || k == "action" || k == "formaction" || k == "background" || k == "ping":
						t.Errorf("<%s %s=%q>", tok.Data, a.Key, a.Val)
					case k == "style" && strings.Contains(strings.ToLower(a.Val), "url("):
						t.Errorf("<%s style=%q>", tok.Data, a.Val)
					case strings.HasPrefix(k, "on"):
						t.Errorf("<%s %s>: an event handler", tok.Data, a.Key)
					}
				}
			}
			if !csp {
				t.Error("no Content-Security-Policy default-src 'none'")
			}
			if styles != 1 {
				t.Errorf("%d <style> elements, want the one inline stylesheet", styles)
			}
		})
	}
}

func htmlAttrOf(tok html.Token, key string) (string, bool) {
	for _, a := range tok.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// TestHTMLEscapes: a server's words are text, never markup.
func TestHTMLEscapes(t *testing.T) {
	page := htmlRender(t, htmlSyntheticRun())
	if strings.Contains(page, htmlXss) {
		t.Fatalf("%s appears unescaped", htmlXss)
	}
	if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatal("the hostile evidence is missing (escaped) from the page")
	}
	doc := htmlParse(t, page)
	if s := htmlFind(doc, func(n *html.Node) bool { return n.Data == "script" }); len(s) > 0 {
		t.Fatalf("%d script elements", len(s))
	}
	// The escaped text reads back as exactly what the server said.
	r := htmlSyntheticRun()
	want := r.Targets[0].Checks[3].Evidence
	found := false
	for _, dd := range htmlFind(doc, func(n *html.Node) bool { return n.Data == "dd" && htmlHasClass(n, "ev") }) {
		if htmlText(dd) == want {
			found = true
		}
	}
	if !found {
		t.Errorf("no finding shows the evidence %q as text", want)
	}
}

// htmlCheckSeen is one check as the page shows it, what a link points to
// resolved: a repeated finding's evidence is its first finding's, a
// shared pass's evidence the page's shared row's, a finding's body holds
// the first finding's remediation and references when it links to them.
type htmlCheckSeen struct {
	Target, ID, Status, Subject, Evidence string
	body                                  string
}

func htmlByID(doc *html.Node) map[string]*html.Node {
	out := map[string]*html.Node{}
	htmlWalk(doc, func(n *html.Node) {
		if id, ok := htmlAttr(n, "id"); ok && n.Type == html.ElementNode {
			out[id] = n
		}
	})
	return out
}

func htmlTargetOf(n *html.Node) string {
	for p := n; p != nil; p = p.Parent {
		if p.Data == "details" && htmlHasClass(p, "target") {
			v, _ := htmlAttr(p, "data-target")
			return v
		}
	}
	return ""
}

func htmlFirst(n *html.Node, match func(*html.Node) bool) *html.Node {
	if l := htmlFind(n, match); len(l) > 0 {
		return l[0]
	}
	return nil
}

func htmlHref(n *html.Node) string {
	v, _ := htmlAttr(n, "href")
	return strings.TrimPrefix(v, "#")
}

// htmlChecksOf reads every check the page shows: the findings (full, and
// repeats linked to one) and the passing checks of each target.
func htmlChecksOf(t testing.TB, doc *html.Node) (findings, passes []htmlCheckSeen) {
	t.Helper()
	ids := htmlByID(doc)
	article := func(n *html.Node) htmlCheckSeen {
		f := htmlCheckSeen{Target: htmlTargetOf(n), body: htmlText(n)}
		f.ID, _ = htmlAttr(n, "data-check")
		f.Status, _ = htmlAttr(n, "data-status")
		if ev := htmlFirst(n, func(n *html.Node) bool { return n.Data == "dd" && htmlHasClass(n, "ev") }); ev != nil {
			f.Evidence = htmlText(ev)
		}
		if sub := htmlFirst(n, func(n *html.Node) bool { return htmlHasClass(n, "subject") }); sub != nil {
			f.Subject = htmlText(sub)
		}
		// Remediation "as in the first finding": that one's words.
		if same := htmlFirst(n, func(n *html.Node) bool { return n.Data == "dd" && htmlHasClass(n, "same") }); same != nil {
			a := htmlFirst(same, func(n *html.Node) bool { return n.Data == "a" })
			first := ids[htmlHref(a)]
			if first == nil || first.Data != "article" {
				t.Errorf("%s %s: the remediation links to %q, no finding", f.Target, f.ID, htmlHref(a))
			} else {
				f.body += htmlText(first)
			}
		}
		return f
	}
	for _, n := range htmlFind(doc, func(n *html.Node) bool { return n.Data == "article" && htmlHasClass(n, "finding") }) {
		findings = append(findings, article(n))
	}
	for _, n := range htmlFind(doc, func(n *html.Node) bool { return n.Data == "tr" && htmlHasClass(n, "finding") }) {
		ref, _ := htmlAttr(n, "data-same-as")
		first := ids[ref]
		if first == nil || first.Data != "article" {
			t.Errorf("a repeated finding links to %q, no finding drawn in full", ref)
			continue
		}
		f := article(first)
		f.Target = htmlTargetOf(n)
		f.ID, _ = htmlAttr(n, "data-check")
		f.Status, _ = htmlAttr(n, "data-status")
		if id, _ := htmlAttr(first, "data-check"); id != f.ID {
			t.Errorf("%s: a repeat of %s links to a finding of %s", f.Target, f.ID, id)
		}
		if st, _ := htmlAttr(first, "data-status"); st != f.Status {
			t.Errorf("%s %s: a %s repeat links to a %s finding", f.Target, f.ID, f.Status, st)
		}
		tds := htmlFind(n, func(n *html.Node) bool { return n.Data == "td" })
		f.Subject = htmlText(tds[2])
		findings = append(findings, f)
	}
	for _, tr := range htmlFind(doc, func(n *html.Node) bool { return n.Data == "tr" && htmlHasClass(n, "pass") }) {
		tds := htmlFind(tr, func(n *html.Node) bool { return n.Data == "td" })
		for _, a := range htmlFind(tds[0], func(n *html.Node) bool { return n.Data == "a" }) {
			ev := htmlText(tds[2])
			if _, shared := htmlAttr(tr, "data-shared"); shared {
				row := ids[htmlHref(a)]
				if row == nil || row.Data != "tr" {
					t.Errorf("%s %s: shared evidence %q missing", htmlTargetOf(tr), htmlText(a), htmlHref(a))
					continue
				}
				if id, _ := htmlAttr(row, "data-shared-check"); id != htmlText(a) {
					t.Errorf("%s: %s links to the shared evidence of %s", htmlTargetOf(tr), htmlText(a), id)
				}
				ev = htmlText(htmlFind(row, func(n *html.Node) bool { return n.Data == "td" })[3])
			}
			for _, sub := range htmlFind(tds[1], func(n *html.Node) bool { return n.Data == "span" }) {
				passes = append(passes, htmlCheckSeen{Target: htmlTargetOf(tr), ID: htmlText(a), Status: "pass", Subject: htmlText(sub), Evidence: ev})
			}
		}
	}
	return findings, passes
}

func htmlSortSeen(l []htmlCheckSeen) []string {
	var out []string
	for _, c := range l {
		out = append(out, strings.Join([]string{c.Target, c.ID, c.Status, c.Subject, c.Evidence}, " | "))
	}
	slices.Sort(out)
	return out
}

// htmlEveryRun: htmlAllRuns and small fleets of both shapes (whose pages
// share evidence, findings, rows and matrix columns between targets).
func htmlEveryRun(t testing.TB) map[string]*Run {
	runs := htmlAllRuns(t)
	runs["fleet-5x4"] = htmlFleetRun(5, 4)
	runs["fleet-pg-before"] = htmlPGFleet(t, "testenv-before.json", 6)
	runs["fleet-pg-after"] = htmlPGFleet(t, "testenv-after.json", 6)
	return runs
}

// TestHTMLEveryFinding: every check that did not pass is a finding with its
// ID, status, subject and evidence (in full, or linked to the same words
// drawn in full), remediation and references (or linked to the finding
// that has them); every passing check is in its target's list with its
// evidence (or linked to the page's shared row of it).
func TestHTMLEveryFinding(t *testing.T) {
	for name, r := range htmlEveryRun(t) {
		t.Run(name, func(t *testing.T) {
			doc := htmlParse(t, htmlRender(t, r))
			findings, passes := htmlChecksOf(t, doc)
			var wantF, wantP []htmlCheckSeen
			for _, tg := range r.Targets {
				for _, c := range tg.Checks {
					if c.Status == "pass" {
						wantP = append(wantP, htmlCheckSeen{Target: tg.Name, ID: c.ID, Status: c.Status, Subject: cmp.Or(c.Subject, "(no subject)"), Evidence: c.Evidence})
					} else {
						wantF = append(wantF, htmlCheckSeen{Target: tg.Name, ID: c.ID, Status: c.Status, Subject: c.Subject, Evidence: c.Evidence})
					}
				}
			}
			if got, want := htmlSortSeen(findings), htmlSortSeen(wantF); !slices.Equal(got, want) {
				t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if got, want := htmlSortSeen(passes), htmlSortSeen(wantP); !slices.Equal(got, want) {
				t.Errorf("passing checks:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			defs := map[string]string{}
			for _, d := range htmlFind(doc, func(n *html.Node) bool { return htmlHasClass(n, "def") }) {
				id, _ := htmlAttr(d, "data-def")
				defs[id] += htmlText(d)
			}
			body := map[string]string{}
			for _, f := range findings {
				body[f.Target+"\x00"+f.ID+"\x00"+f.Subject] = f.body
			}
			for _, tg := range r.Targets {
				for _, c := range tg.Checks {
					if def, ok := defs[c.ID]; !ok {
						t.Errorf("%s: no reference entry for %s", tg.Name, c.ID)
					} else if !strings.Contains(def, c.Remediation) {
						t.Errorf("%s: the reference entry of %s lacks its remediation", tg.Name, c.ID)
					}
					if c.Status == "pass" {
						continue
					}
					b := body[tg.Name+"\x00"+c.ID+"\x00"+c.Subject]
					if !strings.Contains(b, c.Remediation) {
						t.Errorf("%s %s: remediation missing", tg.Name, c.ID)
					}
					for _, ref := range c.References {
						if !strings.Contains(b, ref) {
							t.Errorf("%s %s: reference %q missing", tg.Name, c.ID, ref)
						}
					}
				}
			}
		})
	}
}

// TestHTMLMatrix: one cell per (suite, endpoint), with the verdict of the
// suite against the profile.
func TestHTMLMatrix(t *testing.T) {
	r := htmlSyntheticRun()
	doc := htmlParse(t, htmlRender(t, r))
	tables := htmlFind(doc, func(n *html.Node) bool { return n.Data == "table" && htmlHasClass(n, "matrix") })
	if len(tables) != 2 {
		t.Fatalf("%d matrices, want one per target with endpoints (2)", len(tables))
	}
	cellsOf := func(m *html.Node) (map[[2]string]string, map[string]bool) {
		var cols []string
		for _, th := range htmlFind(m, func(n *html.Node) bool { _, ok := htmlAttr(n, "data-endpoint"); return n.Data == "th" && ok }) {
			ep, _ := htmlAttr(th, "data-endpoint")
			cols = append(cols, ep)
		}
		cells := map[[2]string]string{}
		suites := map[string]bool{}
		for _, tr := range htmlFind(m, func(n *html.Node) bool { _, ok := htmlAttr(n, "data-suite"); return n.Data == "tr" && ok }) {
			s, _ := htmlAttr(tr, "data-suite")
			suites[s] = true
			tds := htmlFind(tr, func(n *html.Node) bool { _, ok := htmlAttr(n, "data-verdict"); return n.Data == "td" && ok })
			if len(tds) != len(cols) {
				t.Errorf("suite %s: %d cells for %d endpoints", s, len(tds), len(cols))
				continue
			}
			for i, td := range tds {
				v, _ := htmlAttr(td, "data-verdict")
				cells[[2]string{s, cols[i]}] = v + " " + htmlText(td)
			}
		}
		return cells, suites
	}
	cells, suites := cellsOf(tables[0])
	// Profile's 4 suites + the CBC suite accepted outside it.
	if len(suites) != 5 || len(cells) != 5*2 {
		t.Fatalf("%d suites and %d cells, want 5 suites × 2 endpoints: %v", len(suites), len(cells), cells)
	}
	for k, want := range map[[2]string]string{
		{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "127.0.0.1:5432"}:    "fail ✗ 1.1 1.2",
		{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "127.0.0.1:5433"}:    "none ·",
		{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "127.0.0.1:5432"}: "ok ✓ 1.2",
		{"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "127.0.0.1:5432"}: "absent –",
		// TLS 1.3 on the primary was inconclusive: its suites are unknown.
		{"TLS_AES_128_GCM_SHA256", "127.0.0.1:5432"}: "inconclusive ?",
		{"TLS_AES_128_GCM_SHA256", "127.0.0.1:5433"}: "ok ✓ 1.3",
	} {
		if cells[k] != want {
			t.Errorf("cell %v = %q, want %q", k, cells[k], want)
		}
	}
	// The endpoint that could not be scanned: every cell unknown.
	cells, _ = cellsOf(tables[1])
	for k, v := range cells {
		if k[1] == "127.0.0.1:9094" && v != "inconclusive ?" {
			t.Errorf("%s on the unscanned endpoint: %q", k[0], v)
		}
	}
	// An endpoint that accepted no suite, and one that could not be
	// scanned: not the same column (refused is not unknown).
	mixed := htmlLoadRun(t, "testenv-before.json")
	mixed.Targets = append(mixed.Targets[:1], htmlUnreachableScan(6).Targets...)
	doc = htmlParse(t, htmlRender(t, mixed))
	tables = htmlFind(doc, func(n *html.Node) bool { return n.Data == "table" && htmlHasClass(n, "matrix") })
	if len(tables) != 2 {
		t.Fatalf("%d matrices, want one per endpoint (no TLS; not scanned)", len(tables))
	}
	cells, _ = cellsOf(tables[1])
	if len(cells) == 0 {
		t.Error("the unscanned endpoint has no column")
	}
	for k, v := range cells {
		if k[1] != "127.0.0.1:1" || v != "inconclusive ?" {
			t.Errorf("%s on %s: %q, want the unscanned endpoint's unknown", k[0], k[1], v)
		}
	}
}

// TestHTMLVersionsAndAccess: versions against the profile, mTLS and
// plaintext — each chip says in words what its colour says.
func TestHTMLVersionsAndAccess(t *testing.T) {
	doc := htmlParse(t, htmlRender(t, htmlSyntheticRun()))
	chips := map[string]string{}
	for _, ep := range htmlFind(doc, func(n *html.Node) bool { return n.Data == "tr" && htmlHasClass(n, "endpoint") }) {
		addr, _ := htmlAttr(ep, "data-endpoint")
		for _, c := range htmlFind(ep, func(n *html.Node) bool { _, ok := htmlAttr(n, "data-verdict"); return ok && n.Data == "span" }) {
			if b := htmlFind(c, func(n *html.Node) bool { return n.Data == "b" }); len(b) == 1 {
				verdict, _ := htmlAttr(c, "data-verdict")
				chips[addr+" "+htmlText(b[0])] = verdict + ": " + strings.TrimSpace(htmlText(c))
			}
		}
	}
	for k, want := range map[string]string{
		"127.0.0.1:5432 TLSv1":               "ok: TLSv1 refused",
		"127.0.0.1:5432 TLSv1.1":             "fail: TLSv1.1 accepted, not allowed",
		"127.0.0.1:5432 TLSv1.2":             "ok: TLSv1.2 accepted",
		"127.0.0.1:5432 TLSv1.3":             "inconclusive: TLSv1.3 inconclusive",
		"127.0.0.1:5432 ffdhe2048":           "fail: ffdhe2048 accepted, not in profile",
		"127.0.0.1:5432 secp256r1":           "absent: secp256r1 not accepted",
		"127.0.0.1:5432 Session without one": "ok: Session without one refused: mTLS enforced",
		"127.0.0.1:5433 Session without one": "inconclusive: Session without one inconclusive",
		"127.0.0.1:5433 Plaintext":           "fail: Plaintext accepted",
		"127.0.0.1:5433 Client certificate":  "neutral: Client certificate not requested",
	} {
		if chips[k] != want {
			t.Errorf("%s: %q, want %q", k, chips[k], want)
		}
	}
}

// TestHTMLTimeline: one marker per distinct certificate (served chains and
// the inventory, each once), expired ones red, in both layouts.
func TestHTMLTimeline(t *testing.T) {
	markers := func(page string) map[string]string {
		doc := htmlParse(t, page)
		svgs := htmlFind(doc, func(n *html.Node) bool { _, ok := htmlAttr(n, "data-timeline"); return n.Data == "svg" && ok })
		if len(svgs) != 1 {
			t.Fatalf("%d timelines", len(svgs))
		}
		out := map[string]string{}
		for _, g := range htmlFind(svgs[0], func(n *html.Node) bool { return htmlHasClass(n, "marker") }) {
			id, _ := htmlAttr(g, "data-cert")
			tier, _ := htmlAttr(g, "data-tier")
			if _, dup := out[id]; dup {
				t.Errorf("certificate %s twice", id)
			}
			if len(htmlFind(g, func(n *html.Node) bool { return n.Data == "circle" })) != 1 {
				t.Errorf("certificate %s: no marker circle", id)
			}
			out[id] = tier
		}
		return out
	}
	got := markers(htmlRender(t, htmlSyntheticRun()))
	want := map[string]string{
		"aa01": "ok", "aa02": "ok", // shared CA and intermediate: once each
		"bb01": "error", // 5 days left: narrowest tier (the inventory says 7d)
		"bb02": "warn",  // 12 days
		"bb03": "fail",  // expired 3 days ago
		"cc01": "warn",  // inventory only: client certificate, 12 days
		"cc02": "warn",  // 25 days
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("markers %v, want %v", got, want)
	}
	// A fleet: more certificates than rows fit, drawn as a strip.
	fleet := htmlFleetRun(20, 5)
	got = markers(htmlRender(t, fleet))
	n := 0
	seen := map[string]bool{}
	for _, tg := range fleet.Targets {
		for _, e := range tg.Endpoints {
			for _, c := range e.Chain {
				if !seen[c.SHA256] {
					seen[c.SHA256] = true
					n++
				}
			}
		}
	}
	for _, it := range fleet.Inventory.Items {
		if it.Certificate != nil && !seen[it.Certificate.SHA256] {
			seen[it.Certificate.SHA256] = true
			n++
		}
	}
	if len(got) != n || n <= dashRowLimit {
		t.Errorf("fleet: %d markers, want %d (> %d)", len(got), n, dashRowLimit)
	}
}

// TestHTMLKeysAndInventory: KEK age and next rotation, rotation disabled
// flagged, unreadable items listed; an inventory-only run draws no checks.
func TestHTMLKeysAndInventory(t *testing.T) {
	page := htmlRender(t, htmlInventoryOnlyRun())
	doc := htmlParse(t, page)
	htmlKeys := map[string]string{}
	for _, tr := range htmlFind(doc, func(n *html.Node) bool { _, ok := htmlAttr(n, "data-key"); return n.Data == "tr" && ok }) {
		k, _ := htmlAttr(tr, "data-key")
		htmlKeys[k] = strings.Join(strings.Fields(htmlText(tr)), " ")
	}
	if got := htmlKeys["transit/keys/orders-kek"]; !strings.Contains(got, "rotating") || !strings.Contains(got, "12 d") ||
		!strings.Contains(got, "every 90d") || !strings.Contains(got, "2027-02-17") {
		t.Errorf("orders-kek: %q", got)
	}
	if got := htmlKeys["transit/keys/legacy-kek"]; !strings.Contains(got, "rotation disabled") || !strings.Contains(got, "none scheduled") {
		t.Errorf("legacy-kek: %q", got)
	}
	if len(htmlFind(doc, func(n *html.Node) bool { return htmlHasClass(n, "target") || htmlHasClass(n, "finding") })) != 0 {
		t.Error("an inventory run drew target sections")
	}
	if !strings.Contains(page, "permission denied &lt;script&gt;") {
		t.Error("the unreadable item is not listed")
	}
	// The verdicts: the certificates', the key's and the unreadable
	// item's, each said apart — none hides another.
	want := []string{"warn RENEWAL DUE", "warn KEY ROTATION DISABLED", "error INVENTORY INCOMPLETE: 1 UNREADABLE"}
	if got := htmlVerdicts(t, doc); !slices.Equal(got, want) {
		t.Errorf("inventory run verdicts %q, want %q", got, want)
	}
	// A verify run with an inventory shows the checks' verdict, then the
	// inventory's.
	if got := htmlVerdicts(t, htmlParse(t, htmlRender(t, htmlSyntheticRun()))); !slices.Equal(got, append([]string{"fail FAIL"}, want...)) {
		t.Errorf("verify with inventory: verdicts %q", got)
	}
}

// htmlVerdicts: the page's overall verdict, then the inventory's, each
// as "<data-verdict> <text>".
func htmlVerdicts(t testing.TB, doc *html.Node) []string {
	t.Helper()
	var out []string
	ov := htmlFind(doc, func(n *html.Node) bool { _, ok := htmlAttr(n, "data-overall"); return ok })
	if len(ov) != 1 {
		t.Fatalf("%d overall verdicts", len(ov))
	}
	for _, n := range append(ov, htmlFind(doc, func(n *html.Node) bool { _, ok := htmlAttr(n, "data-inventory-status"); return ok })...) {
		v, _ := htmlAttr(n, "data-verdict")
		out = append(out, v+" "+htmlText(n))
	}
	return out
}

// TestHTMLInconclusiveApart: the inconclusive observations are counted
// apart from the verdicts, per target and in all, and listed.
func TestHTMLInconclusiveApart(t *testing.T) {
	doc := htmlParse(t, htmlRender(t, htmlSyntheticRun()))
	sec := htmlFind(doc, func(n *html.Node) bool {
		return n.Data == "section" && func() bool { v, _ := htmlAttr(n, "id"); return v == "inconclusive" }()
	})
	if len(sec) != 1 {
		t.Fatal("no inconclusive section")
	}
	checks, _ := htmlAttr(sec[0], "data-inconclusive-checks")
	probe, _ := htmlAttr(sec[0], "data-inconclusive-probe")
	notScanned, _ := htmlAttr(sec[0], "data-not-scanned")
	// Checks: 1 (versions) + 2 (client auth); probe: TLSv1.3 on the
	// primary, the replica's session without a client certificate, and
	// the Kafka controller that could not be scanned at all.
	if checks != "3" || probe != "3" || notScanned != "1" {
		t.Errorf("inconclusive: %s in checks, %s in scans, %s not scanned; want 3, 3 and 1", checks, probe, notScanned)
	}
	var rows []string
	for _, n := range htmlFind(sec[0], func(n *html.Node) bool { _, ok := htmlAttr(n, "data-inconclusive"); return ok }) {
		v, _ := htmlAttr(n, "data-inconclusive")
		rows = append(rows, v)
	}
	slices.Sort(rows)
	if want := []string{"TLSv1.3 handshake", "endpoint not scanned", "session without a client certificate", "tls.client_auth.required", "tls.protocol.versions"}; !slices.Equal(rows, want) {
		t.Errorf("inconclusive rows %q, want %q", rows, want)
	}
	var tile string
	for _, n := range htmlFind(doc, func(n *html.Node) bool { v, _ := htmlAttr(n, "data-tile"); return v == "Inconclusive" }) {
		tile = htmlText(n)
	}
	// 3 in checks and 3 in scans, said apart.
	if !strings.HasPrefix(tile, "6") || !strings.Contains(tile, "3 in checks, 3 in scans") {
		t.Errorf("inconclusive tile %q", tile)
	}
}

// TestHTMLSize: a fleet of 1,000 endpoints, in either shape, renders in
// under 5 MB — and (a generous bound, to catch a blow-up; the benchmark
// measures) in under 5 s.
func TestHTMLSize(t *testing.T) {
	for name, r := range htmlFleetShapes(t) {
		t.Run(name, func(t *testing.T) {
			// The best of three: a machine busy with other work slows one
			// render, a blow-up slows them all.
			var page string
			took := time.Duration(math.MaxInt64)
			for range 3 {
				start := time.Now()
				page = htmlRender(t, r)
				took = min(took, time.Since(start))
				if took < time.Second {
					break
				}
			}
			t.Logf("%s: %d bytes in %v", name, len(page), took)
			if len(page) > 5<<20 {
				t.Errorf("%d bytes for 1,000 endpoints, over 5 MB", len(page))
			}
			if took > 5*time.Second {
				t.Errorf("%v to render 1,000 endpoints", took)
			}
			if os.Getenv("HARDEN_HTML_DUMP") != "" {
				_ = os.WriteFile(filepath.Join(os.Getenv("HARDEN_HTML_DUMP"), name+".html"), []byte(page), 0o644)
			}
		})
	}
}

// htmlStructure is the page as tags and attribute names, without any text or
// attribute value: what a string from a server must never change.
func htmlStructure(t testing.TB, page string) []string {
	z := html.NewTokenizer(strings.NewReader(page))
	var out []string
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if z.Err() != io.EOF {
				t.Fatal(z.Err())
			}
			return out
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			s := tt.String() + " " + tok.Data
			for _, a := range tok.Attr {
				s += " " + a.Key
			}
			out = append(out, s)
		case html.CommentToken, html.DoctypeToken:
			out = append(out, tt.String())
		}
	}
}

// htmlFuzzRun puts s into every string of a run that comes from a server or
// the policy, with a prefix that keeps it non-empty and apart from the
// profile's names (so only the text, never the layout, depends on it).
func htmlFuzzRun(s string) *Run {
	const fz = htmlFuzzMark
	r := htmlSyntheticRun()
	for ti := range r.Targets {
		tg := &r.Targets[ti]
		tg.Name = fmt.Sprintf("t%d %s", ti, s)
		if tg.Error != "" {
			tg.Error = fz + s
		}
		for ci := range tg.Checks {
			c := &tg.Checks[ci]
			c.ID = fmt.Sprintf("c%d.%d.%s", ti, ci, s)
			c.Subject, c.Evidence, c.Title = fz+s, fz+s, fz+s
			if c.Remediation != "" {
				c.Remediation = fz + s
			}
			for i := range c.References {
				c.References[i] = fz + s
			}
		}
		for ei := range tg.Endpoints {
			e := &tg.Endpoints[ei]
			e.Name, e.Address = fz+s, fmt.Sprintf("e%d.%d %s", ti, ei, s)
			if e.Error != "" {
				e.Error = fz + s
			}
			for i := range e.Suites {
				if !slices.Contains(r.ProfileDetail.Suites, e.Suites[i].Name) {
					e.Suites[i].Name = "X_" + e.Suites[i].Name + s
				}
			}
			for i := range e.Versions {
				e.Versions[i].Evidence = fz + s
			}
			for i := range e.Groups {
				if !slices.Contains(r.ProfileDetail.Groups, e.Groups[i]) {
					e.Groups[i] = "X_" + e.Groups[i] + s
				}
			}
			for i := range e.Chain {
				c := &e.Chain[i]
				c.Subject, c.Issuer, c.Key = fz+s, "y"+fz+s, fz+s
				if c.Unparsable != "" {
					c.Unparsable = fz + s
				}
			}
			if e.TrustError != "" {
				e.TrustError = fz + s
			}
		}
	}
	for i := range r.Inventory.Items {
		it := &r.Inventory.Items[i]
		it.Where = fmt.Sprintf("w%d %s", i, s)
		if it.Name != "" {
			it.Name = fmt.Sprintf("n%d %s", i, s)
		}
		if it.Error != "" {
			it.Error = fz + s
		}
		for j := range it.Findings {
			it.Findings[j] = fz + s
		}
		if it.Certificate != nil {
			it.Certificate.Subject = fz + s
		}
		if it.Key != nil {
			it.Key.Type = fz + s
		}
	}
	r.Policy = fz + s
	return r
}

// htmlFuzzMark starts every fuzzed string: text the page has nowhere else.
const htmlFuzzMark = "Zq9"

// FuzzHTML: any text from a server renders, and never changes the page's
// markup — the tags and attributes are the same as for a plain word, and
// the text never appears raw when it holds markup characters.
func FuzzHTML(f *testing.F) {
	for _, s := range []string{"", "plain", htmlXss, `"><img src=x onerror=alert(1)>`, "</title><script>", "</style>", "]]><!--", "\x00\xff\xfe",
		"javascript:alert(1)", "{{.CSS}}", "&amp;&lt;", "a\nb\tc", "</textarea></details>", "<svg onload=alert(1)>",
		"CN=evil\u202Egro.knab", "\u2066\u2067\u2068\u2069\u202A\u202B\u202C\u202D", "\u200E\u200F\u061C\u200B\uFEFF\u00AD", "\u2028\u2029\r\x1b\x7f\u0085", "\U000E0041\U000E007F"} {
		f.Add(s)
	}
	base := htmlStructure(f, htmlRender(f, htmlFuzzRun("word")))
	f.Fuzz(func(t *testing.T, s string) {
		page := htmlRender(t, htmlFuzzRun(s))
		got := htmlStructure(t, page)
		if !slices.Equal(got, base) {
			for i := range min(len(got), len(base)) {
				if got[i] != base[i] {
					t.Fatalf("%q changed the markup at token %d: %q, want %q", s, i, got[i], base[i])
				}
			}
			t.Fatalf("%q changed the markup: %d tokens, want %d", s, len(got), len(base))
		}
		// ('&' alone proves nothing: its escape starts with '&' too.)
		if strings.ContainsAny(s, `<>"'`) && strings.Contains(page, htmlFuzzMark+s) {
			t.Fatalf("%q appears unescaped", s)
		}
		// Nothing invisible reaches the page: every format or control
		// character (bidi overrides, isolates, marks) is a visible escape.
		if i := strings.IndexFunc(page, dashInvisible); i >= 0 {
			t.Fatalf("%q: invisible %U in the page", s, []rune(page[i:])[0])
		}
	})
}

// TestHTMLRunKinds: what differs between the kinds of run — scan has no
// policy and no positions, an empty run no verdict, and an endpoint that
// refused every version is said to offer no TLS.
func TestHTMLRunKinds(t *testing.T) {
	overall := func(doc *html.Node) string {
		ov := htmlFind(doc, func(n *html.Node) bool { _, ok := htmlAttr(n, "data-overall"); return ok })
		if len(ov) != 1 {
			t.Fatalf("%d overall verdicts", len(ov))
		}
		return htmlText(ov[0])
	}
	scan := htmlParse(t, htmlRender(t, htmlScanOnlyRun()))
	if got := overall(scan); got != "FAIL" {
		t.Errorf("scan verdict %q", got)
	}
	if n := htmlFind(scan, func(n *html.Node) bool { return htmlHasClass(n, "loc") }); len(n) != 0 {
		t.Error("a scan target has a policy position")
	}
	if !strings.Contains(htmlText(scan), "none (endpoints given on the command line)") {
		t.Error("scan: the missing policy is not said")
	}
	if got := overall(htmlParse(t, htmlRender(t, &Run{FormatVersion: FormatVersion, Command: "verify"}))); got != "NO CHECKS" {
		t.Errorf("empty run verdict %q", got)
	}
	noTLS := func(r *Run) []string {
		var out []string
		for _, n := range htmlFind(htmlParse(t, htmlRender(t, r)), func(n *html.Node) bool { _, ok := htmlAttr(n, "data-no-tls"); return ok }) {
			for p := n; p != nil; p = p.Parent {
				if v, ok := htmlAttr(p, "data-endpoint"); ok && p.Data == "tr" {
					out = append(out, v)
				}
			}
		}
		return out
	}
	// Before apply, PostgreSQL ran with ssl = off.
	if got := noTLS(htmlLoadRun(t, "testenv-before.json")); !slices.Equal(got, []string{"127.0.0.1:42799"}) {
		t.Errorf("before apply: no TLS on %q, want PostgreSQL's 127.0.0.1:42799", got)
	}
	if got := noTLS(htmlLoadRun(t, "testenv-after.json")); len(got) != 0 {
		t.Errorf("after apply: no TLS on %q", got)
	}
}

// htmlEndpointChips: every chip of every endpoint row, "address label" →
// "verdict: text" (the trust chip as "address trust").
func htmlEndpointChips(doc *html.Node) map[string]string {
	chips := map[string]string{}
	for _, ep := range htmlFind(doc, func(n *html.Node) bool { return n.Data == "tr" && htmlHasClass(n, "endpoint") }) {
		addr, _ := htmlAttr(ep, "data-endpoint")
		tds := htmlFind(ep, func(n *html.Node) bool { return n.Data == "td" })
		for i, td := range tds {
			for c := td.FirstChild; c != nil; c = c.NextSibling {
				verdict, ok := htmlAttr(c, "data-verdict")
				if !ok || c.Data != "span" {
					continue
				}
				label := "trust"
				if b := htmlFirst(c, func(n *html.Node) bool { return n.Data == "b" }); b != nil {
					label = htmlText(b)
				} else if i != len(tds)-1 {
					continue
				}
				chips[addr+" "+label] = verdict + ": " + strings.TrimSpace(htmlText(c))
			}
		}
	}
	return chips
}

// htmlWords: the text of n, its text nodes apart, in single spaces.
func htmlWords(n *html.Node) string {
	var words []string
	htmlWalk(n, func(x *html.Node) {
		if x.Type == html.TextNode {
			words = append(words, strings.Fields(x.Data)...)
		}
	})
	return strings.Join(words, " ")
}

func htmlSection(t testing.TB, doc *html.Node, id string) *html.Node {
	t.Helper()
	l := htmlFind(doc, func(n *html.Node) bool { v, _ := htmlAttr(n, "id"); return v == id })
	if len(l) != 1 {
		t.Fatalf("%d elements #%s", len(l), id)
	}
	return l[0]
}

func htmlTile(t testing.TB, doc *html.Node, label string) (value, verdict, note string) {
	t.Helper()
	l := htmlFind(doc, func(n *html.Node) bool { v, _ := htmlAttr(n, "data-tile"); return v == label })
	if len(l) != 1 {
		t.Fatalf("%d tiles %q", len(l), label)
	}
	verdict, _ = htmlAttr(l[0], "data-verdict")
	for _, d := range htmlFind(l[0], func(n *html.Node) bool { return n.Data == "div" }) {
		switch {
		case htmlHasClass(d, "v"):
			value = htmlText(d)
		case htmlHasClass(d, "n"):
			note = htmlText(d)
		}
	}
	return value, verdict, note
}

// htmlUnreachableScan is `harden scan 127.0.0.1:1` with nothing listening:
// the probe could not connect (6 inconclusive observations, no versions),
// and tls.enabled could not run.
func htmlUnreachableScan(inconclusive int) *Run {
	r := &Run{FormatVersion: FormatVersion, Profile: "intermediate", ProfileDetail: htmlSyntheticRun().ProfileDetail, GeneratedAt: htmlSynthNow,
		Targets: []Target{{Name: "127.0.0.1:1", Plugin: "scan", Status: "ok",
			Endpoints: []Endpoint{{Address: "127.0.0.1:1", Dialect: "tls", Error: "endpoint unreachable: connection refused (nothing listening)", Inconclusive: inconclusive}},
			Checks: []Check{{ID: "tls.enabled", Status: "error", Severity: "high", Title: "Endpoint offers TLS", Subject: "127.0.0.1:1",
				Evidence: "endpoint unreachable: connection refused (nothing listening)", References: []string{}}}}}}
	r.Finish("scan")
	return r
}

// TestHTMLUnscannedEndpoint: an endpoint that could not be scanned is
// counted as not observed — its probe's inconclusive observations and the
// endpoint itself — never "every observation was conclusive", and none of
// its chips claims a refusal or "not requested".
func TestHTMLUnscannedEndpoint(t *testing.T) {
	for _, n := range []int{6, 0} {
		doc := htmlParse(t, htmlRender(t, htmlUnreachableScan(n)))
		sec := htmlSection(t, doc, "inconclusive")
		probe, _ := htmlAttr(sec, "data-inconclusive-probe")
		notScanned, _ := htmlAttr(sec, "data-not-scanned")
		if want := strconv.Itoa(max(n, 1)); probe != want || notScanned != "1" {
			t.Errorf("probe inconclusive %q, not scanned %q; want %s and 1", probe, notScanned, want)
		}
		if l := htmlFind(sec, func(n *html.Node) bool { return htmlHasClass(n, "allclear") }); len(l) != 0 {
			t.Errorf("an unscanned endpoint reads as %q", htmlText(l[0]))
		}
		pill := htmlFirst(sec, func(n *html.Node) bool { return htmlHasClass(n, "pill") })
		if v, _ := htmlAttr(pill, "data-verdict"); v != vUnknown || !strings.Contains(htmlText(pill), "1 endpoint not scanned") {
			t.Errorf("inconclusive pill %s %q", v, htmlText(pill))
		}
		row := htmlFirst(sec, func(n *html.Node) bool { v, _ := htmlAttr(n, "data-inconclusive"); return v == "endpoint not scanned" })
		if row == nil || !strings.Contains(htmlText(row), "connection refused") {
			t.Error("the unscanned endpoint is not listed with its error")
		}
		if _, v, _ := htmlTile(t, doc, "Inconclusive"); v != vUnknown {
			t.Errorf("inconclusive tile verdict %q", v)
		}
		tds := htmlFind(htmlFirst(doc, func(n *html.Node) bool { return htmlHasClass(n, "endpoint") }), func(n *html.Node) bool { return n.Data == "td" })
		groups := htmlFirst(tds[2], func(n *html.Node) bool { _, ok := htmlAttr(n, "data-verdict"); return ok })
		if v, _ := htmlAttr(groups, "data-verdict"); v != vUnknown || htmlText(groups) != "not observed" {
			t.Errorf("groups of the unscanned endpoint: %s %q", v, htmlText(tds[2]))
		}
		chips := htmlEndpointChips(doc)
		for _, k := range []string{"Client certificate", "Session without one", "Plaintext", "trust"} {
			if got := chips["127.0.0.1:1 "+k]; !strings.HasPrefix(got, vUnknown+": ") || !strings.HasSuffix(got, "not observed") {
				t.Errorf("%s: %q, want not observed", k, got)
			}
		}
	}
	// Observed: "" is "not attempted", never a refusal; whether a client
	// certificate was requested is only known after a handshake.
	r := htmlScanOnlyRun()
	r.Targets[0].Endpoints = append(r.Targets[0].Endpoints, Endpoint{Address: "127.0.0.1:8444",
		Versions: []Version{{Version: "TLSv1.2", Outcome: "inconclusive", Evidence: "reset"}, {Version: "TLSv1.3", Outcome: "inconclusive", Evidence: "reset"}}})
	chips := htmlEndpointChips(htmlParse(t, htmlRender(t, r)))
	for k, want := range map[string]string{
		"127.0.0.1:8443 Client certificate":  "neutral: Client certificate not requested",
		"127.0.0.1:8443 Session without one": "neutral: Session without one not attempted",
		"127.0.0.1:8443 Plaintext":           "neutral: Plaintext not attempted",
		"127.0.0.1:8444 Client certificate":  "inconclusive: Client certificate not observed",
	} {
		if chips[k] != want {
			t.Errorf("%s: %q, want %q", k, chips[k], want)
		}
	}
}

// htmlHistoryRun: three runs of one policy; the latest (the Run itself)
// has orders-db (a check still failing, one fixed, one new, one that
// failed before and is inconclusive now) and archive in error (its
// earlier failure unknown, not fixed).
func htmlHistoryRun() *Run {
	at := func(d int) time.Time { return htmlSynthNow.Add(time.Duration(d) * 24 * time.Hour) }
	key := func(target, id, subject string) CheckKey {
		return CheckKey{Target: target, ID: id, Subject: subject, Severity: "high"}
	}
	still, fixed, added := key("orders-db", "tls.protocol.versions", "127.0.0.1:5432"), key("orders-db", "tls.plaintext.refused", "127.0.0.1:5432"), key("orders-db", "tls.cipher_suites", "127.0.0.1:5432")
	inc, gone := key("orders-db", "tls.client_auth.required", "127.0.0.1:5432"), key("archive", "objectstore.http.refused", "bucket archive")
	sum := func(pass, fail int) map[string]int {
		return map[string]int{"pass": pass, "fail": fail, "target_error": 0}
	}
	r := &Run{FormatVersion: FormatVersion, Command: "verify", Policy: "fleet/policy.yaml", GeneratedAt: at(0),
		History: []RunSummary{
			{GeneratedAt: at(-14), Summary: sum(3, 4), Failing: []CheckKey{still, fixed, inc, gone}},
			{GeneratedAt: at(-7), Summary: sum(3, 4), Failing: []CheckKey{still, fixed, inc, gone}},
			{GeneratedAt: at(0), Summary: map[string]int{"pass": 1, "fail": 2, "error": 0, "target_error": 1}, Failing: []CheckKey{still, added}},
		},
		Targets: []Target{
			{Name: "orders-db", Plugin: "postgres", Status: "ok", Checks: []Check{
				{ID: still.ID, Status: "fail", Severity: "high", Subject: still.Subject, Evidence: "TLSv1.1 accepted", References: []string{}},
				{ID: fixed.ID, Status: "pass", Severity: "high", Subject: fixed.Subject, Evidence: "refused", References: []string{}},
				{ID: added.ID, Status: "fail", Severity: "high", Subject: added.Subject, Evidence: "CBC accepted", References: []string{}},
				{ID: inc.ID, Status: "pass", Severity: "high", Subject: inc.Subject, Evidence: "1 of 2 inconclusive", References: []string{}, Inconclusive: 1},
			}},
			{Name: "archive", Plugin: "objectstore", Status: "error", Error: "dial https://127.0.0.1:9000: connection refused"},
		}}
	r.Finish("verify")
	return r
}

// TestHTMLTrend: a history draws the trend of failing checks: one column
// per run, and the latest run's word on each — new, still failing,
// fixed only on a conclusive observation, unknown otherwise.
func TestHTMLTrend(t *testing.T) {
	doc := htmlParse(t, htmlRender(t, htmlHistoryRun()))
	sec := htmlSection(t, doc, "trend")
	if v, _ := htmlAttr(sec, "data-runs"); v != "3" {
		t.Errorf("%s runs", v)
	}
	if n := len(htmlFind(sec, func(n *html.Node) bool { _, ok := htmlAttr(n, "data-run"); return ok })); n != 3 {
		t.Errorf("%d runs listed, want 3", n)
	}
	got := map[string]string{}
	for _, tr := range htmlFind(sec, func(n *html.Node) bool { _, ok := htmlAttr(n, "data-trend"); return ok }) {
		id, _ := htmlAttr(tr, "data-trend-check")
		trend, _ := htmlAttr(tr, "data-trend")
		var cells []string
		for _, td := range htmlFind(tr, func(n *html.Node) bool { return n.Data == "td" && htmlHasClass(n, "run") }) {
			cells = append(cells, htmlText(td))
		}
		chip := htmlFirst(tr, func(n *html.Node) bool { return htmlHasClass(n, "chip") })
		verdict, _ := htmlAttr(chip, "data-verdict")
		got[id] = fmt.Sprintf("%s %s %s: %s", strings.Join(cells, ""), trend, verdict, strings.TrimSpace(htmlText(chip.Parent)))
	}
	want := map[string]string{
		"tls.protocol.versions":    "✗✗✗ failing fail: still failing",
		"tls.plaintext.refused":    "✗✗· fixed ok: fixed",
		"tls.cipher_suites":        "··✗ new fail: new",
		"tls.client_auth.required": "✗✗· unknown inconclusive: unknowninconclusive in the latest run",
		"objectstore.http.refused": "✗✗· unknown inconclusive: unknowntarget in error in the latest run",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("trend rows:\n%v\nwant:\n%v", got, want)
	}
	// No history, no trend.
	if l := htmlFind(htmlParse(t, htmlRender(t, htmlSyntheticRun())), func(n *html.Node) bool { v, _ := htmlAttr(n, "id"); return v == "trend" }); len(l) != 0 {
		t.Error("a trend without a history")
	}
}

// htmlIntegrityRun: what must never read better than it is — a target in
// error beside passing ones (the error is the worst status), a target in
// error without a message or checks, configuration-only checks (failing
// and passing), a certificate whose tier is unknown, and one without a
// not-after date.
func htmlIntegrityRun() *Run {
	s := htmlSyntheticRun()
	leaf := s.Targets[0].Endpoints[0].Chain[0]
	noDate := leaf
	noDate.SHA256, noDate.Serial, noDate.Subject, noDate.NotBefore, noDate.NotAfter = "dd01", "dd01", "CN=no dates", time.Time{}, time.Time{}
	r := &Run{FormatVersion: FormatVersion, Command: "verify", Policy: "fleet/policy.yaml", Profile: s.Profile, ProfileDetail: s.ProfileDetail, GeneratedAt: htmlSynthNow,
		Targets: []Target{
			{Name: "good", Plugin: "postgres", Line: 3, Status: "ok",
				Endpoints: []Endpoint{{Address: "127.0.0.1:5432", Versions: []Version{{Version: "TLSv1.3", Outcome: "accepted"}},
					Suites: []Suite{{"TLSv1.3", "0x1301", "TLS_AES_128_GCM_SHA256"}}, Groups: []string{"x25519"}, Chain: []ChainCert{leaf, noDate},
					TrustChecked: true, ClientCertRequested: true, NoClientCert: "refused", Plaintext: "refused"}},
				Checks: []Check{
					{ID: "tls.enabled", Status: "pass", Severity: "high", Subject: "127.0.0.1:5432", Evidence: "TLS handshake completed", References: []string{}},
					{ID: "postgres.ssl.settings", Status: "pass", Severity: "low", Subject: "postgresql.conf", Evidence: "configuration only (not observed live): ssl = on", References: []string{}, ConfigurationOnly: true},
				}},
			{Name: "down", Plugin: "kafka", Line: 9, Status: "error", Error: "target down: dial tcp 127.0.0.1:9093: connection refused"},
			{Name: "silent", Plugin: "vaultpki", Line: 15, Status: "error"},
		},
		Inventory: &inventory.Report{FormatVersion: 1, GeneratedAt: htmlSynthNow, RenewBefore: "30d", AlertAt: []string{"30d", "14d", "7d"},
			Items: []inventory.Item{{Kind: "stored_certificate", Target: "down", Where: "kafka/truststore", Tier: "unknown",
				Certificate: &inventory.Certificate{Subject: "CN=tier unknown", SHA256: "ee01", Serial: "ee01", NotBefore: htmlDays(-10), NotAfter: htmlDays(200)}}}},
	}
	r.Finish("verify")
	return r
}

// TestHTMLIntegrity: each of these reads as what it is, by its data
// attributes and words — a target error as the worst status (TARGET
// ERROR, "Target error."), a target in error without a message still
// drawn and linked, configuration-only checks tagged wherever they are
// listed, an unknown tier never green, a missing date never a day count.
func TestHTMLIntegrity(t *testing.T) {
	doc := htmlParse(t, htmlRender(t, htmlIntegrityRun()))
	if got := htmlVerdicts(t, doc); len(got) < 1 || got[0] != "error ERROR" {
		t.Errorf("verdict %q with a target in error and every check passing, want ERROR", got)
	}
	ids := htmlByID(doc)
	for _, tc := range []struct{ name, text string }{{"down", "Target error. target down: dial tcp 127.0.0.1:9093: connection refused"}, {"silent", "Target error. no error message"}} {
		sec := htmlFirst(doc, func(n *html.Node) bool {
			v, _ := htmlAttr(n, "data-target")
			return n.Data == "details" && v == tc.name
		})
		if sec == nil {
			t.Errorf("target %s in error has no section", tc.name)
			continue
		}
		badge := htmlFirst(sec, func(n *html.Node) bool { return htmlHasClass(n, "status") })
		if v, _ := htmlAttr(badge, "data-verdict"); v != vError || htmlText(badge) != "TARGET ERROR" {
			t.Errorf("%s: badge %s %q, want error TARGET ERROR", tc.name, v, htmlText(badge))
		}
		alert := htmlFirst(sec, func(n *html.Node) bool { _, ok := htmlAttr(n, "data-target-error"); return ok })
		if alert == nil || strings.Join(strings.Fields(htmlText(alert)), " ") != tc.text {
			t.Errorf("%s: the error reads %q, want %q", tc.name, func() string {
				if alert == nil {
					return ""
				}
				return htmlText(alert)
			}(), tc.text)
		}
	}
	// Every link of the table of contents leads to a section.
	toc := htmlFind(doc, func(n *html.Node) bool { return n.Data == "a" && n.Parent != nil && htmlHasClass(n.Parent, "toc") })
	if len(toc) != 3 {
		t.Errorf("%d targets in the table of contents, want 3", len(toc))
	}
	for _, a := range toc {
		if ids[htmlHref(a)] == nil {
			t.Errorf("the table of contents links %q to nothing", htmlHref(a))
		}
	}
	// Configuration only: the passing check's row in its target's list.
	tags := htmlFind(doc, func(n *html.Node) bool { _, ok := htmlAttr(n, "data-config-only"); return ok })
	var where []string
	for _, n := range tags {
		where = append(where, htmlTargetOf(n)+" "+strings.TrimSpace(htmlText(n)))
	}
	if !slices.Equal(where, []string{"good config only"}) {
		t.Errorf("configuration-only tags %q", where)
	}
	// The unknown tier, and the certificate without a not-after date.
	rows := map[string]string{}
	for _, tr := range htmlFind(htmlSection(t, doc, "certificates"), func(n *html.Node) bool { _, ok := htmlAttr(n, "data-cert"); return n.Data == "tr" && ok }) {
		k, _ := htmlAttr(tr, "data-cert")
		chip := htmlFirst(tr, func(n *html.Node) bool { return htmlHasClass(n, "chip") })
		v, _ := htmlAttr(chip, "data-verdict")
		rows[k] = v + ": " + htmlWords(tr)
	}
	if got := rows["ee01"]; !strings.HasPrefix(got, "inconclusive: unknown CN=tier unknown") || !strings.Contains(got, " 2027-06-19 200 ") {
		t.Errorf("tier unknown reads %q", got)
	}
	if got := rows["dd01"]; !strings.HasPrefix(got, "inconclusive: unknown CN=no dates") || !strings.Contains(got, "unknown —") {
		t.Errorf("no not-after date reads %q", got)
	}
	markers := map[string]*html.Node{}
	for _, g := range htmlFind(doc, func(n *html.Node) bool { return n.Data == "g" && htmlHasClass(n, "marker") }) {
		k, _ := htmlAttr(g, "data-cert")
		markers[k] = g
	}
	for _, k := range []string{"ee01", "dd01"} {
		if v, _ := htmlAttr(markers[k], "data-tier"); v != vUnknown {
			t.Errorf("marker %s tier %q, want inconclusive", k, v)
		}
	}
	if m := markers["dd01"]; htmlFirst(m, func(n *html.Node) bool { return n.Data == "circle" }) != nil || !strings.Contains(htmlText(m), "not after: unknown") {
		t.Errorf("the certificate without a date has a place on the timeline: %q", htmlText(m))
	}
	page := htmlRender(t, htmlIntegrityRun())
	for _, bad := range []string{"106752", ">-5y<", ">-10y<"} {
		if strings.Contains(page, bad) {
			t.Errorf("a zero not-after date shows as %q", bad)
		}
	}
	// A failing configuration-only check: tagged in its finding and in
	// "Findings by check".
	r := htmlIntegrityRun()
	r.Targets[0].Checks[1].Status = "fail"
	r.Finish("verify")
	doc = htmlParse(t, htmlRender(t, r))
	where = nil
	for _, n := range htmlFind(doc, func(n *html.Node) bool { _, ok := htmlAttr(n, "data-config-only"); return ok }) {
		p := n.Parent
		for p != nil && p.Data != "article" && p.Data != "tr" {
			p = p.Parent
		}
		where = append(where, p.Data+" "+strings.TrimSpace(htmlText(n)))
	}
	slices.Sort(where)
	if !slices.Equal(where, []string{"article configuration only", "tr configuration only"}) {
		t.Errorf("failing configuration-only check tagged in %q, want its finding and its row of Findings by check", where)
	}
}

// TestHTMLInventoryVerdicts: the inventory's verdicts apart — an
// unreadable item is said even when nothing else is wrong, a key without
// rotation is not a renewal, unknown keys are not "not rotating".
func TestHTMLInventoryVerdicts(t *testing.T) {
	inv := func(items ...inventory.Item) *Run {
		r := &Run{FormatVersion: FormatVersion, GeneratedAt: htmlSynthNow, Targets: []Target{{Name: "vault", Plugin: "vaultpki", Status: "ok"}},
			Inventory: &inventory.Report{FormatVersion: 1, GeneratedAt: htmlSynthNow, RenewBefore: "30d", AlertAt: []string{"30d", "14d", "7d"}, Items: items}}
		r.Finish("inventory")
		return r
	}
	ok := inventory.Item{Kind: "served", Target: "vault", Where: "127.0.0.1:8200", Tier: "ok",
		Certificate: &inventory.Certificate{Subject: "CN=vault", SHA256: "ab01", NotBefore: htmlDays(-10), NotAfter: htmlDays(300)}}
	unreadable := inventory.Item{Kind: "stored_ca", Target: "vault", Where: "pki", Tier: "unknown", Error: "permission denied"}
	off := inventory.Item{Kind: "key", Target: "vault", Where: "transit/keys/a", Name: "a", Tier: "rotation_disabled", Key: &inventory.Key{LatestVersion: 1}}
	unknownKey := inventory.Item{Kind: "key", Target: "vault", Where: "transit/keys/b", Name: "b", Tier: "unknown", Key: &inventory.Key{LatestVersion: 2, AutoRotatePeriod: "30d", AutoRotatePeriodSeconds: 2592000}}
	for _, tc := range []struct {
		name  string
		run   *Run
		want  []string
		keys  [3]string
		unrd  string
		items bool
	}{
		{"ok", inv(ok), []string{"ok INVENTORY OK"}, [3]string{"0", "", ""}, "0", true},
		{"unreadable only", inv(ok, unreadable), []string{"error INVENTORY INCOMPLETE: 1 UNREADABLE"}, [3]string{"0", "", ""}, "1", true},
		{"key off", inv(ok, off), []string{"warn KEY ROTATION DISABLED"}, [3]string{"1", vFail, "1 not rotating"}, "0", true},
		{"key unknown", inv(ok, unknownKey), []string{"error INVENTORY INCOMPLETE: 1 UNREADABLE"}, [3]string{"1", vUnknown, "1 rotation unknown"}, "1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := htmlParse(t, htmlRender(t, tc.run))
			if got := htmlVerdicts(t, doc); !slices.Equal(got, tc.want) {
				t.Errorf("verdicts %q, want %q", got, tc.want)
			}
			v, verdict, note := htmlTile(t, doc, "Keys")
			if got := [3]string{v, verdict, note}; got != tc.keys {
				t.Errorf("keys tile %q, want %q", got, tc.keys)
			}
			if v, _, _ := htmlTile(t, doc, "Unreadable"); v != tc.unrd {
				t.Errorf("unreadable tile %q, want %q", v, tc.unrd)
			}
		})
	}
}

// TestHTMLUnparsable: a served certificate that could not be parsed is
// counted and listed (never silently dropped from the certificates).
func TestHTMLUnparsable(t *testing.T) {
	doc := htmlParse(t, htmlRender(t, htmlSyntheticRun()))
	if v, verdict, _ := htmlTile(t, doc, "Unparsable"); v != "1" || verdict != vFail {
		t.Errorf("unparsable tile %s %s", v, verdict)
	}
	row := htmlFirst(htmlSection(t, doc, "certificates"), func(n *html.Node) bool { _, ok := htmlAttr(n, "data-unparsable"); return ok })
	if row == nil || !strings.Contains(htmlText(row), "x509: malformed") || !strings.Contains(htmlText(row), "served by") {
		t.Error("the unparsable certificate is not listed with its reason and where it was served")
	}
	if l := htmlFind(doc, func(n *html.Node) bool { _, ok := htmlAttr(n, "data-unparsable-count"); return ok }); len(l) != 1 {
		t.Error("the timeline does not say an unparsable certificate is missing from it")
	}
}

// htmlBidiRun: a run whose server-given text holds every kind of
// invisible control.
func htmlBidiRun() *Run {
	r := htmlSyntheticRun()
	r.Targets[0].Name = "orders\u2066-db\u2069"
	r.Targets[0].Checks[0].Subject = "CN=evil\u202Egro.knab"
	r.Targets[0].Checks[0].Evidence = "TLSv1.1 \u200Faccepted\u200E\u061C \u202A\u202B\u202C\u202D\u2067\u2068\u200B\uFEFF\u00AD\u2028\x1b[31m"
	r.Targets[0].Endpoints[0].Chain[0].Subject = "CN=evil\u202Egro.knab"
	r.Inventory.Items[1].Certificate.Subject = "CN=\u202Eadmin"
	return r
}

// TestHTMLBidi: no invisible or bidirectional control from a server
// reaches the page: each is a visible escape, the text reads as the bytes
// say; every element's text is isolated; the caller's run is not changed.
func TestHTMLBidi(t *testing.T) {
	r := htmlBidiRun()
	page := htmlRender(t, r)
	if i := strings.IndexFunc(page, dashInvisible); i >= 0 {
		t.Fatalf("invisible %U in the page: %q", []rune(page[i:])[0], page[max(0, i-40):min(len(page), i+40)])
	}
	text := htmlText(htmlParse(t, page))
	for _, want := range []string{"CN=evil⟨U+202E⟩gro.knab", "orders⟨U+2066⟩-db⟨U+2069⟩", "⟨U+200F⟩accepted⟨U+200E⟩⟨U+061C⟩",
		"⟨U+202A⟩⟨U+202B⟩⟨U+202C⟩⟨U+202D⟩⟨U+2067⟩⟨U+2068⟩⟨U+200B⟩⟨U+FEFF⟩⟨U+00AD⟩⟨U+2028⟩⟨U+001B⟩[31m", "CN=⟨U+202E⟩admin"} {
		if !strings.Contains(text, want) {
			t.Errorf("%q missing", want)
		}
	}
	if r.Targets[0].Checks[0].Subject != "CN=evil\u202Egro.knab" {
		t.Error("rendering changed the caller's run")
	}
	if !strings.Contains(string(dashboardCSS), "body *, svg text { unicode-bidi: isolate; }") {
		t.Error("the stylesheet does not isolate the page's text")
	}
	// Tabs and newlines stay (evidence is pre-wrapped).
	if dashVisible("a\tb\nc") != "a\tb\nc" {
		t.Error("tab or newline escaped")
	}
}

// TestHTMLRowLabel: a timeline row's label fits the room left of the chart
// (the browser test checks none starts left of the picture).
func TestHTMLRowLabel(t *testing.T) {
	for _, tc := range [][2]string{
		{"CN=harden testenv CA,O=harden testenv,OU=WWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWW", "CA bundle +3"},
		{strings.Repeat("M", 200), strings.Repeat("W", 100)},
		{strings.Repeat("証明書", 40), "vault"},
		{"CN=short", ""},
	} {
		l := dashRowLabel(tc[0], tc[1])
		if w := dashTextWidth(l); w > dashLabelWidth {
			t.Errorf("%q: %.0f wide, over %.0f", l, w, dashLabelWidth)
		}
		if !strings.HasPrefix(l, string([]rune(tc[0])[:3])) {
			t.Errorf("%q does not start with the subject", l)
		}
	}
	if l := dashRowLabel("CN=short", "vault"); l != "CN=short · vault" {
		t.Errorf("a short label was cut: %q", l)
	}
}
