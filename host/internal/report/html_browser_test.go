package report

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The dashboard in a real browser (Debian chromium, headless): nothing is
// loaded from anywhere but the file itself, and the DOM holds the matrix,
// the expiry timeline and every finding of the run it was rendered from.

// chromium finds the browser; without one the test skips, except in CI
// where a missing browser is a failure.
func htmlChromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found (setup.sh installs Debian's chromium): CI must run the dashboard's browser test")
	}
	t.Skip("chromium not installed")
	return ""
}

// browser starts one headless Chromium with the flags this machine needs
// (no background networking: its closed network refuses those
// connections) and a fresh profile.
func htmlBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(htmlChromium(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.UserDataDir(t.TempDir()),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	// Start the browser now, so a broken installation fails here.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// pageLoad is what one page load showed.
type htmlPageLoad struct {
	// Requests: every URL the page asked for (the document included).
	Requests []string
	// Problems: console errors, log errors (a CSP violation is one) and
	// uncaught exceptions.
	Problems []string
}

// open loads file in a new tab of the browser, recording every request
// and every error, then runs do in that tab.
func htmlOpen(t *testing.T, bctx context.Context, file string, do func(ctx context.Context)) htmlPageLoad {
	t.Helper()
	ctx, cancel := chromedp.NewContext(bctx)
	defer cancel()
	var mu sync.Mutex
	var pl htmlPageLoad
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1400, 900)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			pl.Requests = append(pl.Requests, e.Request.URL)
		case *log.EventEntryAdded:
			if e.Entry.Level == log.EntryLevelError || e.Entry.Level == log.EntryLevelWarning {
				pl.Problems = append(pl.Problems, string(e.Entry.Source)+": "+e.Entry.Text)
			}
		case *runtime.EventConsoleAPICalled:
			pl.Problems = append(pl.Problems, "console."+string(e.Type))
		case *runtime.EventExceptionThrown:
			pl.Problems = append(pl.Problems, "exception: "+e.ExceptionDetails.Text)
		}
	}); err != nil {
		t.Fatal(err)
	}
	u := (&url.URL{Scheme: "file", Path: file}).String()
	if err := chromedp.Do(ctx, chromedp.Navigate(u)); err != nil {
		t.Fatalf("open %s: %v", u, err)
	}
	if do != nil {
		do(ctx)
	}
	// Give late requests (a lazy image, a font) time to show up.
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	return pl
}

// assertOnlyFile: the document was requested, and nothing else.
func htmlAssertOnlyFile(t *testing.T, file string, pl htmlPageLoad) {
	t.Helper()
	u := (&url.URL{Scheme: "file", Path: file}).String()
	if !slices.Contains(pl.Requests, u) {
		t.Fatalf("the listener did not see the document itself (%s) among %q: it proves nothing", u, pl.Requests)
	}
	for _, r := range pl.Requests {
		if r != u {
			t.Errorf("the dashboard made a request other than the file: %s", r)
		}
	}
}

// domView is what the test reads back from the page.
type htmlDomView struct {
	Scripts  int `json:"scripts"`
	Overall  string
	Matrices []struct {
		Target  string   `json:"target"`
		Columns []string `json:"columns"`
		Rows    []struct {
			Suite string `json:"suite"`
			Cells []struct {
				Endpoint string `json:"endpoint"`
				Verdict  string `json:"verdict"`
				Text     string `json:"text"`
			} `json:"cells"`
		} `json:"rows"`
	} `json:"matrices"`
	// SameSuites: endpoints whose accepted suites the page draws in an
	// earlier endpoint's column, and that endpoint.
	SameSuites []struct {
		Target      string `json:"target"`
		Endpoint    string `json:"endpoint"`
		RefTarget   string `json:"refTarget"`
		RefEndpoint string `json:"refEndpoint"`
	} `json:"sameSuites"`
	// LabelsCut: timeline labels that start left of the chart's box.
	LabelsCut []string `json:"labelsCut"`
	Markers   []struct {
		Cert   string  `json:"cert"`
		Tier   string  `json:"tier"`
		NoDate bool    `json:"noDate"`
		Width  float64 `json:"w"`
	} `json:"markers"`
	TimelineMarkers string   `json:"timelineMarkers"`
	Overflow        []string `json:"overflow"`
	Scrolling       []string `json:"scrolling"`
	Findings        []struct {
		Target   string `json:"target"`
		Check    string `json:"check"`
		Status   string `json:"status"`
		Evidence string `json:"evidence"`
		// Full: the check and status of the finding drawn in full that a
		// repeat links to (its own for a finding drawn in full).
		Full   string  `json:"full"`
		Height float64 `json:"h"`
	} `json:"findings"`
	Checks []struct {
		Target  string `json:"target"`
		Check   string `json:"check"`
		Status  string `json:"status"`
		Subject string `json:"subject"`
	} `json:"checks"`
}

