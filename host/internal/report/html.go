package report

import (
	"bufio"
	"cmp"
	"embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/harden-dev/harden/host/internal/inventory"
	"github.com/harden-dev/harden/host/internal/policy"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// The dashboard is one file an auditor can open anywhere, years later,
// offline: the CSS is inlined, the charts are inline SVG, and nothing is
// loaded from anywhere (no fonts, images or scripts; drill-down is
// <details>). Everything a server said is untrusted text: html/template
// escapes it in every context.

//go:embed html/dashboard.tmpl html/dashboard.css
var htmlFiles embed.FS

var dashboardTemplate = template.Must(template.New("dashboard.tmpl").Funcs(template.FuncMap{
	"f1":    func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	"add":   func(a, b float64) float64 { return a + b },
	"sub":   func(a, b float64) float64 { return a - b },
	"add2":  func(n int) int { return n + 2 },
	"odd":   func(i int) bool { return i%2 == 1 },
	"join":  strings.Join,
	"day":   func(t time.Time) string { return t.UTC().Format("2006-01-02") },
	"stamp": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return one
		}
		return many
	},
}).ParseFS(htmlFiles, "html/dashboard.tmpl"))

var dashboardCSS = func() template.CSS {
	b, err := htmlFiles.ReadFile("html/dashboard.css")
	if err != nil {
		panic(err)
	}
	// Our own embedded stylesheet: trusted, unlike anything in the Run.
	return template.CSS(b)
}()

// WriteHTML writes the compliance dashboard: one self-contained HTML file.
func WriteHTML(w io.Writer, r *Run) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := dashboardTemplate.Execute(bw, dashNewDashboard(r)); err != nil {
		return fmt.Errorf("html dashboard: %w", err)
	}
	return bw.Flush()
}

// dashboard is the Run as the template draws it: every verdict the page
// shows (a chip's colour, a matrix cell, a marker's tier) is decided here,
// in Go, where it is tested, not in the template.
type dashboard struct {
	CSS       template.CSS
	Command   string
	Policy    string
	Profile   string
	Generated time.Time
	Duration  string
	Shard     string
	Status    dashBadge
	// InventoryStatus: the most urgent certificate or key, when the run
	// has an inventory.
	InventoryStatus *dashBadge
	TileGroups      []dashTileGroup
	ProfileDetail   *Profile
	Targets         []*dashTargetView
	// Top: the non-passing checks grouped by check ID and status.
	Top          []dashTopFinding
	Timeline     *dashTimeline
	Certificates []*dashCertView
	// CertTable: the certificates listed in the table — all of them, or
	// for a fleet those that need attention or are in no served chain
	// (CertsInChains counts the rest, drawn in the endpoints' chains).
	CertTable     []*dashCertView
	CertsInChains int
	Keys          []dashKeyView
	// Unreadable: inventory items that could not be read, and items with
	// findings beside their tier.
	InventoryIssues []dashInventoryIssue
	Notes           []inventory.Note
	Inconclusive    []dashInconclusiveView
	// InconclusiveChecks: observations behind the checks (Run.Inconclusive);
	// InconclusiveProbe: what the probe could not tell per endpoint
	// (versions, client-certificate and plaintext attempts).
	InconclusiveChecks int
	InconclusiveProbe  int
	Catalogue          []dashCatalogueEntry
	HasChecks          bool
	Endpoints          int
}

type dashBadge struct{ Class, Text string }

type dashTileGroup struct {
	Label string
	Tiles []dashTile
}

type dashTile struct {
	Label, Value, Class, Note string
}

type dashTargetView struct {
	Anchor       string
	Name, Plugin string
	Location     string
	Status       dashBadge
	Error        string
	Diagnostics  []Diagnostic
	Counts       []dashBadge
	Inconclusive int
	Endpoints    []*dashEndpointView
	Chain        []dashChainRow
	Matrix       *dashMatrix
	Findings     []dashFindingView
	Checks       []dashCheckRow
	CheckCount   int
	Open         bool
}

type dashEndpointView struct {
	Anchor, Name, Address, Dialect, Error string
	Versions                              []dashChip
	Groups                                []dashChip
	GroupsIncomplete                      string
	// NoTLS: every version tried was refused.
	NoTLS        bool
	Trust        dashChip
	Access       []dashAccessRow
	Inconclusive int
}

// dashChip is one observed thing with its verdict; Text always says what the
// colour says (never colour alone).
type dashChip struct {
	Name, Verdict, Text, Title string
}

type dashServedBy struct{ Anchor, Name string }

type dashAccessRow struct {
	Label string
	Chip  dashChip
}

type dashChainRow struct {
	// ServedBy: the target's endpoints that presented it.
	ServedBy   []dashServedBy
	Position   string
	Cert       ChainCert
	DaysLeft   int
	Tier       dashChip
	Unparsable string
}

type dashMatrix struct {
	Endpoints []string
	// Extra: accepted suites the profile does not allow; Allowed: the
	// profile's suites.
	Extra, Allowed []dashMatrixRow
	NoProfile      bool
}

type dashMatrixRow struct {
	Suite, ID, Family string
	Cells             []dashMatrixCell
}

type dashMatrixCell struct {
	Endpoint, Verdict, Text, Title string
}

type dashFindingView struct {
	Anchor   string
	Check    Check
	Status   dashBadge
	Severity dashBadge
	// Catalogue anchor of the check's definition.
	Def string
}

// dashCheckRow is one check ID's verdict with the same evidence on one
// or more subjects: a fleet's endpoints mostly say the same thing, and the
// list stays readable (and small) when it is said once.
type dashCheckRow struct {
	ID, Status string
	Badge      dashBadge
	Evidence   string
	Def        string
	ConfigOnly bool
	Subjects   []dashSubject
}

