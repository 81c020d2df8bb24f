// Command harden-plugin-echo is a test-only plugin built as its own module
// that imports only shared/sdk — proof that an out-of-tree author can build a
// plugin. Its spec switches on failure modes the host must survive.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
)

type echo struct{}

// pluginName is "echo"; benchmarks build copies under other names with
// -ldflags "-X main.pluginName=...".
var pluginName = "echo"

type connection struct {
	Address   string `json:"address"`
	StateFile string `json:"state_file"`
	TokenEnv  string `json:"token_env"`
}

type spec struct {
	Settings     map[string]string `json:"settings"`
	Mode         string            `json:"mode"`
	ForbiddenEnv []string          `json:"forbidden_env"`
}

func init() {
	sdk.RegisterChecks(
		sdk.CheckDefinition{ID: "echo.reachable", Title: "Echo server answers", Severity: sdk.SeverityHigh},
		sdk.CheckDefinition{ID: "echo.env.clean", Title: "Plugin did not inherit host secrets", Severity: sdk.SeverityCritical},
		sdk.CheckDefinition{ID: "echo.secret.received", Title: "Target secret arrived in the request", Severity: sdk.SeverityMedium},
	)
}

func (echo) Metadata(_ context.Context, _ sdk.MetadataRequest, r *sdk.MetadataResponse) {
	r.Name, r.Version, r.Description = pluginName, "0.1.0", "test plugin"
}

func (echo) Schema(_ context.Context, _ sdk.SchemaRequest, r *sdk.SchemaResponse) {
	r.Connection = []byte(`{"type":"object","additionalProperties":false,"required":["address"],
	 "properties":{"address":{"type":"string"},"state_file":{"type":"string"},"token_env":{"type":"string"}}}`)
	r.Spec = []byte(`{"type":"object","additionalProperties":false,"properties":{
	 "settings":{"type":"object","additionalProperties":{"type":"string"}},
	 "mode":{"enum":["normal","crash","hang","stdout","empty","allskip","invalid","evidence","issuer-fail","issuer-empty","child","child-hang","rollback","stuck","binary"]},
	 "forbidden_env":{"type":"array","items":{"type":"string"}}}}`)
}

func (echo) ValidateSpec(_ context.Context, q sdk.ValidateSpecRequest, r *sdk.ValidateSpecResponse) {
	var s spec
	if err := q.Target.DecodeSpec(&s); err != nil {
		r.Diagnostics.AddError("bad spec", err.Error())
		return
	}
	for k := range s.Settings {
		if strings.Contains(k, "=") {
			r.Diagnostics.AddAttributeError(sdk.Path{"spec", "settings", k}, "setting names cannot contain '='", "")
		}
	}
}

func decode(rc sdk.RequestContext, d *sdk.Diagnostics) (connection, spec, bool) {
	var c connection
	var s spec
	if err := rc.Target.DecodeConnection(&c); err != nil {
		d.AddError("bad connection", err.Error())
		return c, s, false
	}
	if err := rc.Target.DecodeSpec(&s); err != nil {
		d.AddError("bad spec", err.Error())
		return c, s, false
	}
	return c, s, true
}

