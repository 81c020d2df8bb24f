package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// HAProxy is HAProxy (Debian's haproxy, 2.6) publishing SeaweedFS's S3
// port, run as a child process of testenv on 127.0.0.1 in master-worker
// mode (-W) with a master CLI socket (-S: how a reload is asked for and
// seen) and a pid file. It starts in the state the seed calls a mistake: a
// weak TLS front (TLS 1.0 and up, every suite OpenSSL has, CBC included,
// no HSTS) forwarding to weed's PLAINTEXT S3 port. HAProxy loads two
// files: haproxy.cfg (global and defaults, the operator's) and
// harden-lake.cfg, the extra -f file the proxy plugin owns (the target's
// spec.include_file), whose "before" content testenv writes.
type HAProxy struct {
	// Binary is the haproxy executable (default: HAProxyBinary).
	Binary string
	// Dir holds the configuration, the pid file, the master socket, the
	// output log and cert_dir.
	Dir string
	// ConfigFile is haproxy.cfg; IncludeFile the file harden owns (the
	// second -f); PIDFile (-p), MasterSocket (-S) and LogFile (HAProxy's
	// stdout and stderr) as the command line names them.
	ConfigFile, IncludeFile, PIDFile, MasterSocket, LogFile string
	// CertDir is the target's spec.cert_dir (created empty).
	CertDir string
	// Front is the TLS front; CanaryListen and CanaryDecoy are free
	// loopback addresses for the plugin's canary route and decoy (nothing
	// listens there before apply).
	Front, CanaryListen, CanaryDecoy string
	// CertFile/KeyFile are the certificate the policy gives the target
	// (harden installs it); BeforePEM is what the "before" front serves
	// (another certificate from the same CA, chain and key in one file as
	// HAProxy's crt wants); CAFile the CA.
	CertFile, KeyFile, BeforePEM, CAFile string
	// BackendAddress is weed's S3 HTTPS port (host:port), the backend the
	// proxy must forward to; BackendPlaintext its plain HTTP port, where
	// the "before" route goes.
	BackendAddress, BackendPlaintext string
	// CA is the env's CA (tests issue more certificates from it).
	CA *CA
	// S3 is the SeaweedFS HAProxy publishes (started before it).
	S3 *SeaweedFS

	proc process
}

// HAProxyBinary finds haproxy: on PATH, else Debian's /usr/sbin/haproxy.
func HAProxyBinary() (string, error) {
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p, nil
	}
	if fi, err := os.Stat("/usr/sbin/haproxy"); err == nil && !fi.IsDir() {
		return "/usr/sbin/haproxy", nil
	}
	return "", errors.New("haproxy not found (install haproxy: scripts/setup.sh)")
}

// Name implements Service.
func (h *HAProxy) Name() string { return "haproxy" }

// Start writes the configuration and starts HAProxy in the foreground,
// retrying with other ports when one was taken meanwhile.
func (h *HAProxy) Start(ctx context.Context, env *Env) error {
	s3, _ := env.service("s3").(*SeaweedFS)
	if s3 == nil {
		return errors.New("haproxy publishes SeaweedFS's S3 port: start the s3 service in the same env (testenv up --services s3,haproxy)")
	}
	h.S3, h.CA, h.CAFile = s3, env.CA, env.CA.CertFile
	h.BackendAddress, h.BackendPlaintext = strings.TrimPrefix(s3.HTTPS, "https://"), strings.TrimPrefix(s3.HTTP, "http://")
	var err error
	if h.Binary == "" {
		if h.Binary, err = HAProxyBinary(); err != nil {
			return err
		}
	}
	h.Dir = filepath.Join(env.Dir, "haproxy")
	h.ConfigFile, h.IncludeFile = filepath.Join(h.Dir, "haproxy.cfg"), filepath.Join(h.Dir, "harden-lake.cfg")
	h.PIDFile, h.MasterSocket, h.LogFile = filepath.Join(h.Dir, "haproxy.pid"), filepath.Join(h.Dir, "master.sock"), filepath.Join(h.Dir, "haproxy.log")
	h.CertDir = filepath.Join(h.Dir, "certs")
	for _, d := range []string{h.Dir, h.CertDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if h.CertFile, h.KeyFile, err = env.CA.Issue("lake-proxy", false, "127.0.0.1", "localhost"); err != nil {
		return err
	}
	bc, bk, err := env.CA.Issue("haproxy-before", false, "127.0.0.1", "localhost")
	if err != nil {
		return err
	}
	h.BeforePEM = filepath.Join(h.Dir, "before.pem")
	if err := concatFiles(h.BeforePEM, 0o600, bc, bk); err != nil {
		return err
	}
	var lastErr error
	for range 3 {
		if lastErr = h.startOnce(ctx); lastErr == nil {
			return nil
		}
		h.proc.stop(5 * time.Second)
		os.Remove(h.PIDFile)
		os.Remove(h.MasterSocket)
	}
	return lastErr
}

// concatFiles writes the files' contents, one after the other, to out.
func concatFiles(out string, mode os.FileMode, files ...string) error {
	var b []byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		b = append(b, data...)
	}
	return os.WriteFile(out, b, mode)
}

