// Package hostclient is the host side of the plugin protocol: it launches a
// harden-plugin-<name> binary (sha256 pin, minimal environment, one-time
// mutual TLS over an inherited descriptor, its own process group, parent-death
// signal) and calls it over gRPC. The harden host and sdktest use it; plugin
// binaries never link it.
package hostclient

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/harden-dev/harden/shared/sdk"
	pb "github.com/harden-dev/harden/shared/sdk/internal/targetv1"
	"github.com/harden-dev/harden/shared/sdk/internal/wire"
)

// BinaryPrefix starts every plugin executable's name.
const BinaryPrefix = "harden-plugin-"

// LaunchConfig says how the host starts one plugin binary.
type LaunchConfig struct {
	// Path of the harden-plugin-<name> executable.
	Path string
	// SHA256 pins the binary; go-plugin checks it right before exec. Nil only
	// when the operator explicitly allowed unpinned plugins.
	SHA256 []byte
	// Env is the plugin's whole environment: plugins never inherit the host's
	// (no PGPASSWORD, VAULT_TOKEN, ...). A secret reaches a plugin only inside
	// its own target's request.
	Env []string
	// LogOutput receives the plugin's log lines, re-logged under its name.
	LogOutput io.Writer
	LogLevel  string
	// StartTimeout bounds launch and handshake (default 10 s).
	StartTimeout time.Duration
	// Stdout and Stderr receive what the plugin writes to its own stdout and
	// stderr outside the log stream (go-plugin SyncStdout/SyncStderr); nil
	// discards it.
	Stdout, Stderr io.Writer
	// Reattach, when set, attaches to a plugin somebody started by hand in
	// debug mode (sdk.WithDebug; its HARDEN_REATTACH_PLUGINS line, read by
	// ParseReattach) instead of launching Path: nothing is exec'd, so
	// SHA256, Env and the mutual TLS channel do not apply — the caller must
	// say so — and Close and Kill leave the process running. Only a Unix
	// socket of this user is accepted, and every connection must be served
	// by the Pid it names (wire.DialReattach), before any request.
	Reattach *Reattach
	// Name of the plugin when attaching (default: from Path).
	Name string
}

// Reattach is where a plugin in debug mode serves.
type Reattach = wire.Reattach

// ReattachEnv names the variable holding the debug-mode plugins to attach
// to: {"<name>": Reattach, ...}, as the plugins print it.
const ReattachEnv = wire.EnvReattach

// ParseReattach reads ReattachEnv's value.
func ParseReattach(v string) (map[string]Reattach, error) { return wire.ParseReattach(v) }

// Client talks to one plugin through the versioned gRPC protocol. It is used
// by the harden host and by sdktest, so both cross the same wire.
type Client struct {
	name     string
	gp       *plugin.Client
	attached bool
	rpc      pb.TargetServiceClient
	closeFn  func()
}

// NameFromPath returns the plugin name of a harden-plugin-<name> binary.
func NameFromPath(path string) string {
	return strings.TrimPrefix(filepath.Base(path), BinaryPrefix)
}

