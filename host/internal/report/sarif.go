package report

import (
	"errors"
	"io"
)

// WriteSARIF writes the Run as SARIF 2.1.0 (TODO(H1): being built).
func WriteSARIF(io.Writer, *Run) error { return errors.New("sarif: not built yet") }
