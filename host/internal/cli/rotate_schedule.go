package cli

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// runSchedule: `harden rotate --schedule` (being built).
func runSchedule(c *cli.Context, s *session) error {
	return &ExitError{Code: ExitConfig, Err: errors.New("harden rotate --schedule: not available yet")}
}
