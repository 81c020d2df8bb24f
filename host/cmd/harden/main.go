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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args, cli.DefaultIO())
	stop()
	os.Exit(code)
}