const htmlReadDOM = `(() => {
  const q = (s, r) => Array.from((r || document).querySelectorAll(s));
  const tl = document.querySelector('svg[data-timeline]');
  const byId = id => document.getElementById(id);
  const tgt = e => (e && e.closest('details.target') || {dataset: {}}).dataset.target || '';
  return {
    scripts: q('script').length,
    Overall: document.querySelector('[data-overall]').textContent,
    matrices: q('table.matrix').map(t => ({
      target: t.dataset.target,
      columns: q('thead th[data-endpoint]', t).map(h => h.dataset.endpoint),
      rows: q('tr[data-suite]', t).map(r => ({suite: r.dataset.suite,
        cells: q('td[data-verdict]', r).map(c => ({verdict: c.dataset.verdict, text: c.textContent,
          endpoint: t.querySelectorAll('thead th')[c.cellIndex].dataset.endpoint}))})),
    })),
    sameSuites: q('[data-same-suites]').map(e => { const tr = e.closest('tr.endpoint'); const ref = byId(e.dataset.sameAs);
      return {target: tgt(e), endpoint: e.dataset.sameSuites || (tr ? tr.dataset.endpoint : ''), refTarget: tgt(ref), refEndpoint: ref ? ref.dataset.endpoint || '' : ''}; }),
    labelsCut: tl ? q('text.lbl', tl).filter(e => e.getBBox().x < 0).map(e => e.textContent) : [],
    markers: q('svg[data-timeline] .marker').map(m => ({cert: m.dataset.cert, tier: m.dataset.tier, noDate: m.hasAttribute('data-no-date'),
      w: m.querySelector('circle') ? m.querySelector('circle').getBoundingClientRect().width : 0})),
    timelineMarkers: tl ? tl.dataset.markers : '',
    overflow: q('body *').filter(e => !e.closest('.scroll') && e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
      .map(e => e.tagName.toLowerCase() + (e.className && e.className.baseVal === undefined ? '.' + e.className : '') + (e.id ? '#' + e.id : '')).slice(0, 12),
    scrolling: q('.scroll').filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.firstElementChild.className + ' in ' + (e.closest('[data-target]') || {dataset: {}}).dataset.target),
    findings: q('article.finding, tr.finding').map(f => { const full = f.dataset.sameAs ? byId(f.dataset.sameAs) : f;
      return {target: tgt(f), check: f.dataset.check, status: f.dataset.status, full: full ? full.dataset.check + ' ' + full.dataset.status : '',
        evidence: full && full.querySelector('dd.ev') ? full.querySelector('dd.ev').textContent : '', h: f.getBoundingClientRect().height}; }),
    checks: q('details.target tr.pass').flatMap(r => q('td.ids > a', r).flatMap(a => q('td.subjs > span', r).map(s =>
      ({target: tgt(r), check: a.textContent, status: 'pass', subject: s.textContent})))),
  };
})()`

