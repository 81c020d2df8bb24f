package wire

import (
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-plugin"
)

// Debug mode (sdk.WithDebug, HARDEN_PLUGIN_DEBUG=1): a plugin started by
// hand, e.g. under a debugger, serves without a host and prints how to reach
// it; a host given that line attaches to it instead of launching a binary.
// Terraform's TF_REATTACH_PROVIDERS works the same way and the JSON has the
// same shape, so the tooling people know carries over.
const (
	// EnvDebug asks sdk.Serve for debug mode.
	EnvDebug = "HARDEN_PLUGIN_DEBUG"
	// EnvReattach holds {"<plugin name>": Reattach, ...} for the host.
	EnvReattach = "HARDEN_REATTACH_PLUGINS"
)

// Reattach is how a host reaches one plugin serving in debug mode.
type Reattach struct {
	Protocol        string
	ProtocolVersion int
	Addr            ReattachAddr
	Pid             int
}

// ReattachAddr is a net.Addr in JSON.
type ReattachAddr struct {
	Network string
	String  string
}

// ReattachFrom describes what go-plugin's test-mode Serve reports.
func ReattachFrom(rc *plugin.ReattachConfig) Reattach {
	return Reattach{Protocol: string(rc.Protocol), ProtocolVersion: rc.ProtocolVersion, Pid: rc.Pid,
		Addr: ReattachAddr{Network: rc.Addr.Network(), String: rc.Addr.String()}}
}

// Config is the go-plugin reattach configuration. Test is always set: the
// host never kills a plugin somebody started by hand (and may be stepping
// through); it ends when they end it.
//
// Only a Unix socket is accepted: the SDK serves debug mode on nothing else,
// and a loopback TCP port is open to every local user — whoever listens on
// it would receive the target's secrets and private keys. The socket itself
// and the process serving it are checked when dialing (DialReattach).
func (r Reattach) Config() (*plugin.ReattachConfig, error) {
	switch r.Addr.Network {
	case "unix":
		if !filepath.IsAbs(r.Addr.String) {
			return nil, fmt.Errorf("socket %q: want an absolute path", r.Addr.String)
		}
	case "tcp":
		return nil, fmt.Errorf("network tcp (%s): only a Unix socket is accepted — a TCP port can be opened by any local user, and a debug-mode plugin serves on a Unix socket", r.Addr.String)
	default:
		return nil, fmt.Errorf("network %q: want unix", r.Addr.Network)
	}
	if r.Protocol != string(plugin.ProtocolGRPC) {
		return nil, fmt.Errorf("protocol %q: want grpc", r.Protocol)
	}
	if r.Pid <= 0 {
		return nil, fmt.Errorf("pid %d: want the plugin's process id", r.Pid)
	}
	addr := &net.UnixAddr{Net: "unix", Name: filepath.Clean(r.Addr.String)}
	return &plugin.ReattachConfig{Protocol: plugin.ProtocolGRPC, ProtocolVersion: r.ProtocolVersion, Addr: addr, Pid: r.Pid, Test: true}, nil
}

// ParseReattach reads EnvReattach's value. The operator may have quoted it
// as the plugin printed it (HARDEN_REATTACH_PLUGINS='{...}').
func ParseReattach(v string) (map[string]Reattach, error) {
	v = strings.TrimSpace(v)
	v = strings.TrimPrefix(v, EnvReattach+"=")
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		v = v[1 : len(v)-1]
	}
	m := map[string]Reattach{}
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		return nil, fmt.Errorf("%s: %w", EnvReattach, err)
	}
	for name, r := range m {
		if _, err := r.Config(); err != nil {
			return nil, fmt.Errorf("%s: plugin %q: %w", EnvReattach, name, err)
		}
	}
	return m, nil
}

// ReattachLine is what a plugin in debug mode prints on stdout: a shell
// assignment to paste.
func ReattachLine(name string, r Reattach) string {
	b, _ := json.Marshal(map[string]Reattach{name: r})
	return EnvReattach + "='" + string(b) + "'"
}