func (echo) Render(_ context.Context, q sdk.RenderRequest, r *sdk.RenderResponse) {
	_, s, ok := decode(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# profile %s\nmin_version = %x\nciphers = %s\n", q.Policy.Profile.Name, q.Policy.Profile.MinVersion(), q.Policy.Profile.OpenSSLCipherList())
	for _, k := range sortedKeys(s.Settings) {
		fmt.Fprintf(&b, "%s = %s\n", k, s.Settings[k])
	}
	r.Artifacts = append(r.Artifacts, sdk.Artifact{Path: "echo.conf", Content: []byte(b.String()), Mode: 0o644})
	if s.Mode == "binary" {
		// A truststore as Kafka's plugin renders it (PKCS#12: DER, not
		// text), and a key a careless plugin forgot to mark sensitive.
		r.Artifacts = append(r.Artifacts,
			sdk.Artifact{Path: "truststore.p12", Content: []byte{0x30, 0x82, 0x01, 0x0a, 0x02, 0x01, 0x03, 0x30, 0x00, 0x1b, '[', '2', 'J', 0xff}, Mode: 0o644},
			sdk.Artifact{Path: "careless-key.pem", Content: []byte("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oJEsWIvH0FOZ\n-----END EC PRIVATE KEY-----\n"), Mode: 0o644})
	}
	if len(q.Certificates.KeyPEM) > 0 {
		r.Artifacts = append(r.Artifacts, sdk.Artifact{Path: "tls/key.pem", Content: q.Certificates.KeyPEM, Mode: 0o600, Sensitive: true})
	}
}

func readState(path string) (map[string]string, []byte, error) {
	state := map[string]string{}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return state, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return state, data, json.Unmarshal(data, &state)
}

func (echo) Plan(ctx context.Context, q sdk.PlanRequest, r *sdk.PlanResponse) {
	c, s, ok := decode(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	if err := ping(ctx, c.Address); err != nil {
		r.Diagnostics.AddTargetError("echo.unreachable", "echo server unreachable", err)
		return
	}
	state, raw, err := readState(c.StateFile)
	if err != nil {
		r.Diagnostics.AddTargetError("echo.state", "read state", err)
		return
	}
	for _, k := range sortedKeys(s.Settings) {
		switch old, ok := state[k]; {
		case !ok:
			r.Changes = append(r.Changes, sdk.Change{Resource: k, Action: sdk.Create, After: s.Settings[k]})
		case old != s.Settings[k]:
			r.Changes = append(r.Changes, sdk.Change{Resource: k, Action: sdk.Update, Before: old, After: s.Settings[k]})
		}
	}
	sum := sha256.Sum256(raw)
	r.PlanToken = sum[:]
}

func (e echo) Apply(ctx context.Context, q sdk.ApplyRequest, r *sdk.ApplyResponse) {
	c, s, ok := decode(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	if s.Mode == "rollback" || s.Mode == "stuck" {
		// Tells a test the step has begun.
		_ = os.WriteFile(c.StateFile+".applying", nil, 0o600)
	}
	switch s.Mode {
	case "hang":
		// A slow apply that honours cancellation: Ctrl-C must stop it
		// before anything is written.
		select {
		case <-ctx.Done():
			r.Diagnostics.AddError("apply cancelled", "nothing was written")
			return
		case <-time.After(time.Hour):
		}
	case "rollback":
		// What a crash-consistent apply does when the host stops it: it
		// rolls its current step back (which takes a moment) and says so.
		select {
		case <-ctx.Done():
			time.Sleep(1500 * time.Millisecond)
			r.Diagnostics.AddTargetError("echo.apply.interrupted", "apply interrupted: rolled back the current step",
				fmt.Errorf("%v; the state file is as it was", context.Cause(ctx)))
			return
		case <-time.After(time.Hour):
		}
	case "stuck":
		time.Sleep(time.Hour) // ignores cancellation on purpose
	}
	var plan sdk.PlanResponse
	e.Plan(ctx, sdk.PlanRequest{RequestContext: q.RequestContext}, &plan)
	if plan.Diagnostics.HasError() {
		r.Diagnostics = plan.Diagnostics
		return
	}
	if string(plan.PlanToken) != string(q.PlanToken) {
		r.Diagnostics.AddTargetError("echo.drift", "live state changed since the plan; re-run plan", nil)
		return
	}
	state, _, _ := readState(c.StateFile)
	for k, v := range s.Settings {
		state[k] = v
	}
	data, _ := json.Marshal(state)
	tmp := c.StateFile + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		r.Diagnostics.AddTargetError("echo.write", "write state", err)
		return
	}
	if err := os.Rename(tmp, c.StateFile); err != nil {
		r.Diagnostics.AddTargetError("echo.write", "write state", err)
		return
	}
	r.Applied = plan.Changes
}

func (echo) Verify(ctx context.Context, q sdk.VerifyRequest, r *sdk.VerifyResponse) {
	c, s, ok := decode(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	sdk.Log().Info("verifying", "target", q.Target.Name, "address", c.Address)
	if s.Mode == "child" || s.Mode == "child-hang" {
		// A child that keeps the plugin's stdout and stderr open, as a
		// helper a plugin runs (or a daemon it starts) might: fds 1 and 2
		// are the host's pipes (os.Stdout is go-plugin's own by now).
		child := exec.Command("sleep", "300")
		child.Stdout, child.Stderr = os.NewFile(1, "stdout"), os.NewFile(2, "stderr")
		if err := child.Start(); err != nil {
			r.Diagnostics.AddError("start child", err.Error())
			return
		}
		pids := fmt.Sprintf("%d %d %d\n", os.Getpid(), syscall.Getpgrp(), child.Process.Pid)
		if err := os.WriteFile(c.StateFile+".pids", []byte(pids), 0o600); err != nil {
			r.Diagnostics.AddError("write pids", err.Error())
			return
		}
		if s.Mode == "child-hang" {
			time.Sleep(time.Hour) // ignores cancellation on purpose
		}
	}
	switch s.Mode {
	case "crash":
		os.Exit(7)
	case "hang":
		time.Sleep(time.Hour) // ignores cancellation on purpose
	case "stdout":
		fmt.Println("oops, stdout")
	case "empty":
		return // zero checks: the host must not call that a pass
	case "allskip":
		r.Checks = append(r.Checks, sdk.NotApplicable("echo.reachable", c.Address, "not applicable in mode allskip"),
			sdk.NotApplicable("echo.env.clean", q.Target.Name, "not applicable in mode allskip"))
		return
	case "invalid":
		// What a buggy or hostile plugin might send: the host must turn
		// each into an error.
		badSeverity := sdk.Failed("echo.reachable", c.Address, "fail with an unknown severity")
		badSeverity.Severity = 0
		badStatus := sdk.Passed("echo.env.clean", q.Target.Name, "unknown status")
		badStatus.Status = 42
		badID := sdk.Passed("Echo Reachable!", c.Address, "invalid id")
		passWithUnknown := sdk.Passed("echo.secret.received", q.Target.Name, "a pass despite an inconclusive observation")
		passWithUnknown.Inconclusive = 1
		r.Checks = append(r.Checks, badSeverity, badStatus, badID, passWithUnknown)
		return
	case "evidence":
		// Inconclusive and configuration-only evidence, as the reduction
		// helpers make it.
		r.Checks = append(r.Checks,
			sdk.Reduce("echo.reachable", c.Address, sdk.Good("answered OK"), sdk.Unknown("second PING", "timeout"), sdk.Unknown("third PING", "reset")),
			sdk.Configured("echo.env.clean", q.Target.Name, "env says clean", true),
			sdk.Configured("echo.secret.received", q.Target.Name, "a config file says so", true))
		forged := sdk.Passed("echo.env.clean", "forged", "a high-severity pass on configuration alone")
		forged.ConfigurationOnly = true
		r.Checks = append(r.Checks, forged)
		return
	}
	if q.Policy.CertificateSource != "" && len(q.Certificates.CABundlePEM) == 0 {
		// What the probe reports without a CA.
		r.Checks = append(r.Checks, sdk.NotApplicable("tls.certificate.trusted", c.Address, "no CA given to verify against"))
	}
	if err := ping(ctx, c.Address); err != nil {
		r.Checks = append(r.Checks, sdk.Errored("echo.reachable", c.Address, err))
	} else {
		r.Checks = append(r.Checks, sdk.Passed("echo.reachable", c.Address, "server answered OK"))
	}
	for _, k := range s.ForbiddenEnv {
		if _, set := os.LookupEnv(k); set {
			r.Checks = append(r.Checks, sdk.Failed("echo.env.clean", k, "variable "+k+" is set in the plugin environment"))
		} else {
			r.Checks = append(r.Checks, sdk.Passed("echo.env.clean", k, "variable "+k+" is absent"))
		}
	}
	if c.TokenEnv != "" {
		if tok, ok := q.Target.Secret("token"); ok {
			r.Checks = append(r.Checks, sdk.Passed("echo.secret.received", q.Target.Name, fmt.Sprintf("token of %d bytes received", len(tok))))
		} else {
			r.Checks = append(r.Checks, sdk.Failed("echo.secret.received", q.Target.Name, "no token in the request"))
		}
	}
}

// IssueCertificate makes echo a stand-in for a certificate source (built as
// harden-plugin-vaultpki): it never issues; its target's mode says how it
// fails.
func (echo) IssueCertificate(_ context.Context, q sdk.IssueCertificateRequest, r *sdk.IssueCertificateResponse) {
	_, s, ok := decode(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	if s.Mode == "issuer-empty" {
		return // success without a CA bundle
	}
	r.Diagnostics.AddTargetError("echo.issuer", "no CA yet: run harden apply --target "+q.Target.Name+" first", nil)
}

// ping sends "PING" and expects "OK"; it waits as long as ctx allows.
func ping(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if _, err := conn.Write([]byte("PING\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("no answer from %s: %w", addr, err)
	}
	if strings.TrimSpace(line) != "OK" {
		return fmt.Errorf("unexpected answer %q", line)
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func main() { sdk.Serve(echo{}) }