type dashSubject struct {
	Name string
	// Finding: the anchor of the subject's finding ("" for a pass).
	Finding string
}

type dashTopFinding struct {
	ID, Title, Status string
	Severity          dashBadge
	StatusBadge       dashBadge
	Count             int
	Targets           []string
	First             string
}

type dashCertView struct {
	Key       string
	Subject   string
	Issuer    string
	Serial    string
	PublicKey string
	NotAfter  time.Time
	DaysLeft  int
	days      float64
	Tier      dashChip
	tierRank  int
	inChain   bool
	Sources   []string
}

type dashKeyView struct {
	Target, Name, Where string
	Key                 inventory.Key
	Status              dashChip
	Findings            []string
}

type dashInventoryIssue struct {
	Kind, Target, Where, Text string
}

type dashInconclusiveView struct {
	Target, Subject, What, Evidence, Link string
	Count                                 int
}

type dashCatalogueEntry struct {
	Anchor, ID, Title, Severity, Remediation string
	References                               []string
}

type dashTimeline struct {
	Width, Height  int
	Rows           bool
	ChartX, ChartW float64
	AxisY          float64
	Bands          []dashBand
	Ticks          []dashTick
	NowX           float64
	Markers        []dashMarker
	// Alerts: the alert tiers' names, widest first.
	Alerts []string
}

type dashBand struct {
	X, W  float64
	Class string
	Label string
}

type dashTick struct {
	X     float64
	Label string
}

type dashMarker struct {
	Cert        string
	Tier        string
	X, Y        float64
	BarX, BarW  float64
	LabelY      float64
	DaysX       float64
	Label, Days string
	Title       string
}

// Check status and verdict names the stylesheet colours.
const (
	vOK      = "ok"
	vFail    = "fail"
	vWarn    = "warn"
	vError   = "error"
	vNeutral = "neutral"
	vUnknown = "inconclusive"
)

func dashNewDashboard(r *Run) *dashboard {
	now := r.GeneratedAt
	if now.IsZero() && r.Inventory != nil {
		now = r.Inventory.GeneratedAt
	}
	if now.IsZero() {
		now = time.Now()
	}
	d := &dashboard{CSS: dashboardCSS, Command: r.Command, Policy: r.Policy, Profile: r.Profile, Generated: now,
		Shard: r.Shard, ProfileDetail: r.ProfileDetail}
	if d.Command == "" {
		d.Command = "verify"
	}
	if r.DurationMS > 0 {
		d.Duration = (time.Duration(r.DurationMS * float64(time.Millisecond))).Round(time.Millisecond).String()
	}
	rules := dashRulesOf(r.Inventory)
	certs := dashNewCertIndex(rules, now)
	counts := map[string]int{}
	catalogue := map[string]int{}
	top := map[string]int{}
	for ti := range r.Targets {
		t := &r.Targets[ti]
		tv := d.target(ti, t, r.ProfileDetail, certs, catalogue, top)
		for _, c := range t.Checks {
			counts[c.Status]++
			d.InconclusiveChecks += c.Inconclusive
		}
		for _, e := range t.Endpoints {
			d.InconclusiveProbe += dashProbeInconclusive(e)
		}
		d.Endpoints += len(t.Endpoints)
		d.HasChecks = d.HasChecks || len(t.Checks) > 0
		d.Targets = append(d.Targets, tv)
	}
	slices.SortStableFunc(d.Top, func(a, b dashTopFinding) int {
		return cmp.Or(cmp.Compare(dashStatusRank(a.Status), dashStatusRank(b.Status)),
			cmp.Compare(dashSeverityRank(b.Severity.Text), dashSeverityRank(a.Severity.Text)), cmp.Compare(b.Count, a.Count))
	})
	for _, tv := range d.Targets {
		tv.Open = len(d.Targets) <= 8 || tv.Status.Class != vOK
	}
	if r.Inventory != nil {
		d.inventory(r.Inventory, certs)
	}
	d.Certificates = certs.sorted()
	d.CertTable = d.Certificates
	if len(d.Certificates) > dashCertTableLimit {
		d.CertTable = nil
		for _, c := range d.Certificates {
			if c.inChain && c.Tier.Verdict == vOK {
				d.CertsInChains++
			} else {
				d.CertTable = append(d.CertTable, c)
			}
		}
	}
	d.Timeline = dashNewTimeline(d.Certificates, rules)
	d.Status = dashOverall(counts, r.TargetErrors(), d.HasChecks)
	if r.Inventory != nil {
		b := dashInventoryBadge(r.Inventory)
		if d.HasChecks {
			d.InventoryStatus = &b
		} else {
			d.Status = b
		}
	}
	d.tiles(r, counts)
	return d
}

// dashOverall is the run's verdict: any failure fails it; a check or target
// that could not run is an error, never hidden behind a pass.
func dashOverall(counts map[string]int, targetErrors int, hasChecks bool) dashBadge {
	switch {
	case counts["fail"] > 0:
		return dashBadge{vFail, "FAIL"}
	case counts["error"] > 0 || targetErrors > 0:
		return dashBadge{vError, "ERROR"}
	case counts["warn"] > 0:
		return dashBadge{vWarn, "WARN"}
	case counts["pass"] > 0:
		return dashBadge{vOK, "PASS"}
	case !hasChecks:
		return dashBadge{vNeutral, "NO CHECKS"}
	}
	return dashBadge{vNeutral, "SKIPPED"}
}

func dashInventoryBadge(inv *inventory.Report) dashBadge {
	switch c := inv.Summary.ExitCode; {
	case c == inventory.ExitExpired:
		return dashBadge{vFail, "CERTIFICATES EXPIRED"}
	case c >= inventory.ExitWidestTier:
		return dashBadge{vWarn, "RENEWAL DUE"}
	case c == inventory.ExitIncomplete:
		return dashBadge{vError, "INVENTORY INCOMPLETE"}
	}
	return dashBadge{vOK, "INVENTORY OK"}
}