// Launch starts a plugin process with AutoMTLS, negotiates protocol v1 and
// returns a client. The process is killed when ctx ends before the handshake.
func Launch(ctx context.Context, cfg LaunchConfig) (*Client, error) {
	name := NameFromPath(cfg.Path)
	if cfg.Name != "" {
		name = cfg.Name
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 10 * time.Second
	}
	if cfg.Reattach != nil {
		return attach(ctx, name, cfg)
	}
	tlsConfig, bundle, err := hostChannel()
	if err != nil {
		return nil, fmt.Errorf("plugin %s: one-time TLS certificates: %w", name, err)
	}
	// The plugin's one-time key travels over an inherited pipe (fd 3),
	// never through the environment. 2 KB fit the pipe buffer.
	tlsR, tlsW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer tlsR.Close()
	_, err = tlsW.Write(bundle)
	tlsW.Close()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(cfg.Path)
	cmd.Env = append(append([]string{}, cfg.Env...), wire.EnvTLSFD+"=3")
	cmd.ExtraFiles = []*os.File{tlsR}
	setProcessAttributes(cmd)
	logOut := cfg.LogOutput
	if logOut == nil {
		logOut = io.Discard
	}
	level := hclog.LevelFromString(cfg.LogLevel)
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	var secure *plugin.SecureConfig
	if cfg.SHA256 != nil {
		secure = &plugin.SecureConfig{Checksum: cfg.SHA256, Hash: sha256.New()}
	}
	// Stray output of the plugin goes to the log stream, never to the
	// host's stdout, which carries command output only.
	stdout, stderr := cfg.Stdout, cfg.Stderr
	if stdout == nil {
		stdout = logOut
	}
	if stderr == nil {
		stderr = logOut
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "plugin." + name, Output: logOut, Level: level,
		// The host's own log lines are plain text on stderr.
		DisableTime: true})
	gp := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  wire.Handshake,
		VersionedPlugins: wire.Plugins(nil),
		Cmd:              cmd,
		SkipHostEnv:      true,
		SecureConfig:     secure,
		// Mutual TLS with one-time certificates: see mtls.go.
		TLSConfig:        tlsConfig,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		StartTimeout:     cfg.StartTimeout,
		Managed:          false,
		SyncStdout:       stdout,
		SyncStderr:       stderr,
		Logger:           logger,
		GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(wire.MaxMessageSize), grpc.MaxCallSendMsgSize(wire.MaxMessageSize))},
	})
	type result struct {
		raw any
		err error
	}
	done := make(chan result, 1)
	go func() {
		rpcClient, err := gp.Client()
		if err != nil {
			done <- result{err: err}
			return
		}
		raw, err := rpcClient.Dispense(wire.PluginKey)
		done <- result{raw, err}
	}()
	shutdown := func() { shutdownPlugin(gp, logger) }
	select {
	case <-ctx.Done():
		shutdown()
		return nil, fmt.Errorf("plugin %s: launch cancelled: %w", name, ctx.Err())
	case r := <-done:
		if r.err != nil {
			shutdown()
			return nil, fmt.Errorf("plugin %s (%s): %w", name, cfg.Path, launchError(r.err))
		}
		if gp.NegotiatedVersion() != wire.ProtocolVersion {
			shutdown()
			return nil, fmt.Errorf("plugin %s speaks protocol %d, this host speaks %d", name, gp.NegotiatedVersion(), wire.ProtocolVersion)
		}
		return &Client{name: name, gp: gp, rpc: r.raw.(pb.TargetServiceClient), closeFn: shutdown}, nil
	}
}

