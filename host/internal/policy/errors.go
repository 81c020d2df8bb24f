package policy

import (
	"fmt"
	"strings"

	"github.com/harden-dev/harden/shared/sdk"
)

// Error is one problem in the policy file, with its position.
type Error struct {
	File string
	Pos  Position
	// Path inside the document, e.g. ["targets","0","spec","hba"].
	Path []string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Pos.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Pos.Line)
		if e.Pos.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Pos.Column)
		}
	}
	b.WriteString(": ")
	if p := displayPath(e.Path); p != "" {
		b.WriteString(p + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// displayPath renders targets[0].spec.hba, as diagnostics do.
func displayPath(path []string) string { return sdk.Path(path).String() }

// Errors is every problem found, in file order.
type Errors []*Error

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}
