//go:build !linux

package wire

import (
	"context"
	"fmt"
	"net"
	"runtime"
)

// DialReattach refuses: attaching sends the plugin target secrets and
// private keys, and proving who serves the socket needs the kernel's peer
// credentials, which this host reads on Linux only.
func DialReattach(ctx context.Context, r Reattach) (net.Conn, error) {
	if _, err := r.Config(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("attaching to a debug-mode plugin is supported on Linux only (the peer credentials of its socket cannot be checked on %s)", runtime.GOOS)
}
