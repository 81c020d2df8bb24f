package engine

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/harden-dev/harden/host/internal/plugins"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
)

// tinyBin is testdata/tiny, built once; each test installs copies of it
// under the names that select its behaviour.
var tinyBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "harden-engine-")
	if err != nil {
		panic(err)
	}
	tinyBin = filepath.Join(dir, "tiny")
	if out, err := exec.Command("go", "build", "-o", tinyBin, "./testdata/tiny").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build testdata/tiny: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type env struct {
	t    *testing.T
	dir  string // plugin dir
	lock string
	log  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t *testing.T) *env {
	t.Helper()
	// Only the plugin dir of the test: no HARDEN_PLUGIN_PATH, no user's
	// plugins, no reattachments.
	t.Setenv("HARDEN_PLUGIN_PATH", "")
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv(hostclient.ReattachEnv, "")
	root := t.TempDir()
	e := &env{t: t, dir: filepath.Join(root, "plugins"), lock: filepath.Join(root, "plugins.lock"), log: &syncBuffer{}}
	if err := os.Mkdir(e.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return e
}

// install copies the tiny plugin as harden-plugin-<name>.
func (e *env) install(name string) string {
	e.t.Helper()
	data, err := os.ReadFile(tinyBin)
	if err != nil {
		e.t.Fatal(err)
	}
	path := filepath.Join(e.dir, hostclient.BinaryPrefix+name)
	if err := os.WriteFile(path, data, 0o755); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// lockAll pins every installed plugin as it is now.
func (e *env) lockAll(override map[string]string) {
	e.t.Helper()
	found, _ := plugins.Discover([]string{e.dir})
	l := &plugins.Lock{Version: 1, Plugins: map[string]plugins.LockEntry{}}
	for _, b := range found {
		sum, err := b.SHA256()
		if err != nil {
			e.t.Fatal(err)
		}
		if o, ok := override[b.Name]; ok {
			sum = o
		}
		l.Plugins[b.Name] = plugins.LockEntry{SHA256: sum, Path: b.Path}
	}
	if err := l.Write(e.lock); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) opts() Options {
	return Options{PluginDirs: []string{e.dir}, LockPath: e.lock, LogOutput: e.log, StartTimeout: 20 * time.Second}
}

func running(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] != 'Z' && stat[i+2] != 'X'
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for running(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("plugin process %d still running", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// A locked plugin is launched, identified and its schemas compiled; Close
// ends its process.
func TestOpenLaunchesAndCloseEnds(t *testing.T) {
	e := newEnv(t)
	e.install("tiny")
	e.lockAll(nil)
	eng, err := Open(ctx(t), e.opts(), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := eng.Plugins["tiny"]
	if p == nil {
		t.Fatalf("plugins %v, failed %v", eng.Plugins, eng.Failed)
	}
	if p.Meta.Name != "tiny" || p.Meta.Version != "0.1.0" || p.LockStatus != plugins.Locked || p.Connection == nil || p.Spec == nil {
		t.Errorf("plugin %+v", p)
	}
	r, err := p.Client.Verify(ctx(t), sdk.RequestContext{Target: sdk.NewTarget("a", []byte(`{}`), []byte(`{}`), nil)})
	if err != nil || len(r.Checks) != 1 || r.Checks[0].ID != "tiny.nothing" {
		t.Errorf("verify: %v %+v", err, r)
	}
	pid := p.Client.PID()
	if !running(pid) {
		t.Fatalf("plugin pid %d not running", pid)
	}
	start := time.Now()
	eng.Close()
	waitGone(t, pid)
	if d := time.Since(start); d > hostclient.GracefulExit+hostclient.KillWait {
		t.Errorf("close took %v", d)
	}
}

func TestOpenRefuses(t *testing.T) {
	t.Run("unlocked", func(t *testing.T) {
		e := newEnv(t)
		e.install("tiny")
		_, err := Open(ctx(t), e.opts(), nil)
		if err == nil || !strings.Contains(err.Error(), "is not in the lock file") {
			t.Fatalf("unlocked plugin: %v", err)
		}
		o := e.opts()
		o.AllowUnlocked = true
		eng, err := Open(ctx(t), o, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close()
		if s := eng.Plugins["tiny"].LockStatus; s != plugins.Unlocked {
			t.Errorf("status %s", s)
		}
	})
	t.Run("checksum_mismatch", func(t *testing.T) {
		e := newEnv(t)
		e.install("tiny")
		e.lockAll(map[string]string{"tiny": strings.Repeat("ab", 32)})
		var ee *Error
		_, err := Open(ctx(t), e.opts(), nil)
		if err == nil || !strings.Contains(err.Error(), "does not match its sha256 in the lock file") || !errors.As(err, &ee) || ee.Kind != KindPlugin {
			t.Fatalf("changed binary: %v", err)
		}
		o := e.opts()
		o.AllowUnlocked = true
		eng, err := Open(ctx(t), o, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close()
		if s := eng.Plugins["tiny"].LockStatus; s != plugins.Mismatch {
			t.Errorf("status %s, want %s", s, plugins.Mismatch)
		}
	})
	t.Run("name_mismatch", func(t *testing.T) {
		e := newEnv(t)
		e.install("liar")
		e.lockAll(nil)
		_, err := Open(ctx(t), e.opts(), nil)
		if err == nil || !strings.Contains(err.Error(), `harden-plugin-liar calls itself "tiny"; the binary must be named harden-plugin-tiny`) {
			t.Fatalf("liar: %v", err)
		}
	})
	t.Run("metadata_error", func(t *testing.T) {
		e := newEnv(t)
		e.install("badmeta")
		e.lockAll(nil)
		_, err := Open(ctx(t), e.opts(), nil)
		if err == nil || !strings.Contains(err.Error(), "plugin badmeta: metadata: metadata broken") {
			t.Fatalf("badmeta: %v", err)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		e := newEnv(t)
		var u *UnknownPluginError
		var ee *Error
		_, err := Open(ctx(t), e.opts(), []string{"nope"})
		if !errors.As(err, &u) || u.Name != "nope" || !errors.As(err, &ee) || ee.Kind != KindConfig {
			t.Fatalf("unknown plugin: %v", err)
		}
	})
}

// A plugin that dies during launch is named as crashed, and nothing is left
// running; OpenEach still launches the others.
func TestCrashingPlugin(t *testing.T) {
	e := newEnv(t)
	e.install("crashschema")
	e.install("tiny")
	e.lockAll(nil)
	_, err := Open(ctx(t), e.opts(), []string{"crashschema"})
	if err == nil || !strings.Contains(err.Error(), "plugin crashschema crashed during schema (process exited)") {
		t.Fatalf("crash at launch: %v", err)
	}
	eng, err := OpenEach(ctx(t), e.opts(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if eng.Plugins["tiny"] == nil || eng.Failed["crashschema"] == nil || eng.Plugins["crashschema"] != nil {
		t.Errorf("OpenEach: plugins %v failed %v", eng.Plugins, eng.Failed)
	}
}

// A plugin that dies during a call: the error says so, and Close copes.
func TestPluginCrashesDuringCall(t *testing.T) {
	e := newEnv(t)
	e.install("crashverify")
	e.lockAll(nil)
	eng, err := Open(ctx(t), e.opts(), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := eng.Plugins["crashverify"]
	_, err = p.Client.Verify(ctx(t), sdk.RequestContext{Target: sdk.NewTarget("a", []byte(`{}`), []byte(`{}`), nil)})
	if err == nil || !strings.Contains(err.Error(), "plugin crashverify crashed during verify (process exited)") {
		t.Fatalf("verify on a crashing plugin: %v", err)
	}
	if !p.Client.Exited() {
		t.Error("client does not know the plugin exited")
	}
	done := make(chan struct{})
	go func() { eng.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(hostclient.GracefulExit + hostclient.KillWait + time.Second):
		t.Fatal("Close hung on a crashed plugin")
	}
}

// HARDEN_REATTACH_PLUGINS: the engine attaches to a plugin somebody started
// in debug mode (none installed) when --debug-plugins is given too, warns
// that the pin does not apply and where secrets go, and leaves the process
// running when it closes. The variable alone is a configuration error.
func TestOpenReattaches(t *testing.T) {
	e := newEnv(t)
	bin := filepath.Join(t.TempDir(), hostclient.BinaryPrefix+"tiny")
	data, _ := os.ReadFile(tinyBin)
	os.WriteFile(bin, data, 0o755)
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HARDEN_PLUGIN_DEBUG=1", "TMPDIR=" + t.TempDir()}
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGINT); cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(hostclient.ReattachEnv, strings.TrimSpace(line))
	var ee *Error
	if _, err := Open(ctx(t), e.opts(), []string{"tiny"}); err == nil || !errors.As(err, &ee) || ee.Kind != KindConfig ||
		!strings.Contains(err.Error(), hostclient.ReattachEnv) || !strings.Contains(err.Error(), "--debug-plugins") {
		t.Fatalf("%s without --debug-plugins: %v", hostclient.ReattachEnv, err)
	}
	if w := e.log.String(); strings.Contains(w, "attaching") {
		t.Errorf("without --debug-plugins: %q", w)
	}
	opts := e.opts()
	opts.DebugPlugins = true
	eng, err := Open(ctx(t), opts, []string{"tiny"})
	if err != nil {
		t.Fatal(err)
	}
	p := eng.Plugins["tiny"]
	if p.LockStatus != plugins.Reattached || p.Meta.Name != "tiny" || p.Client.PID() != cmd.Process.Pid {
		t.Errorf("reattached plugin %+v pid %d", p, p.Client.PID())
	}
	if w := e.log.String(); !strings.Contains(w, "warning: plugin tiny: attaching to the process "+strconv.Itoa(cmd.Process.Pid)) ||
		!strings.Contains(w, "sha256 pin and the one-time mutual TLS channel do not apply") ||
		!strings.Contains(w, "secrets and private keys will be sent to that process") {
		t.Errorf("warning: %q", w)
	}
	if len(eng.Found) != 1 || !strings.HasPrefix(eng.Found[0].Path, "reattached: unix ") {
		t.Errorf("found %+v", eng.Found)
	}
	eng.Close()
	time.Sleep(100 * time.Millisecond)
	if !running(cmd.Process.Pid) {
		t.Error("closing the engine ended the debugged plugin")
	}
	t.Setenv(hostclient.ReattachEnv, strings.Replace(strings.TrimSpace(line), `{"tiny":`, `{"../tiny":`, 1))
	if _, err := Open(ctx(t), opts, []string{"tiny"}); err == nil || !strings.Contains(err.Error(), `"../tiny" is not a plugin name`) {
		t.Errorf("bad name in %s: %v", hostclient.ReattachEnv, err)
	}
	t.Setenv(hostclient.ReattachEnv, `{"tiny":{"Protocol":"grpc"`)
	if _, err := Open(ctx(t), opts, []string{"tiny"}); err == nil || !errors.As(err, &ee) || ee.Kind != KindConfig {
		t.Errorf("garbled %s: %v", hostclient.ReattachEnv, err)
	}
	// A TCP address is refused even with the flag: any local user can
	// listen on a loopback port.
	t.Setenv(hostclient.ReattachEnv, `{"tiny":{"Protocol":"grpc","ProtocolVersion":1,"Pid":`+strconv.Itoa(cmd.Process.Pid)+`,"Addr":{"Network":"tcp","String":"127.0.0.1:5000"}}}`)
	if _, err := Open(ctx(t), opts, []string{"tiny"}); err == nil || !errors.As(err, &ee) || ee.Kind != KindConfig ||
		!strings.Contains(err.Error(), "only a Unix socket is accepted") {
		t.Errorf("tcp in %s: %v", hostclient.ReattachEnv, err)
	}
}
