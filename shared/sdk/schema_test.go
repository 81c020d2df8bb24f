package sdk

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/jsonschema-go/jsonschema"
)

type schemaInner struct {
	Name string `json:"name" schema:"required,pattern=^[a-z,]+$"`
}

type schemaSample struct {
	Host    string            `json:"host" jsonschema:"server host name" schema:"required,minLength=1"`
	Port    int               `json:"port" schema:"required,minimum=1,maximum=65535"`
	DB      string            `json:"database" schema:"default=postgres"`
	Sample  int               `json:"sample" schema:"default=100"`
	Phase   string            `json:"phase" schema:"enum=add-tls|switch"`
	Users   []string          `json:"users" schema:"minItems=1,items.pattern=^[^;,]+$"`
	Inner   *schemaInner      `json:"inner"`
	Rules   []schemaInner     `json:"rules"`
	Options map[string]string `json:"options"`
	Skipped string            `json:"-"`
	hidden  string
}

// hidden is unexported: encoding/json skips it, so must the schema.
var _ = schemaSample{}.hidden

type extended struct {
	A string `json:"a"`
	B string `json:"b"`
}

func (extended) ExtendSchema(s *jsonschema.Schema) {
	s.OneOf = []*jsonschema.Schema{{Required: []string{"a"}}, {Required: []string{"b"}}}
}

func TestSchemaForDerivesTheBlock(t *testing.T) {
	doc, err := SchemaFor[schemaSample]("Sample connection")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(doc, &got); err != nil {
		t.Fatal(err)
	}
	prop := func(path ...string) map[string]any {
		m := got
		for _, p := range path {
			m = m[p].(map[string]any)
		}
		return m
	}
	want := map[string]any{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"title":                "Sample connection",
		"type":                 "object",
		"additionalProperties": false,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if r, _ := json.Marshal(got["required"]); string(r) != `["host","port"]` {
		t.Errorf("required = %s, want only the fields tagged required", r)
	}
	checks := []struct {
		path []string
		key  string
		want any
	}{
		{[]string{"properties", "host"}, "description", "server host name"},
		{[]string{"properties", "host"}, "minLength", 1.0},
		{[]string{"properties", "port"}, "minimum", 1.0},
		{[]string{"properties", "port"}, "maximum", 65535.0},
		{[]string{"properties", "database"}, "default", "postgres"},
		{[]string{"properties", "sample"}, "default", 100.0},
		{[]string{"properties", "users"}, "type", "array"},
		{[]string{"properties", "users"}, "minItems", 1.0},
		{[]string{"properties", "users", "items"}, "pattern", "^[^;,]+$"},
		{[]string{"properties", "inner"}, "type", "object"},
		{[]string{"properties", "inner"}, "additionalProperties", false},
		{[]string{"properties", "inner", "properties", "name"}, "pattern", "^[a-z,]+$"},
		{[]string{"properties", "rules", "items"}, "additionalProperties", false},
		{[]string{"properties", "options"}, "type", "object"},
	}
	for _, c := range checks {
		if v := prop(c.path...)[c.key]; v != c.want {
			t.Errorf("%s.%s = %#v, want %#v", strings.Join(c.path, "."), c.key, v, c.want)
		}
	}
	if e, _ := json.Marshal(prop("properties", "phase")["enum"]); string(e) != `["add-tls","switch"]` {
		t.Errorf("phase enum = %s", e)
	}
	if r, _ := json.Marshal(prop("properties", "rules", "items")["required"]); string(r) != `["name"]` {
		t.Errorf("nested required = %s", r)
	}
	for _, k := range []string{"Skipped", "hidden", "-"} {
		if _, ok := prop("properties")[k]; ok {
			t.Errorf("property %q derived from a field encoding/json skips", k)
		}
	}
}

// The derived schema must mean the same to the plugin's own admission as it
// does on paper: nulls refused, unknown keys refused, constraints enforced.
func TestSchemaForVerdicts(t *testing.T) {
	a, err := newAdmission("sample schema", MustSchemaFor[schemaSample]("Sample"))
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		doc string
		ok  bool
	}{
		"minimal":             {`{"host":"h","port":5432}`, true},
		"everything":          {`{"host":"h","port":1,"database":"d","sample":3,"phase":"switch","users":["a"],"inner":{"name":"x,y"},"rules":[{"name":"z"}],"options":{"k":"v"}}`, true},
		"missing required":    {`{"host":"h"}`, false},
		"unknown key":         {`{"host":"h","port":1,"colour":1}`, false},
		"nested unknown key":  {`{"host":"h","port":1,"inner":{"name":"x","z":1}}`, false},
		"wrong type":          {`{"host":"h","port":"1"}`, false},
		"null slice":          {`{"host":"h","port":1,"users":null}`, false},
		"null pointer":        {`{"host":"h","port":1,"inner":null}`, false},
		"null map":            {`{"host":"h","port":1,"options":null}`, false},
		"bad enum":            {`{"host":"h","port":1,"phase":"later"}`, false},
		"above maximum":       {`{"host":"h","port":65536}`, false},
		"empty string":        {`{"host":"","port":1}`, false},
		"empty array":         {`{"host":"h","port":1,"users":[]}`, false},
		"item pattern":        {`{"host":"h","port":1,"users":["a;b"]}`, false},
		"nested missing":      {`{"host":"h","port":1,"rules":[{}]}`, false},
		"map value wrong":     {`{"host":"h","port":1,"options":{"k":1}}`, false},
		"nested pattern fail": {`{"host":"h","port":1,"inner":{"name":"X"}}`, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ds := a.check([]byte(tc.doc), "connection")
			if ok := !ds.HasError(); ok != tc.ok {
				t.Errorf("accepted = %v, want %v (%v)", ok, tc.ok, ds)
			}
		})
	}
}

