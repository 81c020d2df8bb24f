package report

import (
	"bufio"
	"cmp"
	"embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

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
	if err := dashboardTemplate.Execute(bw, dashNewDashboard(dashVisibleRun(r))); err != nil {
		return fmt.Errorf("html dashboard: %w", err)
	}
	return bw.Flush()
}

// dashInvisible: a character that changes how the text around it reads
// without being seen — the bidirectional embeddings, overrides and
// isolates (U+202A–202E, U+2066–2069), the marks (U+200E/F, U+061C), every
// other format character (zero-width ones, tags, the soft hyphen), the
// line and paragraph separators and the control characters but tab and
// newline. A subject "CN=evil\u202Egro.knab" reads "CN=evilbank.org".
func dashInvisible(r rune) bool {
	switch r {
	case '\t', '\n':
		return false
	case '\u2028', '\u2029':
		return true
	}
	return unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Cc, r)
}

// dashVisible writes every invisible character of s as a visible escape
// (⟨U+202E⟩): what a server said is shown as it is, never as it would
// have it read.
func dashVisible(s string) string {
	if !strings.ContainsFunc(s, dashInvisible) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if dashInvisible(r) {
			fmt.Fprintf(&b, "⟨U+%04X⟩", r)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// dashVisibleRun is a deep copy of r with dashVisible applied to every
// string: the whole run is untrusted text (names, evidence, subjects, file
// paths, the policy's own words), and a copy keeps the caller's run as
// it was. Reflection reaches every field, so a field added later is
// covered without anyone remembering to.
func dashVisibleRun(r *Run) *Run {
	out := reflect.New(reflect.TypeFor[Run]()).Elem()
	dashVisibleCopy(out, reflect.ValueOf(r).Elem())
	v := out.Interface().(Run)
	return &v
}

func dashVisibleCopy(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.String:
		dst.SetString(dashVisible(src.String()))
	case reflect.Struct:
		// The whole value first (unexported fields, a time.Time's), then
		// each exported field deeply.
		dst.Set(src)
		for i := range src.NumField() {
			if src.Type().Field(i).IsExported() {
				dashVisibleCopy(dst.Field(i), src.Field(i))
			}
		}
	case reflect.Slice:
		if src.IsNil() {
			dst.SetZero()
			return
		}
		n := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := range src.Len() {
			dashVisibleCopy(n.Index(i), src.Index(i))
		}
		dst.Set(n)
	case reflect.Pointer:
		if src.IsNil() {
			dst.SetZero()
			return
		}
		n := reflect.New(src.Type().Elem())
		dashVisibleCopy(n.Elem(), src.Elem())
		dst.Set(n)
	case reflect.Map:
		if src.IsNil() {
			dst.SetZero()
			return
		}
		n := reflect.MakeMapWithSize(src.Type(), src.Len())
		for it := src.MapRange(); it.Next(); {
			k, v := reflect.New(src.Type().Key()).Elem(), reflect.New(src.Type().Elem()).Elem()
			dashVisibleCopy(k, it.Key())
			dashVisibleCopy(v, it.Value())
			n.SetMapIndex(k, v)
		}
		dst.Set(n)
	default:
		dst.Set(src)
	}
}

// dashboard is the Run as the template draws it: every verdict the page
// shows (a chip's colour, a matrix cell, a marker's tier) is decided here,
// in Go, where it is tested, not in the template.
//
// A fleet's page stays small (1,000 endpoints in under 5 MB) because
// what is the same is said once: a passing check's evidence shared by
// several targets is listed once for the page (Shared) and linked; a
// check's remediation and references are written in its first finding
// and linked from the others; an endpoint whose accepted suites are an
// earlier endpoint's refers to that one's matrix column, and one whose
// versions, groups and access are an earlier endpoint's refers to its row.
type dashboard struct {
	CSS       template.CSS
	Command   string
	Policy    string
	Profile   string
	Generated time.Time
	Duration  string
	Shard     string
	Status    dashBadge
	// InventoryStatus: the inventory's verdicts (certificates, keys,
	// unreadable items apart), when the run has an inventory.
	InventoryStatus []dashBadge
	TileGroups      []dashTileGroup
	ProfileDetail   *Profile
	Targets         []*dashTargetView
	// TOC: the targets linked at the top — all of them, or for a fleet
	// the first that did not pass (TOCMore counts the others that did
	// not, TOCPassing those that passed).
	TOC        []*dashTargetView
	TOCPassing int
	TOCMore    int
	// Top: the non-passing checks grouped by check ID and status.
	Top          []dashTopFinding
	Trend        *dashTrend
	Timeline     *dashTimeline
	Certificates []*dashCertView
	// CertTable: the certificates listed in the table — all of them, or
	// for a fleet those that need attention or are in no served chain
	// (CertsInChains counts the rest, drawn in the endpoints' chains).
	CertTable     []*dashCertView
	CertsInChains int
	// Unparsable: served certificates whose DER could not be parsed (no
	// dates: listed, never drawn on the timeline); NoDate: certificates
	// without a not-after date (tier unknown, not drawn either).
	Unparsable []*dashCertView
	NoDate     int
	Keys       []dashKeyView
	// InventoryIssues: inventory items that could not be read, and items
	// with findings beside their tier.
	InventoryIssues []dashInventoryIssue
	Notes           []inventory.Note
	Inconclusive    []dashInconclusiveView
	// InconclusiveChecks: observations behind the checks (Run.Inconclusive);
	// InconclusiveProbe: what the probe could not tell per endpoint
	// (Endpoint.Inconclusive, at least what the endpoint's data shows);
	// NotScanned: endpoints that could not be scanned at all (never
	// "every observation was conclusive").
	InconclusiveChecks int
	InconclusiveProbe  int
	NotScanned         int
	Shared             []*dashSharedEvidence
	Catalogue          []dashCatalogueEntry
	HasChecks          bool
	Endpoints          int

	// While building: how many targets have each passing check's
	// evidence, where each definition was first written in full, which
	// endpoint first drew each accepted-suite set and each endpoint row.
	passUse    map[string]int
	sharedAt   map[string]int
	defFull    map[string]string
	matrixAt   map[string]dashServedBy
	endpointAt map[string]dashServedBy
	chainAt    map[string]dashServedBy
	repeatAt   map[string]dashServedBy
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
	// ChainServedBy: the chain table says which endpoint served each
	// certificate (a target with one endpoint needs no column for it).
	ChainServedBy bool
	Matrix        *dashMatrix
	// Findings: the checks that did not pass, drawn in full; Repeats:
	// those whose evidence is word for word an earlier target's finding
	// of the same check, listed with a link to it.
	Findings     []dashFindingView
	Repeats      []dashFindingView
	FindingCount int
	// FullEndpoints: some endpoint row is drawn in full (else the table
	// needs no head).
	FullEndpoints bool
	// Passes: the passing checks (the others are the findings), one row
	// per check ID and evidence, or for evidence the page lists once
	// (Shared), one row per set of subjects with the check IDs linked.
	Passes    []dashCheckRow
	PassCount int
	Open      bool
	// Drawn: the target has a section (checks, endpoints, an error or
	// diagnostics; a target in error always has one).
	Drawn bool
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
	// SameAs: an earlier endpoint of the page showed the same versions,
	// groups, access and trust; the row refers to it instead.
	SameAs *dashServedBy
	// SameSuites: its accepted suites are SameAs's too (the matrix says
	// nothing more of it).
	SameSuites bool
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
	ServedBy []dashServedBy
	// SeenIn: a CA an earlier target's chain table shows in full.
	SeenIn     *dashServedBy
	Position   string
	Cert       ChainCert
	DaysLeft   int
	NoDate     bool
	Tier       dashChip
	Unparsable string
}

type dashMatrix struct {
	Endpoints []string
	// Extra: accepted suites the profile does not allow; Allowed: the
	// profile's suites.
	Extra, Allowed []dashMatrixRow
	NoProfile      bool
	// Same: endpoints whose accepted suites are an earlier column's (of
	// this matrix or an earlier target's), drawn once.
	Same []dashSameSuites
}

type dashSameSuites struct {
	Endpoint string
	As       dashServedBy
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
	// SameAs: the first finding of the same definition, which has the
	// remediation and references written out ("" for that one).
	SameAs string
	// Repeat: the earlier target's finding with the same evidence.
	Repeat *dashServedBy
}

// dashCheckRow is one row of a target's passing checks: one check ID and
// its evidence on one or more subjects, or (Shared) the check IDs whose
// evidence the page lists once, on the same subjects.
type dashCheckRow struct {
	Checks   []dashCheckRef
	Subjects []string
	Evidence string
	Shared   bool
}

type dashCheckRef struct {
	ID, Link   string
	ConfigOnly bool
}

// dashSharedEvidence is one passing check's evidence that several targets
// share, written once.
type dashSharedEvidence struct {
	Anchor, ID, Def, Evidence string
	ConfigOnly                bool
	Subjects, Targets         int
	lastTarget                int
}

type dashTopFinding struct {
	ID, Title, Status string
	Severity          dashBadge
	StatusBadge       dashBadge
	Count             int
	// ConfigOnly: how many of them were read from configuration only.
	ConfigOnly int
	// Targets: the first targets' names; TargetsMore the rest's number.
	Targets     []string
	TargetsMore int
	First       string
	targets     map[string]bool
}

type dashCertView struct {
	Key       string
	Subject   string
	Issuer    string
	Serial    string
	PublicKey string
	NotAfter  time.Time
	// NoDate: the certificate has no not-after date (tier unknown).
	NoDate     bool
	DaysLeft   int
	days       float64
	Tier       dashChip
	tierRank   int
	inChain    bool
	Unparsable string
	Sources    []string
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

// dashTrend is the trend of failing checks over a history (harden report
// --history): one column per run, oldest first.
type dashTrend struct {
	Runs []dashTrendRun
	Rows []dashTrendRow
}

type dashTrendRun struct {
	N    int
	When time.Time
	// Counts: the run's checks by status.
	Pass, Fail, Warn, Skip, Error int
}

type dashTrendRow struct {
	Target, ID, Subject string
	Severity            dashBadge
	Cells               []dashChip
	Trend               dashChip
	Why                 string
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
	Cert       string
	Tier       string
	X, Y       float64
	BarX, BarW float64
	LabelY     float64
	DaysX      float64
	// NoDate: no not-after date: the row has no marker.
	NoDate      bool
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
		Shard: r.Shard, ProfileDetail: r.ProfileDetail, passUse: dashPassUse(r), sharedAt: map[string]int{}, defFull: map[string]string{},
		matrixAt: map[string]dashServedBy{}, endpointAt: map[string]dashServedBy{}, chainAt: map[string]dashServedBy{}, repeatAt: map[string]dashServedBy{}}
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
		for _, ev := range tv.Endpoints {
			d.InconclusiveProbe += ev.Inconclusive
			if ev.Error != "" {
				d.NotScanned++
			}
		}
		d.Endpoints += len(t.Endpoints)
		d.HasChecks = d.HasChecks || len(t.Checks) > 0
		d.Targets = append(d.Targets, tv)
	}
	slices.SortStableFunc(d.Top, func(a, b dashTopFinding) int {
		return cmp.Or(cmp.Compare(dashStatusRank(a.Status), dashStatusRank(b.Status)),
			cmp.Compare(dashSeverityRank(b.Severity.Text), dashSeverityRank(a.Severity.Text)), cmp.Compare(b.Count, a.Count))
	})
	for i := range d.Top {
		d.Top[i].targets = nil
	}
	for _, tv := range d.Targets {
		tv.Open = len(d.Targets) <= 8 || tv.Status.Class != vOK
		switch {
		case !tv.Drawn:
		case len(d.Targets) <= dashTOCLimit:
			d.TOC = append(d.TOC, tv)
		case tv.Status.Class == vOK:
			d.TOCPassing++
		case len(d.TOC) < dashTOCLimit:
			d.TOC = append(d.TOC, tv)
		default:
			d.TOCMore++
		}
	}
	if r.Inventory != nil {
		d.inventory(r.Inventory, certs)
	}
	d.Certificates = certs.sorted()
	d.Unparsable = certs.unparsable
	for _, c := range d.Certificates {
		if c.NoDate {
			d.NoDate++
		}
	}
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
		badges := dashInventoryBadges(r.Inventory, rules)
		if d.HasChecks {
			d.InventoryStatus = badges
		} else {
			d.Status, d.InventoryStatus = badges[0], badges[1:]
		}
	}
	if len(r.History) > 0 {
		d.Trend = dashTrendOf(r)
	}
	d.tiles(r, counts)
	return d
}

