package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/harden-dev/harden/host/internal/engine"
	"github.com/harden-dev/harden/host/internal/inventory"
	"github.com/harden-dev/harden/host/internal/plugins"
	"github.com/harden-dev/harden/host/internal/policy"
	"github.com/harden-dev/harden/host/internal/report"
	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
)

// Version is set at build time.
var Version = "dev"

// The reports name the version that wrote them (SARIF's tool.driver).
func init() { report.ToolVersion = Version }

// IO lets tests run the CLI in process.
type IO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// IsTerminal reports whether stdin is an interactive terminal.
	IsTerminal func() bool
	Getenv     func(string) (string, bool)
	// Signals delivers SIGINT and SIGTERM (main); nil when the caller ends
	// ctx instead, which stops everything at once.
	Signals <-chan os.Signal

	interrupts *interrupts
}

// DefaultIO is the process's real streams.
func DefaultIO() IO {
	return IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		IsTerminal: func() bool { return term.IsTerminal(int(os.Stdin.Fd())) }, Getenv: os.LookupEnv}
}

var (
	fileFlag    = &cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "policy file", Required: true}
	targetFlag  = &cli.StringSliceFlag{Name: "target", Usage: "only this target (repeatable)"}
	formatFlag  = &cli.StringFlag{Name: "format", Value: "text", Usage: "output format: text or json"}
	pluginFlags = []cli.Flag{
		&cli.StringSliceFlag{Name: "plugin-dir", Usage: "directory with harden-plugin-* binaries (repeatable; then $HARDEN_PLUGIN_PATH, then " + plugins.DefaultDir() + ")"},
		&cli.StringFlag{Name: "lock-file", Usage: "plugin lock file (default $HARDEN_PLUGIN_LOCK or " + plugins.DefaultLockPath() + ")"},
		&cli.BoolFlag{Name: "allow-unlocked", Usage: "run plugins that are not in the lock file or whose checksum changed (unsafe)"},
		&cli.StringFlag{Name: "log-level", Value: "warn", Usage: "log level of host and plugins: trace, debug, info, warn, error"},
		&cli.DurationFlag{Name: "timeout", Value: 5 * time.Minute, Usage: "time limit per target operation"},
		debugPluginsFlag(),
	}
)

// debugPluginsFlag is accepted before the command (global) and after it.
func debugPluginsFlag() cli.Flag {
	return &cli.BoolFlag{Name: "debug-plugins", Usage: "attach to plugins started by hand with HARDEN_PLUGIN_DEBUG=1, as named in HARDEN_REATTACH_PLUGINS; development only"}
}

func policyFlags(extra ...cli.Flag) []cli.Flag {
	return append(append([]cli.Flag{fileFlag, targetFlag, formatFlag}, extra...), pluginFlags...)
}

// reportPolicyFlags: policyFlags with the report formats and outputs
// (verify, inventory) instead of the single --format.
func reportPolicyFlags(extra ...cli.Flag) []cli.Flag {
	return append(append(append([]cli.Flag{fileFlag, targetFlag}, reportFlags()...), extra...), pluginFlags...)
}

