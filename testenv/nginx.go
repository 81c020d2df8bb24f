package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Nginx is nginx (Debian's nginx-light, 1.22) as a TLS-terminating reverse
// proxy in front of the ingest API, run as a child process of testenv on
// 127.0.0.1 with its own prefix directory, configuration, pid file and
// error log. It starts in the state the seed calls a mistake: its front
// offers TLS 1.0 and 1.1 and CBC suites, sends no HSTS, and forwards to
// the ingest API's PLAINTEXT port (proxy_pass http://…). nginx.conf
// includes harden-ingest.conf inside http {}: the file the proxy plugin
// owns (the target's spec.include_file); testenv writes its "before"
// content. `nginx -s reload` (or Reload) works: the pid file is where
// nginx.conf says.
type Nginx struct {
	// Binary is the nginx executable (default: NginxBinary).
	Binary string
	// Dir is the prefix directory (-p): configuration, pid file, logs,
	// temp directories and cert_dir are under it.
	Dir string
	// ConfigFile is nginx.conf; IncludeFile the file harden owns, included
	// inside http {}; PIDFile and ErrorLog as nginx.conf names them.
	ConfigFile, IncludeFile, PIDFile, ErrorLog string
	// CertDir is the target's spec.cert_dir (created empty).
	CertDir string
	// Front is the TLS front; CanaryListen and CanaryDecoy are free
	// loopback addresses for the plugin's canary route and decoy (nothing
	// listens there before apply).
	Front, CanaryListen, CanaryDecoy string
	// CertFile/KeyFile are the certificate the policy gives the target
	// (harden installs it); BeforeCertFile/BeforeKeyFile what the "before"
	// front serves (another certificate from the same CA); CAFile the CA.
	CertFile, KeyFile, BeforeCertFile, BeforeKeyFile, CAFile string
	// CA is the env's CA (tests issue more certificates from it).
	CA *CA
	// Ingest is the ingest API nginx fronts (started before it).
	Ingest *Ingest

	proc process
}

// NginxBinary finds nginx: on PATH, else Debian's /usr/sbin/nginx.
func NginxBinary() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	if fi, err := os.Stat("/usr/sbin/nginx"); err == nil && !fi.IsDir() {
		return "/usr/sbin/nginx", nil
	}
	return "", errors.New("nginx not found (install nginx-light: scripts/setup.sh)")
}

// Name implements Service.
func (n *Nginx) Name() string { return "nginx" }