func TestSchemaForExtender(t *testing.T) {
	a, err := newAdmission("extended", MustSchemaFor[extended]("E"))
	if err != nil {
		t.Fatal(err)
	}
	for doc, ok := range map[string]bool{`{"a":"x"}`: true, `{"b":"x"}`: true, `{}`: false, `{"a":"x","b":"y"}`: false} {
		if got := !a.check([]byte(doc), "spec").HasError(); got != ok {
			t.Errorf("%s: accepted = %v, want %v", doc, got, ok)
		}
	}
}

func TestSchemaForRefusesBadTags(t *testing.T) {
	type unknownKeyword struct {
		A string `json:"a" schema:"minlength=1"`
	}
	type notANumber struct {
		A int `json:"a" schema:"minimum=one"`
	}
	type itemsOnAString struct {
		A string `json:"a" schema:"items.minLength=1"`
	}
	type noValue struct {
		A string `json:"a" schema:"pattern"`
	}
	type badDefault struct {
		A int `json:"a" schema:"default=x"`
	}
	for name, f := range map[string]func() ([]byte, error){
		"unknown keyword": func() ([]byte, error) { return SchemaFor[unknownKeyword]("") },
		"not a number":    func() ([]byte, error) { return SchemaFor[notANumber]("") },
		"items on string": func() ([]byte, error) { return SchemaFor[itemsOnAString]("") },
		"no value":        func() ([]byte, error) { return SchemaFor[noValue]("") },
		"bad default":     func() ([]byte, error) { return SchemaFor[badDefault]("") },
	} {
		if doc, err := f(); err == nil {
			t.Errorf("%s: no error, schema %s", name, doc)
		} else if !strings.Contains(err.Error(), "field A") {
			t.Errorf("%s: error %q does not name the field", name, err)
		}
	}
}

// The plugins derive their schemas at start-up, inside the 50 ms launch
// budget: this says what that costs.
func BenchmarkSchemaFor(b *testing.B) {
	for b.Loop() {
		MustSchemaFor[schemaSample]("Sample")
	}
}