// attach connects to a plugin serving in debug mode (plaintext gRPC on the
// socket it printed).
func attach(ctx context.Context, name string, cfg LaunchConfig) (*Client, error) {
	rc, err := cfg.Reattach.Config()
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %s: %w", name, ReattachEnv, err)
	}
	if rc.ProtocolVersion != wire.ProtocolVersion {
		return nil, fmt.Errorf("plugin %s (%s) speaks protocol %d, this host speaks %d", name, ReattachEnv, rc.ProtocolVersion, wire.ProtocolVersion)
	}
	// The host will send this process target secrets and private keys.
	// One connection first, checked and closed, so a wrong socket or
	// process is refused with a clear error before go-plugin starts; then
	// the same check is gRPC's dialer, so every connection a request
	// travels on is proven to lead to r.Pid of this user — no window
	// between a check and the connection that is used.
	probe, err := wire.DialReattach(ctx, *cfg.Reattach)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %s: %w", name, ReattachEnv, err)
	}
	probe.Close()
	reattach := *cfg.Reattach
	checkedDial := func(ctx context.Context, _ string) (net.Conn, error) {
		conn, err := wire.DialReattach(ctx, reattach)
		if err != nil {
			return nil, fmt.Errorf("plugin %s: %s: %w", name, ReattachEnv, err)
		}
		return conn, nil
	}
	logOut := cfg.LogOutput
	if logOut == nil {
		logOut = io.Discard
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "plugin." + name, Output: logOut, Level: hclog.LevelFromString(cfg.LogLevel), DisableTime: true})
	gp := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: wire.Handshake,
		// A reattach does no version negotiation: go-plugin takes Plugins.
		Plugins:          wire.Plugins(nil)[wire.ProtocolVersion],
		Reattach:         rc,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           logger,
		// go-plugin puts its own dialer first; a later WithContextDialer
		// replaces it (gRPC applies options in order).
		GRPCDialOptions: []grpc.DialOption{grpc.WithContextDialer(checkedDial), grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(wire.MaxMessageSize), grpc.MaxCallSendMsgSize(wire.MaxMessageSize))},
	})
	type result struct {
		proto plugin.ClientProtocol
		raw   any
		err   error
	}
	done := make(chan result, 1)
	go func() {
		proto, err := gp.Client()
		if err != nil {
			done <- result{err: err}
			return
		}
		raw, err := proto.Dispense(wire.PluginKey)
		done <- result{proto, raw, err}
	}()
	var r result
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("plugin %s: attach cancelled: %w", name, ctx.Err())
	case r = <-done:
	}
	if r.err != nil {
		return nil, fmt.Errorf("plugin %s: attaching to %s %s (pid %d): %w", name, rc.Addr.Network(), rc.Addr, rc.Pid, r.err)
	}
	// Only the connection is closed: go-plugin's Close would also shut the
	// plugin's server down, and the developer's process is not ours.
	closeFn := func() {
		if g, ok := r.proto.(*plugin.GRPCClient); ok {
			_ = g.Conn.Close()
		}
	}
	return &Client{name: name, gp: gp, attached: true, rpc: r.raw.(pb.TargetServiceClient), closeFn: closeFn}, nil
}

// Attached reports whether the client attached to a plugin in debug mode
// rather than launching it.
func (c *Client) Attached() bool { return c.attached }

// How long closing a plugin may take (README "Plugins and trust"): the
// plugin gets GracefulExit to exit once its connection is closed (go-plugin
// waits as long), then its whole process group is SIGKILLed and go-plugin's
// own waits get KillWait more. A plugin's descendant that left the group
// (setsid) and still holds its stdout is not waited for beyond that.
const (
	GracefulExit = 2 * time.Second
	KillWait     = 2 * time.Second
)

// shutdownPlugin ends a plugin process and everything it started, within
// GracefulExit + KillWait. go-plugin's Kill alone can block for good: it
// waits for its stdout/stderr readers, which a child still holding the pipes
// never lets finish, and it kills the plugin process only.
func shutdownPlugin(gp *plugin.Client, log hclog.Logger) {
	// gp.ID waits for a launch still in progress (bounded by its start
	// timeout), as gp.Kill does; after gp.Kill it no longer knows the pid.
	pid := pidOf(gp)
	done := make(chan struct{})
	go func() { gp.Kill(); close(done) }()
	graceful := time.NewTimer(GracefulExit)
	defer graceful.Stop()
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
wait:
	for {
		select {
		case <-done:
			break wait
		case <-graceful.C:
			break wait
		case <-poll.C:
			// The plugin is gone but go-plugin still waits: a child
			// holds the pipes. No need to wait out the grace.
			if pid > 0 && processExited(pid) {
				break wait
			}
		}
	}
	// Always, also after a clean exit: nothing the plugin started outlives
	// it.
	if err := killProcessGroup(pid); err != nil {
		log.Warn("killing the plugin's process group", "pgid", pid, "error", err)
	}
	select {
	case <-done:
	case <-time.After(KillWait):
		log.Warn("plugin's output pipes still open after its process group was killed (a descendant left the group); not waiting for it", "pgid", pid)
	}
}

func pidOf(gp *plugin.Client) int {
	pid, _ := strconv.Atoi(gp.ID())
	return pid
}

