package sdk

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pb "github.com/harden-dev/harden/shared/sdk/internal/targetv1"
	"github.com/harden-dev/harden/shared/sdk/internal/wire"
)

// ProtocolVersion is the major version of proto/harden/target/v1 that this
// SDK speaks; the SDK module's major version follows it.
const ProtocolVersion = wire.ProtocolVersion

func init() {
	wire.NewServer = func(impl any) pb.TargetServiceServer { return newServer(impl.(Plugin)) }
	wire.TargetSecrets = func(t any) map[string][]byte { return t.(Target).secrets }
}

// ServeOption changes how Serve runs the plugin.
type ServeOption func(*serveConfig)

type serveConfig struct {
	debug bool
}

// WithDebug serves in debug mode when the plugin is started by hand (by a
// debugger, say) rather than by a host: it prints a
// HARDEN_REATTACH_PLUGINS='{...}' line on stdout and serves until
// interrupted; a harden started with that variable attaches to this process
// instead of launching a binary, so a breakpoint in Verify is hit by a real
// `harden verify`. HARDEN_PLUGIN_DEBUG=1 does the same without rebuilding.
// A plugin launched by a host ignores it, so leaving it in is harmless.
//
// In debug mode the plugin listens on a Unix socket in a fresh directory
// only its user can enter, without the one-time mutual TLS of a launch
// (there is no host to hand out the certificates) and without the lock
// file's sha256 pin (the host did not exec it): for development only.
func WithDebug() ServeOption { return func(c *serveConfig) { c.debug = true } }

// Serve runs the plugin until the host goes away. Call it from main.
func Serve(p Plugin, opts ...ServeOption) {
	var cfg serveConfig
	for _, o := range opts {
		o(&cfg)
	}
	if os.Getenv(wire.EnvDebug) == "1" {
		cfg.debug = true
	}
	// Launched by a host (it passes the channel's descriptor): never debug.
	if cfg.debug && os.Getenv(wire.EnvTLSFD) == "" {
		os.Exit(serveDebug(p))
	}
	watchParent()
	ignoreTermination()
	tlsConfig, err := pluginChannel()
	if err != nil {
		os.Stderr.WriteString("harden plugin: " + err.Error() + "\n")
		os.Exit(1)
	}
	var tlsProvider func() (*tls.Config, error)
	if tlsConfig != nil {
		tlsProvider = func() (*tls.Config, error) { return tlsConfig, nil }
	}
	plugin.Serve(serveConfigFor(p, tlsProvider, nil))
}

func serveConfigFor(p Plugin, tlsProvider func() (*tls.Config, error), test *plugin.ServeTestConfig) *plugin.ServeConfig {
	return &plugin.ServeConfig{
		TLSProvider:      tlsProvider,
		HandshakeConfig:  wire.Handshake,
		VersionedPlugins: wire.Plugins(newServer(p)),
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, grpc.MaxRecvMsgSize(wire.MaxMessageSize), grpc.MaxSendMsgSize(wire.MaxMessageSize))...)
		},
		Logger: hclog.New(&hclog.LoggerOptions{Name: "sdk", JSONFormat: true, Output: os.Stderr, Level: logLevel()}),
		Test:   test,
	}
}

// serveDebug serves p in go-plugin's test mode (no handshake cookie, no
// stdout protocol line, the process is not the host's to kill) until
// SIGINT or SIGTERM, and returns the exit code.
func serveDebug(p Plugin) int {
	fail := func(err error) int {
		os.Stderr.WriteString("harden plugin (debug mode): " + err.Error() + "\n")
		return 1
	}
	var meta MetadataResponse
	p.Metadata(context.Background(), MetadataRequest{}, &meta)
	if meta.Name == "" {
		return fail(errors.New("the plugin's metadata names no plugin"))
	}
	// go-plugin makes its socket in PLUGIN_UNIX_SOCKET_DIR; a directory of
	// our own (0700) keeps other users off the plaintext socket.
	dir, err := os.MkdirTemp("", "harden-plugin-debug-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Setenv(plugin.EnvUnixSocketDir, dir); err != nil {
		return fail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	reattach := make(chan *plugin.ReattachConfig, 1)
	closed := make(chan struct{})
	go plugin.Serve(serveConfigFor(p, nil, &plugin.ServeTestConfig{Context: ctx, ReattachConfigCh: reattach, CloseCh: closed}))
	select {
	case rc := <-reattach:
		os.Stdout.WriteString(wire.ReattachLine(meta.Name, wire.ReattachFrom(rc)) + "\n")
		os.Stderr.WriteString("harden plugin " + meta.Name + ": debug mode, serving on " + rc.Addr.String() +
			" (no mutual TLS, no sha256 pin: for development only).\nExport the line above in the shell that runs harden; Ctrl-C ends the plugin.\n")
	case <-closed:
		return fail(errors.New("serving ended before it started (see the log above)"))
	}
	<-closed
	return 0
}

// ignoreTermination keeps a SIGTERM meant for the whole service (systemd's
// stop signals every process of the unit) from killing the plugin in the
// middle of an apply step: the host decides when a plugin stops (it sends
// Stop, waits for the step to finish or roll back, and kills the plugin's
// process group if it must), and the plugin dies with the host. go-plugin
// already ignores SIGINT. The signal is caught, not set to SIG_IGN, so the
// commands a plugin runs get the default disposition back.
func ignoreTermination() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM)
	go func() {
		for range ch {
		}
	}()
}

// watchParent ends the plugin, with everything it started, when its host
// dies: the process is re-parented (to init or a subreaper) and nobody will
// ever call it again. On Linux the kernel signals it at once (the host sets
// a parent-death signal, setProcessAttributes); a poll covers the rest. The
// signal is a catchable one rather than SIGKILL so the plugin can take its
// process group with it — a SIGKILLed plugin would orphan its children —
// and so a signal that only means the host's launching thread ended (Go
// issue 27505) is told apart by the parent still being there.
func watchParent() {
	parent := os.Getppid()
	died := make(chan os.Signal, 1)
	notifyParentDeath(died)
	go func() {
		poll := time.NewTicker(200 * time.Millisecond)
		for {
			select {
			case <-died:
			case <-poll.C:
			}
			if os.Getppid() != parent {
				endProcessGroup()
			}
		}
	}()
}