func (h *HAProxy) startOnce(ctx context.Context) error {
	var ports []int
	for len(ports) < 3 {
		p, err := FreePort()
		if err != nil {
			return err
		}
		if !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	addr := func(p int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)) }
	h.Front, h.CanaryListen, h.CanaryDecoy = addr(ports[0]), addr(ports[1]), addr(ports[2])
	if err := os.WriteFile(h.ConfigFile, []byte(h.mainConfig()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(h.IncludeFile, []byte(h.beforeInclude()), 0o644); err != nil {
		return err
	}
	out, err := os.Create(h.LogFile)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(h.Binary, h.Args()...)
	cmd.Dir = h.Dir
	cmd.Stdout, cmd.Stderr = out, out
	if err := h.proc.start(cmd); err != nil {
		return fmt.Errorf("start haproxy: %w", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-h.proc.exited:
			return fmt.Errorf("haproxy exited at start: %s", tail(h.LogFile, 15))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if _, err := os.Stat(h.PIDFile); err == nil {
			if procs, err := h.Processes(); err == nil && len(procs.Workers) > 0 {
				if c, err := net.DialTimeout("tcp", h.Front, time.Second); err == nil {
					c.Close()
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("haproxy did not listen on %s within 15s: %s", h.Front, tail(h.LogFile, 15))
		}
	}
}

// Args is HAProxy's command line: master-worker mode in the foreground,
// the master CLI socket, the pid file, and the two configuration files.
// A reload re-executes the master with the same arguments, so the file
// harden owns must be among them from the start.
func (h *HAProxy) Args() []string {
	return []string{"-W", "-S", h.MasterSocket, "-p", h.PIDFile, "-f", h.ConfigFile, "-f", h.IncludeFile}
}

// mainConfig is haproxy.cfg: the global and defaults sections, no proxy.
// As root HAProxy keeps running as root (no user/group): the directory is
// a test's private 0700 directory.
func (h *HAProxy) mainConfig() string {
	return `# testenv: HAProxy publishing SeaweedFS's S3 port. harden owns the second -f file.
global
    log stderr format raw local0 notice
    # Old workers of a reload end their last connections within this.
    hard-stop-after 30s

defaults
    log global
    mode http
    option httplog
    timeout connect 5s
    timeout client 60s
    timeout server 60s
`
}

// beforeInclude is the unhardened route: a weak TLS front (TLS 1.0 and
// up, every suite OpenSSL has, CBC included; @SECLEVEL=0 because Debian's
// OpenSSL refuses TLS 1.0/1.1 at its default level) forwarding to weed's
// plaintext S3 port.
func (h *HAProxy) beforeInclude() string {
	return fmt.Sprintf(`# testenv "before": a weak TLS front publishing SeaweedFS's S3 PLAINTEXT port.
frontend lake
    bind %s ssl crt %s ssl-min-ver TLSv1.0 ciphers ALL:@SECLEVEL=0
    mode http
    default_backend lake_s3

backend lake_s3
    mode http
    server s3 %s
`, h.Front, h.BeforePEM, h.BackendPlaintext)
}

// HAProxyProcs is what the master CLI's `show proc` lists.
type HAProxyProcs struct {
	Master, Reloads, FailedReloads int
	// Workers are the worker pids, the current generation (reloads 0)
	// first.
	Workers []int
	// Current are the workers of the current generation.
	Current []int
}

var showProcMaster = regexp.MustCompile(`^(\d+)\s+master\s+(\d+)\s+\[failed:\s*(\d+)\]`)
var showProcWorker = regexp.MustCompile(`^(\d+)\s+worker\s+(\d+)\s`)

// Processes asks the master CLI for `show proc`.
func (h *HAProxy) Processes() (HAProxyProcs, error) {
	out, err := masterCLI(h.MasterSocket, "show proc")
	if err != nil {
		return HAProxyProcs{}, err
	}
	var p HAProxyProcs
	found := false
	for _, line := range strings.Split(out, "\n") {
		if m := showProcMaster.FindStringSubmatch(line); m != nil {
			p.Master, _ = strconv.Atoi(m[1])
			p.Reloads, _ = strconv.Atoi(m[2])
			p.FailedReloads, _ = strconv.Atoi(m[3])
			found = true
		} else if m := showProcWorker.FindStringSubmatch(line); m != nil {
			pid, _ := strconv.Atoi(m[1])
			p.Workers = append(p.Workers, pid)
			if m[2] == "0" {
				p.Current = append(p.Current, pid)
			}
		}
	}
	if !found {
		return p, fmt.Errorf("haproxy master CLI %s: no master in `show proc`: %q", h.MasterSocket, out)
	}
	return p, nil
}

// masterCLI sends one command to a master CLI socket and reads the answer
// to the end (the master answers once the client has half-closed).
func masterCLI(socket, command string) (string, error) {
	c, err := net.DialTimeout("unix", socket, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, command+"\n"); err != nil {
		return "", err
	}
	c.(*net.UnixConn).CloseWrite()
	var b strings.Builder
	_, err = io.Copy(&b, bufio.NewReader(c))
	return b.String(), err
}

// Reload asks the master CLI for a reload and waits until a new worker
// generation runs (a configuration HAProxy refuses counts a failed reload
// and keeps the old workers: error).
func (h *HAProxy) Reload() error {
	before, err := h.Processes()
	if err != nil {
		return err
	}
	if _, err := masterCLI(h.MasterSocket, "reload"); err != nil {
		return fmt.Errorf("haproxy reload: %w", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		now, err := h.Processes()
		if err != nil || now.Reloads == before.Reloads {
			continue // the master re-executes itself meanwhile
		}
		if now.FailedReloads > before.FailedReloads {
			return fmt.Errorf("haproxy refused the reload: %s", tail(h.LogFile, 10))
		}
		for _, p := range now.Current {
			if !slices.Contains(before.Workers, p) {
				return nil
			}
		}
	}
	return fmt.Errorf("haproxy started no new worker within 15s of the reload: %s", tail(h.LogFile, 10))
}

// Stop ends HAProxy (SIGTERM to the master: it stops the workers; the
// process group is killed if it lingers) and removes its directory.
func (h *HAProxy) Stop() error {
	h.proc.stop(5 * time.Second)
	if h.Dir != "" {
		return os.RemoveAll(h.Dir)
	}
	return nil
}

// Info implements Service: the haproxy entry of env.json.
func (h *HAProxy) Info() any {
	return map[string]any{"front": "https://" + h.Front, "config_file": h.ConfigFile, "include_file": h.IncludeFile, "pid_file": h.PIDFile,
		"master_socket": h.MasterSocket, "log_file": h.LogFile, "cert_dir": h.CertDir, "canary_listen": h.CanaryListen, "canary_decoy": h.CanaryDecoy,
		"backend_plaintext": h.BackendPlaintext, "backend_tls": h.BackendAddress}
}

// Target implements Service: the proxy target lake-proxy. The backend is
// weed's S3 HTTPS port, verified for "localhost": weed's certificate
// names 127.0.0.1 as an IP address, and HAProxy checks only DNS names
// against the SNI it sends.
func (h *HAProxy) Target() map[string]any {
	return map[string]any{"name": "lake-proxy", "plugin": "proxy",
		"connection": map[string]any{"kind": "haproxy", "front": h.Front, "server_name": "localhost", "config_file": h.ConfigFile,
			"master_socket": h.MasterSocket, "pid_file": h.PIDFile, "binary": h.Binary},
		"certificate": map[string]any{"cert_file": h.CertFile, "key_file": h.KeyFile},
		"spec": map[string]any{"include_file": h.IncludeFile, "cert_dir": h.CertDir,
			"backend": map[string]any{"address": h.BackendAddress, "server_name": "localhost", "ca_file": h.CAFile},
			"canary":  map[string]any{"listen": h.CanaryListen, "decoy": h.CanaryDecoy}}}
}

// HAProxyForTest starts HAProxy in front of s3 for one test and stops it
// at cleanup; with s3 nil it starts SeaweedFS too (one env, its own CA)
// and stops both. Under CI=true a server that cannot start fails the test.
func HAProxyForTest(t testing.TB, s3 *SeaweedFS) *HAProxy {
	t.Helper()
	dir := t.TempDir()
	var env *Env
	if s3 != nil {
		// The env of the given SeaweedFS is not this one: HAProxy only
		// needs its ports and its CA (s3's certificate comes from it).
		ca, err := LoadCA(filepath.Dir(s3.CertFile))
		if err != nil {
			t.Fatal(err)
		}
		env = &Env{Dir: dir, CA: ca, Log: io.Discard, services: []Service{s3}}
		h := &HAProxy{}
		if err := h.Start(context.Background(), env); err != nil {
			h.Stop()
			unavailable(t, "haproxy: %v", err)
		}
		t.Cleanup(func() {
			if err := h.Stop(); err != nil {
				t.Errorf("stop haproxy: %v", err)
			}
		})
		return h
	}
	ca, err := NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	env = &Env{Dir: dir, CA: ca, Log: io.Discard}
	if err := env.start(context.Background(), []string{"s3", "haproxy"}); err != nil {
		env.Down()
		unavailable(t, "haproxy: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Down(); err != nil {
			t.Errorf("stop haproxy: %v", err)
		}
	})
	return env.service("haproxy").(*HAProxy)
}