// Start writes the configuration and starts nginx in the foreground
// (daemon off), retrying with other ports when one was taken meanwhile.
func (n *Nginx) Start(ctx context.Context, env *Env) error {
	ing, _ := env.service("ingest").(*Ingest)
	if ing == nil {
		return errors.New("nginx fronts the ingest API: start the ingest service in the same env (testenv up --services ingest,nginx)")
	}
	n.Ingest, n.CA, n.CAFile = ing, env.CA, env.CA.CertFile
	var err error
	if n.Binary == "" {
		if n.Binary, err = NginxBinary(); err != nil {
			return err
		}
	}
	n.Dir = filepath.Join(env.Dir, "nginx")
	n.ConfigFile, n.IncludeFile = filepath.Join(n.Dir, "nginx.conf"), filepath.Join(n.Dir, "harden-ingest.conf")
	n.PIDFile, n.ErrorLog, n.CertDir = filepath.Join(n.Dir, "nginx.pid"), filepath.Join(n.Dir, "error.log"), filepath.Join(n.Dir, "certs")
	for _, d := range []string{n.Dir, n.CertDir, filepath.Join(n.Dir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if n.CertFile, n.KeyFile, err = env.CA.Issue("ingest-proxy", false, "127.0.0.1", "localhost"); err != nil {
		return err
	}
	if n.BeforeCertFile, n.BeforeKeyFile, err = env.CA.Issue("nginx-before", false, "127.0.0.1", "localhost"); err != nil {
		return err
	}
	var lastErr error
	for range 3 {
		if lastErr = n.startOnce(ctx); lastErr == nil {
			return nil
		}
		n.proc.stop(5 * time.Second)
		os.Remove(n.PIDFile)
	}
	return lastErr
}

func (n *Nginx) startOnce(ctx context.Context) error {
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
	n.Front, n.CanaryListen, n.CanaryDecoy = addr(ports[0]), addr(ports[1]), addr(ports[2])
	if err := os.WriteFile(n.ConfigFile, []byte(n.mainConfig()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(n.IncludeFile, []byte(n.beforeInclude()), 0o644); err != nil {
		return err
	}
	out, err := os.Create(filepath.Join(n.Dir, "nginx.out"))
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(n.Binary, "-p", n.Dir, "-c", n.ConfigFile, "-g", "daemon off;")
	cmd.Stdout, cmd.Stderr = out, out
	if err := n.proc.start(cmd); err != nil {
		return fmt.Errorf("start nginx: %w", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-n.proc.exited:
			msg, _ := os.ReadFile(out.Name())
			return fmt.Errorf("nginx exited at start: %s", strings.TrimSpace(string(msg)))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if _, err := os.Stat(n.PIDFile); err == nil {
			if c, err := net.DialTimeout("tcp", n.Front, time.Second); err == nil {
				c.Close()
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nginx did not listen on %s within 15s (see %s)", n.Front, n.ErrorLog)
		}
	}
}

// mainConfig is nginx.conf: everything under Dir, one worker. As root the
// workers run as root too (`user root;`): the prefix directory is a
// test's private 0700 directory that nginx's default user could not enter.
func (n *Nginx) mainConfig() string {
	var b strings.Builder
	b.WriteString("# testenv: nginx in front of the ingest API. harden owns the included file.\n")
	if os.Geteuid() == 0 {
		b.WriteString("user root;\n")
	}
	fmt.Fprintf(&b, "worker_processes 1;\npid %s;\nerror_log %s notice;\nevents { worker_connections 256; }\nhttp {\n", n.PIDFile, n.ErrorLog)
	b.WriteString("    access_log off;\n")
	for _, t := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&b, "    %s_temp_path %s;\n", t, filepath.Join(n.Dir, "tmp", t))
	}
	fmt.Fprintf(&b, "    include %s;\n}\n", n.IncludeFile)
	return b.String()
}

// beforeInclude is the unhardened route: a weak TLS front (TLS 1.0-1.2,
// every suite OpenSSL has, CBC included; @SECLEVEL=0 because Debian's
// OpenSSL refuses TLS 1.0/1.1 at its default level) forwarding to the
// ingest API's plaintext port.
func (n *Nginx) beforeInclude() string {
	return fmt.Sprintf(`# testenv "before": a weak TLS front proxying to the ingest API's PLAINTEXT port.
server {
    listen %s ssl;
    server_name localhost;
    ssl_certificate %s;
    ssl_certificate_key %s;
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2;
    ssl_ciphers ALL:@SECLEVEL=0;
    location / {
        proxy_pass http://%s;
    }
}
`, n.Front, n.BeforeCertFile, n.BeforeKeyFile, n.Ingest.PlaintextAddress)
}

// Reload runs `nginx -s reload` and waits until the master has started new
// workers and the old ones accept no more (a configuration nginx refuses
// at reload starts none: error).
func (n *Nginx) Reload() error {
	master := n.proc.pid()
	if master == 0 {
		return errors.New("nginx is not running")
	}
	before := childPIDs(master)
	out, err := exec.Command(n.Binary, "-p", n.Dir, "-c", n.ConfigFile, "-s", "reload").CombinedOutput()
	if err != nil {
		return fmt.Errorf("nginx -s reload: %w: %s", err, strings.TrimSpace(string(out)))
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		now := childPIDs(master)
		fresh, old := false, false
		for _, p := range now {
			fresh = fresh || !slices.Contains(before, p)
		}
		// An old worker accepts until it calls itself "shutting down".
		for _, p := range before {
			title, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/cmdline")
			old = old || (slices.Contains(now, p) && strings.Contains(string(title), "worker process") && !strings.Contains(string(title), "shutting down"))
		}
		if fresh && !old {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("nginx started no new workers within 10s of the reload (see %s)", n.ErrorLog)
}

// childPIDs lists the processes whose parent is pid (from /proc).
func childPIDs(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, p)
		}
	}
	return out
}

// Stop ends nginx (SIGTERM: fast shutdown; the process group is killed if
// it lingers) and removes its directory.
func (n *Nginx) Stop() error {
	n.proc.stop(5 * time.Second)
	if n.Dir != "" {
		return os.RemoveAll(n.Dir)
	}
	return nil
}

// Info implements Service: the nginx entry of env.json.
func (n *Nginx) Info() any {
	return map[string]any{"front": "https://" + n.Front, "config_file": n.ConfigFile, "include_file": n.IncludeFile, "pid_file": n.PIDFile,
		"error_log": n.ErrorLog, "cert_dir": n.CertDir, "canary_listen": n.CanaryListen, "canary_decoy": n.CanaryDecoy,
		"backend_plaintext": n.Ingest.PlaintextAddress, "backend_tls": n.Ingest.TLSAddress}
}

// Target implements Service: the proxy target ingest-proxy. The backend is
// the ingest API's TLS port (what the proxy must forward to), verified
// with the CA that issued the ingest API's certificate.
func (n *Nginx) Target() map[string]any {
	return map[string]any{"name": "ingest-proxy", "plugin": "proxy",
		"connection": map[string]any{"kind": "nginx", "front": n.Front, "server_name": "localhost", "config_file": n.ConfigFile,
			"pid_file": n.PIDFile, "binary": n.Binary},
		"certificate": map[string]any{"cert_file": n.CertFile, "key_file": n.KeyFile},
		"spec": map[string]any{"include_file": n.IncludeFile, "cert_dir": n.CertDir,
			"backend": map[string]any{"address": n.Ingest.TLSAddress, "server_name": "localhost", "ca_file": n.Ingest.CAFile},
			"canary":  map[string]any{"listen": n.CanaryListen, "decoy": n.CanaryDecoy}}}
}

// NginxForTest starts the ingest API and nginx in front of it for one test
// (one env, its own CA) and stops both at cleanup. Under CI=true a server
// that cannot start fails the test.
func NginxForTest(t testing.TB) *Nginx {
	t.Helper()
	dir := t.TempDir()
	ca, err := NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	env := &Env{Dir: dir, CA: ca, Log: io.Discard}
	if err := env.start(context.Background(), []string{"ingest", "nginx"}); err != nil {
		env.Down()
		unavailable(t, "nginx: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Down(); err != nil {
			t.Errorf("stop nginx: %v", err)
		}
	})
	return env.service("nginx").(*Nginx)
}
