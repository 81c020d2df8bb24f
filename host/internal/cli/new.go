package cli

import (
	"fmt"
	"os/exec"

	"github.com/urfave/cli/v2"

	"github.com/harden-dev/harden/host/internal/scaffold"
)

// newPluginCommand is `harden plugins new NAME`: a new plugin module from
// the embedded templates (package scaffold).
func newPluginCommand(io IO) *cli.Command {
	return &cli.Command{Name: "new", Usage: "scaffold a new plugin in a Go module of its own", ArgsUsage: "NAME",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Usage: "directory to create (default ./harden-plugin-NAME); must not exist or be empty"},
			&cli.StringFlag{Name: "module", Usage: "Go module path (default example.com/harden-plugin-NAME)"},
			&cli.StringFlag{Name: "sdk", Usage: "local plugin SDK module (a harden checkout's shared/) to use through a replace directive; default: the checkout the directory is in, if any"},
			&cli.BoolFlag{Name: "no-tidy", Usage: "do not run go mod tidy in the new module"},
		},
		Action: func(c *cli.Context) error { return newPlugin(c, io) }}
}

func newPlugin(c *cli.Context, io IO) error {
	if c.NArg() != 1 {
		return exitf(ExitConfig, "plugins new: want exactly one NAME, got %d arguments", c.NArg())
	}
	name := c.Args().First()
	dir := c.String("dir")
	if dir == "" {
		dir = "harden-plugin-" + name
	}
	sdk := c.String("sdk")
	if sdk == "" {
		// The checkout the new directory will be in, if any.
		sdk = scaffold.FindSDK(dir)
	}
	files, err := scaffold.Write(scaffold.Options{Name: name, Dir: dir, Module: c.String("module"), SDK: sdk})
	if err != nil {
		return exitf(ExitConfig, "plugins new: %v", err)
	}
	for _, f := range files {
		fmt.Fprintf(io.Stdout, "wrote %s\n", f)
	}
	if sdk != "" {
		fmt.Fprintf(io.Stdout, "the plugin uses the SDK in %s (replace directive in go.mod)\n", sdk)
	}
	if !c.Bool("no-tidy") {
		if goBin, err := exec.LookPath("go"); err != nil {
			fmt.Fprintf(io.Stderr, "harden: go is not on PATH: run go mod tidy in %s before building\n", dir)
		} else {
			cmd := exec.Command(goBin, "mod", "tidy")
			cmd.Dir, cmd.Stdout, cmd.Stderr = dir, io.Stderr, io.Stderr
			if err := cmd.Run(); err != nil {
				return exitf(ExitTarget, "plugins new: the files are written, but go mod tidy in %s failed (%v): fix the module setup and run it again", dir, err)
			}
		}
	}
	fmt.Fprintf(io.Stdout, "next: cd %s && go test ./... && go build -o harden-plugin-%s .\n", dir, name)
	return nil
}
