package hostclient

import (
	"net"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/harden-dev/harden/shared/sdk/internal/wire"
)

// FuzzParseReattach: HARDEN_REATTACH_PLUGINS comes from the environment.
// Property: parsing never panics; whatever it accepts names only a unix
// socket at an absolute path (never TCP), a grpc plugin and a positive pid; and
// what a debug-mode plugin prints parses back to what it described.
func FuzzParseReattach(f *testing.F) {
	f.Add(`{"mini":{"Protocol":"grpc","ProtocolVersion":1,"Addr":{"Network":"unix","String":"/tmp/d/plugin1"},"Pid":42}}`)
	f.Add(`HARDEN_REATTACH_PLUGINS='{"x":{"Protocol":"grpc","ProtocolVersion":1,"Addr":{"Network":"tcp","String":"127.0.0.1:1"},"Pid":1}}'`)
	f.Add(`{"x":{"Protocol":"grpc","Addr":{"Network":"tcp","String":"[::1]:9"},"Pid":3}}`)
	f.Add(`{"x":{"Protocol":"grpc","Addr":{"Network":"tcp","String":"localhost:9"},"Pid":3}}`) // refused: tcp
	f.Add(`'{}'`)
	f.Add(`{"x":null}`)
	f.Fuzz(func(t *testing.T, v string) {
		m, err := ParseReattach(v)
		if err != nil {
			return
		}
		for name, r := range m {
			rc, err := r.Config()
			if err != nil {
				t.Fatalf("%q accepted but its config fails: %v", name, err)
			}
			if rc.Pid <= 0 || rc.Protocol != "grpc" || !rc.Test {
				t.Fatalf("%q: %+v", name, rc)
			}
			if a, ok := rc.Addr.(*net.UnixAddr); !ok || r.Addr.Network != "unix" || !filepath.IsAbs(a.Name) {
				t.Fatalf("%q: address %T %v accepted", name, rc.Addr, rc.Addr)
			}
			back, err := ParseReattach(wire.ReattachLine(name, r))
			if err != nil || !reflect.DeepEqual(back, map[string]Reattach{name: r}) {
				t.Fatalf("%q: printed line does not parse back: %v %+v", name, err, back)
			}
		}
	})
}