// dashTOCLimit: up to this many targets the table of contents links every
// one; a larger fleet's links the first this many that did not pass and
// counts the rest.
const dashTOCLimit = 40

// dashTopTargets: the "Findings by check" table names this many targets
// per check, then counts the rest.
const dashTopTargets = 12

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

// dashUnreadable: the inventory could not read or judge the item (its tier
// unknown or not one of the policy's): the inventory is incomplete there.
func dashUnreadable(it inventory.Item, rules inventory.Rules) bool {
	return it.Error != "" || rules.ExitCode(it.Tier) == inventory.ExitIncomplete ||
		it.Certificate != nil && it.Certificate.NotAfter.IsZero()
}

// dashInventoryBadges: the inventory's verdicts, most urgent first —
// certificates, keys and unreadable items each said apart (one exit code
// would let "renewal due" hide that items could not be read, and call a
// key without rotation a renewal).
func dashInventoryBadges(inv *inventory.Report, rules inventory.Rules) []dashBadge {
	var expired, due, off, overdue, unreadable int
	for _, it := range inv.Items {
		if dashUnreadable(it, rules) {
			unreadable++
			continue
		}
		switch rules.ExitCode(it.Tier) {
		case inventory.ExitOK:
		case inventory.ExitExpired:
			expired++
		default:
			switch it.Tier {
			case inventory.TierRotationDisabled:
				off++
			case inventory.TierOverdue:
				overdue++
			default:
				due++
			}
		}
	}
	var out []dashBadge
	switch {
	case expired > 0:
		out = append(out, dashBadge{vFail, "CERTIFICATES EXPIRED"})
	case due > 0:
		out = append(out, dashBadge{vWarn, "RENEWAL DUE"})
	}
	if overdue > 0 {
		out = append(out, dashBadge{vWarn, "KEY ROTATION OVERDUE"})
	}
	if off > 0 {
		out = append(out, dashBadge{vWarn, "KEY ROTATION DISABLED"})
	}
	if unreadable > 0 {
		out = append(out, dashBadge{vError, fmt.Sprintf("INVENTORY INCOMPLETE: %d UNREADABLE", unreadable)})
	}
	if len(out) == 0 {
		out = append(out, dashBadge{vOK, "INVENTORY OK"})
	}
	return out
}

