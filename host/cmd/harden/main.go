// Command harden is the host: it loads a policy, runs the target plugins and
// renders, plans, applies and verifies hardened TLS and encryption settings.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/harden-dev/harden/host/internal/cli"
)

func main() {
	// The CLI decides what a signal means (cli.interrupts): the first one
	// during an apply step lets the plugin finish or roll back that step,
	// anywhere else it stops at once; a second one kills the plugins.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	io := cli.DefaultIO()
	io.Signals = sigs
	os.Exit(cli.Run(context.Background(), os.Args, io))
}
