package hostclient

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/sdk/internal/wire"
)

// A plugin started by hand in debug mode prints a reattach line; a host
// given it attaches (no exec), calls it, and closing the host's client leaves
// the plugin serving for the next run. Ctrl-C ends the plugin, which removes
// its socket directory.
func TestAttachToDebugPlugin(t *testing.T) {
	bin := buildMini(t)
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HARDEN_PLUGIN_DEBUG=1", "TMPDIR=" + t.TempDir()}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		lines <- l
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(10 * time.Second):
		t.Fatalf("no reattach line; stderr: %s", stderr.String())
	}
	if !strings.HasPrefix(line, ReattachEnv+`='{"mini":{`) {
		t.Fatalf("reattach line %q", line)
	}
	m, err := ParseReattach(line)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := m["mini"]
	if !ok || r.Pid != cmd.Process.Pid || r.Addr.Network != "unix" {
		t.Fatalf("reattach %+v (plugin pid %d)", m, cmd.Process.Pid)
	}
	// Only the plugin's user may enter the socket's directory.
	if st, err := os.Stat(filepath.Dir(r.Addr.String)); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("socket directory: %v %v", err, st)
	}
	ctx := context.Background()
	for round := range 2 {
		c, err := Launch(ctx, LaunchConfig{Reattach: &r, Name: "mini"})
		if err != nil {
			t.Fatalf("round %d: attach: %v", round, err)
		}
		if !c.Attached() || c.PID() != cmd.Process.Pid {
			t.Errorf("round %d: attached %v pid %d", round, c.Attached(), c.PID())
		}
		meta, err := c.Metadata(ctx)
		if err != nil || meta.Name != "mini" || meta.Version != "1.0.0" {
			t.Fatalf("round %d: metadata %+v %v", round, meta, err)
		}
		c.Kill() // must not touch a process somebody else started
		c.Close()
		if c.Exited() {
			t.Fatalf("round %d: closing the host's client ended the debugged plugin", round)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("plugin after Ctrl-C: %v; stderr: %s", err, stderr.String())
	}
	if _, err := os.Stat(filepath.Dir(r.Addr.String)); !os.IsNotExist(err) {
		t.Errorf("socket directory left behind: %v", err)
	}
}