// NewApp builds the harden command.
func NewApp(io IO) *cli.App {
	app := &cli.App{
		Name:      "harden",
		Usage:     "make encryption in transit and at rest real: render, apply and verify hardened TLS for data platforms",
		Version:   Version,
		Reader:    io.Stdin,
		Writer:    io.Stdout,
		ErrWriter: io.Stderr,
		// Errors are printed once by Run, with their exit code.
		ExitErrHandler: func(*cli.Context, error) {},
		Flags:          []cli.Flag{debugPluginsFlag()},
		Commands: []*cli.Command{
			{Name: "render", Usage: "render hardened configuration for each target (no network)",
				Flags: policyFlags(&cli.StringFlag{Name: "out", Usage: "write artifacts under DIR/<target>/ (private keys 0600) instead of listing them"},
					&cli.StringSliceFlag{Name: "client", Usage: "render this client's configurations for its targets instead (as rotate delivers them; nothing issued; DIR/<client>/<target>/ with --out)"}),
				Action: func(c *cli.Context) error { return render(c, io) }},
			{Name: "plan", Usage: "read live targets and show the changes apply would make",
				Flags:  policyFlags(&cli.BoolFlag{Name: "detailed-exitcode", Usage: "exit 2 when changes are pending"}),
				Action: func(c *cli.Context) error { return plan(c, io) }},
			{Name: "apply", Usage: "apply the plan to live targets (asks for confirmation on a terminal; --yes otherwise)",
				Flags:  policyFlags(&cli.BoolFlag{Name: "yes", Usage: "apply without asking"}),
				Action: func(c *cli.Context) error { return apply(c, io) }},
			{Name: "verify", Usage: "prove over real connections what each live target enforces",
				Flags: reportPolicyFlags(&cli.StringFlag{Name: "fail-on", Value: "info", Usage: "exit 2 when a failing check has at least this severity: info, low, medium, high, critical"},
					&cli.BoolFlag{Name: "inventory", Usage: "also collect the inventory (certificates, keys, next rotation) into the report; implied by --format html"},
					&cli.StringFlag{Name: "shard", Usage: "verify only share I of N (\"I/N\", 0-based; $JOB_COMPLETION_INDEX) of the targets and endpoints, stable by hash; merge the shards with harden report"},
					&cli.StringFlag{Name: "run-id", Usage: "name the fleet run this shard belongs to (default $HARDEN_RUN_ID): harden report merges only the shards of one run id"}),
				Action: func(c *cli.Context) error { return verify(c, io) }},
			rotateCommand(io),
			inventoryCommand(io),
			reportCommand(io),
			exporterCommand(io),
			scanCommand(io),
			envelopeCommand(io),
			objectstoreCommand(io),
			{Name: "policy", Usage: "policy file tools", Subcommands: []*cli.Command{
				{Name: "validate", Usage: "check a policy file against harden's and each plugin's schema",
					Flags: policyFlags(), Action: func(c *cli.Context) error { return validate(c, io) }},
				{Name: "schema", Usage: "print the policy file's JSON Schema (2020-12) with every plugin's spec schema",
					Flags: pluginFlags, Action: func(c *cli.Context) error { return schema(c, io) }},
			}},
			{Name: "plugins", Usage: "plugin tools", Subcommands: []*cli.Command{
				{Name: "list", Usage: "list plugins with version, capabilities and lock status",
					Flags: append([]cli.Flag{formatFlag}, pluginFlags...), Action: func(c *cli.Context) error { return listPlugins(c, io) }},
				{Name: "lock", Usage: "pin every discovered plugin binary by sha256 in the lock file",
					Flags: pluginFlags, Action: func(c *cli.Context) error { return lockPlugins(c, io) }},
				newPluginCommand(io),
			}},
		},
	}
	flagActionsMu.Lock()
	checkFlagValues(app.Commands)
	flagActionsMu.Unlock()
	return app
}

// flagActionsMu: pluginFlags are shared by every App; checkFlagValues sets
// their Actions once, never while another NewApp does.
var flagActionsMu sync.Mutex

// logLevels are the values --log-level accepts.
var logLevels = []string{"trace", "debug", "info", "warn", "error"}

// checkFlagValues makes every command refuse values that would silently
// mean something else: a zero or negative duration (--timeout -5s would end
// every call at once, or never) and an unknown --log-level (go-hclog turns
// it into its default). Both are usage errors (exit 1).
func checkFlagValues(cmds []*cli.Command) {
	for _, cmd := range cmds {
		for _, f := range cmd.Flags {
			switch f := f.(type) {
			case *cli.DurationFlag:
				if f.Action == nil {
					name := f.Name
					f.Action = func(_ *cli.Context, d time.Duration) error {
						if d <= 0 {
							return exitf(ExitConfig, "--%s %v: want a positive duration such as 30s or 5m", name, d)
						}
						return nil
					}
				}
			case *cli.StringFlag:
				if f.Name == "log-level" && f.Action == nil {
					f.Action = func(_ *cli.Context, level string) error {
						if !slices.Contains(logLevels, strings.ToLower(level)) {
							return exitf(ExitConfig, "--log-level %q: want one of %s", level, strings.Join(logLevels, ", "))
						}
						return nil
					}
				}
			}
		}
		checkFlagValues(cmd.Subcommands)
	}
}

// Run executes the CLI and returns the exit code, printing any error once.
func Run(ctx context.Context, args []string, io IO) int {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	io.interrupts = &interrupts{stderr: io.Stderr, cancel: cancel}
	if io.Signals != nil {
		stop := make(chan struct{})
		defer close(stop)
		go io.interrupts.watch(io.Signals, stop)
	}
	err := NewApp(io).RunContext(ctx, args)
	if err == nil {
		return ExitOK
	}
	code := CodeOf(err)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		code = ExitInterrupted
	}
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Err != nil {
		fmt.Fprintf(io.Stderr, "harden: %v\n", err)
	}
	return code
}

