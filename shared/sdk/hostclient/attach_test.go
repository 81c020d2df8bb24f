package hostclient

import (
	"bufio"
	"context"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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
		`{"x":{"Protocol":"grpc","ProtocolVersion":1,"Pid":5,"Addr":{"Network":"tcp","String":"192.0.2.1:5"}}}`: "not a loopback address",
		`{"x":{"Protocol":"grpc","ProtocolVersion":1,"Pid":5,"Addr":{"Network":"tcp","String":"localhost:5"}}}`: "want a loopback IP and port",
		`{"x":{"Protocol":"grpc","ProtocolVersion":1,"Pid":5,"Addr":{"Network":"unix","String":"rel/s"}}}`:      "want an absolute path",
		`{"x":{"Protocol":"netrpc","ProtocolVersion":1,"Pid":5,"Addr":{"Network":"unix","String":"/s"}}}`:       "want grpc",
		`{"x":{"Protocol":"grpc","ProtocolVersion":1,"Pid":0,"Addr":{"Network":"unix","String":"/s"}}}`:         "pid 0",
		`{"x":{"Protocol":"grpc","ProtocolVersion":1,"Pid":5,"Addr":{"Network":"udp","String":"/s"}}}`:          "want unix or tcp",
	} {
		if _, err := ParseReattach(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
	m, err := ParseReattach(`HARDEN_REATTACH_PLUGINS='{"x":{"Protocol":"grpc","ProtocolVersion":1,"Pid":5,"Addr":{"Network":"tcp","String":"127.0.0.1:5"}}}'`)
	if err != nil || m["x"].Pid != 5 {
		t.Errorf("pasted line: %v %+v", err, m)
	}
}