func (d *dashboard) tiles(r *Run, counts map[string]int) {
	errs := counts["error"] + r.TargetErrors()
	if d.HasChecks || len(r.Targets) > 0 && r.Inventory == nil {
		inconclusive := "observations, apart"
		if d.InconclusiveProbe > 0 {
			inconclusive = fmt.Sprintf("in checks; +%d in scans", d.InconclusiveProbe)
		}
		d.TileGroups = append(d.TileGroups, dashTileGroup{Label: "Checks", Tiles: []dashTile{
			{Label: "Targets", Value: strconv.Itoa(len(r.Targets)), Note: dashPlural(r.TargetErrors(), "in error", "in error"), Class: dashNonzero(r.TargetErrors(), vError)},
			{Label: "Endpoints", Value: strconv.Itoa(d.Endpoints)},
			{Label: "Passed", Value: strconv.Itoa(counts["pass"]), Class: vOK},
			{Label: "Failed", Value: strconv.Itoa(counts["fail"]), Class: dashNonzero(counts["fail"], vFail)},
			{Label: "Warnings", Value: strconv.Itoa(counts["warn"]), Class: dashNonzero(counts["warn"], vWarn)},
			{Label: "Errors", Value: strconv.Itoa(errs), Class: dashNonzero(errs, vError), Note: "could not run"},
			{Label: "Skipped", Value: strconv.Itoa(counts["skip"]), Note: "not applicable"},
			{Label: "Inconclusive", Value: strconv.Itoa(d.InconclusiveChecks), Class: dashNonzero(d.InconclusiveChecks+d.InconclusiveProbe, vUnknown), Note: inconclusive},
			{Label: "Config only", Value: strconv.Itoa(r.configOnly()), Note: "not observed live"},
		}})
	} else {
		d.TileGroups = append(d.TileGroups, dashTileGroup{Label: "Policy", Tiles: []dashTile{{Label: "Targets", Value: strconv.Itoa(len(r.Targets))}}})
	}
	if r.Inventory != nil || len(d.Certificates) > 0 {
		due, expired := 0, 0
		for _, c := range d.Certificates {
			switch c.Tier.Verdict {
			case vFail:
				expired++
			case vWarn, vError:
				due++
			}
		}
		disabled := 0
		for _, k := range d.Keys {
			if k.Status.Verdict != vOK {
				disabled++
			}
		}
		g := dashTileGroup{Label: "Certificates", Tiles: []dashTile{
			{Label: "Certificates", Value: strconv.Itoa(len(d.Certificates)), Note: "distinct"},
			{Label: "Renewal due", Value: strconv.Itoa(due), Class: dashNonzero(due, vWarn), Note: "in an alert tier"},
			{Label: "Expired", Value: strconv.Itoa(expired), Class: dashNonzero(expired, vFail), Note: "or not yet valid"},
		}}
		// Keys are the inventory's (a scan has none to tell).
		if r.Inventory != nil {
			g.Label = "Certificates and keys"
			g.Tiles = append(g.Tiles, dashTile{Label: "Keys", Value: strconv.Itoa(len(d.Keys)), Class: dashNonzero(disabled, vFail),
				Note: dashPlural(disabled, "not rotating", "not rotating")})
		}
		d.TileGroups = append(d.TileGroups, g)
	}
}