// ApplyGrace is how long harden waits, after the first SIGINT/SIGTERM
// during an apply step, for the plugin to finish or roll back that step
// (README "Exit codes"); then it kills the plugin as a second signal does.
var ApplyGrace = 60 * time.Second

// softDeadline is --timeout for an apply step: cutting the call off at the
// deadline would kill a plugin in the middle of its step (a rollback takes
// seconds), so at the deadline harden tells the plugin to stop — as the first
// Ctrl-C does — and waits up to ApplyGrace for its answer (a target error
// saying whether the step finished or was rolled back) before it kills the
// plugin. An apply therefore ends within --timeout + ApplyGrace + the close.
func softDeadline(ctx context.Context, d time.Duration, target string, eng *engine.Engine, stderr io.Writer) (context.Context, func()) {
	actx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	var grace *time.Timer
	deadline := time.AfterFunc(d, func() {
		fmt.Fprintf(stderr, "harden: %s did not finish within --timeout %v: asking it to finish or roll back its current step (waiting up to %v)\n", target, d, ApplyGrace)
		go eng.StopAll()
		mu.Lock()
		defer mu.Unlock()
		grace = time.AfterFunc(ApplyGrace, func() {
			fmt.Fprintf(stderr, "harden: %s did not finish or roll back its current step within %v; killing its plugin now\n", target, ApplyGrace)
			eng.KillAll()
			cancel()
		})
	})
	return actx, func() {
		deadline.Stop()
		mu.Lock()
		if grace != nil {
			grace.Stop()
		}
		mu.Unlock()
		cancel()
	}
}

// interrupts turns SIGINT and SIGTERM into what the running command needs.
// The first signal ends every call at once (ctx), except while a plugin
// applies a step: a plugin killed mid-step leaves its target half-changed
// until the next run recovers it from the journal, so the plugin is told to
// stop (Stop ends its request context, and a crash-consistent apply then
// finishes or rolls back its current step), and harden waits up to
// ApplyGrace for the answer, prints it and exits 130. A second signal, or
// the grace running out, kills the plugins' process groups at once.
type interrupts struct {
	stderr io.Writer
	cancel context.CancelFunc

	mu      sync.Mutex
	signals int
	eng     *engine.Engine // its plugins are killed on abort
	step    string         // the target whose apply step is running
	grace   *time.Timer
}

func (in *interrupts) watch(sigs <-chan os.Signal, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-sigs:
			in.signal()
		}
	}
}

func (in *interrupts) signal() {
	in.mu.Lock()
	in.signals++
	n, step, eng := in.signals, in.step, in.eng
	if n == 1 && step != "" && eng != nil {
		in.grace = time.AfterFunc(ApplyGrace, func() {
			fmt.Fprintf(in.stderr, "harden: %s did not finish or roll back its current step within %v; killing its plugin now\n", step, ApplyGrace)
			in.abort()
		})
	}
	in.mu.Unlock()
	switch {
	case n == 1 && step != "" && eng != nil:
		fmt.Fprintf(in.stderr, "interrupted: waiting for %s to finish or roll back its current step (press Ctrl-C again to abort now; the next harden run recovers from the journal)\n", step)
		// The Stop call itself is bounded (engine.StopAll).
		go eng.StopAll()
	case n > 1 && eng != nil:
		fmt.Fprintln(in.stderr, "interrupted again: killing the plugins now; the next harden run recovers from the journal")
		in.abort()
	default:
		// Calls end at once; the plugins then get the usual bounded
		// Close (client.GracefulExit, KillWait).
		in.cancel()
	}
}

// abort ends every call and kills the plugins' process groups.
func (in *interrupts) abort() {
	in.mu.Lock()
	eng := in.eng
	in.mu.Unlock()
	if eng != nil {
		eng.KillAll()
	}
	in.cancel()
}

// useEngine: a second signal kills eng's plugins.
func (in *interrupts) useEngine(eng *engine.Engine) {
	if in == nil {
		return
	}
	in.mu.Lock()
	in.eng = eng
	in.mu.Unlock()
}

// applying marks the apply step of target as running until the returned
// func is called: the first signal then waits for it instead of ending it.
func (in *interrupts) applying(target string) (done func()) {
	if in == nil {
		return func() {}
	}
	in.mu.Lock()
	in.step = target
	in.mu.Unlock()
	return func() {
		in.mu.Lock()
		in.step = ""
		if in.grace != nil {
			in.grace.Stop()
		}
		in.mu.Unlock()
	}
}