func (d *dashboard) tiles(r *Run, counts map[string]int) {
	errs := counts["error"] + r.TargetErrors()
	if d.HasChecks || len(r.Targets) > 0 && r.Inventory == nil {
		note := "observations, apart"
		if d.InconclusiveProbe > 0 {
			note = fmt.Sprintf("%d in checks, %d in scans", d.InconclusiveChecks, d.InconclusiveProbe)
		}
		d.TileGroups = append(d.TileGroups, dashTileGroup{Label: "Checks", Tiles: []dashTile{
			{Label: "Targets", Value: strconv.Itoa(len(r.Targets)), Note: dashPlural(r.TargetErrors(), "in error", "in error"), Class: dashNonzero(r.TargetErrors(), vError)},
			{Label: "Endpoints", Value: strconv.Itoa(d.Endpoints), Note: dashPlural(d.NotScanned, "not scanned", "not scanned"), Class: dashNonzero(d.NotScanned, vUnknown)},
			{Label: "Passed", Value: strconv.Itoa(counts["pass"]), Class: vOK},
			{Label: "Failed", Value: strconv.Itoa(counts["fail"]), Class: dashNonzero(counts["fail"], vFail)},
			{Label: "Warnings", Value: strconv.Itoa(counts["warn"]), Class: dashNonzero(counts["warn"], vWarn)},
			{Label: "Errors", Value: strconv.Itoa(errs), Class: dashNonzero(errs, vError), Note: "could not run"},
			{Label: "Skipped", Value: strconv.Itoa(counts["skip"]), Note: "not applicable"},
			{Label: "Inconclusive", Value: strconv.Itoa(d.InconclusiveChecks + d.InconclusiveProbe), Class: dashNonzero(d.InconclusiveChecks+d.InconclusiveProbe+d.NotScanned, vUnknown), Note: note},
			{Label: "Config only", Value: strconv.Itoa(r.configOnly()), Note: "not observed live"},
		}})
	} else {
		d.TileGroups = append(d.TileGroups, dashTileGroup{Label: "Policy", Tiles: []dashTile{{Label: "Targets", Value: strconv.Itoa(len(r.Targets))}}})
	}
	if r.Inventory != nil || len(d.Certificates) > 0 || len(d.Unparsable) > 0 {
		due, expired, unknown := 0, 0, 0
		for _, c := range d.Certificates {
			switch c.Tier.Verdict {
			case vFail:
				expired++
			case vWarn, vError:
				due++
			case vUnknown:
				unknown++
			}
		}
		g := dashTileGroup{Label: "Certificates", Tiles: []dashTile{
			{Label: "Certificates", Value: strconv.Itoa(len(d.Certificates)), Note: "distinct" + dashPrefixed("; ", dashPlural(unknown, "tier unknown", "tier unknown"))},
			{Label: "Renewal due", Value: strconv.Itoa(due), Class: dashNonzero(due, vWarn), Note: "in an alert tier"},
			{Label: "Expired", Value: strconv.Itoa(expired), Class: dashNonzero(expired, vFail), Note: "or not yet valid"},
		}}
		if len(d.Unparsable) > 0 {
			g.Tiles = append(g.Tiles, dashTile{Label: "Unparsable", Value: strconv.Itoa(len(d.Unparsable)), Class: vFail, Note: "served, not readable"})
		}
		// Keys and unreadable items are the inventory's (a scan has none
		// to tell).
		if r.Inventory != nil {
			rules := dashRulesOf(r.Inventory)
			off, unknownKeys := 0, 0
			for _, k := range d.Keys {
				switch k.Status.Verdict {
				case vFail:
					off++
				case vUnknown:
					unknownKeys++
				}
			}
			unreadable := 0
			for _, it := range r.Inventory.Items {
				if dashUnreadable(it, rules) {
					unreadable++
				}
			}
			keyClass := dashNonzero(off, vFail)
			if keyClass == "" {
				keyClass = dashNonzero(unknownKeys, vUnknown)
			}
			g.Label = "Certificates and keys"
			g.Tiles = append(g.Tiles,
				dashTile{Label: "Keys", Value: strconv.Itoa(len(d.Keys)), Class: keyClass,
					Note: strings.Join(slices.DeleteFunc([]string{dashPlural(off, "not rotating", "not rotating"), dashPlural(unknownKeys, "rotation unknown", "rotation unknown")}, func(s string) bool { return s == "" }), "; ")},
				dashTile{Label: "Unreadable", Value: strconv.Itoa(unreadable), Class: dashNonzero(unreadable, vError), Note: map[bool]string{true: "inventory incomplete", false: "inventory items"}[unreadable > 0]})
		}
		d.TileGroups = append(d.TileGroups, g)
	}
}

