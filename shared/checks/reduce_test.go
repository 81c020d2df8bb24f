package checks

import (
	"strings"
	"testing"
)

func init() {
	Register(Definition{ID: "test.reduce.strict", Title: "strict", Severity: High},
		Definition{ID: "test.reduce.best_effort", Title: "best effort", Severity: Medium, BestEffort: true},
		Definition{ID: "test.reduce.low", Title: "low", Severity: Low})
}

func TestReduce(t *testing.T) {
	tests := map[string]struct {
		id           string
		obs          []Observation
		status       Status
		inconclusive int
		evidence     string
	}{
		"zero observations":                 {"test.reduce.strict", nil, Error, 0, "zero observations"},
		"all good":                          {"test.reduce.strict", []Observation{Good("a"), Good("b")}, Pass, 0, "a; b"},
		"one bad":                           {"test.reduce.strict", []Observation{Good("a"), Bad("b")}, Fail, 0, "b"},
		"bad beats inconclusive":            {"test.reduce.strict", []Observation{Unknown("x", "timed out"), Bad("b")}, Fail, 1, "timed out"},
		"inconclusive is an error":          {"test.reduce.strict", []Observation{Good("a"), Unknown("x", "reset")}, Error, 1, "not tested: reset"},
		"inconclusive warns if best effort": {"test.reduce.best_effort", []Observation{Unknown("x", "reset")}, Warn, 1, "reset"},
		"unknown without a reason":          {"test.reduce.strict", []Observation{Unknown("x", "")}, Error, 1, "no reason given"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := Reduce(tc.id, "subject", tc.obs...)
			if c.Status != tc.status || c.Inconclusive != tc.inconclusive || !strings.Contains(c.Evidence, tc.evidence) {
				t.Errorf("%s (inconclusive %d): %s", c.Status, c.Inconclusive, c.Evidence)
			}
		})
	}
}

func TestConfigured(t *testing.T) {
	if c := Configured("test.reduce.strict", "s", "authorizer set", true); c.Status != Warn || !c.ConfigurationOnly || !strings.Contains(c.Evidence, "configuration only") {
		t.Errorf("high severity configuration pass: %+v", c)
	}
	if c := Configured("test.reduce.low", "s", "x", true); c.Status != Pass || !c.ConfigurationOnly {
		t.Errorf("low severity configuration pass: %+v", c)
	}
	if c := Configured("test.reduce.strict", "s", "x", false); c.Status != Fail {
		t.Errorf("bad configuration: %+v", c)
	}
	if c := NotApplicable("test.reduce.low", "s", ""); c.Status != Skip || c.Evidence == "" {
		t.Errorf("skip without a reason: %+v", c)
	}
}