// signalled reports whether a signal arrived.
func (in *interrupts) signalled() bool {
	if in == nil {
		return false
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.signals > 0
}

func engineOptions(c *cli.Context, stderr io.Writer) engine.Options {
	lock := c.String("lock-file")
	if lock == "" {
		lock = plugins.DefaultLockPath()
	}
	// --debug-plugins counts before or after the command: each level of
	// the lineage reads its own (a command's flag shadows the global one).
	debug := false
	for _, l := range c.Lineage() {
		debug = debug || l.Bool("debug-plugins")
	}
	return engine.Options{PluginDirs: c.StringSlice("plugin-dir"), LockPath: lock, AllowUnlocked: c.Bool("allow-unlocked"),
		LogOutput: stderr, LogLevel: c.String("log-level"), DebugPlugins: debug}
}

func checkFormat(c *cli.Context) error {
	if f := c.String("format"); f != "text" && f != "json" {
		return exitf(ExitConfig, "--format %q: want text or json", f)
	}
	return nil
}

// session is a loaded policy with its plugins running.
type session struct {
	pol     *policy.Policy
	eng     *engine.Engine
	targets []policy.Target
	io      IO
	timeout time.Duration
}

func openSession(c *cli.Context, io IO) (*session, error) {
	// The exporter has no --format: it serves metrics.
	if !reportCommands[c.Command.Name] && c.Command.Name != "exporter" {
		if err := checkFormat(c); err != nil {
			return nil, err
		}
	}
	pol, err := policy.Load(c.String("file"))
	if err != nil {
		return nil, &ExitError{Code: ExitConfig, Err: err}
	}
	targets := pol.Targets
	if names := c.StringSlice("target"); len(names) > 0 {
		targets = nil
		for _, n := range names {
			t, ok := pol.Target(n)
			if !ok {
				return nil, exitf(ExitConfig, "--target %q: no such target in %s", n, pol.File)
			}
			targets = append(targets, t)
		}
	}
	opts := engineOptions(c, io.Stderr)
	if err := requireTrusted(opts, engine.PluginNames(pol)); err != nil {
		return nil, err
	}
	eng, err := engine.OpenForPolicy(c.Context, opts, pol)
	if err != nil {
		return nil, err
	}
	// verify, inventory and the exporter judge what is live; they never
	// ask a certificate source for new certificates.
	eng.NoIssue = c.Command.Name == "verify" || c.Command.Name == "inventory" || c.Command.Name == "exporter"
	eng.Getenv = io.Getenv
	io.interrupts.useEngine(eng)
	return &session{pol: pol, eng: eng, targets: targets, io: io, timeout: c.Duration("timeout")}, nil
}

// perTarget runs fn for each selected target, at most four at a time, and
// returns results in policy order. Ctrl-C stops in-flight plugin work.
func perTarget[R any](ctx context.Context, s *session, fn func(ctx context.Context, p *engine.Plugin, rc sdk.RequestContext) (R, error)) ([]R, []error) {
	results := make([]R, len(s.targets))
	errs := make([]error, len(s.targets))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	stopWatch := context.AfterFunc(ctx, s.eng.StopAll)
	defer stopWatch()
	for i, t := range s.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			tctx, cancel := context.WithTimeout(ctx, s.timeout)
			defer cancel()
			rc, err := s.eng.Request(tctx, s.pol, t, s.io.Getenv)
			// verify runs without what the certificate source could not
			// provide, and the target still ends in that error.
			var source *engine.CertificateSourceError
			if err != nil && !(s.eng.NoIssue && errors.As(err, &source)) {
				errs[i] = err
				return
			}
			results[i], errs[i] = fn(tctx, s.eng.Plugins[t.Plugin], rc)
			if errs[i] == nil && source != nil {
				errs[i] = source
			}
		}()
	}
	wg.Wait()
	return results, errs
}

// requireTrusted refuses, with exit 3 (untrusted), a plugin the policy
// needs whose only binaries the trust rule refused. The engine would call
// it an unknown plugin, which is a configuration error (exit 1).
func requireTrusted(opts engine.Options, names []string) error {
	found, problems := plugins.Discover(plugins.Dirs(opts.PluginDirs))
	for _, n := range names {
		if slices.ContainsFunc(found, func(b plugins.Binary) bool { return b.Name == n }) {
			continue
		}
		if p, ok := plugins.UntrustedProblem(problems, n); ok {
			return exitf(ExitTarget, "plugin %s refused: %v", n, p.Err)
		}
	}
	return nil
}