func htmlWriteDashboard(t *testing.T, r *Run) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dashboard.html")
	if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestHTMLInChromium(t *testing.T) {
	bctx := htmlBrowser(t)
	runs := map[string]*Run{
		"testenv-after":  htmlLoadRun(t, "testenv-after.json"),
		"testenv-before": htmlLoadRun(t, "testenv-before.json"),
		"synthetic":      htmlSyntheticRun(),
		// Fleets, whose pages refer between targets (rows, matrix
		// columns, findings, shared evidence): no screenshot kept.
		"fleet-pg-before": htmlPGFleet(t, "testenv-before.json", 30),
		"fleet-pg-after":  htmlPGFleet(t, "testenv-after.json", 30),
		"fleet-8x5":       htmlFleetRun(8, 5),
	}
	for name, r := range runs {
		t.Run(name, func(t *testing.T) {
			fleet := strings.HasPrefix(name, "fleet-")
			file := htmlWriteDashboard(t, r)
			var dom htmlDomView
			var shot []byte
			pl := htmlOpen(t, bctx, file, func(ctx context.Context) {
				var err error
				if dom, err = chromedp.Run(ctx, chromedp.Evaluate[htmlDomView](htmlReadDOM)); err != nil {
					t.Fatalf("read the DOM: %v", err)
				}
				if fleet {
					return
				}
				if shot, err = chromedp.Run(ctx, chromedp.FullScreenshot(100)); err != nil {
					t.Fatalf("screenshot: %v", err)
				}
				if dir := os.Getenv("HARDEN_ARTIFACTS_DIR"); dir != "" {
					htmlSectionShots(t, ctx, filepath.Join(dir, "dashboard-"+name))
				}
			})
			htmlAssertOnlyFile(t, file, pl)
			if len(pl.Problems) > 0 {
				t.Errorf("the page logged problems: %q", pl.Problems)
			}
			htmlAssertDOM(t, r, dom)
			if !fleet {
				htmlSaveScreenshot(t, name, shot)
			}
		})
	}
}

// TestHTMLNetworkDetector is the control: with the page's
// Content-Security-Policy removed (so it cannot hide a request by blocking
// it), the dashboard still requests nothing; the same page with one remote
// image added does, and the listener sees it.
func TestHTMLNetworkDetector(t *testing.T) {
	bctx := htmlBrowser(t)
	var b bytes.Buffer
	if err := WriteHTML(&b, htmlSyntheticRun()); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	start := strings.Index(page, `<meta http-equiv="Content-Security-Policy"`)
	if start < 0 {
		t.Fatal("the dashboard has no Content-Security-Policy meta")
	}
	end := start + strings.Index(page[start:], ">") + 1
	noCSP := page[:start] + page[end:]
	dir := t.TempDir()
	plain := filepath.Join(dir, "no-csp.html")
	if err := os.WriteFile(plain, []byte(noCSP), 0o644); err != nil {
		t.Fatal(err)
	}
	htmlAssertOnlyFile(t, plain, htmlOpen(t, bctx, plain, nil))

	// Loopback, port 9 (discard): refused at once, and seen as a request.
	bad := filepath.Join(dir, "with-image.html")
	withImage := strings.Replace(noCSP, "</main>", `<img src="http://127.0.0.1:9/pixel.png" alt=""></main>`, 1)
	if err := os.WriteFile(bad, []byte(withImage), 0o644); err != nil {
		t.Fatal(err)
	}
	pl := htmlOpen(t, bctx, bad, nil)
	if !slices.Contains(pl.Requests, "http://127.0.0.1:9/pixel.png") {
		t.Fatalf("the listener missed the page's remote image: saw %q", pl.Requests)
	}
}

