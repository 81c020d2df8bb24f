package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/google/jsonschema-go/jsonschema"
)

// admission checks a request's target blocks against the plugin's declared
// schemas before the plugin sees them. The host has already validated them
// with full diagnostics and positions (package host/internal/schema); this is the
// plugin's own defence, built on google/jsonschema-go because its start-up
// cost is a fraction of a millisecond — plugin launch has a 50 ms budget.
type admission struct {
	name     string
	resolved *jsonschema.Resolved
	// closed top-level properties, for precise unknown-key diagnostics.
	closed bool
	known  []string
}

func newAdmission(name string, doc []byte) (*admission, error) {
	if len(bytes.TrimSpace(doc)) == 0 {
		doc = []byte(`{"type":"object","additionalProperties":false}`)
	}
	var s jsonschema.Schema
	if err := json.Unmarshal(doc, &s); err != nil {
		return nil, fmt.Errorf("%s: not a JSON Schema: %w", name, err)
	}
	r, err := s.Resolve(nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	a := &admission{name: name, resolved: r}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Not != nil {
		a.closed = true // "additionalProperties": false
	}
	for k := range s.Properties {
		a.known = append(a.known, k)
	}
	return a, nil
}

// check validates one block; prefix is "spec" or "connection".
func (a *admission) check(doc []byte, prefix string) Diagnostics {
	if len(bytes.TrimSpace(doc)) == 0 {
		doc = []byte("{}")
	}
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return Diagnostics{{Severity: Error, Source: SourceConfig, Attribute: Path{prefix}, Summary: "not valid JSON", Detail: err.Error()}}
	}
	var diags Diagnostics
	if m, ok := v.(map[string]any); ok && a.closed {
		for k := range m {
			if !slices.Contains(a.known, k) {
				diags = append(diags, Diagnostic{Severity: Error, Source: SourceConfig, Code: "config.unknown_key",
					Attribute: Path{prefix, k}, Summary: fmt.Sprintf("unknown key %q", k)})
			}
		}
		slices.SortFunc(diags, func(x, y Diagnostic) int { return compareStrings(x.Attribute.String(), y.Attribute.String()) })
	}
	if len(diags) > 0 {
		return diags
	}
	if err := a.resolved.Validate(v); err != nil {
		return Diagnostics{{Severity: Error, Source: SourceConfig, Code: "config.invalid", Attribute: Path{prefix},
			Summary: "does not match the plugin's " + a.name, Detail: err.Error()}}
	}
	return nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
