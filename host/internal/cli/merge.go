package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/harden-dev/harden/host/internal/policy"
	"github.com/harden-dev/harden/host/internal/report"
	"github.com/harden-dev/harden/shared/checks"
)

// reportCommand: `harden report -i run.json ...` merges JSON runs — the
// shards of one fleet run (verify --shard I/N) or a history — and renders
// the result in any report format. Its exit codes are verify's: 2 for a
// failing check at --fail-on, 3 for a target in error (a run read from
// JSON does not say whether that was a configuration problem), 1 for
// unreadable or unmergeable inputs; an inventory-only report exits as
// `harden inventory` does.
func reportCommand(io IO) *cli.Command {
	return &cli.Command{
		Name:  "report",
		Usage: "merge JSON runs (the shards of a fleet, or a history) and render them",
		Description: "Each -i is a `harden verify --format json` run or a `harden inventory --format json` document of one policy.\n" +
			"Shards (verify --shard I/N) merge into the run one machine would have written: every shard is needed.\n" +
			"Whole runs taken at different times (or --history) are a history: the latest run, with the trend of failing checks.",
		Flags: append([]cli.Flag{
			&cli.StringSliceFlag{Name: "input", Aliases: []string{"i"}, Required: true,
				Usage: "a JSON run or inventory (repeatable; a pattern such as 'shards/shard-*.json' is expanded; - reads stdin)"},
			&cli.BoolFlag{Name: "history", Usage: "the inputs are runs at different times: render the latest with the trend of failing checks"},
			&cli.StringFlag{Name: "fail-on", Value: "info", Usage: "exit 2 when a failing check of the merged run has at least this severity: info, low, medium, high, critical"},
		}, reportFlags()...),
		Action: func(c *cli.Context) error { return mergeReports(c, io) },
	}
}

func mergeReports(c *cli.Context, io IO) error {
	failOn, err := checks.ParseSeverity(c.String("fail-on"))
	if err != nil {
		return exitf(ExitConfig, "--fail-on: %v", err)
	}
	if c.Args().Present() {
		return exitf(ExitConfig, "unexpected argument %q: give each input with -i", c.Args().First())
	}
	outs, err := openOutputs(c, "report")
	if err != nil {
		return err
	}
	defer outs.Abort()
	files, err := reportInputs(c.StringSlice("input"))
	if err != nil {
		return &ExitError{Code: ExitConfig, Err: err}
	}
	runs := make([]*report.Run, len(files))
	for i, f := range files {
		if runs[i], err = readReport(f, io); err != nil {
			return &ExitError{Code: ExitConfig, Err: err}
		}
	}
	rep, err := report.MergeWith(report.MergeOptions{History: c.Bool("history"), Names: files}, runs...)
	if err != nil {
		return &ExitError{Code: ExitConfig, Err: err}
	}
	if len(rep.History) > 0 {
		// Whether by --history or because the inputs were whole runs of
		// the same targets at different times: say so, since only the
		// latest run's findings count (and decide the exit code).
		fmt.Fprintf(io.Stderr, "harden: treating %d runs as a history of %s: the report is the latest run (%s) with the trend of failing checks\n",
			len(rep.History), rep.Policy, rep.GeneratedAt.UTC().Format(time.RFC3339))
	}
	if err := emit(io, outs, rep); err != nil {
		return err
	}
	if rep.Command == "inventory" {
		if code := rep.Inventory.Summary.ExitCode; code != ExitOK {
			fmt.Fprintf(io.Stderr, "harden: %s\n", urgency(code))
			return &ExitError{Code: code}
		}
		return nil
	}
	if err := runExit(rep); err != nil {
		return err
	}
	if rep.FailingAtOrAbove(failOn) > 0 {
		return &ExitError{Code: ExitFindings}
	}
	return nil
}

// reportInputs expands the -i values: a file as given, "-" (stdin, once),
// or a pattern (filepath.Match syntax) when no file has that very name —
// so a Kubernetes or Nomad command line without a shell can say
// /reports/shards/shard-*.json.
func reportInputs(values []string) ([]string, error) {
	var out []string
	stdin := false
	for _, v := range values {
		switch _, err := os.Stat(v); {
		case v == "-":
			if stdin {
				return nil, errors.New("-i -: stdin given twice")
			}
			stdin = true
			out = append(out, v)
		case err == nil:
			out = append(out, v)
		case strings.ContainsAny(v, "*?["):
			m, gerr := filepath.Glob(v)
			if gerr != nil {
				return nil, fmt.Errorf("-i %s: %v", v, gerr)
			}
			if len(m) == 0 {
				return nil, fmt.Errorf("-i %s: no file matches", v)
			}
			out = append(out, m...)
		default:
			return nil, fmt.Errorf("-i %s: %w", v, unwrapPathErr(err))
		}
	}
	return out, nil
}

// readReport reads one input (a file or stdin), bounded by
// report.MaxRunSize.
func readReport(name string, io IO) (*report.Run, error) {
	if name == "-" {
		return report.ReadRun("stdin", io.Stdin)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, unwrapPathErr(err))
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, fmt.Errorf("%s: is a directory", name)
	}
	return report.ReadRun(name, f)
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// shardTargets narrows the session to verify --shard I/N's share: the
// targets (report.Shard documents what is split, and why whole targets)
// whose hash falls in shard I of N, from the targets --target selected.
// It returns the shard as "I/N" (Run.Shard), "" without --shard.
func shardTargets(s *session, spec string) (string, error) {
	if spec == "" {
		return "", nil
	}
	getenv := s.io.Getenv
	if getenv == nil {
		getenv = os.LookupEnv
	}
	sh, err := report.ParseShard(spec, getenv)
	if err != nil {
		return "", err
	}
	var keep []policy.Target
	for _, t := range s.targets {
		if sh.Has(report.TargetUnit(t.Name)) {
			keep = append(keep, t)
		}
	}
	s.targets = keep
	return sh.String(), nil
}

// verifyRunID is verify's --run-id, or $HARDEN_RUN_ID without it: the
// fleet run a shard belongs to (report.Run.RunID). Refused before any
// plugin starts when it is not a run id (report.ValidRunID).
func verifyRunID(c *cli.Context, io IO) (string, error) {
	id, what := c.String("run-id"), "--run-id"
	if !c.IsSet("run-id") {
		id, _ = lookupEnv(io)("HARDEN_RUN_ID")
		what = "$HARDEN_RUN_ID"
	}
	if id == "" {
		return "", nil
	}
	if err := report.ValidRunID(id); err != nil {
		return "", exitf(ExitConfig, "%s: %v", what, err)
	}
	return id, nil
}

// markShard records what harden report checks before merging a shard
// with others: the shard, the run id and the policy version (the SHA-256
// of the bytes loaded, not of the file read again: a ConfigMap update
// between the two would misname the version). An empty shard lists no
// targets as [] (not null: a run without a target list is refused).
func markShard(rep *report.Run, s *session, shard, runID string) {
	rep.Shard, rep.RunID, rep.PolicySHA256 = shard, runID, s.pol.SHA256
	if rep.Targets == nil {
		rep.Targets = []report.Target{}
	}
}