// assertDOM compares the page with the run, computed here independently
// of the dashboard's own code.
func htmlAssertDOM(t *testing.T, r *Run, dom htmlDomView) {
	t.Helper()
	if len(dom.Overflow) > 0 {
		t.Errorf("wider than the window (1400 px): %q", dom.Overflow)
	}
	if len(dom.Scrolling) > 0 {
		t.Logf("tables that scroll sideways at 1400 px: %q", dom.Scrolling)
	}
	if dom.Scripts != 0 {
		t.Errorf("%d <script> elements", dom.Scripts)
	}
	// The suite matrix: per target with endpoints, one column per
	// endpoint whose accepted suites no earlier column showed, one row per
	// suite of the profile or accepted by a column; every other endpoint
	// refers to a column with exactly its accepted suites.
	byTarget := map[string]int{}
	for i, m := range dom.Matrices {
		byTarget[m.Target] = i
	}
	endpointOf := map[[2]string]Endpoint{}
	for _, tg := range r.Targets {
		for _, e := range tg.Endpoints {
			endpointOf[[2]string{tg.Name, e.Address}] = e
		}
	}
	columns := map[[2]string]bool{}
	for _, m := range dom.Matrices {
		for _, c := range m.Columns {
			if columns[[2]string{m.Target, c}] {
				t.Errorf("target %s: endpoint %s has two columns", m.Target, c)
			}
			columns[[2]string{m.Target, c}] = true
		}
	}
	sameAs := map[[2]string][2]string{}
	for _, s := range dom.SameSuites {
		k := [2]string{s.Target, s.Endpoint}
		if _, dup := sameAs[k]; dup {
			t.Errorf("%s %s refers to two columns", s.Target, s.Endpoint)
		}
		sameAs[k] = [2]string{s.RefTarget, s.RefEndpoint}
	}
	accepted := func(e Endpoint) string {
		var l []string
		for _, s := range e.Suites {
			l = append(l, s.Name+"@"+s.Version)
		}
		slices.Sort(l)
		return fmt.Sprint(l, e.Error != "")
	}
	for _, tg := range r.Targets {
		for _, e := range tg.Endpoints {
			k := [2]string{tg.Name, e.Address}
			ref, same := sameAs[k]
			switch {
			case columns[k] && same:
				t.Errorf("%s %s has a column and refers to another", tg.Name, e.Address)
			case columns[k]:
			case !same:
				t.Errorf("%s %s: neither a matrix column nor a reference to one", tg.Name, e.Address)
			case !columns[ref]:
				t.Errorf("%s %s refers to %v, which has no column", tg.Name, e.Address, ref)
			case accepted(endpointOf[ref]) != accepted(e):
				t.Errorf("%s %s refers to %v, whose accepted suites differ: %s, %s", tg.Name, e.Address, ref, accepted(endpointOf[ref]), accepted(e))
			}
		}
		i, ok := byTarget[tg.Name]
		if !ok {
			continue
		}
		m := dom.Matrices[i]
		want := map[string]bool{}
		if r.ProfileDetail != nil {
			for _, s := range r.ProfileDetail.Suites {
				want[s] = true
			}
		}
		for _, c := range m.Columns {
			for _, s := range endpointOf[[2]string{tg.Name, c}].Suites {
				want[s.Name] = true
			}
		}
		got := map[string]bool{}
		for _, row := range m.Rows {
			if got[row.Suite] {
				t.Errorf("target %s: suite %s has two rows", tg.Name, row.Suite)
			}
			got[row.Suite] = true
			if len(row.Cells) != len(m.Columns) {
				t.Errorf("target %s suite %s: %d cells, want one per column (%d)", tg.Name, row.Suite, len(row.Cells), len(m.Columns))
				continue
			}
			allowed := r.ProfileDetail != nil && slices.Contains(r.ProfileDetail.Suites, row.Suite)
			for ci, c := range row.Cells {
				if c.Endpoint != m.Columns[ci] {
					t.Errorf("target %s suite %s: cell %d is for %s, want %s", tg.Name, row.Suite, ci, c.Endpoint, m.Columns[ci])
				}
				e := endpointOf[[2]string{tg.Name, c.Endpoint}]
				var versions []string
				for _, s := range e.Suites {
					if s.Name == row.Suite {
						versions = append(versions, strings.TrimPrefix(s.Version, "TLSv"))
					}
				}
				switch {
				case len(versions) > 0 && allowed:
					if c.Verdict != "ok" {
						t.Errorf("%s %s on %s: accepted and allowed, verdict %q", tg.Name, row.Suite, e.Address, c.Verdict)
					}
				case len(versions) > 0:
					if c.Verdict != "fail" {
						t.Errorf("%s %s on %s: accepted, not allowed, verdict %q", tg.Name, row.Suite, e.Address, c.Verdict)
					}
				default:
					if c.Verdict == "ok" || c.Verdict == "fail" {
						t.Errorf("%s %s on %s: not accepted, verdict %q", tg.Name, row.Suite, e.Address, c.Verdict)
					}
				}
				for _, v := range versions {
					if !strings.Contains(c.Text, v) {
						t.Errorf("%s %s on %s: cell %q does not name TLS %s", tg.Name, row.Suite, e.Address, c.Text, v)
					}
				}
			}
		}
		if len(got) != len(want) {
			t.Errorf("target %s: matrix rows %v, want %v", tg.Name, htmlKeys(got), htmlKeys(want))
		}
		for s := range want {
			if !got[s] {
				t.Errorf("target %s: suite %s has no row", tg.Name, s)
			}
		}
	}
	if len(dom.LabelsCut) > 0 {
		t.Errorf("timeline labels cut at the left: %q", dom.LabelsCut)
	}
	// The timeline: one drawn marker per distinct certificate.
	certs := map[string]time.Time{}
	for _, tg := range r.Targets {
		for _, e := range tg.Endpoints {
			for _, c := range e.Chain {
				if c.Unparsable == "" {
					certs[c.SHA256] = c.NotAfter
				}
			}
		}
	}
	if r.Inventory != nil {
		for _, it := range r.Inventory.Items {
			if it.Certificate != nil {
				certs[it.Certificate.SHA256] = it.Certificate.NotAfter
			}
		}
	}
	seen := map[string]bool{}
	for _, m := range dom.Markers {
		if seen[m.Cert] {
			t.Errorf("certificate %s has two markers", m.Cert)
		}
		seen[m.Cert] = true
		switch {
		case m.NoDate && m.Width > 0:
			t.Errorf("certificate %s has no date, yet a marker", m.Cert)
		case !m.NoDate && m.Width <= 0:
			t.Errorf("certificate %s: marker not drawn", m.Cert)
		}
		na, ok := certs[m.Cert]
		if !ok {
			t.Errorf("marker for %s, which is no certificate of the run", m.Cert)
		}
		if na.Before(r.GeneratedAt) && m.Tier != "fail" {
			t.Errorf("certificate %s expired, marker tier %q (want fail: red)", m.Cert, m.Tier)
		}
	}
	if len(seen) != len(certs) {
		t.Errorf("%d markers, want %d (one per certificate)", len(seen), len(certs))
	}
	// Every finding (every check that did not pass), with its evidence as
	// the text the server gave (a repeat's from the finding it links to,
	// of the same check and status), and every passing check in the list.
	type key struct{ target, check, status, evidence string }
	var wantF, gotF, wantC, gotC []key
	for _, tg := range r.Targets {
		for _, c := range tg.Checks {
			if c.Status == "pass" {
				wantC = append(wantC, key{tg.Name, c.ID, c.Status, cmp.Or(c.Subject, "(no subject)")})
			} else {
				wantF = append(wantF, key{tg.Name, c.ID, c.Status, c.Evidence})
			}
		}
	}
	for _, f := range dom.Findings {
		gotF = append(gotF, key{f.Target, f.Check, f.Status, f.Evidence})
		if f.Height <= 0 {
			t.Errorf("finding %s of %s not visible", f.Check, f.Target)
		}
		if f.Full != f.Check+" "+f.Status {
			t.Errorf("finding %s (%s) of %s links to a finding of %q", f.Check, f.Status, f.Target, f.Full)
		}
	}
	for _, c := range dom.Checks {
		gotC = append(gotC, key{c.Target, c.Check, c.Status, c.Subject})
	}
	cmpKeys := func(a, b key) int {
		return strings.Compare(a.target+a.check+a.status+a.evidence, b.target+b.check+b.status+b.evidence)
	}
	for _, l := range [][]key{wantF, gotF, wantC, gotC} {
		slices.SortFunc(l, cmpKeys)
	}
	if !slices.Equal(wantF, gotF) {
		t.Errorf("findings in the page:\n%v\nwant:\n%v", gotF, wantF)
	}
	if !slices.Equal(wantC, gotC) {
		t.Errorf("passing checks in the page:\n%v\nwant:\n%v", gotC, wantC)
	}
	if len(wantF) == 0 {
		t.Error("the run has no findings: the test proves nothing about them")
	}
}

func htmlKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// saveScreenshot keeps the full-page screenshot as a test artefact, and
// as the README's screenshot with HARDEN_UPDATE_SCREENSHOT=1.
func htmlSaveScreenshot(t *testing.T, name string, shot []byte) {
	t.Helper()
	cfg, err := png.DecodeConfig(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot is no PNG: %v", err)
	}
	if cfg.Width != 1400 || cfg.Height < 900 {
		t.Errorf("screenshot %dx%d, want 1400 wide and the whole page", cfg.Width, cfg.Height)
	}
	dir := os.Getenv("HARDEN_ARTIFACTS_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "dashboard-"+name+".png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%dx%d)", path, cfg.Width, cfg.Height)
	if name == htmlScreenshotRun && os.Getenv("HARDEN_UPDATE_SCREENSHOT") == "1" {
		doc := filepath.Join("..", "..", "..", "docs", "img", "dashboard.png")
		if err := os.MkdirAll(filepath.Dir(doc), 0o755); err != nil {
			t.Fatal(err)
		}
		small, err := htmlShrinkPNG(shot)
		if err != nil {
			t.Fatal(err)
		}
		// The repository refuses files over 1 MB (pre-commit hook).
		if len(small) > 1<<20 {
			t.Fatalf("%s would be %d bytes, over 1 MB", doc, len(small))
		}
		if err := os.WriteFile(doc, small, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("updated %s (%d bytes)", doc, len(small))
		// README's inline image: the top of the same page.
		top, err := htmlCropPNG(shot, htmlTopHeight)
		if err != nil {
			t.Fatal(err)
		}
		if len(top) > 1<<20 {
			t.Fatalf("the top crop would be %d bytes, over 1 MB", len(top))
		}
		topDoc := filepath.Join(filepath.Dir(doc), "dashboard-top.png")
		if err := os.WriteFile(topDoc, top, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("updated %s (%d bytes)", topDoc, len(top))
	}
}

// htmlTopHeight: README shows the dashboard's first this many pixels.
const htmlTopHeight = 1500

// htmlCropPNG: the top height pixels of a screenshot, in full colour (a
// crop is small enough not to need htmlShrinkPNG's palette).
func htmlCropPNG(shot []byte, height int) ([]byte, error) {
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		return nil, err
	}
	b := img.Bounds()
	r := image.Rect(0, 0, b.Dx(), min(height, b.Dy()))
	out := image.NewRGBA(r)
	draw.Draw(out, r, img, b.Min, draw.Src)
	var w bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&w, out); err != nil {
		return nil, err
	}
	return w.Bytes(), nil
}

