package sdk

import (
	"crypto/tls"
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
		HandshakeConfig:  wire.Handshake,
		VersionedPlugins: wire.Plugins(newServer(p)),
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, grpc.MaxRecvMsgSize(wire.MaxMessageSize), grpc.MaxSendMsgSize(wire.MaxMessageSize))...)
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