// A host-launched plugin ignores HARDEN_PLUGIN_DEBUG: the launch goes
// through the normal handshake and channel.
func TestLaunchIgnoresDebugMode(t *testing.T) {
	bin := buildMini(t)
	data, _ := os.ReadFile(bin)
	sum := sha256.Sum256(data)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Launch(ctx, LaunchConfig{Path: bin, SHA256: sum[:], Env: []string{"PATH=/usr/bin:/bin", "HARDEN_PLUGIN_DEBUG=1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Attached() {
		t.Error("launched client says attached")
	}
	if m, err := c.Metadata(ctx); err != nil || m.Name != "mini" {
		t.Fatalf("metadata: %v %+v", err, m)
	}
}

func TestParseReattachRefuses(t *testing.T) {
	for in, want := range map[string]string{
		`{`: "unexpected end",
		`{"x":{"Protocol":"grpc","ProtocolVersion":1,"Pid":5,"Addr":{"Network":"tcp","String":"127.0.0.1:5"}}}`: "only a Unix socket is accepted",
		`{"x":{"Protocol":"grpc","ProtocolVersion":1,"Pid":5,"Addr":{"Network":"tcp","String":"192.0.2.1:5"}}}`: "only a Unix socket is accepted",
		`{"x":{"Protocol":"grpc","ProtocolVersion":1,"Pid":5,"Addr":{"Network":"unix","String":"rel/s"}}}`:      "want an absolute path",
		`{"x":{"Protocol":"netrpc","ProtocolVersion":1,"Pid":5,"Addr":{"Network":"unix","String":"/s"}}}`:       "want grpc",
		`{"x":{"Protocol":"grpc","ProtocolVersion":1,"Pid":0,"Addr":{"Network":"unix","String":"/s"}}}`:         "pid 0",
		`{"x":{"Protocol":"grpc","ProtocolVersion":1,"Pid":5,"Addr":{"Network":"udp","String":"/s"}}}`:          "want unix",
	} {
		if _, err := ParseReattach(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
	m, err := ParseReattach(`HARDEN_REATTACH_PLUGINS='{"x":{"Protocol":"grpc","ProtocolVersion":1,"Pid":5,"Addr":{"Network":"unix","String":"/tmp/p/plugin1"}}}'`)
	if err != nil || m["x"].Pid != 5 {
		t.Errorf("pasted line: %v %+v", err, m)
	}
}

// A loopback TCP address is refused at attach too (not only when parsed):
// any local user can listen there.
func TestReattachRefusesTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- struct{}{}
			c.Close()
		}
	}()
	r := Reattach{Protocol: "grpc", ProtocolVersion: 1, Pid: os.Getpid(), Addr: wire.ReattachAddr{Network: "tcp", String: ln.Addr().String()}}
	_, err = Launch(context.Background(), LaunchConfig{Reattach: &r, Name: "mini"})
	if err == nil || !strings.Contains(err.Error(), "only a Unix socket is accepted") {
		t.Fatalf("attach over tcp: %v", err)
	}
	select {
	case <-accepted:
		t.Fatal("the host connected to the tcp address")
	case <-time.After(100 * time.Millisecond):
	}
}

// privateDir is a 0700 directory, as a debug-mode plugin makes for its
// socket (t.TempDir follows the umask).
func privateDir(t *testing.T) string {
	d := t.TempDir()
	if err := os.Chmod(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

// fakeSocket listens on a Unix socket in dir as the test process and
// reports how many bytes anyone sent it: a host that refuses must not have
// sent a request (not even gRPC's preface).
func fakeSocket(t *testing.T, dir string) (path string, received func() int) {
	t.Helper()
	path = filepath.Join(dir, "plugin1")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	n := 0
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c)
				mu.Lock()
				n += len(b)
				mu.Unlock()
			}()
		}
	}()
	return path, func() int {
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

// The socket, its directory and the process behind it must be the
// developer's plugin; anything else is refused before a single byte of a
// request is sent.
func TestReattachRefusesForeignSocket(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("attaching needs SO_PEERCRED (Linux)")
	}
	other := os.Getpid() + 100000 // no such process: not the one serving
	for name, tc := range map[string]struct {
		setup func(t *testing.T) (path string, received func() int)
		pid   int
		want  string
	}{
		"served by another pid": {func(t *testing.T) (string, func() int) { return fakeSocket(t, privateDir(t)) }, other,
			fmt.Sprintf("served by process %d, not by the plugin's process %d", os.Getpid(), other)},
		"group-accessible directory": {func(t *testing.T) (string, func() int) {
			d := t.TempDir()
			if err := os.Chmod(d, 0o750); err != nil {
				t.Fatal(err)
			}
			return fakeSocket(t, d)
		}, os.Getpid(), "has mode 0750: other users may enter it"},
		"world-accessible directory": {func(t *testing.T) (string, func() int) {
			d := t.TempDir()
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
			return fakeSocket(t, d)
		}, os.Getpid(), "has mode 0755"},
		"socket is a symlink": {func(t *testing.T) (string, func() int) {
			p, received := fakeSocket(t, privateDir(t))
			link := filepath.Join(filepath.Dir(p), "link")
			if err := os.Symlink(p, link); err != nil {
				t.Fatal(err)
			}
			return link, received
		}, os.Getpid(), "is a symbolic link"},
		"directory is a symlink": {func(t *testing.T) (string, func() int) {
			p, received := fakeSocket(t, privateDir(t))
			link := filepath.Join(t.TempDir(), "dir")
			if err := os.Symlink(filepath.Dir(p), link); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(link, filepath.Base(p)), received
		}, os.Getpid(), "socket directory " + "%s is a symbolic link"},
		"not a socket": {func(t *testing.T) (string, func() int) {
			p := filepath.Join(privateDir(t), "plugin1")
			os.WriteFile(p, nil, 0o600)
			return p, func() int { return 0 }
		}, os.Getpid(), "is not a socket"},
	} {
		t.Run(name, func(t *testing.T) {
			path, received := tc.setup(t)
			want := tc.want
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, filepath.Dir(path))
			}
			r := Reattach{Protocol: "grpc", ProtocolVersion: 1, Pid: tc.pid, Addr: wire.ReattachAddr{Network: "unix", String: path}}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := Launch(ctx, LaunchConfig{Reattach: &r, Name: "mini"})
			if err == nil {
				c.Close()
				t.Fatal("attached")
			}
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), ReattachEnv) {
				t.Fatalf("error %q, want %q", err, want)
			}
			if n := received(); n != 0 {
				t.Fatalf("the host sent %d bytes to a socket it refused", n)
			}
		})
	}
	// The check is not a blanket refusal: the same kind of socket, served
	// by the process the variable names, passes it.
	path, _ := fakeSocket(t, privateDir(t))
	conn, err := wire.DialReattach(context.Background(), Reattach{Protocol: "grpc", ProtocolVersion: 1, Pid: os.Getpid(),
		Addr: wire.ReattachAddr{Network: "unix", String: path}})
	if err != nil {
		t.Fatalf("own socket, own pid: %v", err)
	}
	conn.Close()
}
