package cli

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// rotateCommand: `harden rotate` (issue 14; being built).
func rotateCommand(io IO) *cli.Command {
	return &cli.Command{Name: "rotate", Usage: "renew certificates due for renewal, verify-gated, rolled back on failure",
		Flags: policyFlags(),
		Action: func(c *cli.Context) error {
			return &ExitError{Code: ExitConfig, Err: errors.New("harden rotate: not available yet")}
		}}
}