func interrupted(ctx context.Context) error {
	if ctx.Err() != nil {
		return &ExitError{Code: ExitInterrupted, Err: errors.New("interrupted: in-flight plugin work was stopped")}
	}
	return nil
}

func validate(c *cli.Context, io IO) error {
	s, err := openSession(c, io)
	if err != nil {
		return err
	}
	defer s.eng.Close()
	// The files the selected targets name (certificates, keys, secrets)
	// must exist, be regular, bounded and, for secrets, private — each
	// problem at its policy line. Files harden will create are not named.
	if err := s.pol.CheckFiles(s.targets); err != nil {
		return &ExitError{Code: ExitConfig, Err: err}
	}
	if c.String("format") == "json" {
		return writeJSON(io.Stdout, map[string]any{"format_version": 1, "valid": true, "file": s.pol.File, "targets": len(s.pol.Targets)})
	}
	fmt.Fprintf(io.Stdout, "%s: valid (profile %s, %d targets: %s)\n", s.pol.File, s.pol.Profile.Name, len(s.pol.Targets), targetList(s.pol.Targets))
	return nil
}

func targetList(ts []policy.Target) string {
	var parts []string
	for _, t := range ts {
		parts = append(parts, t.Name+" ("+t.Plugin+")")
	}
	return strings.Join(parts, ", ")
}

func schema(c *cli.Context, io IO) error {
	eng, err := engine.Open(c.Context, engineOptions(c, io.Stderr), nil)
	if err != nil {
		return err
	}
	defer eng.Close()
	ps := map[string]policy.PluginSchemas{}
	for name, p := range eng.Plugins {
		ps[name] = policy.PluginSchemas{Connection: p.Schemas.Connection, Spec: p.Schemas.Spec}
	}
	doc, err := policy.JSONSchema(ps)
	if err != nil {
		return exitf(ExitTarget, "compose schema: %v", err)
	}
	_, err = io.Stdout.Write(append(doc, '\n'))
	return err
}

func render(c *cli.Context, io IO) error {
	if names := c.StringSlice("client"); len(names) > 0 {
		return renderClients(c, io, names)
	}
	s, err := openSession(c, io)
	if err != nil {
		return err
	}
	defer s.eng.Close()
	results, errs := perTarget(c.Context, s, func(ctx context.Context, p *engine.Plugin, rc sdk.RequestContext) (sdk.RenderResponse, error) {
		if !slices.Contains(p.Meta.Capabilities, sdk.CapRender) {
			// Nothing to render (a verify-only service, an object store
			// configured through its API): said, not an error, so one
			// policy renders all its targets.
			var r sdk.RenderResponse
			r.Diagnostics.AddWarning("plugin "+p.Meta.Name+" renders no configuration files (its targets are changed through their API by apply, or only verified)", "")
			return r, nil
		}
		return p.Client.Render(ctx, rc)
	})
	if err := interrupted(c.Context); err != nil {
		return err
	}
	rep := newReport(s)
	for i := range s.targets {
		rep.Targets[i].SetResult(errs[i], results[i].Diagnostics, s.pol)
		rep.Targets[i].Artifacts = report.Artifacts(results[i].Artifacts)
	}
	if out := c.String("out"); out != "" && !rep.Failed() {
		for i, t := range s.targets {
			if err := writeArtifacts(filepath.Join(out, t.Name), results[i].Artifacts); err != nil {
				return exitf(ExitConfig, "render --out: %v", err)
			}
		}
	}
	if err := printRun(io.Stdout, rep, c.String("format"), "render"); err != nil {
		return err
	}
	return runExit(rep)
}

func plan(c *cli.Context, io IO) error {
	s, err := openSession(c, io)
	if err != nil {
		return err
	}
	defer s.eng.Close()
	rep, _, err := runPlan(c.Context, s)
	if err != nil {
		return err
	}
	if err := printRun(io.Stdout, rep, c.String("format"), "plan"); err != nil {
		return err
	}
	if err := runExit(rep); err != nil {
		return err
	}
	if c.Bool("detailed-exitcode") && rep.PendingChanges() > 0 {
		return &ExitError{Code: ExitFindings}
	}
	return nil
}

func runPlan(ctx context.Context, s *session) (*report.Run, []sdk.PlanResponse, error) {
	results, errs := perTarget(ctx, s, func(ctx context.Context, p *engine.Plugin, rc sdk.RequestContext) (sdk.PlanResponse, error) {
		if p.VerifyOnly() {
			// A verify-only plugin (service): harden changes nothing there,
			// so its plan is empty, not an error. A plugin that applies
			// but cannot plan still gets the call, and its error.
			return sdk.PlanResponse{}, nil
		}
		return p.Client.Plan(ctx, rc)
	})
	if err := interrupted(ctx); err != nil {
		return nil, nil, err
	}
	rep := newReport(s)
	for i := range s.targets {
		rep.Targets[i].SetResult(errs[i], results[i].Diagnostics, s.pol)
		rep.Targets[i].Changes = report.Changes(results[i].Changes)
	}
	return rep, results, nil
}