// ErrChecksumMismatch: the binary's sha256 differs from the pinned one.
var ErrChecksumMismatch = plugin.ErrChecksumsDoNotMatch

func launchError(err error) error {
	if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
		return fmt.Errorf("binary does not match its pinned sha256: %w", err)
	}
	return err
}

// InProcess serves p on an in-memory gRPC connection and returns a client that
// crosses the real protocol and serialization, without a child process.
func InProcess(p sdk.Plugin) *Client {
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(wire.MaxMessageSize), grpc.MaxSendMsgSize(wire.MaxMessageSize))
	pb.RegisterTargetServiceServer(srv, wire.NewServer(p))
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///inprocess",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(wire.MaxMessageSize), grpc.MaxCallSendMsgSize(wire.MaxMessageSize)))
	if err != nil {
		panic(err) // only fails on invalid options
	}
	return &Client{name: "in-process", rpc: pb.NewTargetServiceClient(conn), closeFn: func() {
		_ = conn.Close()
		srv.Stop()
	}}
}

// Name is the plugin name derived from its binary.
func (c *Client) Name() string { return c.name }

// Close ends the plugin process and its process group (or stops the
// in-process server), within GracefulExit + KillWait.
func (c *Client) Close() { c.closeFn() }

// Kill SIGKILLs the plugin's whole process group at once, without a
// graceful exit (a second Ctrl-C). Close must still be called.
func (c *Client) Kill() {
	if c.gp != nil && !c.attached {
		_ = killProcessGroup(pidOf(c.gp))
	}
}

// Exited reports whether the plugin process has exited.
func (c *Client) Exited() bool { return c.gp != nil && c.gp.Exited() }

// PID of the plugin process, 0 in process.
func (c *Client) PID() int {
	if c.gp == nil || c.gp.ReattachConfig() == nil {
		return 0
	}
	return c.gp.ReattachConfig().Pid
}

// wrap turns a transport failure into an error that names the plugin and says
// what happened to it.
func (c *Client) wrap(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if c.gp != nil {
		// A dying process closes the connection a moment before go-plugin
		// notices the exit; give it that moment so the message is right.
		for i := 0; i < 20 && !c.gp.Exited(); i++ {
			if st, ok := status.FromError(err); !ok || st.Code() != codes.Unavailable {
				break
			}
			time.Sleep(25 * time.Millisecond)
		}
		if c.gp.Exited() {
			return fmt.Errorf("plugin %s crashed during %s (process exited): %w", c.name, op, err)
		}
	}
	if ctx.Err() != nil || status.Code(err) == codes.DeadlineExceeded {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded {
			return fmt.Errorf("plugin %s did not finish %s in time (hung or target too slow)", c.name, op)
		}
		return fmt.Errorf("plugin %s: %s cancelled", c.name, op)
	}
	return fmt.Errorf("plugin %s: %s failed: %w", c.name, op, err)
}

// Metadata calls GetMetadata.
func (c *Client) Metadata(ctx context.Context) (sdk.MetadataResponse, error) {
	r, err := c.rpc.GetMetadata(ctx, &pb.GetMetadataRequest{})
	if err != nil {
		return sdk.MetadataResponse{}, c.wrap(ctx, "metadata", err)
	}
	return sdk.MetadataResponse{Name: r.GetName(), Version: r.GetVersion(), Description: r.GetDescription(),
		Capabilities: capsFromPB(r.GetCapabilities()), Diagnostics: diagsFromPB(r.GetDiagnostics())}, nil
}

// Schema calls GetSchema.
func (c *Client) Schema(ctx context.Context) (sdk.SchemaResponse, error) {
	r, err := c.rpc.GetSchema(ctx, &pb.GetSchemaRequest{})
	if err != nil {
		return sdk.SchemaResponse{}, c.wrap(ctx, "schema", err)
	}
	return sdk.SchemaResponse{Connection: r.GetConnectionSchema(), Spec: r.GetSpecSchema(), Diagnostics: diagsFromPB(r.GetDiagnostics())}, nil
}

