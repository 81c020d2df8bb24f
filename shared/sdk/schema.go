package sdk

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/google/jsonschema-go/jsonschema"
)

// SchemaFor derives the JSON Schema (2020-12) of a plugin's connection or
// spec block from its Go type, so that the type the plugin decodes into is
// the one source of truth for what the host accepts and what an editor
// completes. google/jsonschema-go's For maps the Go types (every struct
// closed with additionalProperties: false, maps of string keys, slices);
// SchemaFor then makes the result say what a policy may write:
//
//   - a nil slice, map or pointer is not a value a policy may write, so the
//     "null" the library allows for them is removed (every property is
//     exactly the type the plugin decodes);
//   - no property is required unless its field says so (the library requires
//     every field without omitempty; harden's fields are optional by default);
//   - the struct tag jsonschema:"..." is the property's description;
//   - the struct tag schema:"..." carries the constraints, comma-separated:
//     required, minLength=N, maxLength=N, minimum=N, maximum=N, minItems=N,
//     maxItems=N, enum=a|b|c, default=V (a string for a string field, JSON
//     otherwise) and pattern=RE. A keyword with the prefix "items." applies
//     to the elements of a slice (items.pattern=RE, items.minLength=1).
//     pattern and items.pattern come last: their value is the rest of the
//     tag, commas included. An unknown keyword is an error, not ignored.
//   - a type that implements [SchemaExtender] adjusts its own schema after
//     the tags, for what tags cannot say (oneOf, anyOf, dependentRequired).
//
// title names the block in editors ("PostgreSQL connection").
func SchemaFor[T any](title string) ([]byte, error) {
	t := reflect.TypeFor[T]()
	s, err := jsonschema.For[T](nil)
	if err != nil {
		return nil, fmt.Errorf("schema of %s: %w", t, err)
	}
	if err := refine(t, s); err != nil {
		return nil, fmt.Errorf("schema of %s: %w", t, err)
	}
	s.Schema, s.Title = "https://json-schema.org/draft/2020-12/schema", title
	return json.Marshal(s)
}

// MustSchemaFor is SchemaFor for a package-level variable: a tag that does
// not parse is a programming error, found by the plugin's first test.
func MustSchemaFor[T any](title string) []byte {
	doc, err := SchemaFor[T](title)
	if err != nil {
		panic(err)
	}
	return doc
}

// LazySchemaFor is MustSchemaFor derived on first use (and once): a
// plugin's package-level schema costs nothing at start-up, so a launch that
// only asks for metadata (`harden plugins list`) does not pay for it.
//
//	var connectionSchema = sdk.LazySchemaFor[connection]("mydb connection")
//	...
//	r.Connection = connectionSchema()
func LazySchemaFor[T any](title string) func() []byte {
	return sync.OnceValue(func() []byte { return MustSchemaFor[T](title) })
}

// SchemaExtender is implemented by a config type whose schema needs more
// than its fields' tags can say. ExtendSchema is called on the zero value
// with the type's derived schema.
type SchemaExtender interface {
	ExtendSchema(s *jsonschema.Schema)
}

var extenderType = reflect.TypeFor[SchemaExtender]()

// refine walks the Go type and the schema For derived from it side by side.
func refine(t reflect.Type, s *jsonschema.Schema) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	dropNull(s)
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		if err := refine(t.Elem(), s.Items); err != nil {
			return err
		}
	case reflect.Map:
		if err := refine(t.Elem(), s.AdditionalProperties); err != nil {
			return err
		}
	case reflect.Struct:
		s.Required = nil
		for _, f := range reflect.VisibleFields(t) {
			name, ok := jsonName(f)
			if !ok {
				continue
			}
			p := s.Properties[name]
			if p == nil {
				return fmt.Errorf("field %s: no property %q in the derived schema", f.Name, name)
			}
			if err := refine(f.Type, p); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			required, err := applyTag(f.Tag.Get("schema"), p)
			if err != nil {
				return fmt.Errorf("field %s: schema tag: %w", f.Name, err)
			}
			if required {
				s.Required = append(s.Required, name)
			}
		}
	}
	if t.Implements(extenderType) {
		reflect.Zero(t).Interface().(SchemaExtender).ExtendSchema(s)
	}
	return nil
}

// jsonName is the key encoding/json uses for f (the library's rule).
func jsonName(f reflect.StructField) (string, bool) {
	if !f.IsExported() || f.Anonymous {
		return "", false
	}
	tag, ok := f.Tag.Lookup("json")
	if !ok {
		return f.Name, true
	}
	name, _, found := strings.Cut(tag, ",")
	if name == "-" && !found {
		return "", false
	}
	if name == "" {
		name = f.Name
	}
	return name, true
}

func dropNull(s *jsonschema.Schema) {
	if len(s.Types) == 2 && s.Types[0] == "null" {
		s.Type, s.Types = s.Types[1], nil
	}
}

// applyTag sets the keywords of one schema tag on p and says whether the
// property is required.
func applyTag(tag string, p *jsonschema.Schema) (required bool, err error) {
	for tag != "" {
		var item string
		if strings.HasPrefix(tag, "pattern=") || strings.HasPrefix(tag, "items.pattern=") {
			item, tag = tag, ""
		} else {
			item, tag, _ = strings.Cut(tag, ",")
		}
		key, value, hasValue := strings.Cut(item, "=")
		target := p
		if rest, ok := strings.CutPrefix(key, "items."); ok {
			if p.Items == nil {
				return false, fmt.Errorf("%s on a property that is not an array", key)
			}
			key, target = rest, p.Items
		}
		if key == "required" && !hasValue && target == p {
			required = true
			continue
		}
		if !hasValue {
			return false, fmt.Errorf("%q needs a value (%s=...)", key, key)
		}
		if err := setKeyword(target, key, value); err != nil {
			return false, fmt.Errorf("%s: %w", item, err)
		}
	}
	return required, nil
}

func setKeyword(s *jsonschema.Schema, key, value string) error {
	integer := func() (*int, error) {
		n, err := strconv.Atoi(value)
		return &n, err
	}
	number := func() (*float64, error) {
		f, err := strconv.ParseFloat(value, 64)
		return &f, err
	}
	var err error
	switch key {
	case "minLength":
		s.MinLength, err = integer()
	case "maxLength":
		s.MaxLength, err = integer()
	case "minItems":
		s.MinItems, err = integer()
	case "maxItems":
		s.MaxItems, err = integer()
	case "minimum":
		s.Minimum, err = number()
	case "maximum":
		s.Maximum, err = number()
	case "pattern":
		s.Pattern = value
	case "enum":
		s.Enum = nil
		for v := range strings.SplitSeq(value, "|") {
			x, err := literal(s, v)
			if err != nil {
				return err
			}
			s.Enum = append(s.Enum, x)
		}
	case "default":
		x, err := literal(s, value)
		if err != nil {
			return err
		}
		s.Default, err = json.Marshal(x)
		return err
	default:
		return fmt.Errorf("unknown keyword %q", key)
	}
	return err
}

// literal reads a value of the schema's type: a string as written, anything
// else as JSON.
func literal(s *jsonschema.Schema, v string) (any, error) {
	if s.Type == "string" {
		return v, nil
	}
	var x any
	if err := json.Unmarshal([]byte(v), &x); err != nil {
		return nil, fmt.Errorf("%q is not a JSON %s", v, s.Type)
	}
	return x, nil
}