func apply(c *cli.Context, io IO) error {
	s, err := openSession(c, io)
	if err != nil {
		return err
	}
	defer s.eng.Close()
	rep, plans, err := runPlan(c.Context, s)
	if err != nil {
		return err
	}
	format := c.String("format")
	if format == "text" || !c.Bool("yes") {
		if err := printRun(io.Stdout, rep, "text", "plan"); err != nil {
			return err
		}
	}
	if err := runExit(rep); err != nil {
		return exitf(CodeOf(err), "plan failed; nothing was applied")
	}
	if rep.PendingChanges() == 0 {
		if format == "json" {
			for i := range rep.Targets {
				rep.Targets[i].Status = "unchanged"
			}
			return printRun(io.Stdout, rep, format, "apply")
		}
		fmt.Fprintln(io.Stdout, "Nothing to apply: every target already matches the policy.")
		return nil
	}
	if !c.Bool("yes") {
		if !io.IsTerminal() {
			return exitf(ExitConfig, "apply changes live systems: pass --yes when not running on a terminal; nothing was applied")
		}
		fmt.Fprintf(io.Stdout, "\nApply %d change(s) to %d target(s)? Only 'yes' is accepted: ", rep.PendingChanges(), len(s.targets))
		answer := make(chan string, 1)
		go func() { line, _ := bufio.NewReader(io.Stdin).ReadString('\n'); answer <- line }()
		select {
		case <-c.Context.Done():
			return &ExitError{Code: ExitInterrupted, Err: errors.New("interrupted at the confirmation; nothing was applied")}
		case line := <-answer:
			if strings.TrimSpace(line) != "yes" {
				return exitf(ExitConfig, "apply cancelled; nothing was applied")
			}
		}
	}
	// Targets are applied one at a time in policy order and apply stops at the
	// first failure, so the operator knows exactly what changed.
	out := newReport(s)
	notApplied := func(from int) {
		for j := from; j < len(s.targets); j++ {
			if out.Targets[j].Status == "ok" {
				out.Targets[j].Status = "not-applied"
			}
		}
	}
	for i, t := range s.targets {
		if rep.Targets[i].Pending() == 0 {
			out.Targets[i].Status = "unchanged"
			continue
		}
		if c.Context.Err() != nil || io.interrupts.signalled() {
			notApplied(i)
			break
		}
		p := s.eng.Plugins[t.Plugin]
		tctx, cancel := context.WithTimeout(c.Context, s.timeout)
		rc, err := s.eng.Request(tctx, s.pol, t, io.Getenv)
		cancel()
		var resp sdk.ApplyResponse
		if err == nil {
			// The first signal from here on lets the plugin finish or
			// roll back its step (interrupts), and so does --timeout
			// (softDeadline); the call ends only on a second signal or
			// when the grace runs out.
			stepDone := io.interrupts.applying(t.Name)
			actx, end := softDeadline(c.Context, s.timeout, t.Name, s.eng, io.Stderr)
			resp, err = p.Client.Apply(actx, rc, plans[i].PlanToken, c.Bool("force"))
			end()
			stepDone()
		}
		out.Targets[i].SetResult(err, resp.Diagnostics, s.pol)
		out.Targets[i].Changes = report.Changes(resp.Applied)
		if out.Targets[i].Status != "ok" {
			notApplied(i + 1)
			break
		}
		out.Targets[i].Status = "applied"
	}
	if io.interrupts.signalled() || c.Context.Err() != nil {
		_ = printRun(io.Stdout, out, format, "apply")
		return &ExitError{Code: ExitInterrupted, Err: errors.New("interrupted: apply stopped; each target's status is above (a target in error says whether its step finished or was rolled back); the next harden run recovers from the journal")}
	}
	if err := printRun(io.Stdout, out, format, "apply"); err != nil {
		return err
	}
	return runExit(out)
}

