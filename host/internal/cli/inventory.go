package cli

import (
	"context"
	"fmt"
	stdio "io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/harden-dev/harden/host/internal/engine"
	"github.com/harden-dev/harden/host/internal/inventory"
	"github.com/harden-dev/harden/host/internal/report"
	"github.com/harden-dev/harden/shared/sdk"
)

// inventoryCommand: `harden inventory` lists every certificate and key the
// policy touches — served (fresh handshakes), held by harden, the CA bundle,
// stored by the targets — with its expiry tier or next rotation date. It
// reads live state and changes nothing (the session is in NoIssue mode);
// the exit code is the most urgent tier (inventory.Exit*).
func inventoryCommand(io IO) *cli.Command {
	return &cli.Command{Name: "inventory", Usage: "every certificate and key the policy touches, with its next renewal or rotation date",
		Flags:  reportPolicyFlags(),
		Action: func(c *cli.Context) error { return runInventory(c, io) }}
}

func runInventory(c *cli.Context, io IO) error {
	outs, err := openOutputs(c, "inventory")
	if err != nil {
		return err
	}
	defer outs.Abort()
	s, err := openSession(c, io)
	if err != nil {
		return err
	}
	defer s.eng.Close()
	rep, err := collectInventory(c.Context, s, clientsFor(c, s))
	if err != nil {
		return err
	}
	run := report.New(s.pol, s.targets)
	run.GeneratedAt, run.Inventory, run.Selection = rep.GeneratedAt, rep, selection(c)
	run.Finish("inventory")
	// The inventory's own JSON document (format_version 1) stays as it was.
	outs.Custom = map[string]func(w stdio.Writer) error{"json": func(w stdio.Writer) error { return writeJSON(w, rep) }}
	if err := emit(io, outs, run); err != nil {
		return err
	}
	switch code := rep.Summary.ExitCode; code {
	case ExitOK:
		return nil
	case ExitInventoryIncomplete:
		return exitf(code, "inventory incomplete: %d item(s) could not be read (see error: lines above)", rep.Summary.Incomplete)
	default:
		return &ExitError{Code: code, Err: fmt.Errorf("inventory: %s", urgency(code))}
	}
}

// collectInventory asks every target of the session for what it serves
// and stores, and judges it (inventory.CollectWith).
func collectInventory(ctx context.Context, s *session, clients []inventory.HeldClient) (*inventory.Report, error) {
	results, errs := perTarget(ctx, s, func(ctx context.Context, p *engine.Plugin, rc sdk.RequestContext) (inventory.Target, error) {
		return inventory.Ask(ctx, p, rc), nil
	})
	if err := interrupted(ctx); err != nil {
		return nil, err
	}
	for i, t := range s.targets {
		// A request that failed never reached Ask: the result is empty.
		results[i].Name, results[i].RequestErr = t.Name, errs[i]
	}
	now := time.Now()
	if s.eng.Now != nil {
		now = s.eng.Now()
	}
	return inventory.CollectWith(s.pol, results, clients, now), nil
}

// urgency says on stderr why the exit code is what it is.
func urgency(code int) string {
	switch code {
	case ExitInventoryExpired:
		return "a certificate has expired or is not valid yet"
	case ExitInventoryNarrowest:
		return "a certificate is inside the narrowest alert tier"
	case ExitInventoryMiddle:
		return "a certificate is inside an alert tier"
	}
	return "a certificate is inside the widest alert tier, or a key's rotation is disabled or overdue"
}

// clientsFor: the policy's client identities, unless --target narrowed
// the run to targets.
func clientsFor(c *cli.Context, s *session) []inventory.HeldClient {
	if len(c.StringSlice("target")) > 0 {
		return nil
	}
	return inventory.ReadClients(s.pol)
}
