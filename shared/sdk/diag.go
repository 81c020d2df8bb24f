package sdk

import (
	"fmt"
	"strings"
)

// Severity of a diagnostic.
type Severity int

const (
	Error Severity = iota + 1
	Warning
)

func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return "error"
}

// Source says who is at fault, so the host can say "PostgreSQL refused"
// rather than "plugin failed".
type Source int

const (
	SourcePlugin Source = iota + 1
	SourceTarget
	SourceConfig
)

func (s Source) String() string {
	switch s {
	case SourceTarget:
		return "target"
	case SourceConfig:
		return "config"
	default:
		return "plugin"
	}
}

// Path addresses an attribute inside the target block: Path{"spec", "hba", "0"}.
type Path []string

// String renders spec.hba[0].method.
func (p Path) String() string {
	var b strings.Builder
	for i, s := range p {
		if isIndex(s) {
			b.WriteString("[" + s + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}

func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Diagnostic is one domain problem.
type Diagnostic struct {
	Severity  Severity
	Summary   string
	Detail    string
	Attribute Path
	Source    Source
	// Code is a stable machine-readable id, e.g. "postgres.connect.auth_failed".
	Code string
}

func (d Diagnostic) Error() string {
	msg := d.Summary
	if len(d.Attribute) > 0 {
		msg = d.Attribute.String() + ": " + msg
	}
	if d.Detail != "" {
		msg += ": " + d.Detail
	}
	return msg
}

// Diagnostics collects problems; HasError decides whether a response failed.
type Diagnostics []Diagnostic

// Add appends diagnostics.
func (ds *Diagnostics) Add(d ...Diagnostic) { *ds = append(*ds, d...) }

// AddError adds a plugin-side error.
func (ds *Diagnostics) AddError(summary, detail string) {
	ds.Add(Diagnostic{Severity: Error, Summary: summary, Detail: detail, Source: SourcePlugin})
}

// AddWarning adds a warning.
func (ds *Diagnostics) AddWarning(summary, detail string) {
	ds.Add(Diagnostic{Severity: Warning, Summary: summary, Detail: detail, Source: SourcePlugin})
}

// AddAttributeError adds a config error at a path of the target block.
func (ds *Diagnostics) AddAttributeError(path Path, summary, detail string) {
	ds.Add(Diagnostic{Severity: Error, Summary: summary, Detail: detail, Attribute: path, Source: SourceConfig})
}

// AddTargetError records that the target system refused or failed; code is a
// stable id and err the observed error.
func (ds *Diagnostics) AddTargetError(code, summary string, err error) {
	d := Diagnostic{Severity: Error, Summary: summary, Source: SourceTarget, Code: code}
	if err != nil {
		d.Detail = err.Error()
	}
	ds.Add(d)
}

// HasError reports whether any diagnostic is an error.
func (ds Diagnostics) HasError() bool {
	for _, d := range ds {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

// Err returns the diagnostics as one error when any is an error.
func (ds Diagnostics) Err() error {
	if !ds.HasError() {
		return nil
	}
	var parts []string
	for _, d := range ds {
		if d.Severity == Error {
			parts = append(parts, d.Error())
		}
	}
	return fmt.Errorf("%s", strings.Join(parts, "; "))
}