// dashPlural: "" for none, else "1 <one>" or "n <many>".
func dashPlural(n int, one, many string) string {
	switch n {
	case 0:
		return ""
	case 1:
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func dashNonzero(n int, class string) string {
	if n > 0 {
		return class
	}
	return ""
}

func dashStatusBadge(s string) dashBadge {
	switch s {
	case "pass":
		return dashBadge{vOK, "PASS"}
	case "fail":
		return dashBadge{vFail, "FAIL"}
	case "warn":
		return dashBadge{vWarn, "WARN"}
	case "error":
		return dashBadge{vError, "ERROR"}
	case "skip":
		return dashBadge{vNeutral, "SKIP"}
	}
	return dashBadge{vNeutral, strings.ToUpper(s)}
}

func dashSeverityBadge(s string) dashBadge {
	return dashBadge{"sev-" + map[string]string{"critical": "critical", "high": "high", "medium": "medium", "low": "low"}[s], s}
}

func dashStatusRank(s string) int {
	return map[string]int{"fail": 0, "error": 1, "warn": 2, "skip": 3, "pass": 4}[s]
}

func dashSeverityRank(s string) int {
	return map[string]int{"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}[s]
}

func (d *dashboard) target(ti int, t *Target, p *Profile, certs *dashCertIndex, catalogue, top map[string]int) *dashTargetView {
	tv := &dashTargetView{Anchor: "t" + strconv.Itoa(ti), Name: t.Name, Plugin: t.Plugin, Error: t.Error}
	if t.Line > 0 {
		tv.Location = d.Policy + ":" + strconv.Itoa(t.Line)
	}
	for _, dg := range t.Diagnostics {
		if dg.Severity == "warning" || dg.Severity == "error" {
			tv.Diagnostics = append(tv.Diagnostics, dg)
		}
	}
	counts := map[string]int{}
	for _, c := range t.Checks {
		counts[c.Status]++
		tv.Inconclusive += c.Inconclusive
	}
	switch {
	case t.Status == "error":
		tv.Status = dashBadge{vError, "TARGET ERROR"}
	default:
		tv.Status = dashOverall(counts, 0, len(t.Checks) > 0)
	}
	for _, s := range []string{"fail", "error", "warn", "pass", "skip"} {
		if counts[s] > 0 {
			b := dashStatusBadge(s)
			b.Text = strconv.Itoa(counts[s]) + " " + strings.ToLower(b.Text)
			tv.Counts = append(tv.Counts, b)
		}
	}
	chains := &dashChains{index: map[string]int{}}
	for ei, e := range t.Endpoints {
		tv.Endpoints = append(tv.Endpoints, dashEndpointOf(tv.Anchor+"e"+strconv.Itoa(ei), t.Name, e, p, certs, chains))
	}
	tv.Chain = chains.rows
	if len(t.Endpoints) > 0 {
		tv.Matrix = dashMatrixOf(t.Endpoints, p)
	}
	// Findings: every check that did not pass, the most urgent first.
	order := make([]int, 0, len(t.Checks))
	for i, c := range t.Checks {
		if c.Status != "pass" {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		ca, cb := t.Checks[a], t.Checks[b]
		return cmp.Or(cmp.Compare(dashStatusRank(ca.Status), dashStatusRank(cb.Status)), cmp.Compare(dashSeverityRank(cb.Severity), dashSeverityRank(ca.Severity)))
	})
	anchors := make([]string, len(t.Checks))
	for _, i := range order {
		c := t.Checks[i]
		anchors[i] = tv.Anchor + "f" + strconv.Itoa(i)
		def := d.define(c, catalogue)
		tv.Findings = append(tv.Findings, dashFindingView{Anchor: anchors[i], Check: c, Status: dashStatusBadge(c.Status),
			Severity: dashSeverityBadge(c.Severity), Def: def})
		key := c.ID + "\x00" + c.Status
		j, ok := top[key]
		if !ok {
			j = len(d.Top)
			top[key] = j
			d.Top = append(d.Top, dashTopFinding{ID: c.ID, Title: c.Title, Status: c.Status, Severity: dashSeverityBadge(c.Severity),
				StatusBadge: dashStatusBadge(c.Status), First: anchors[i]})
		}
		d.Top[j].Count++
		if !slices.Contains(d.Top[j].Targets, t.Name) {
			d.Top[j].Targets = append(d.Top[j].Targets, t.Name)
		}
	}
	rows := map[string]int{}
	for i, c := range t.Checks {
		if c.Inconclusive > 0 {
			d.Inconclusive = append(d.Inconclusive, dashInconclusiveView{Target: t.Name, Subject: c.Subject, What: c.ID,
				Evidence: c.Evidence, Count: c.Inconclusive, Link: anchors[i]})
		}
		def := d.define(c, catalogue)
		key := strings.Join([]string{c.ID, c.Status, c.Evidence, def, strconv.FormatBool(c.ConfigurationOnly)}, "\x00")
		j, ok := rows[key]
		if !ok {
			j = len(tv.Checks)
			rows[key] = j
			tv.Checks = append(tv.Checks, dashCheckRow{ID: c.ID, Status: c.Status, Badge: dashStatusBadge(c.Status), Evidence: c.Evidence,
				Def: def, ConfigOnly: c.ConfigurationOnly})
		}
		tv.Checks[j].Subjects = append(tv.Checks[j].Subjects, dashSubject{Name: c.Subject, Finding: anchors[i]})
	}
	tv.CheckCount = len(t.Checks)
	for ei, e := range t.Endpoints {
		d.probeObservations(t.Name, tv.Endpoints[ei].Anchor, e)
	}
	return tv
}

// define adds the check's definition to the catalogue once: the
// remediation and references are written once, not for every subject. Two
// plugins may define one check ID differently (their own remediation):
// each definition is an entry.
func (d *dashboard) define(c Check, catalogue map[string]int) string {
	key := strings.Join(append([]string{c.ID, c.Title, c.Severity, c.Remediation}, c.References...), "\x00")
	if i, ok := catalogue[key]; ok {
		return d.Catalogue[i].Anchor
	}
	catalogue[key] = len(d.Catalogue)
	e := dashCatalogueEntry{Anchor: "c" + strconv.Itoa(len(d.Catalogue)), ID: c.ID, Title: c.Title, Severity: c.Severity,
		Remediation: c.Remediation, References: c.References}
	d.Catalogue = append(d.Catalogue, e)
	return e.Anchor
}

// dashProbeInconclusive counts what the probe could not tell on an endpoint.
func dashProbeInconclusive(e Endpoint) int {
	n := 0
	for _, v := range e.Versions {
		if v.Outcome == "inconclusive" {
			n++
		}
	}
	if e.NoClientCert == "inconclusive" {
		n++
	}
	if e.Plaintext == "inconclusive" {
		n++
	}
	return n
}

func (d *dashboard) probeObservations(target, anchor string, e Endpoint) {
	add := func(what, evidence string) {
		d.Inconclusive = append(d.Inconclusive, dashInconclusiveView{Target: target, Subject: dashEndpointLabel(e), What: what,
			Evidence: evidence, Count: 1, Link: anchor})
	}
	for _, v := range e.Versions {
		if v.Outcome == "inconclusive" {
			add(v.Version+" handshake", v.Evidence)
		}
	}
	if e.NoClientCert == "inconclusive" {
		add("session without a client certificate", "neither accepted nor refused")
	}
	if e.Plaintext == "inconclusive" {
		add("plaintext session", "neither accepted nor refused")
	}
}

func dashEndpointLabel(e Endpoint) string {
	if e.Name != "" && e.Name != e.Address {
		return e.Name + " " + e.Address
	}
	return e.Address
}

// dashVersionOrder is the order versions are drawn in.
var dashVersionOrder = []string{"SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"}

// dashChains is one target's certificate chains, each certificate once.
type dashChains struct {
	index map[string]int
	rows  []dashChainRow
}

func dashEndpointOf(anchor, target string, e Endpoint, p *Profile, certs *dashCertIndex, chains *dashChains) *dashEndpointView {
	ev := &dashEndpointView{Anchor: anchor, Name: e.Name, Address: e.Address, Dialect: e.Dialect, Error: e.Error,
		GroupsIncomplete: e.GroupsIncomplete, Inconclusive: dashProbeInconclusive(e)}
	// Versions: what was tried, plus the profile's versions never tried.
	seen := map[string]bool{}
	open := false
	for _, v := range e.Versions {
		open = open || v.Outcome == "accepted" || v.Outcome == "inconclusive"
		seen[v.Version] = true
		ev.Versions = append(ev.Versions, dashVersionChip(v, p))
	}
	if p != nil {
		for _, v := range p.Versions {
			if !seen[v] {
				ev.Versions = append(ev.Versions, dashChip{Name: v, Verdict: vUnknown, Text: "not tested", Title: "allowed by the profile; the probe has no outcome for it"})
			}
		}
	}
	// Versions tried and every one refused: the endpoint offers no TLS.
	ev.NoTLS = e.Error == "" && len(e.Versions) > 0 && !open
	slices.SortStableFunc(ev.Versions, func(a, b dashChip) int {
		ia, ib := slices.Index(dashVersionOrder, a.Name), slices.Index(dashVersionOrder, b.Name)
		if ia < 0 {
			ia = len(dashVersionOrder)
		}
		if ib < 0 {
			ib = len(dashVersionOrder)
		}
		return cmp.Compare(ia, ib)
	})
	// Groups: accepted ones judged against the profile, then the
	// profile's groups this endpoint did not accept.
	for _, g := range e.Groups {
		c := dashChip{Name: g, Verdict: vNeutral, Text: "accepted"}
		if p != nil {
			if slices.Contains(p.Groups, g) {
				c.Verdict, c.Text = vOK, "accepted"
			} else {
				c.Verdict, c.Text = vFail, "accepted, not in profile"
			}
		}
		ev.Groups = append(ev.Groups, c)
	}
	// The profile's groups not accepted: only said when some group was
	// (an endpoint without TLS accepts none, and that is said elsewhere).
	if p != nil && len(e.Groups) > 0 {
		for _, g := range p.Groups {
			if !slices.Contains(e.Groups, g) {
				ev.Groups = append(ev.Groups, dashChip{Name: g, Verdict: "absent", Text: "not accepted"})
			}
		}
	}
	// where: the target and endpoint, once when they are one (a scan).
	where := target + " " + dashEndpointLabel(e)
	if target == dashEndpointLabel(e) || target == e.Address {
		where = dashEndpointLabel(e)
	}
	for i, c := range e.Chain {
		pos := "intermediate"
		switch {
		case i == 0:
			pos = "leaf"
		case c.Subject != "" && c.Subject == c.Issuer:
			pos = "root"
		}
		key := "unparsable\x00" + c.SHA256
		row := dashChainRow{Position: pos, Cert: c, Unparsable: c.Unparsable}
		if c.Unparsable == "" {
			key = dashCertKey(c.SHA256, c.Subject, c.Serial, c.NotAfter)
			cv := certs.add(key, c.Subject, c.Issuer, c.Serial, c.Key,
				c.NotBefore, c.NotAfter, "", fmt.Sprintf("served by %s (%s)", where, pos))
			row.DaysLeft, row.Tier = cv.DaysLeft, cv.Tier
			cv.inChain = true
		}
		// The target's chains: each certificate once, with every endpoint
		// that served it (a CA is shared, a leaf mostly is not).
		j, ok := chains.index[key]
		if !ok {
			j = len(chains.rows)
			chains.index[key] = j
			chains.rows = append(chains.rows, row)
		}
		chains.rows[j].ServedBy = append(chains.rows[j].ServedBy, dashServedBy{Anchor: anchor, Name: cmp.Or(e.Name, e.Address)})
	}
	switch {
	case !e.TrustChecked:
		ev.Trust = dashChip{Name: "chain", Verdict: vNeutral, Text: "trust not checked"}
	case e.TrustError != "":
		ev.Trust = dashChip{Name: "chain", Verdict: vFail, Text: "not trusted", Title: e.TrustError}
	default:
		ev.Trust = dashChip{Name: "chain", Verdict: vOK, Text: "trusted"}
	}
	req := dashChip{Name: "client certificate", Verdict: vNeutral, Text: "not requested"}
	if e.ClientCertRequested {
		req = dashChip{Name: "client certificate", Verdict: vOK, Text: "requested"}
	}
	ev.Access = []dashAccessRow{
		{"Client certificate", req},
		{"Session without one", dashOutcomeChip("no client certificate", e.NoClientCert, map[string]dashChip{
			"refused":  {Verdict: vOK, Text: "refused: mTLS enforced"},
			"accepted": {Verdict: vNeutral, Text: "accepted: client certificate optional"},
		})},
		{"Plaintext", dashOutcomeChip("plaintext", e.Plaintext, map[string]dashChip{
			"refused":  {Verdict: vOK, Text: "refused"},
			"accepted": {Verdict: vFail, Text: "accepted"},
		})},
	}
	return ev
}

func dashOutcomeChip(name, outcome string, by map[string]dashChip) dashChip {
	c, ok := by[outcome]
	switch {
	case ok:
	case outcome == "inconclusive":
		c = dashChip{Verdict: vUnknown, Text: "inconclusive"}
	case outcome == "":
		c = dashChip{Verdict: vNeutral, Text: "not attempted"}
	default:
		c = dashChip{Verdict: vUnknown, Text: outcome}
	}
	c.Name = name
	return c
}

func dashVersionChip(v Version, p *Profile) dashChip {
	c := dashChip{Name: v.Version}
	allowed := p != nil && slices.Contains(p.Versions, v.Version)
	switch {
	case v.Outcome == "inconclusive":
		c.Verdict, c.Text = vUnknown, "inconclusive"
	case p == nil:
		c.Verdict, c.Text = vNeutral, v.Outcome
	case v.Outcome == "accepted" && allowed:
		c.Verdict, c.Text = vOK, "accepted"
	case v.Outcome == "accepted":
		c.Verdict, c.Text = vFail, "accepted, not allowed"
	case v.Outcome == "refused" && allowed:
		c.Verdict, c.Text = vNeutral, "refused (allowed)"
	case v.Outcome == "refused":
		c.Verdict, c.Text = vOK, "refused"
	default:
		c.Verdict, c.Text = vUnknown, v.Outcome
	}
	// The server's words, where the verdict is not plain (the passing
	// checks' evidence has them too).
	if c.Verdict == vFail || c.Verdict == vUnknown {
		c.Title = v.Evidence
	}
	if v.SuitesIncomplete != "" {
		c.Title = strings.TrimSpace(c.Title + "; suites incomplete: " + v.SuitesIncomplete)
	}
	return c
}

// dashSuiteFamily: "1.3" for TLS 1.3 suites, "1.2" for the rest (which may
// also be accepted under older versions: the cell lists them).
func dashSuiteFamily(name string) string {
	if s, err := tlsprofile.LookupSuite(name); err == nil {
		if s.TLS13 {
			return "1.3"
		}
		return "≤1.2"
	}
	if strings.HasPrefix(name, "TLS_") && !strings.Contains(name, "_WITH_") {
		return "1.3"
	}
	return "≤1.2"
}

func dashShortVersion(v string) string {
	switch v {
	case "TLSv1":
		return "1.0"
	case "SSLv3":
		return "SSL3"
	}
	return strings.TrimPrefix(v, "TLSv")
}

// dashMatrixOf draws every endpoint's accepted suites against the profile: one
// row per suite of the profile or accepted anywhere, one cell per endpoint.
func dashMatrixOf(eps []Endpoint, p *Profile) *dashMatrix {
	m := &dashMatrix{NoProfile: p == nil}
	accepted := make([]map[string][]string, len(eps))
	extra := map[string]string{}
	for i, e := range eps {
		m.Endpoints = append(m.Endpoints, e.Address)
		accepted[i] = map[string][]string{}
		for _, s := range e.Suites {
			name := s.Name
			if name == "" {
				name = s.ID
			}
			accepted[i][name] = append(accepted[i][name], s.Version)
			if p == nil || !slices.Contains(p.Suites, name) {
				extra[name] = s.ID
			}
		}
	}
	row := func(name, id string, allowed bool) dashMatrixRow {
		r := dashMatrixRow{Suite: name, ID: id, Family: dashSuiteFamily(name)}
		for i, e := range eps {
			c := dashMatrixCell{Endpoint: e.Address}
			vs := accepted[i][name]
			var short []string
			for _, v := range vs {
				short = append(short, dashShortVersion(v))
			}
			switch {
			case len(vs) > 0 && p == nil:
				c.Verdict, c.Text = vNeutral, "● "+strings.Join(short, " ")
			case len(vs) > 0 && allowed:
				c.Verdict, c.Text = vOK, "✓ "+strings.Join(short, " ")
			case len(vs) > 0:
				c.Verdict, c.Text = vFail, "✗ "+strings.Join(short, " ")
				c.Title = "accepted over " + strings.Join(vs, ", ") + "; NOT allowed by the profile"
			case e.Error != "" || dashSuitesUnknown(e, r.Family):
				c.Verdict, c.Text, c.Title = vUnknown, "?", "not enumerated (endpoint error, or the version's suites are incomplete or inconclusive)"
			case allowed:
				c.Verdict, c.Text = "absent", "–"
			default:
				c.Verdict, c.Text = "none", "·"
			}
			r.Cells = append(r.Cells, c)
		}
		return r
	}
	names := make([]string, 0, len(extra))
	for n := range extra {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Or(cmp.Compare(dashSuiteFamily(a), dashSuiteFamily(b)), cmp.Compare(a, b))
	})
	for _, n := range names {
		m.Extra = append(m.Extra, row(n, extra[n], false))
	}
	if p != nil {
		for _, n := range p.Suites {
			id := ""
			if s, err := tlsprofile.LookupSuite(n); err == nil {
				id = tlsprofile.HexID(s.ID)
			}
			m.Allowed = append(m.Allowed, row(n, id, true))
		}
	}
	return m
}

// dashSuitesUnknown: the endpoint's suites of that family could not be fully
// enumerated, so a suite not listed may still be accepted.
func dashSuitesUnknown(e Endpoint, family string) bool {
	for _, v := range e.Versions {
		is13 := v.Version == "TLSv1.3"
		if is13 != (family == "1.3") {
			continue
		}
		if v.SuitesIncomplete != "" || v.Outcome == "inconclusive" {
			return true
		}
	}
	return false
}

// dashRulesOf: the inventory's alert tiers, or the policy defaults.
func dashRulesOf(inv *inventory.Report) inventory.Rules {
	names := []string{"30d", "14d", "7d"}
	renew := "30d"
	if inv != nil && len(inv.AlertAt) > 0 {
		names = inv.AlertAt
		renew = cmp.Or(inv.RenewBefore, renew)
	}
	var alerts []time.Duration
	for _, n := range names {
		if d, err := policy.ParseDuration(n); err == nil {
			alerts = append(alerts, d)
		}
	}
	rb, _ := policy.ParseDuration(renew)
	return inventory.NewRules(rb, alerts)
}

// dashCertIndex gathers every distinct certificate of the run — served chains
// and the inventory's items — once each, with every place it was seen.
type dashCertIndex struct {
	rules inventory.Rules
	now   time.Time
	by    map[string]*dashCertView
	order []*dashCertView
}

func dashNewCertIndex(rules inventory.Rules, now time.Time) *dashCertIndex {
	return &dashCertIndex{rules: rules, now: now, by: map[string]*dashCertView{}}
}

func dashCertKey(sha, subject, serial string, notAfter time.Time) string {
	if sha != "" {
		return sha
	}
	return subject + "\x00" + serial + "\x00" + notAfter.String()
}

func (x *dashCertIndex) add(key, subject, issuer, serial, pub string, notBefore, notAfter time.Time, tier, source string) *dashCertView {
	cv, ok := x.by[key]
	if !ok {
		days := notAfter.Sub(x.now).Hours() / 24
		cv = &dashCertView{Key: key, Subject: subject, Issuer: issuer, Serial: serial, PublicKey: pub, NotAfter: notAfter,
			DaysLeft: int(math.Floor(days)), days: days}
		if tier == "" {
			tier = x.rules.CertificateTier(notBefore, notAfter, x.now)
		}
		cv.Tier, cv.tierRank = x.tierChip(tier)
		x.by[key] = cv
		x.order = append(x.order, cv)
	} else if tier != "" {
		// The inventory judged it (with the policy's own rules): its tier
		// wins when it is more urgent.
		if c, rank := x.tierChip(tier); rank > cv.tierRank {
			cv.Tier, cv.tierRank = c, rank
		}
	}
	if cv.Subject == "" {
		cv.Subject = subject
	}
	if cv.PublicKey == "" {
		cv.PublicKey = pub
	}
	if source != "" && !slices.Contains(cv.Sources, source) {
		cv.Sources = append(cv.Sources, source)
	}
	return cv
}

// tierChip: the tier as a chip and its urgency (higher is more urgent).
func (x *dashCertIndex) tierChip(tier string) (dashChip, int) {
	names := x.rules.TierNames()
	switch tier {
	case inventory.TierOK:
		return dashChip{Name: tier, Verdict: vOK, Text: "ok"}, 0
	case inventory.TierExpired:
		return dashChip{Name: tier, Verdict: vFail, Text: "expired"}, 10
	case inventory.TierNotYetValid:
		return dashChip{Name: tier, Verdict: vFail, Text: "not valid yet"}, 9
	case inventory.TierUnknown:
		return dashChip{Name: tier, Verdict: vUnknown, Text: "unknown"}, 1
	}
	i := slices.Index(names, tier)
	switch {
	case i < 0:
		return dashChip{Name: tier, Verdict: vUnknown, Text: tier}, 1
	case i == len(names)-1:
		return dashChip{Name: tier, Verdict: vError, Text: "≤ " + tier}, 8
	}
	return dashChip{Name: tier, Verdict: vWarn, Text: "≤ " + tier}, 2 + i
}

func (x *dashCertIndex) sorted() []*dashCertView {
	out := slices.Clone(x.order)
	slices.SortStableFunc(out, func(a, b *dashCertView) int { return cmp.Compare(a.days, b.days) })
	return out
}

var dashKindNames = map[string]string{
	inventory.KindServed: "served", inventory.KindServer: "server certificate held", inventory.KindClient: "client certificate held",
	inventory.KindCA: "CA bundle", inventory.KindStoredCA: "stored CA", inventory.KindStoredCertificate: "stored certificate",
	inventory.KindClientIdentity: "client identity",
}

func (d *dashboard) inventory(inv *inventory.Report, certs *dashCertIndex) {
	d.Notes = inv.Notes
	for _, it := range inv.Items {
		where := it.Where
		if it.Name != "" && it.Name != it.Where {
			where = it.Name + " · " + it.Where
		}
		owner := it.Target
		if owner == "" {
			owner = strings.Join(it.Targets, ", ")
		}
		switch {
		case it.Key != nil:
			kv := dashKeyView{Target: owner, Name: it.Name, Where: it.Where, Key: *it.Key, Findings: it.Findings}
			switch it.Tier {
			case inventory.TierOK:
				kv.Status = dashChip{Verdict: vOK, Text: "rotating"}
			case inventory.TierRotationDisabled:
				kv.Status = dashChip{Verdict: vFail, Text: "rotation disabled"}
			case inventory.TierOverdue:
				kv.Status = dashChip{Verdict: vFail, Text: "rotation overdue"}
			default:
				kv.Status = dashChip{Verdict: vUnknown, Text: it.Tier}
			}
			d.Keys = append(d.Keys, kv)
		case it.Certificate != nil:
			c := it.Certificate
			src := cmp.Or(dashKindNames[it.Kind], it.Kind) + " · " + where
			if owner != "" {
				src = owner + ": " + src
			}
			key := dashCertKey(c.SHA256, c.Subject, c.Serial, c.NotAfter)
			// A served leaf the endpoints' chains show already needs no
			// second line saying so.
			if cv, ok := certs.by[key]; ok && cv.inChain && it.Kind == inventory.KindServed {
				src = ""
			}
			certs.add(key, c.Subject, c.Issuer, c.Serial, "", c.NotBefore, c.NotAfter, it.Tier, src)
		}
		if it.Error != "" {
			d.InventoryIssues = append(d.InventoryIssues, dashInventoryIssue{Kind: it.Kind, Target: owner, Where: where, Text: it.Error})
		}
		for _, f := range it.Findings {
			d.InventoryIssues = append(d.InventoryIssues, dashInventoryIssue{Kind: it.Kind, Target: owner, Where: where, Text: f})
		}
	}
}

// dashDayTicks: the timeline's horizontal axis is days left on a
// piecewise scale: each step between ticks is as wide as the next, so the
// alert tiers (7, 14, 30 days) are as readable as the years of a root CA.
var dashDayTicks = []float64{-3650, -1825, -730, -365, -180, -90, -30, -14, -7, 0, 7, 14, 30, 60, 90, 180, 365, 730, 1825, 3650, 7300, 36500}

// dashCertTableLimit: up to this many certificates the table lists all.
const dashCertTableLimit = 100

// dashRowLimit: up to this many certificates get a row with a label; more are
// drawn as stacked markers on one axis.
const dashRowLimit = 40

func dashNewTimeline(certs []*dashCertView, rules inventory.Rules) *dashTimeline {
	if len(certs) == 0 {
		return nil
	}
	lo, hi := -7.0, 90.0
	for _, c := range certs {
		lo, hi = min(lo, c.days), max(hi, c.days)
	}
	var alerts []float64
	for _, n := range rules.TierNames() {
		if d, err := policy.ParseDuration(n); err == nil {
			alerts = append(alerts, d.Hours()/24)
		}
	}
	ticks := slices.Clone(dashDayTicks)
	ticks = append(ticks, alerts...)
	slices.Sort(ticks)
	ticks = slices.Compact(ticks)
	first, last := 0, len(ticks)-1
	for i, t := range ticks {
		if t <= lo {
			first = i
		}
	}
	for i := len(ticks) - 1; i >= 0; i-- {
		if ticks[i] >= hi {
			last = i
		}
	}
	ticks = ticks[first : last+1]
	tl := &dashTimeline{Width: 1100, Rows: len(certs) <= dashRowLimit}
	for _, n := range rules.TierNames() {
		tl.Alerts = append(tl.Alerts, "≤ "+n)
	}
	tl.ChartX, tl.ChartW = 16, 1040
	if tl.Rows {
		tl.ChartX, tl.ChartW = 330, 660
	}
	step := tl.ChartW / float64(len(ticks)-1)
	x := func(days float64) float64 {
		days = min(max(days, ticks[0]), ticks[len(ticks)-1])
		for i := 1; i < len(ticks); i++ {
			if days <= ticks[i] {
				return tl.ChartX + step*(float64(i-1)+(days-ticks[i-1])/(ticks[i]-ticks[i-1]))
			}
		}
		return tl.ChartX + tl.ChartW
	}
	top := 28.0
	if tl.Rows {
		tl.Height = int(top) + 22*len(certs) + 34
	} else {
		tl.Height = 200
	}
	tl.AxisY = float64(tl.Height) - 26
	// Bands: expired, then each alert tier, narrowest (most urgent) first.
	tl.Bands = append(tl.Bands, dashBand{X: x(ticks[0]), W: x(0) - x(ticks[0]), Class: "expired", Label: "expired"})
	prev := 0.0
	for i := len(alerts) - 1; i >= 0; i-- {
		class := "t-warn"
		if i == len(alerts)-1 {
			class = "t-crit"
		}
		tl.Bands = append(tl.Bands, dashBand{X: x(prev), W: x(alerts[i]) - x(prev), Class: class, Label: "≤ " + rules.TierNames()[i]})
		prev = alerts[i]
	}
	for _, t := range ticks {
		tl.Ticks = append(tl.Ticks, dashTick{X: x(t), Label: dashDayLabel(t)})
	}
	tl.NowX = x(0)
	lanes := map[int]int{}
	for i, c := range certs {
		where := c.Sources
		if len(where) > 3 {
			where = append(slices.Clip(where[:3]), fmt.Sprintf("and %d more", len(c.Sources)-3))
		}
		m := dashMarker{Cert: c.Key, Tier: c.Tier.Verdict, X: x(c.days), Days: dashDayCount(c.DaysLeft),
			Title: fmt.Sprintf("%s — not after %s (%s, %s)\n%s", dashOrNone(c.Subject), c.NotAfter.UTC().Format("2006-01-02"),
				dashDayCount(c.DaysLeft), c.Tier.Text, strings.Join(where, "\n"))}
		if tl.Rows {
			m.Y = top + 22*float64(i) + 11
			m.LabelY = m.Y + 4
			m.BarX, m.BarW = min(m.X, tl.NowX), math.Abs(m.X-tl.NowX)
			// An expired certificate's words go right of "now", clear of
			// the labels.
			m.DaysX = max(m.X, tl.NowX) + 10
			m.Label = dashEllipsis(dashOrNone(c.Subject), 30) + " · " + dashEllipsis(dashSourceShort(c.Sources), 18)
		} else {
			bin := int(m.X / 7)
			lane := lanes[bin]
			lanes[bin]++
			m.Y = tl.AxisY - 10 - float64(min(lane, 15))*9
		}
		tl.Markers = append(tl.Markers, m)
	}
	return tl
}

func dashOrNone(s string) string {
	if s == "" {
		return "(no subject)"
	}
	return s
}

func dashSourceShort(sources []string) string {
	if len(sources) == 0 {
		return ""
	}
	s := sources[0]
	if i := strings.Index(s, ":"); i > 0 && !strings.HasPrefix(s, "served by ") {
		s = s[:i]
	}
	s = strings.TrimPrefix(s, "served by ")
	if i := strings.Index(s, " "); i > 0 {
		s = s[:i]
	}
	if len(sources) > 1 {
		s += fmt.Sprintf(" +%d", len(sources)-1)
	}
	return s
}

func dashEllipsis(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func dashDayLabel(d float64) string {
	switch {
	case d == 0:
		return "now"
	case math.Abs(d) >= 365 && math.Mod(d, 365) == 0:
		return strconv.Itoa(int(d/365)) + "y"
	case d != math.Trunc(d):
		return strconv.FormatFloat(d*24, 'f', 0, 64) + "h"
	}
	return strconv.Itoa(int(d)) + "d"
}

func dashDayCount(n int) string {
	switch {
	case n < 0:
		return fmt.Sprintf("expired %d d ago", -n)
	case n == 1:
		return "1 day left"
	}
	return fmt.Sprintf("%d days left", n)
}
