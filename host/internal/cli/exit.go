package cli

import (
	"errors"
	"fmt"

	"github.com/harden-dev/harden/host/internal/engine"
	"github.com/harden-dev/harden/host/internal/inventory"
)

// Exit codes, documented in doc.go and README.md.
const (
	ExitOK          = 0
	ExitConfig      = 1
	ExitFindings    = 2
	ExitTarget      = 3
	ExitInterrupted = 130
)

// `harden inventory`'s codes: the most urgent item decides (inventory.Exit*).
const (
	ExitInventoryIncomplete = inventory.ExitIncomplete    // 3: something could not be read
	ExitInventoryWidest     = inventory.ExitWidestTier    // 4: widest alert tier; a KEK rotation off or overdue
	ExitInventoryMiddle     = inventory.ExitMiddleTier    // 5: a tier between the widest and the narrowest
	ExitInventoryNarrowest  = inventory.ExitNarrowestTier // 6: the narrowest alert tier
	ExitInventoryExpired    = inventory.ExitExpired       // 7: expired or not valid yet
)

// ExitError ends the program with a code; Err may be nil when the output
// already said everything (findings).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

func exitf(code int, format string, args ...any) error {
	return &ExitError{Code: code, Err: fmt.Errorf(format, args...)}
}

// CodeOf maps an error to its exit code.
func CodeOf(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	var en *engine.Error
	if errors.As(err, &en) {
		if en.Kind == engine.KindConfig {
			return ExitConfig
		}
		return ExitTarget
	}
	return ExitConfig
}
