package cli

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// inventoryCommand: `harden inventory` (issue 14; being built).
func inventoryCommand(io IO) *cli.Command {
	return &cli.Command{Name: "inventory", Usage: "every certificate and key the policy touches, with its next renewal or rotation date",
		Flags: policyFlags(),
		Action: func(c *cli.Context) error {
			return &ExitError{Code: ExitConfig, Err: errors.New("harden inventory: not available yet")}
		}}
}
