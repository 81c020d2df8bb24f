// Command testenv starts real servers on 127.0.0.1 for the demo and manual
// testing:
//
//	testenv up --services postgres[,kafka,vault,s3,...] [--then vault,s3,...] --state-dir DIR
//	testenv down --state-dir DIR
//	testenv sign-intermediate --state-dir DIR
//	testenv pipeline-policy --state-dir DIR --example FILE --out FILE
//	testenv get --state-dir DIR services.s3.https
//	testenv probe-identity --state-dir DIR --out FILE [--cn harden-probe]
//
// `up` writes DIR/env.json (addresses and credential file paths, see
// testenv.EnvFile) and DIR/policy.yaml (one target per service), prints
// "ready" and runs until SIGTERM or SIGINT, then stops every server and
// removes its files. With --then, the services listed there are started
// once their builds exist (the demo builds Vault and SeaweedFS in the
// background meanwhile): then DIR/policy-full.yaml covers every service and
// "ready-full" is printed ("failed-full: REASON" if they cannot start; the
// first services keep running). The CA is then an enterprise root that
// signs Vault's intermediate: `sign-intermediate` signs the CSR the vault
// target's first apply wrote (DIR/vault-intermediate.csr) into
// DIR/vault-intermediate.pem, which the next apply sets. `down` signals a running `up` through DIR/testenv.pid.
// `probe-identity` has the hardened Vault of `up` (after `harden apply
// --target vault`) issue a client certificate for an identity with no ACLs
// and no super-user rights, written with its key to FILE (0600): what Kafka
// verify's connection.probe_credentials_file needs to prove deny-by-default.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/harden-dev/harden/testenv"
)

func main() {
	stateFlag := &cli.StringFlag{Name: "state-dir", Required: true, Usage: "directory for env.json, policy.yaml, the CA and credentials"}
	app := &cli.App{
		Name:  "testenv",
		Usage: "start real PostgreSQL/Kafka/Vault/S3 servers on 127.0.0.1 for harden's tests and demo",
		Commands: []*cli.Command{
			{Name: "up", Usage: "start services and run until SIGTERM/SIGINT",
				Flags: []cli.Flag{&cli.StringFlag{Name: "services", Value: "postgres", Usage: "comma-separated: " + strings.Join(testenv.Known, ",")}, stateFlag,
					&cli.StringFlag{Name: "then", Usage: "comma-separated services to start once their builds exist (writes policy-full.yaml, prints ready-full)"}},
				Action: up},
			{Name: "pipeline-policy", Usage: "put this env's addresses and files into a deployment's policy (examples/pipeline/policy.yaml)",
				Flags: []cli.Flag{stateFlag, &cli.StringFlag{Name: "example", Required: true, Usage: "the policy to localize"},
					&cli.StringFlag{Name: "from", Value: "policy-full.yaml", Usage: "the generated policy in the state dir to take addresses and files from"},
					&cli.StringFlag{Name: "out", Required: true, Usage: "where to write the localized policy (0600)"}},
				Action: pipelinePolicy},
			{Name: "get", Usage: "print one value of env.json by its dotted path (e.g. services.s3.https)", ArgsUsage: "PATH",
				Flags: []cli.Flag{stateFlag}, Action: get},
			{Name: "sign-intermediate", Usage: "sign the vault target's intermediate CSR with the enterprise root of a staged `up --then`",
				Flags: []cli.Flag{stateFlag}, Action: signIntermediate},
			{Name: "down", Usage: "stop the services started by `up` in this state dir", Flags: []cli.Flag{stateFlag}, Action: down},
			{Name: "probe-identity", Usage: "issue an unprivileged client certificate from the hardened Vault (pki_int/issue/client)",
				Flags: []cli.Flag{stateFlag, &cli.StringFlag{Name: "out", Required: true, Usage: "PEM file to write (certificate chain + key, 0600)"},
					&cli.StringFlag{Name: "cn", Value: testenv.ProbeIdentityCN, Usage: "common name (must be in the vault target's pki.client_names)"}},
				Action: probeIdentity},
		},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		os.Exit(1)
	}
}

func up(c *cli.Context) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir := c.String("state-dir")
	services := splitList(c.String("services"))
	later := splitList(c.String("then"))
	env, err := testenv.Up(ctx, testenv.Options{Services: services, StateDir: dir, Log: os.Stderr, Staged: slices.Contains(later, "vault")})
	if err != nil {
		return err
	}
	pidFile := filepath.Join(env.Dir, "testenv.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		env.Down()
		return err
	}
	fmt.Printf("ready: %s %s\n", filepath.Join(env.Dir, "env.json"), filepath.Join(env.Dir, "policy.yaml"))
	if len(later) > 0 {
		if err := env.Add(ctx, later, "policy-full.yaml"); err != nil {
			if ctx.Err() == nil {
				fmt.Printf("failed-full: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
				fmt.Fprintln(os.Stderr, "testenv:", err)
			}
		} else {
			fmt.Printf("ready-full: %s %s\n", filepath.Join(env.Dir, "env.json"), filepath.Join(env.Dir, "policy-full.yaml"))
		}
	}
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "testenv: stopping ...")
	err = env.Down()
	os.Remove(pidFile)
	return err
}

func down(c *cli.Context) error {
	pidFile := filepath.Join(c.String("state-dir"), "testenv.pid")
	data, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no testenv running for %s (no testenv.pid)", c.String("state-dir"))
	}
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return fmt.Errorf("%s: %w", pidFile, err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		os.Remove(pidFile)
		return fmt.Errorf("signal testenv %d: %w", pid, err)
	}
	for i := 0; i < 300; i++ {
		if syscall.Kill(pid, 0) != nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("testenv %d did not stop within 30 s", pid)
}

func probeIdentity(c *cli.Context) error {
	pem, err := testenv.IssueProbeIdentity(c.Context, c.String("state-dir"), c.String("cn"))
	if err != nil {
		return err
	}
	return os.WriteFile(c.String("out"), pem, 0o600)
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func signIntermediate(c *cli.Context) error {
	dir := c.String("state-dir")
	ca, err := testenv.LoadCA(dir)
	if err != nil {
		return err
	}
	csr, err := os.ReadFile(filepath.Join(dir, testenv.IntermediateCSR))
	if err != nil {
		return fmt.Errorf("no CSR yet (apply the vault target first): %w", err)
	}
	signed, err := ca.SignIntermediate(csr)
	if err != nil {
		return fmt.Errorf("%s: %w", testenv.IntermediateCSR, err)
	}
	root, err := os.ReadFile(ca.CertFile)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, testenv.IntermediateChain), append(signed, root...), 0o644)
}

func pipelinePolicy(c *cli.Context) error {
	dir := c.String("state-dir")
	example, err := os.ReadFile(c.String("example"))
	if err != nil {
		return err
	}
	generated, err := os.ReadFile(filepath.Join(dir, c.String("from")))
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	out, err := testenv.LocalizePolicy(example, generated, abs)
	if err != nil {
		return fmt.Errorf("%s: %w", c.String("example"), err)
	}
	return os.WriteFile(c.String("out"), out, 0o600)
}

func get(c *cli.Context) error {
	data, err := os.ReadFile(filepath.Join(c.String("state-dir"), "env.json"))
	if err != nil {
		return err
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	path := c.Args().First()
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("env.json: %s: not found", path)
		}
		if v, ok = m[k]; !ok {
			return fmt.Errorf("env.json: %s: not found", path)
		}
	}
	switch x := v.(type) {
	case string:
		fmt.Println(x)
	default:
		out, _ := json.Marshal(x)
		fmt.Println(string(out))
	}
	return nil
}