// htmlShrinkPNG re-encodes a screenshot with the 256 colours it uses most
// (a flat UI needs few; text edges map to the nearest): about a third of
// the size, for the copy kept in the repository.
func htmlShrinkPNG(shot []byte) ([]byte, error) {
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		return nil, err
	}
	b := img.Bounds()
	key := func(c color.Color) uint32 {
		r, g, bl, _ := c.RGBA()
		return (r>>11)<<10 | (g>>11)<<5 | bl>>11
	}
	counts := map[uint32]int{}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			counts[key(img.At(x, y))]++
		}
	}
	keys := make([]uint32, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b uint32) int { return cmp.Or(cmp.Compare(counts[b], counts[a]), cmp.Compare(a, b)) })
	var pal color.Palette
	for _, k := range keys[:min(len(keys), 256)] {
		pal = append(pal, color.RGBA{uint8(k>>10&31)<<3 | 4, uint8(k>>5&31)<<3 | 4, uint8(k&31)<<3 | 4, 255})
	}
	out := image.NewPaletted(b, pal)
	index := map[uint32]uint8{}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := img.At(x, y)
			k := key(c)
			i, ok := index[k]
			if !ok {
				i = uint8(pal.Index(c))
				index[k] = i
			}
			out.SetColorIndex(x, y, i)
		}
	}
	var w bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&w, out); err != nil {
		return nil, err
	}
	return w.Bytes(), nil
}

// htmlScreenshotRun is the run README's screenshot shows: a real testenv
// run before `harden apply`, with its failures.
const htmlScreenshotRun = "testenv-before"

// sectionShots writes one screenshot per section, for reviewing the look.
func htmlSectionShots(t *testing.T, ctx context.Context, prefix string) {
	t.Helper()
	for i, sel := range []string{"header.top", "section.tiles", "#top-findings", "#expiry", "#certificates", "#keys", "#inconclusive", "details.target"} {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		shots, err := chromedp.Run(qctx, chromedp.Nodes(chromedp.CSSAll(sel), chromedp.AtLeast(1)))
		cancel()
		if err != nil {
			t.Logf("find %s: %v", sel, err)
			continue
		}
		for j, n := range shots {
			b, err := chromedp.Run(ctx, chromedp.ScreenshotNodes([]*chromedp.Node{n}, 1))
			if err != nil {
				t.Logf("screenshot %s: %v", sel, err)
				continue
			}
			name := prefix + "-" + strings.Trim(strings.NewReplacer("#", "", ".", "-", " ", "").Replace(sel), "-") + "-" + string(rune('0'+i)) + string(rune('a'+j)) + ".png"
			_ = os.WriteFile(name, b, 0o644)
		}
	}
}
