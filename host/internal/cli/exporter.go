package cli

import (
	"context"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/harden-dev/harden/host/internal/engine"
	"github.com/harden-dev/harden/host/internal/exporter"
	"github.com/harden-dev/harden/host/internal/policy"
	"github.com/harden-dev/harden/host/internal/report"
)

// exporterCommand: `harden exporter` runs verify and the inventory at start
// and then every --interval, and serves the last completed run as
// Prometheus metrics (host/internal/exporter); a scrape never starts a
// scan. It stops gracefully on SIGINT/SIGTERM (exit 0).
func exporterCommand(io IO) *cli.Command {
	return &cli.Command{Name: "exporter", Usage: "run verify and the inventory on a schedule and serve Prometheus metrics",
		Description: "Serves /metrics (the last completed run: per-check status, accepted versions, suites and groups per endpoint, " +
			"certificate expiry — kept after expiry and while unreadable — key rotation, run health) and /healthz. " +
			"Alert rules: deploy/prometheus/harden-rules.yml.",
		Flags: append([]cli.Flag{fileFlag, targetFlag,
			&cli.StringFlag{Name: "listen", Usage: "address to serve /metrics on, e.g. 127.0.0.1:9808 (bound before the first run)", Required: true},
			&cli.DurationFlag{Name: "interval", Value: 5 * time.Minute, Usage: "time between the starts of two runs"},
		}, pluginFlags...),
		Action: func(c *cli.Context) error { return runExporter(c, io) }}
}

func runExporter(c *cli.Context, io IO) error {
	// The policy is read and its selection checked once before the port is
	// bound and "serving" is logged: a policy that does not load, a
	// --target it does not have or a plugin refused is the operator's
	// error at once, not a server that starts and then exits.
	if err := preflightExporter(c, io); err != nil {
		return err
	}
	ln, err := exporter.Listen(c.String("listen"))
	if err != nil {
		return &ExitError{Code: ExitConfig, Err: err}
	}
	collect := func(ctx context.Context) (*report.Run, error) {
		// A fresh session (policy read again, plugins started) per run: a
		// plugin that crashed or hung in one run does not poison the next.
		s, err := openSession(c, io)
		if err != nil {
			return nil, err
		}
		defer s.eng.Close()
		return collectVerify(ctx, s, true, clientsFor(c, s))
	}
	return exporter.Serve(c.Context, ln, exporter.Options{
		Info:    exporter.Info{Version: Version, Policy: c.String("file"), Interval: c.Duration("interval")},
		Collect: collect,
		// A first run that cannot happen at all (the policy does not load,
		// a plugin is refused) is the operator's to fix now; later, the
		// same error is exported (harden_run_ok 0) and the exporter goes on.
		Fatal: func(err error) bool { return true },
		Log:   io.Stderr,
	})
}

// preflightExporter loads the policy (each run loads it again: an edit is
// picked up at the next run) and checks what openSession would refuse
// without starting a plugin.
func preflightExporter(c *cli.Context, io IO) error {
	pol, err := policy.Load(c.String("file"))
	if err != nil {
		return &ExitError{Code: ExitConfig, Err: err}
	}
	for _, n := range c.StringSlice("target") {
		if _, ok := pol.Target(n); !ok {
			return exitf(ExitConfig, "--target %q: no such target in %s", n, pol.File)
		}
	}
	return requireTrusted(engineOptions(c, io.Stderr), engine.PluginNames(pol))
}
