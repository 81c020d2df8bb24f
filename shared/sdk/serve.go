package sdk

import (
	"context"
	"crypto/tls"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pb "github.com/harden-dev/harden/proto/harden/target/v1"
)

// ProtocolVersion is the major version of proto/harden/target/v1.
const ProtocolVersion = 1

// maxMessageSize bounds one gRPC message. Rendered artifacts (certificate
// bundles, keystores, config files) and verify reports of large object-store
// samples exceed gRPC's 4 MiB default; 64 MiB keeps headroom while still
// bounding what a broken plugin can make the host allocate.
const maxMessageSize = 64 << 20

// handshake is go-plugin's UX guard against running a plugin by hand; it is
// not a security measure (SecureConfig and AutoMTLS are).
var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "HARDEN_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "6f1d0b7e-harden-target-plugin",
}

const pluginKey = "target"

// grpcTarget is the go-plugin glue for protocol v1.
type grpcTarget struct {
	plugin.NetRPCUnsupportedPlugin
	impl Plugin
}

func (p *grpcTarget) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterTargetServiceServer(s, newServer(p.impl))
	return nil
}

func (p *grpcTarget) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return pb.NewTargetServiceClient(c), nil
}

func versionedPlugins(impl Plugin) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{ProtocolVersion: {pluginKey: &grpcTarget{impl: impl}}}
}

// Serve runs the plugin until the host goes away. Call it from main.
func Serve(p Plugin) {
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
	plugin.Serve(&plugin.ServeConfig{
		TLSProvider:      tlsProvider,
		HandshakeConfig:  handshake,
		VersionedPlugins: versionedPlugins(p),
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, grpc.MaxRecvMsgSize(maxMessageSize), grpc.MaxSendMsgSize(maxMessageSize))...)
		},
		Logger: hclog.New(&hclog.LoggerOptions{Name: "sdk", JSONFormat: true, Output: os.Stderr, Level: logLevel()}),
	})
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
