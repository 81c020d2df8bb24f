package cli

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/harden-dev/harden/host/internal/report"
)

// reportFlags: the formats verify, scan and inventory render (repeatable
// with --output-dir) and where they go.
func reportFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "format", Usage: "output format: text, json, sarif, junit or html (repeatable with --output-dir; default text)"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the report to FILE instead of stdout (replaced only once complete)"},
		&cli.StringFlag{Name: "output-dir", Usage: "write one file per --format under DIR: harden-<command>.{txt,json,sarif,junit.xml,html}"},
	}
}

// reportCommands are the commands with reportFlags.
var reportCommands = map[string]bool{"verify": true, "scan": true, "inventory": true}

// openOutputs checks the report flags and prepares the files before any
// target is contacted: an unwritable --output fails here (exit 1) and
// nothing is half-written later. The caller defers Abort.
func openOutputs(c *cli.Context, command string) (*report.Outputs, error) {
	outs, err := report.Open(c.StringSlice("format"), c.String("output"), c.String("output-dir"), command, nil)
	if err != nil {
		return nil, exitf(ExitConfig, "%v", err)
	}
	return outs, nil
}

// emit writes rep in every format and names the files written on stderr.
func emit(io IO, outs *report.Outputs, rep *report.Run) error {
	written, err := outs.Commit(rep, io.Stdout)
	for _, p := range written {
		fmt.Fprintf(io.Stderr, "wrote %s\n", p)
	}
	return err
}

// wants: the formats include f.
func wants(outs *report.Outputs, f string) bool {
	for _, x := range outs.Formats() {
		if x == f {
			return true
		}
	}
	return false
}