// ValidateSpec calls ValidateSpec.
func (c *Client) ValidateSpec(ctx context.Context, rc sdk.RequestContext) (sdk.ValidateSpecResponse, error) {
	r, err := c.rpc.ValidateSpec(ctx, &pb.ValidateSpecRequest{Policy: policyToPB(rc.Policy), Target: targetToPB(rc.Target)})
	if err != nil {
		return sdk.ValidateSpecResponse{}, c.wrap(ctx, "validate", err)
	}
	return sdk.ValidateSpecResponse{Diagnostics: diagsFromPB(r.GetDiagnostics())}, nil
}

// Render calls Render.
func (c *Client) Render(ctx context.Context, rc sdk.RequestContext) (sdk.RenderResponse, error) {
	r, err := c.rpc.Render(ctx, &pb.RenderRequest{Policy: policyToPB(rc.Policy), Target: targetToPB(rc.Target), Certificates: certsToPB(rc.Certificates)})
	if err != nil {
		return sdk.RenderResponse{}, c.wrap(ctx, "render", err)
	}
	return sdk.RenderResponse{Artifacts: artifactsFromPB(r.GetArtifacts()), Diagnostics: diagsFromPB(r.GetDiagnostics())}, nil
}

// RenderClient calls Render for one client identity (CapClientConfig).
func (c *Client) RenderClient(ctx context.Context, rc sdk.RequestContext, ci sdk.ClientIdentity) (sdk.RenderResponse, error) {
	r, err := c.rpc.Render(ctx, &pb.RenderRequest{Policy: policyToPB(rc.Policy), Target: targetToPB(rc.Target), Certificates: certsToPB(rc.Certificates),
		Client: &pb.ClientIdentity{Name: ci.Name, CertFile: ci.CertFile, KeyFile: ci.KeyFile, CaFile: ci.CAFile, KeystoreFile: ci.KeystoreFile,
			KeystorePasswordFile: ci.KeystorePasswordFile, TruststoreFile: ci.TruststoreFile}})
	if err != nil {
		return sdk.RenderResponse{}, c.wrap(ctx, "render client configuration", err)
	}
	return sdk.RenderResponse{Artifacts: artifactsFromPB(r.GetArtifacts()), Diagnostics: diagsFromPB(r.GetDiagnostics())}, nil
}

// DeliverSecret calls DeliverSecret (CapSecretStore).
func (c *Client) DeliverSecret(ctx context.Context, q sdk.DeliverSecretRequest) (sdk.DeliverSecretResponse, error) {
	r, err := c.rpc.DeliverSecret(ctx, &pb.DeliverSecretRequest{Policy: policyToPB(q.Policy), Target: targetToPB(q.Target),
		Client: q.Client, Path: q.Path, Data: q.Data, Metadata: q.Metadata})
	if err != nil {
		return sdk.DeliverSecretResponse{}, c.wrap(ctx, "deliver secret", err)
	}
	return sdk.DeliverSecretResponse{Version: int(r.GetVersion()), Diagnostics: diagsFromPB(r.GetDiagnostics())}, nil
}

// RotateCA calls RotateCA (CapCARotation).
func (c *Client) RotateCA(ctx context.Context, q sdk.RotateCARequest) (sdk.RotateCAResponse, error) {
	r, err := c.rpc.RotateCA(ctx, &pb.RotateCARequest{Policy: policyToPB(q.Policy), Target: targetToPB(q.Target), Operation: q.Operation})
	if err != nil {
		return sdk.RotateCAResponse{}, c.wrap(ctx, "rotate CA", err)
	}
	return sdk.RotateCAResponse{CurrentRootPEM: r.GetCurrentRootPem(), NextRootPEM: r.GetNextRootPem(), Signing: r.GetSigning(), Diagnostics: diagsFromPB(r.GetDiagnostics())}, nil
}