// dashPrefixed: prefix+s, or "" for an empty s.
func dashPrefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
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

// dashDefKey: what makes two checks one definition (the catalogue entry).
func dashDefKey(c Check) string {
	return strings.Join(append([]string{c.ID, c.Title, c.Severity, c.Remediation}, c.References...), "\x00")
}

// dashPassKey: a passing check's ID, evidence and definition — what makes
// two passes the same but for their subject.
func dashPassKey(c Check) string {
	return strings.Join([]string{dashDefKey(c), c.Evidence, strconv.FormatBool(c.ConfigurationOnly)}, "\x01")
}

// dashPassUse: how many targets have each passing check's evidence.
func dashPassUse(r *Run) map[string]int {
	use := map[string]int{}
	for _, t := range r.Targets {
		seen := map[string]bool{}
		for _, c := range t.Checks {
			if c.Status != "pass" {
				continue
			}
			if k := dashPassKey(c); !seen[k] {
				seen[k] = true
				use[k]++
			}
		}
	}
	return use
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
		// A target in error is always drawn, and always says so.
		if tv.Error == "" {
			tv.Error = "no error message"
		}
	default:
		tv.Status = dashOverall(counts, 0, len(t.Checks) > 0)
	}
	tv.Drawn = len(t.Checks) > 0 || len(t.Endpoints) > 0 || tv.Error != "" || len(tv.Diagnostics) > 0
	for _, s := range []string{"fail", "error", "warn", "pass", "skip"} {
		if counts[s] > 0 {
			b := dashStatusBadge(s)
			b.Text = strconv.Itoa(counts[s]) + " " + strings.ToLower(b.Text)
			tv.Counts = append(tv.Counts, b)
		}
	}
	chains := &dashChains{index: map[string]int{}}
	for ei, e := range t.Endpoints {
		tv.Endpoints = append(tv.Endpoints, d.endpoint(tv.Anchor+"e"+strconv.Itoa(ei), t.Name, e, p, certs, chains))
	}
	tv.Chain, tv.ChainServedBy = chains.rows, len(t.Endpoints) > 1
	for _, ev := range tv.Endpoints {
		tv.FullEndpoints = tv.FullEndpoints || ev.SameAs == nil
	}
	// A CA (not a leaf) an earlier target's chains show: named, its tier
	// shown, the rest referred to.
	for i := range tv.Chain {
		row := &tv.Chain[i]
		if row.Position == "leaf" || row.Unparsable != "" {
			continue
		}
		key := dashCertKey(row.Cert.SHA256, row.Cert.Subject, row.Cert.Serial, row.Cert.NotAfter)
		if at, ok := d.chainAt[key]; ok {
			row.SeenIn = &at
		} else {
			d.chainAt[key] = dashServedBy{Anchor: tv.Anchor, Name: t.Name}
		}
	}
	if len(t.Endpoints) > 0 {
		tv.Matrix = d.matrix(t.Name, tv.Endpoints, t.Endpoints, p)
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
		fv := dashFindingView{Anchor: anchors[i], Check: c, Status: dashStatusBadge(c.Status), Severity: dashSeverityBadge(c.Severity), Def: def}
		// The same check, status and words as an earlier target's
		// finding (a fleet's mostly are): listed, linked to that one.
		rk := strings.Join([]string{def, c.Status, c.Evidence, strconv.FormatBool(c.ConfigurationOnly), strconv.Itoa(c.Inconclusive)}, "\x00")
		if at, ok := d.repeatAt[rk]; ok {
			fv.Repeat = &at
			tv.Repeats = append(tv.Repeats, fv)
		} else {
			if !ok {
				d.repeatAt[rk] = dashServedBy{Anchor: anchors[i], Name: t.Name}
			}
			if c.Remediation != "" || len(c.References) > 0 {
				if first, ok := d.defFull[def]; ok {
					fv.SameAs = first
				} else {
					d.defFull[def] = anchors[i]
				}
			}
			tv.Findings = append(tv.Findings, fv)
		}
		tv.FindingCount++
		key := c.ID + "\x00" + c.Status
		j, ok := top[key]
		if !ok {
			j = len(d.Top)
			top[key] = j
			d.Top = append(d.Top, dashTopFinding{ID: c.ID, Title: c.Title, Status: c.Status, Severity: dashSeverityBadge(c.Severity),
				StatusBadge: dashStatusBadge(c.Status), First: anchors[i], targets: map[string]bool{}})
		}
		tf := &d.Top[j]
		tf.Count++
		if c.ConfigurationOnly {
			tf.ConfigOnly++
		}
		if !tf.targets[t.Name] {
			tf.targets[t.Name] = true
			if len(tf.Targets) < dashTopTargets {
				tf.Targets = append(tf.Targets, t.Name)
			} else {
				tf.TargetsMore++
			}
		}
	}
	for i, c := range t.Checks {
		if c.Inconclusive > 0 {
			d.Inconclusive = append(d.Inconclusive, dashInconclusiveView{Target: t.Name, Subject: c.Subject, What: c.ID,
				Evidence: c.Evidence, Count: c.Inconclusive, Link: anchors[i]})
		}
	}
	d.passes(ti, tv, t, catalogue)
	for ei, e := range t.Endpoints {
		d.probeObservations(t.Name, tv.Endpoints[ei], e)
	}
	return tv
}

