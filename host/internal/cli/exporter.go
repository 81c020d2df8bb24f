package cli

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// exporterCommand: `harden exporter` (TODO(H4): being built).
func exporterCommand(io IO) *cli.Command {
	return &cli.Command{Name: "exporter", Usage: "run verify and the inventory on a schedule and serve Prometheus metrics",
		Action: func(*cli.Context) error { return errors.New("exporter: not built yet") }}
}