func verify(c *cli.Context, io IO) error {
	failOn, err := checks.ParseSeverity(c.String("fail-on"))
	if err != nil {
		return exitf(ExitConfig, "--fail-on: %v", err)
	}
	outs, err := openOutputs(c, "verify")
	if err != nil {
		return err
	}
	defer outs.Abort()
	if spec := c.String("shard"); spec != "" {
		// A bad --shard is refused before any plugin starts.
		if _, err := report.ParseShard(spec, lookupEnv(io)); err != nil {
			return exitf(ExitConfig, "--shard %q: %v", spec, err)
		}
	}
	runID, err := verifyRunID(c, io)
	if err != nil {
		return err
	}
	s, err := openSession(c, io)
	if err != nil {
		return err
	}
	defer s.eng.Close()
	shard, err := shardTargets(s, c.String("shard"))
	if err != nil {
		return exitf(ExitConfig, "--shard %q: %v", c.String("shard"), err)
	}
	rep, err := collectVerify(c.Context, s, c.Bool("inventory") || wants(outs, "html"), clientsFor(c, s))
	if err != nil {
		return err
	}
	markShard(rep, s, shard, runID)
	rep.Selection = selection(c)
	if err := emit(io, outs, rep); err != nil {
		return err
	}
	if err := runExit(rep); err != nil {
		return err
	}
	if rep.FailingAtOrAbove(failOn) > 0 {
		return &ExitError{Code: ExitFindings}
	}
	return nil
}

// collectVerify verifies every target of the session (and with
// withInventory collects the inventory too) into a finished Run. The
// exporter calls it on its schedule.
func collectVerify(ctx context.Context, s *session, withInventory bool, clients []inventory.HeldClient) (*report.Run, error) {
	start := time.Now()
	results, errs := perTarget(ctx, s, func(ctx context.Context, p *engine.Plugin, rc sdk.RequestContext) (sdk.VerifyResponse, error) {
		return p.Client.Verify(ctx, rc)
	})
	if err := interrupted(ctx); err != nil {
		return nil, err
	}
	rep := newReport(s)
	rep.GeneratedAt = start.UTC()
	for i, t := range s.targets {
		setVerifyResult(&rep.Targets[i], errs[i], results[i], s.pol, t.Plugin)
		eps, problems := report.Endpoints(results[i].Endpoints)
		rep.Targets[i].Endpoints = eps
		if len(problems) > 0 {
			const shown = 5
			more := ""
			if len(problems) > shown {
				more, problems = fmt.Sprintf("; and %d more", len(problems)-shown), problems[:shown]
			}
			rep.Targets[i].Diagnostics = append(rep.Targets[i].Diagnostics, report.Diagnostic{Severity: "warning", Source: "plugin",
				Summary: fmt.Sprintf("plugin %s sent invalid endpoint data (report data only; the checks are judged apart)", t.Plugin),
				Detail:  strings.Join(problems, "; ") + more})
		}
	}
	if withInventory {
		inv, err := collectInventory(ctx, s, clients)
		if err != nil {
			return nil, err
		}
		rep.Inventory = inv
	}
	rep.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	rep.Finish("verify")
	return rep, nil
}

