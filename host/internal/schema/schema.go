// Package schema validates JSON documents against JSON Schema 2020-12 with
// santhosh-tekuri/jsonschema and reports every violation as a config
// diagnostic whose attribute path points at the offending key — the host
// maps those paths to file:line:column in the policy. It is the host's and
// sdktest's validator; plugin binaries do not link it (its start-up cost
// would eat the plugin launch budget), the SDK admits requests with a
// lighter validator of its own.
package schema

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/harden-dev/harden/shared/sdk"
)

type (
	// Diagnostic and friends are the SDK's, so plugin and host report alike.
	Diagnostic  = sdk.Diagnostic
	Diagnostics = sdk.Diagnostics
	Path        = sdk.Path
)

const (
	errorSev     = sdk.Error
	sourceConfig = sdk.SourceConfig
)

// Schema is a compiled JSON Schema (2020-12 unless the document says otherwise).
type Schema struct {
	name     string
	compiled *jsonschema.Schema
}

// CompileSchema compiles doc and checks it against its metaschema. name is a
// label used in errors ("postgres spec schema").
func Compile(name string, doc []byte) (*Schema, error) {
	if len(bytes.TrimSpace(doc)) == 0 {
		doc = []byte(`{"type":"object","additionalProperties":false}`)
	}
	parsed, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return nil, fmt.Errorf("%s: not JSON: %w", name, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	url := "harden:///" + strings.ReplaceAll(name, " ", "-") + ".json"
	if err := c.AddResource(url, parsed); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("%s is not a valid JSON Schema: %w", name, err)
	}
	return &Schema{name: name, compiled: s}, nil
}

var printer = message.NewPrinter(language.English)

// Validate checks a JSON document against the schema. Every violation becomes
// a config diagnostic whose attribute path starts with prefix and points at the
// offending key (for unknown keys, the key itself).
func (s *Schema) Validate(doc []byte, prefix Path) Diagnostics {
	if len(bytes.TrimSpace(doc)) == 0 {
		doc = []byte("{}")
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return Diagnostics{{Severity: errorSev, Source: sourceConfig, Attribute: prefix, Summary: "not valid JSON", Detail: err.Error()}}
	}
	return s.ValidateValue(inst, prefix)
}

// ValidateValue validates an already decoded value (maps, slices, json.Number,
// strings, bools, nil).
func (s *Schema) ValidateValue(inst any, prefix Path) Diagnostics {
	err := s.compiled.Validate(inst)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return Diagnostics{{Severity: errorSev, Source: sourceConfig, Attribute: prefix, Summary: err.Error()}}
	}
	var out Diagnostics
	collectLeaves(ve, prefix, &out)
	// Stable order: by path, then summary.
	slices.SortStableFunc(out, func(a, b Diagnostic) int {
		if c := strings.Compare(a.Attribute.String(), b.Attribute.String()); c != 0 {
			return c
		}
		return strings.Compare(a.Summary, b.Summary)
	})
	return slices.CompactFunc(out, func(a, b Diagnostic) bool {
		return a.Attribute.String() == b.Attribute.String() && a.Summary == b.Summary
	})
}

func collectLeaves(ve *jsonschema.ValidationError, prefix Path, out *Diagnostics) {
	if len(ve.Causes) > 0 {
		for _, c := range ve.Causes {
			collectLeaves(c, prefix, out)
		}
		return
	}
	path := append(slices.Clone(prefix), ve.InstanceLocation...)
	switch k := ve.ErrorKind.(type) {
	case *kind.AdditionalProperties:
		for _, p := range k.Properties {
			*out = append(*out, Diagnostic{Severity: errorSev, Source: sourceConfig, Code: "config.unknown_key",
				Attribute: append(slices.Clone(path), p), Summary: fmt.Sprintf("unknown key %q", p)})
		}
	case *kind.Required:
		for _, m := range k.Missing {
			*out = append(*out, Diagnostic{Severity: errorSev, Source: sourceConfig, Code: "config.missing_key",
				Attribute: path, Summary: fmt.Sprintf("missing required key %q", m)})
		}
	case *kind.Type:
		*out = append(*out, Diagnostic{Severity: errorSev, Source: sourceConfig, Code: "config.wrong_type",
			Attribute: path, Summary: fmt.Sprintf("wrong type: got %s, want %s", k.Got, strings.Join(k.Want, " or "))})
	// The library's messages for these quote the value, which may be a
	// secret written in the wrong place: say what was expected instead.
	case *kind.Pattern:
		*out = append(*out, Diagnostic{Severity: errorSev, Source: sourceConfig, Code: "config.invalid",
			Attribute: path, Summary: fmt.Sprintf("does not match pattern %q", k.Want)})
	case *kind.Format:
		*out = append(*out, Diagnostic{Severity: errorSev, Source: sourceConfig, Code: "config.invalid",
			Attribute: path, Summary: fmt.Sprintf("is not a valid %s", k.Want)})
	default:
		*out = append(*out, Diagnostic{Severity: errorSev, Source: sourceConfig, Code: "config.invalid",
			Attribute: path, Summary: ve.ErrorKind.LocalizedString(printer)})
	}
}