// passes lists the target's passing checks: one row per check ID and
// evidence with its subjects; evidence other targets share is written
// once for the page (Shared) and the target's row links to it, one row
// per set of subjects.
func (d *dashboard) passes(ti int, tv *dashTargetView, t *Target, catalogue map[string]int) {
	type group struct {
		c        Check
		key      string
		subjects []string
	}
	var groups []*group
	byKey := map[string]*group{}
	for _, c := range t.Checks {
		if c.Status != "pass" {
			continue
		}
		tv.PassCount++
		k := dashPassKey(c)
		g, ok := byKey[k]
		if !ok {
			g = &group{c: c, key: k}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.subjects = append(g.subjects, cmp.Or(c.Subject, "(no subject)"))
	}
	folded := map[string]int{}
	for _, g := range groups {
		def := d.define(g.c, catalogue)
		ref := dashCheckRef{ID: g.c.ID, Link: "#" + def, ConfigOnly: g.c.ConfigurationOnly}
		if d.passUse[g.key] < 2 {
			tv.Passes = append(tv.Passes, dashCheckRow{Checks: []dashCheckRef{ref}, Subjects: g.subjects, Evidence: g.c.Evidence})
			continue
		}
		si, ok := d.sharedAt[g.key]
		if !ok {
			si = len(d.Shared)
			d.sharedAt[g.key] = si
			d.Shared = append(d.Shared, &dashSharedEvidence{Anchor: "p" + strconv.Itoa(si), ID: g.c.ID, Def: def, Evidence: g.c.Evidence,
				ConfigOnly: g.c.ConfigurationOnly, lastTarget: -1})
		}
		sh := d.Shared[si]
		sh.Subjects += len(g.subjects)
		if sh.lastTarget != ti {
			sh.lastTarget = ti
			sh.Targets++
		}
		ref.Link = "#" + sh.Anchor
		sk := strings.Join(g.subjects, "\x00")
		j, ok := folded[sk]
		if !ok {
			j = len(tv.Passes)
			folded[sk] = j
			tv.Passes = append(tv.Passes, dashCheckRow{Subjects: g.subjects, Shared: true})
		}
		tv.Passes[j].Checks = append(tv.Passes[j].Checks, ref)
	}
}

// define adds the check's definition to the catalogue once: the
// remediation and references are written once, not for every subject. Two
// plugins may define one check ID differently (their own remediation):
// each definition is an entry.
func (d *dashboard) define(c Check, catalogue map[string]int) string {
	key := dashDefKey(c)
	if i, ok := catalogue[key]; ok {
		return d.Catalogue[i].Anchor
	}
	catalogue[key] = len(d.Catalogue)
	e := dashCatalogueEntry{Anchor: "c" + strconv.Itoa(len(d.Catalogue)), ID: c.ID, Title: c.Title, Severity: c.Severity,
		Remediation: c.Remediation, References: c.References}
	d.Catalogue = append(d.Catalogue, e)
	return e.Anchor
}

// dashProbeItems: what the endpoint's data shows the probe could not tell,
// one item each (what, evidence).
func dashProbeItems(e Endpoint) [][2]string {
	var out [][2]string
	for _, v := range e.Versions {
		if v.Outcome == "inconclusive" {
			out = append(out, [2]string{v.Version + " handshake", v.Evidence})
		}
		if v.SuitesIncomplete != "" {
			out = append(out, [2]string{v.Version + " suite enumeration", v.SuitesIncomplete})
		}
	}
	if e.GroupsIncomplete != "" {
		out = append(out, [2]string{"group enumeration", e.GroupsIncomplete})
	}
	if e.NoClientCert == "inconclusive" {
		out = append(out, [2]string{"session without a client certificate", "neither accepted nor refused"})
	}
	if e.Plaintext == "inconclusive" {
		out = append(out, [2]string{"plaintext session", "neither accepted nor refused"})
	}
	return out
}

// dashProbeInconclusive counts what the probe could not tell on an
// endpoint: its own count (Endpoint.Inconclusive, which has what the
// report does not itemize: client-certificate attempts with other
// certificates), at least what the endpoint's data shows, and at least
// one for an endpoint that could not be scanned at all.
func dashProbeInconclusive(e Endpoint) int {
	n := max(e.Inconclusive, len(dashProbeItems(e)))
	if e.Error != "" {
		n = max(n, 1)
	}
	return n
}

func (d *dashboard) probeObservations(target string, ev *dashEndpointView, e Endpoint) {
	add := func(what, evidence string, n int) {
		d.Inconclusive = append(d.Inconclusive, dashInconclusiveView{Target: target, Subject: dashEndpointLabel(e), What: what,
			Evidence: evidence, Count: n, Link: ev.Anchor})
	}
	items := dashProbeItems(e)
	for _, it := range items {
		add(it[0], it[1], 1)
	}
	rest := ev.Inconclusive - len(items)
	switch {
	case e.Error != "":
		add("endpoint not scanned", e.Error, rest)
	case rest > 0:
		add("other probe observations", "counted by the probe (client-certificate attempts, enumerations) without detail in the report", rest)
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

func (d *dashboard) endpoint(anchor, target string, e Endpoint, p *Profile, certs *dashCertIndex, chains *dashChains) *dashEndpointView {
	ev := &dashEndpointView{Anchor: anchor, Name: e.Name, Address: e.Address, Dialect: e.Dialect, Error: e.Error,
		GroupsIncomplete: e.GroupsIncomplete, Inconclusive: dashProbeInconclusive(e)}
	// Versions: what was tried, plus the profile's versions never tried.
	seen := map[string]bool{}
	open, accepted := false, false
	for _, v := range e.Versions {
		open = open || v.Outcome == "accepted" || v.Outcome == "inconclusive"
		accepted = accepted || v.Outcome == "accepted"
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
		row := dashChainRow{Position: pos, Cert: c, Unparsable: c.Unparsable}
		var key string
		if c.Unparsable == "" {
			key = dashCertKey(c.SHA256, c.Subject, c.Serial, c.NotAfter)
			cv := certs.add(key, c.Subject, c.Issuer, c.Serial, c.Key,
				c.NotBefore, c.NotAfter, "", fmt.Sprintf("served by %s (%s)", where, pos))
			row.DaysLeft, row.Tier, row.NoDate = cv.DaysLeft, cv.Tier, cv.NoDate
			cv.inChain = true
		} else {
			key = "unparsable\x00" + c.SHA256
			certs.addUnparsable(c.SHA256, c.Unparsable, fmt.Sprintf("served by %s (%s)", where, pos))
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
	// Nothing observed: the endpoint could not be scanned. Never a
	// refusal, never green.
	notObserved := dashChip{Verdict: vUnknown, Text: "not observed", Title: "the endpoint could not be scanned"}
	named := func(c dashChip, name string) dashChip { c.Name = name; return c }
	switch {
	case e.Error != "":
		ev.Trust = named(notObserved, "chain")
	case !e.TrustChecked:
		ev.Trust = dashChip{Name: "chain", Verdict: vNeutral, Text: "trust not checked"}
	case e.TrustError != "":
		ev.Trust = dashChip{Name: "chain", Verdict: vFail, Text: "not trusted", Title: e.TrustError}
	default:
		ev.Trust = dashChip{Name: "chain", Verdict: vOK, Text: "trusted"}
	}
	// Whether a client certificate was requested is only known from a
	// handshake that got that far.
	var req dashChip
	switch {
	case e.Error != "":
		req = notObserved
	case e.ClientCertRequested:
		req = dashChip{Verdict: vOK, Text: "requested"}
	case accepted:
		req = dashChip{Verdict: vNeutral, Text: "not requested"}
	case ev.NoTLS:
		req = dashChip{Verdict: vNeutral, Text: "no TLS handshake"}
	default:
		req = dashChip{Verdict: vUnknown, Text: "not observed", Title: "no handshake was accepted"}
	}
	req.Name = "client certificate"
	if e.Error != "" {
		ev.Access = []dashAccessRow{{"Client certificate", req}, {"Session without one", named(notObserved, "no client certificate")},
			{"Plaintext", named(notObserved, "plaintext")}}
	} else {
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
	}
	// The same versions, groups, access and trust as an endpoint drawn
	// before: said once, referred to here. An endpoint in error keeps its
	// own row (its error is its own).
	if e.Error == "" {
		key := dashEndpointSignature(ev)
		if at, ok := d.endpointAt[key]; ok {
			ev.SameAs = &at
		} else {
			d.endpointAt[key] = dashServedBy{Anchor: anchor, Name: dashJoinName(target, dashEndpointLabel(e))}
		}
	}
	return ev
}

// dashJoinName: "target endpoint", or the endpoint alone when it names the
// target (a scan).
func dashJoinName(target, endpoint string) string {
	if target == endpoint || strings.HasSuffix(endpoint, " "+target) {
		return endpoint
	}
	return target + " · " + endpoint
}

// dashEndpointSignature is everything an endpoint row shows but its name,
// address and chain.
func dashEndpointSignature(ev *dashEndpointView) string {
	var b strings.Builder
	chip := func(c dashChip) {
		b.WriteString(c.Name + "\x00" + c.Verdict + "\x00" + c.Text + "\x00" + c.Title + "\x01")
	}
	for _, c := range ev.Versions {
		chip(c)
	}
	b.WriteString("\x02")
	for _, c := range ev.Groups {
		chip(c)
	}
	b.WriteString("\x02" + ev.GroupsIncomplete + "\x02")
	for _, a := range ev.Access {
		chip(a.Chip)
	}
	chip(ev.Trust)
	fmt.Fprintf(&b, "\x02%t\x02%d", ev.NoTLS, ev.Inconclusive)
	return b.String()
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

// dashSuiteSignature is what an endpoint's matrix column shows: its
// accepted suites with their versions, which families could not be
// enumerated, and whether it could be scanned at all.
func dashSuiteSignature(e Endpoint) string {
	var parts []string
	for _, s := range e.Suites {
		parts = append(parts, cmp.Or(s.Name, s.ID)+"@"+s.Version)
	}
	slices.Sort(parts)
	return fmt.Sprintf("%s|%t|%t|%t", strings.Join(parts, ","), e.Error != "", dashSuitesUnknown(e, "1.3"), dashSuitesUnknown(e, "≤1.2"))
}

// matrix draws the target's endpoints' accepted suites against the
// profile: one row per suite of the profile or accepted by a drawn
// column, one column per endpoint — but an endpoint whose column would
// be an earlier one's (of this target or an earlier) refers to it.
func (d *dashboard) matrix(target string, views []*dashEndpointView, all []Endpoint, p *Profile) *dashMatrix {
	m := &dashMatrix{NoProfile: p == nil}
	var eps []Endpoint
	for i, e := range all {
		sig := dashSuiteSignature(e)
		if at, ok := d.matrixAt[sig]; ok {
			if s := views[i].SameAs; s != nil && s.Anchor == at.Anchor {
				views[i].SameSuites = true
			} else {
				m.Same = append(m.Same, dashSameSuites{Endpoint: e.Address, As: at})
			}
			continue
		}
		d.matrixAt[sig] = dashServedBy{Anchor: views[i].Anchor, Name: dashJoinName(target, e.Address)}
		eps = append(eps, e)
	}
	switch {
	case len(eps) == 0 && len(m.Same) == 0:
		// Every endpoint's row says whose suites it has.
		return nil
	case len(eps) == 0:
		return m
	}
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
	rules      inventory.Rules
	now        time.Time
	by         map[string]*dashCertView
	order      []*dashCertView
	unparsable []*dashCertView
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
	// No not-after date (zero): nothing can be said of its expiry — the
	// tier is unknown whatever the source says, and it has no place on
	// the timeline.
	if notAfter.IsZero() {
		tier = inventory.TierUnknown
	}
	cv, ok := x.by[key]
	if !ok {
		cv = &dashCertView{Key: key, Subject: subject, Issuer: issuer, Serial: serial, PublicKey: pub, NotAfter: notAfter, NoDate: notAfter.IsZero()}
		if !cv.NoDate {
			cv.days = notAfter.Sub(x.now).Hours() / 24
			cv.DaysLeft = int(math.Floor(cv.days))
		}
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

// addUnparsable records a served certificate whose DER could not be
// parsed: it has no dates, so it is counted and listed, never drawn.
func (x *dashCertIndex) addUnparsable(sha, reason, source string) {
	key := "unparsable\x00" + sha
	cv, ok := x.by[key]
	if !ok {
		cv = &dashCertView{Key: key, Serial: sha, Unparsable: reason, NoDate: true,
			Tier: dashChip{Verdict: vFail, Text: "unparsable", Title: reason}, tierRank: 11}
		x.by[key] = cv
		x.unparsable = append(x.unparsable, cv)
	}
	if !slices.Contains(cv.Sources, source) {
		cv.Sources = append(cv.Sources, source)
	}
}

// tierChip: the tier as a chip and its urgency (higher is more urgent).
// A tier that is not one of these rules' is unknown, never ok.
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

// sorted: the certificates by days left, those without a date last.
func (x *dashCertIndex) sorted() []*dashCertView {
	out := slices.Clone(x.order)
	slices.SortStableFunc(out, func(a, b *dashCertView) int {
		return cmp.Or(cmp.Compare(boolInt(a.NoDate), boolInt(b.NoDate)), cmp.Compare(a.days, b.days))
	})
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
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
			case inventory.TierUnknown:
				kv.Status = dashChip{Verdict: vUnknown, Text: "rotation unknown"}
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

// dashTrendOf: the trend of failing checks over the run's history.
func dashTrendOf(r *Run) *dashTrend {
	tr := &dashTrend{}
	for i, s := range r.History {
		tr.Runs = append(tr.Runs, dashTrendRun{N: i + 1, When: s.GeneratedAt, Pass: s.Summary["pass"], Fail: s.Summary["fail"],
			Warn: s.Summary["warn"], Skip: s.Summary["skip"], Error: s.Summary["error"] + s.Summary["target_error"]})
	}
	for _, row := range r.Trend() {
		v := dashTrendRow{Target: row.Target, ID: row.ID, Subject: row.Subject, Severity: dashSeverityBadge(row.Severity), Why: row.Why}
		for i, f := range row.Failing {
			c := dashChip{Name: "run " + strconv.Itoa(i+1), Verdict: "none", Text: "·", Title: "not failing"}
			if f {
				c.Verdict, c.Text, c.Title = vFail, "✗", "failing"
			}
			v.Cells = append(v.Cells, c)
		}
		switch row.Trend {
		case "new":
			v.Trend = dashChip{Name: row.Trend, Verdict: vFail, Text: "new"}
		case "failing":
			v.Trend = dashChip{Name: row.Trend, Verdict: vFail, Text: "still failing"}
		case "fixed":
			v.Trend = dashChip{Name: row.Trend, Verdict: vOK, Text: "fixed"}
		default:
			// "unknown", and anything else: never a fix.
			v.Trend = dashChip{Name: cmp.Or(row.Trend, "unknown"), Verdict: vUnknown, Text: "unknown"}
		}
		tr.Rows = append(tr.Rows, v)
	}
	return tr
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

// dashLabelWidth: the room for a timeline row's label, left of the chart
// (in the SVG's units: 12 px text).
const dashLabelWidth = 300.0

func dashNewTimeline(certs []*dashCertView, rules inventory.Rules) *dashTimeline {
	if len(certs) == 0 {
		return nil
	}
	// The axis spans the certificates that have a date.
	lo, hi := -7.0, 90.0
	for _, c := range certs {
		if !c.NoDate {
			lo, hi = min(lo, c.days), max(hi, c.days)
		}
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
		if c.NoDate && !tl.Rows {
			// No date, no place on a strip; the caption counts them.
			continue
		}
		// A strip's markers are many: their titles name one place each.
		where, places := c.Sources, 3
		if !tl.Rows {
			places = 1
		}
		if len(where) > places {
			where = append(slices.Clip(where[:places]), fmt.Sprintf("and %d more", len(c.Sources)-places))
		}
		notAfter, days := "unknown", "not after: unknown"
		if !c.NoDate {
			notAfter, days = c.NotAfter.UTC().Format("2006-01-02"), dashDayCount(c.DaysLeft)
		}
		m := dashMarker{Cert: c.Key, Tier: c.Tier.Verdict, NoDate: c.NoDate, Days: days,
			Title: fmt.Sprintf("%s — not after %s (%s, %s)\n%s", dashOrNone(c.Subject), notAfter, days, c.Tier.Text, strings.Join(where, "\n"))}
		if !c.NoDate {
			m.X = x(c.days)
		}
		if tl.Rows {
			m.Y = top + 22*float64(i) + 11
			m.LabelY = m.Y + 4
			if c.NoDate {
				m.DaysX = tl.ChartX + 10
			} else {
				m.BarX, m.BarW = min(m.X, tl.NowX), math.Abs(m.X-tl.NowX)
				// An expired certificate's words go right of "now", clear
				// of the labels.
				m.DaysX = max(m.X, tl.NowX) + 10
			}
			m.Label = dashRowLabel(dashOrNone(c.Subject), dashSourceShort(c.Sources))
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

// dashRowLabel fits "subject · source" into the room left of the chart: the
// source gets up to a third, the subject the rest, each cut with an
// ellipsis (the marker's title has both in full).
func dashRowLabel(subject, source string) string {
	const sep = " · "
	src := dashFit(source, dashLabelWidth/3)
	room := dashLabelWidth - dashTextWidth(sep) - dashTextWidth(src)
	if source == "" {
		return dashFit(subject, dashLabelWidth)
	}
	return dashFit(subject, room) + sep + src
}

// dashFit cuts s (with an ellipsis) to at most width units of 12 px text.
func dashFit(s string, width float64) string {
	if dashTextWidth(s) <= width {
		return s
	}
	r := []rune(s)
	ell := dashTextWidth("…")
	for len(r) > 0 && dashTextWidth(string(r))+ell > width {
		r = r[:len(r)-1]
	}
	return string(r) + "…"
}

// dashTextWidth estimates the width of s in 12 px sans-serif text, on the
// wide side (DejaVu Sans, Debian's default, is wider than most): the
// labels must fit whatever font the reader has.
func dashTextWidth(s string) float64 {
	w := 0.0
	for _, r := range s {
		switch {
		case strings.ContainsRune("iljtfrI.,:;'|!()[] ", r):
			w += 4.4
		case r == 'm' || r == 'w' || r == 'M' || r == 'W' || r == '@' || r == '%':
			w += 11
		case r >= 'A' && r <= 'Z':
			w += 8.6
		case r >= '0' && r <= '9' || r >= 'a' && r <= 'z':
			w += 7.6
		case r < 0x80:
			w += 8.6
		case r < 0x2E80:
			w += 9.5
		default:
			// CJK and the like: a full em.
			w += 12.5
		}
	}
	return w
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