func listPlugins(c *cli.Context, io IO) error {
	if err := checkFormat(c); err != nil {
		return err
	}
	opts := engineOptions(c, io.Stderr)
	// Every discovered plugin is listed; only trusted ones are launched (all
	// with --allow-unlocked), and one broken plugin does not hide the rest.
	eng, err := engine.OpenEach(c.Context, opts, nil)
	if err != nil {
		return err
	}
	defer eng.Close()
	lock, _ := plugins.ReadLock(opts.LockPath)
	type row struct {
		Name         string   `json:"name"`
		Version      string   `json:"version,omitempty"`
		Path         string   `json:"path"`
		SHA256       string   `json:"sha256,omitempty"`
		Lock         string   `json:"lock"`
		Capabilities []string `json:"capabilities,omitempty"`
		Description  string   `json:"description,omitempty"`
		Error        string   `json:"error,omitempty"`
	}
	var rows []row
	failures := 0
	for _, b := range eng.Found {
		r := row{Name: b.Name, Path: b.Path, Lock: string(plugins.Unlocked)}
		if e, ok := lock.Plugins[b.Name]; ok {
			r.SHA256, r.Lock = e.SHA256, string(plugins.Locked)
		}
		if p, ok := eng.Plugins[b.Name]; ok {
			r.Version, r.Description, r.SHA256, r.Lock = p.Meta.Version, p.Meta.Description, p.SHA256, string(p.LockStatus)
			for _, cp := range p.Meta.Capabilities {
				r.Capabilities = append(r.Capabilities, string(cp))
			}
		}
		if err := eng.Failed[b.Name]; err != nil {
			r.Error = err.Error()
			if errors.Is(err, hostclient.ErrChecksumMismatch) || strings.Contains(err.Error(), "does not match its sha256") {
				r.Lock = string(plugins.Mismatch)
			}
			if r.Lock != string(plugins.Unlocked) {
				failures++
			}
		}
		rows = append(rows, r)
	}
	if c.String("format") == "json" {
		var probs []map[string]string
		for _, p := range eng.Problems {
			probs = append(probs, map[string]string{"path": p.Path, "reason": p.Reason})
		}
		if err := writeJSON(io.Stdout, map[string]any{"format_version": FormatVersion, "plugins": rows, "refused": probs}); err != nil {
			return err
		}
	} else {
		if len(rows) == 0 {
			fmt.Fprintf(io.Stdout, "No plugins found in %s\n", strings.Join(plugins.Dirs(opts.PluginDirs), ", "))
		}
		for _, r := range rows {
			v := r.Version
			if v == "" {
				v = "-"
			}
			fmt.Fprintf(io.Stdout, "%-14s %-10s %-18s %-32s %s\n", r.Name, v, r.Lock, strings.Join(r.Capabilities, ","), r.Path)
			if r.Error != "" && r.Lock != string(plugins.Unlocked) {
				fmt.Fprintf(io.Stdout, "  error: %s\n", r.Error)
			}
		}
		for _, p := range eng.Problems {
			fmt.Fprintf(io.Stdout, "refused: %s\n", p.Error())
		}
	}
	if failures > 0 {
		return &ExitError{Code: ExitTarget, Err: fmt.Errorf("%d plugin(s) failed to start", failures)}
	}
	if n := untrustedCount(eng.Problems); n > 0 {
		return &ExitError{Code: ExitTarget, Err: fmt.Errorf("%d plugin binary(ies) refused as untrusted", n)}
	}
	return nil
}

func untrustedCount(problems []plugins.Problem) int {
	n := 0
	for _, p := range problems {
		if p.Untrusted() {
			n++
		}
	}
	return n
}

func lockPlugins(c *cli.Context, io IO) error {
	opts := engineOptions(c, io.Stderr)
	found, problems := plugins.Discover(plugins.Dirs(opts.PluginDirs))
	for _, p := range problems {
		fmt.Fprintf(io.Stderr, "harden: not locking %s\n", p.Error())
	}
	if len(found) == 0 {
		if n := untrustedCount(problems); n > 0 {
			return exitf(ExitTarget, "%d plugin binary(ies) refused as untrusted and not locked; no other plugins found", n)
		}
		return exitf(ExitConfig, "no plugins found in %s", strings.Join(plugins.Dirs(opts.PluginDirs), ", "))
	}
	lock := &plugins.Lock{Version: plugins.LockVersion, Plugins: map[string]plugins.LockEntry{}}
	sums := make([]string, len(found))
	errs := make([]error, len(found))
	var wg sync.WaitGroup
	for i, b := range found {
		wg.Add(1)
		go func() { defer wg.Done(); sums[i], errs[i] = b.SHA256() }()
	}
	wg.Wait()
	var names []string
	for i, b := range found {
		if errs[i] != nil {
			return exitf(ExitConfig, "hash %s: %v", b.Path, errs[i])
		}
		lock.Plugins[b.Name] = plugins.LockEntry{SHA256: sums[i], Path: b.Path}
		names = append(names, b.Name+" "+sums[i][:12])
	}
	if err := lock.Write(opts.LockPath); err != nil {
		code := ExitConfig
		if errors.Is(err, plugins.ErrUntrusted) {
			code = ExitTarget
		}
		return exitf(code, "write lock file %s: %v", opts.LockPath, err)
	}
	slices.Sort(names)
	fmt.Fprintf(io.Stdout, "Locked %d plugin(s) in %s:\n  %s\n", len(found), opts.LockPath, strings.Join(names, "\n  "))
	if n := untrustedCount(problems); n > 0 {
		return exitf(ExitTarget, "%d plugin binary(ies) refused as untrusted and not locked", n)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// lookupEnv is io.Getenv, or the process environment when unset.
func lookupEnv(io IO) func(string) (string, bool) {
	if io.Getenv != nil {
		return io.Getenv
	}
	return os.LookupEnv
}

// selection: the --target names, sorted (nil for the whole policy).
func selection(c *cli.Context) []string {
	names := c.StringSlice("target")
	if len(names) == 0 {
		return nil
	}
	return slices.Compact(slices.Sorted(slices.Values(names)))
}