// Plan calls Plan.
func (c *Client) Plan(ctx context.Context, rc sdk.RequestContext) (sdk.PlanResponse, error) {
	r, err := c.rpc.Plan(ctx, &pb.PlanRequest{Policy: policyToPB(rc.Policy), Target: targetToPB(rc.Target), Certificates: certsToPB(rc.Certificates)})
	if err != nil {
		return sdk.PlanResponse{}, c.wrap(ctx, "plan", err)
	}
	return sdk.PlanResponse{Changes: changesFromPB(r.GetChanges()), PlanToken: r.GetPlanToken(), Diagnostics: diagsFromPB(r.GetDiagnostics())}, nil
}

// Apply calls Apply.
func (c *Client) Apply(ctx context.Context, rc sdk.RequestContext, planToken []byte, force bool) (sdk.ApplyResponse, error) {
	r, err := c.rpc.Apply(ctx, &pb.ApplyRequest{Policy: policyToPB(rc.Policy), Target: targetToPB(rc.Target), Certificates: certsToPB(rc.Certificates), PlanToken: planToken, Force: force})
	if err != nil {
		return sdk.ApplyResponse{}, c.wrap(ctx, "apply", err)
	}
	return sdk.ApplyResponse{Applied: changesFromPB(r.GetApplied()), Diagnostics: diagsFromPB(r.GetDiagnostics())}, nil
}

// Verify calls Verify.
func (c *Client) Verify(ctx context.Context, rc sdk.RequestContext) (sdk.VerifyResponse, error) {
	r, err := c.rpc.Verify(ctx, &pb.VerifyRequest{Policy: policyToPB(rc.Policy), Target: targetToPB(rc.Target), Certificates: certsToPB(rc.Certificates)})
	if err != nil {
		return sdk.VerifyResponse{}, c.wrap(ctx, "verify", err)
	}
	return sdk.VerifyResponse{Checks: checksFromPB(r.GetChecks()), Diagnostics: diagsFromPB(r.GetDiagnostics()), Endpoints: endpointScansFromPB(r.GetEndpoints())}, nil
}

// IssueCertificate calls IssueCertificate.
func (c *Client) IssueCertificate(ctx context.Context, q sdk.IssueCertificateRequest) (sdk.IssueCertificateResponse, error) {
	r, err := c.rpc.IssueCertificate(ctx, &pb.IssueCertificateRequest{Policy: policyToPB(q.Policy), Target: targetToPB(q.Target),
		ForTarget: q.ForTarget, Usage: q.Usage, CommonName: q.CommonName, Names: q.Names, TtlSeconds: int64(q.TTL / time.Second), CsrPem: q.CSRPEM, Issuer: q.Issuer})
	if err != nil {
		return sdk.IssueCertificateResponse{}, c.wrap(ctx, "issue certificate", err)
	}
	return sdk.IssueCertificateResponse{Certificate: certsFromPB(r.GetCertificate()), Diagnostics: diagsFromPB(r.GetDiagnostics())}, nil
}

// Inventory calls Inventory with handshakes fresh handshakes per listener.
func (c *Client) Inventory(ctx context.Context, rc sdk.RequestContext, handshakes int) (sdk.InventoryResponse, error) {
	r, err := c.rpc.Inventory(ctx, &pb.InventoryRequest{Policy: policyToPB(rc.Policy), Target: targetToPB(rc.Target),
		Certificates: certsToPB(rc.Certificates), Handshakes: int32(min(max(handshakes, 1), 1000))})
	if err != nil {
		return sdk.InventoryResponse{}, c.wrap(ctx, "inventory", err)
	}
	return sdk.InventoryResponse{Listeners: listenersFromPB(r.GetListeners()), Stored: storedFromPB(r.GetStored()), Diagnostics: diagsFromPB(r.GetDiagnostics())}, nil
}

// Stop asks the plugin to cancel all in-flight work.
func (c *Client) Stop(ctx context.Context) error {
	_, err := c.rpc.Stop(ctx, &pb.StopRequest{})
	return c.wrap(ctx, "stop", err)
}
