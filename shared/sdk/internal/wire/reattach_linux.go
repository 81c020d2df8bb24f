package wire

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// DialReattach connects to the debug-mode plugin r names, and returns the
// connection only when it provably leads to that plugin: the host is about
// to send it target secrets and private keys.
//
// Before dialing, the socket and its directory must be what a debug-mode
// plugin of this user creates (not symlinks, owned by the effective uid, the
// directory 0700), so no other user can have put or swapped a socket there.
// After dialing, the kernel's peer credentials of this very connection
// (SO_PEERCRED) must name the effective uid and r.Pid. The host's gRPC
// dialer is this function, so every connection the requests travel on is
// checked, not only a first probe.
func DialReattach(ctx context.Context, r Reattach) (net.Conn, error) {
	rc, err := r.Config()
	if err != nil {
		return nil, err
	}
	path := rc.Addr.String()
	if err := checkSocketPath(path); err != nil {
		return nil, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	if err := checkPeer(conn.(*net.UnixConn), r.Pid); err != nil {
		conn.Close()
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	return conn, nil
}

// checkSocketPath: the socket and the directory holding it belong to this
// user alone.
func checkSocketPath(path string) error {
	euid := os.Geteuid()
	dir := filepath.Dir(path)
	di, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("socket directory: %w", err)
	}
	switch ds := di.Sys().(*syscall.Stat_t); {
	case di.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("socket directory %s is a symbolic link", dir)
	case !di.IsDir():
		return fmt.Errorf("socket directory %s is not a directory", dir)
	case int(ds.Uid) != euid:
		return fmt.Errorf("socket directory %s is owned by uid %d, not by this user (uid %d)", dir, ds.Uid, euid)
	case di.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("socket directory %s has mode %04o: other users may enter it; want 0700", dir, di.Mode().Perm())
	}
	si, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	switch ss := si.Sys().(*syscall.Stat_t); {
	case si.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("socket %s is a symbolic link", path)
	case si.Mode()&os.ModeSocket == 0:
		return fmt.Errorf("%s is not a socket", path)
	case int(ss.Uid) != euid:
		return fmt.Errorf("socket %s is owned by uid %d, not by this user (uid %d)", path, ss.Uid, euid)
	}
	return nil
}

// checkPeer: the process serving the other end of conn is pid, running as
// this user.
func checkPeer(conn *net.UnixConn, pid int) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return fmt.Errorf("peer credentials: %w", err)
	}
	if credErr != nil {
		return fmt.Errorf("peer credentials: %w", credErr)
	}
	if euid := os.Geteuid(); int(cred.Uid) != euid {
		return fmt.Errorf("served by a process of uid %d, not of this user (uid %d); refusing to send it anything", cred.Uid, euid)
	}
	if int(cred.Pid) != pid {
		return fmt.Errorf("served by process %d, not by the plugin's process %d named in %s; refusing to send it anything", cred.Pid, pid, EnvReattach)
	}
	return nil
}
