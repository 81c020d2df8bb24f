package report

import (
	"strings"
	"testing"

	"github.com/harden-dev/harden/shared/sdk"
)

// TestEndpointsDistrustsThePlugin: unknown outcomes become inconclusive
// (never a refusal nobody observed), negative counts 0, oversized lists
// and texts are cut — each said in the problems.
func TestEndpointsDistrustsThePlugin(t *testing.T) {
	in := []sdk.EndpointScan{{Name: "a", Address: "127.0.0.1:1", Plaintext: "REFUSED!", NoClientCert: "", Inconclusive: -3,
		Versions: []sdk.VersionObservation{{Version: "TLSv1", Outcome: "nope"}, {Version: "TLSv1.2", Outcome: "accepted"}},
		Suites:   make([]sdk.SuiteObservation, maxSuites+5), Groups: []string{strings.Repeat("g", 3*maxText)}}}
	out, problems := Endpoints(in)
	e := out[0]
	if e.Plaintext != "inconclusive" || e.NoClientCert != "" || e.Inconclusive != 0 {
		t.Errorf("plaintext %q, no client cert %q, inconclusive %d", e.Plaintext, e.NoClientCert, e.Inconclusive)
	}
	if e.Versions[0].Outcome != "inconclusive" || e.Versions[1].Outcome != "accepted" {
		t.Errorf("versions %+v", e.Versions)
	}
	if len(e.Suites) != maxSuites || len(e.Groups[0]) > maxText+len("…") {
		t.Errorf("%d suites, group of %d bytes", len(e.Suites), len(e.Groups[0]))
	}
	joined := strings.Join(problems, "\n")
	for _, want := range []string{`plaintext session: unknown outcome "REFUSED!"`, `TLSv1: unknown outcome "nope"`, "negative inconclusive count -3", "suites, only the first 512 kept"} {
		if !strings.Contains(joined, want) {
			t.Errorf("problems do not say %q:\n%s", want, joined)
		}
	}
	if _, problems := Endpoints([]sdk.EndpointScan{{Address: "x", Plaintext: "refused", Versions: []sdk.VersionObservation{{Version: "TLSv1.3", Outcome: "refused"}}}}); len(problems) != 0 {
		t.Errorf("valid scan flagged: %v", problems)
	}
}

// FuzzEndpoints: whatever a plugin sends, every outcome in the report is
// one of the known ones and every list within its limit.
func FuzzEndpoints(f *testing.F) {
	f.Add("accepted", "refused", "", 3, 2)
	f.Add("x\x00y", "inconclusive", "weird", -1, 700)
	f.Fuzz(func(t *testing.T, version, plaintext, noCert string, inconclusive, suites int) {
		suites = max(0, min(suites, 2000))
		out, _ := Endpoints([]sdk.EndpointScan{{Address: "a", Plaintext: plaintext, NoClientCert: noCert, Inconclusive: inconclusive,
			Versions: []sdk.VersionObservation{{Version: version, Outcome: version}}, Suites: make([]sdk.SuiteObservation, suites)}})
		e := out[0]
		for _, o := range []string{e.Plaintext, e.NoClientCert} {
			if o != "" && !outcomes[o] {
				t.Fatalf("outcome %q", o)
			}
		}
		if !outcomes[e.Versions[0].Outcome] || e.Inconclusive < 0 || len(e.Suites) > maxSuites {
			t.Fatalf("endpoint %+v", e.Versions[0])
		}
		if (plaintext == "accepted" || plaintext == "refused") && e.Plaintext != plaintext {
			t.Fatalf("a valid outcome was changed: %q -> %q", plaintext, e.Plaintext)
		}
	})
}
