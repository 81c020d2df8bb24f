package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// nginxFlavor manages nginx (1.22+: ssl_conf_command needs 1.19.4). The
// file harden owns is included inside http {}: it holds two server blocks
// (the front and harden's canary), each with its TLS and its upstream TLS
// in full, so nothing depends on what the operator's http {} sets — and
// nothing harden writes changes the operator's other servers.
type nginxFlavor struct{}

func (nginxFlavor) kind() string { return "nginx" }

// render is the include: the front and the canary. Values were checked in
// load to hold no character nginx would read as syntax or a variable.
func (nginxFlavor) render(t *target, p renderInput) ([]byte, error) {
	o := opensslNames(p.Policy.Profile)
	var b strings.Builder
	fmt.Fprintf(&b, "# harden: target %s (profile %s). harden owns this file: harden apply rewrites it.\n", t.name, p.Policy.Profile.Name)
	b.WriteString("# Included inside http {} of " + t.conn.ConfigFile + ".\n")
	if len(o.Skipped) > 0 {
		b.WriteString("# Key-exchange groups of the profile left out (not in OpenSSL 3.0): " + strings.Join(o.Skipped, ", ") + ".\n")
	}
	b.WriteString("\n# The TLS front, forwarding to the backend over verified TLS.\n")
	nginxServer(&b, t, p, o, t.conn.Front, t.spec.Backend.Address, false)
	b.WriteString("\n# harden's canary route: the same TLS and upstream TLS as the front, to a loopback\n")
	b.WriteString("# decoy that harden verify runs only while it proves the proxy refuses a backend\n")
	b.WriteString("# certificate from another CA. Nothing listens at the decoy otherwise (502).\n")
	nginxServer(&b, t, p, o, t.spec.Canary.Listen, t.spec.Canary.Decoy, true)
	return []byte(b.String()), nil
}

func nginxServer(b *strings.Builder, t *target, p renderInput, o opensslTLS, listen, upstream string, canary bool) {
	line := func(indent int, format string, args ...any) {
		b.WriteString(strings.Repeat("    ", indent))
		fmt.Fprintf(b, format, args...)
		b.WriteString(";\n")
	}
	onOff := func(v bool) string {
		if v {
			return "on"
		}
		return "off"
	}
	b.WriteString("server {\n")
	line(1, "listen %s ssl", listen)
	line(1, "server_name %s", t.frontName())
	line(1, "ssl_certificate %s", p.CertFile)
	line(1, "ssl_certificate_key %s", p.KeyFile)
	line(1, "ssl_protocols %s", strings.Join(o.Protocols, " "))
	if o.Ciphers != "" {
		line(1, "ssl_ciphers %s", o.Ciphers)
	}
	if o.Ciphersuites != "" {
		line(1, "ssl_conf_command Ciphersuites %s", o.Ciphersuites)
	}
	if o.Groups != "" {
		line(1, "ssl_ecdh_curve %s", o.Groups)
	}
	line(1, "ssl_prefer_server_ciphers %s", onOff(o.PreferServer))
	// Tickets would resume sessions across a key rotation nobody does.
	line(1, "ssl_session_tickets off")
	if p.MTLS {
		line(1, "ssl_verify_client on")
		line(1, "ssl_client_certificate %s", p.ClientCAFile)
		line(1, "ssl_verify_depth 3")
	}
	if t.spec.hsts() {
		line(1, "add_header Strict-Transport-Security \"max-age=63072000\" always")
	}
	// The probe's http.content_type_options: an API behind the front may
	// not send it itself (HAProxy's render sets it too).
	line(1, "add_header X-Content-Type-Options nosniff always")
	b.WriteString("    location / {\n")
	line(2, "proxy_pass https://%s", upstream)
	// The front's headers only: a backend's own would make two.
	if t.spec.hsts() {
		line(2, "proxy_hide_header Strict-Transport-Security")
	}
	line(2, "proxy_hide_header X-Content-Type-Options")
	line(2, "proxy_ssl_verify on")
	line(2, "proxy_ssl_verify_depth 3")
	line(2, "proxy_ssl_trusted_certificate %s", p.BackendCAFile)
	line(2, "proxy_ssl_name %s", t.backendName())
	line(2, "proxy_ssl_server_name on")
	line(2, "proxy_ssl_protocols %s", strings.Join(o.Protocols, " "))
	if o.Ciphers != "" {
		line(2, "proxy_ssl_ciphers %s", o.Ciphers)
	}
	if o.Ciphersuites != "" {
		line(2, "proxy_ssl_conf_command Ciphersuites %s", o.Ciphersuites)
	}
	if o.Groups != "" {
		line(2, "proxy_ssl_conf_command Groups %s", o.Groups)
	}
	if p.ClientCertFile != "" {
		line(2, "proxy_ssl_certificate %s", p.ClientCertFile)
		line(2, "proxy_ssl_certificate_key %s", p.ClientKeyFile)
	}
	if canary {
		// One attempt, quickly over: the decoy is up only during verify.
		line(2, "proxy_next_upstream off")
		line(2, "proxy_connect_timeout 2s")
		line(2, "proxy_send_timeout 5s")
		line(2, "proxy_read_timeout 5s")
	}
	b.WriteString("    }\n}\n")
}

// binary is the nginx executable: connection.binary, nginx on PATH, or
// Debian's /usr/sbin/nginx (not on a non-root PATH).
func (t *target) nginxBinary() string {
	if t.conn.Binary != "" {
		return t.conn.Binary
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	return "/usr/sbin/nginx"
}

// commandTimeout bounds nginx -t / -T / a reload command.
const commandTimeout = 30 * time.Second

// test is `nginx -t -q -c config_file`: nginx's own verdict on the
// configuration as it is on disk, with its message (file:line).
func (nginxFlavor) test(ctx context.Context, t *target) error {
	res, err := applykit.Run(ctx, []string{t.nginxBinary(), "-t", "-q", "-c", t.conn.ConfigFile}, applykit.RunOptions{Timeout: commandTimeout})
	if err != nil && res.ExitCode <= 0 { // not started, killed, timed out
		return &notRunError{fmt.Errorf("nginx -t -c %s: %w", t.conn.ConfigFile, err)}
	}
	if err != nil || res.ExitCode != 0 {
		msg := strings.TrimSpace(string(res.Output))
		if len(msg) > 2000 {
			msg = msg[len(msg)-2000:]
		}
		return fmt.Errorf("nginx -t -c %s: exit status %d: %s", t.conn.ConfigFile, res.ExitCode, msg)
	}
	return nil
}

// notRunError: the proxy's test did not run to a verdict (its binary
// missing, a timeout): it says nothing about the configuration. Any other
// error of a flavor's test is the proxy's own refusal.
type notRunError struct{ err error }

func (e *notRunError) Error() string { return e.err.Error() }
func (e *notRunError) Unwrap() error { return e.err }

// maxDump bounds what nginx -T may print (every file nginx read).
const maxDump = 16 << 20

// routes parses `nginx -T -c config_file` (stdout: every file nginx read).
func (nginxFlavor) routes(ctx context.Context, t *target) (routeFacts, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, t.nginxBinary(), "-T", "-q", "-c", t.conn.ConfigFile)
	var out limitedBuffer
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Run(); err != nil {
		return routeFacts{}, fmt.Errorf("nginx -T -c %s: %w: %s", t.conn.ConfigFile, err, strings.TrimSpace(truncate(stderr.String(), 2000)))
	}
	if out.over {
		return routeFacts{}, fmt.Errorf("nginx -T -c %s printed more than %d bytes", t.conn.ConfigFile, maxDump)
	}
	rf, err := nginxRoutes(out.String(), t.conn.Front, t.frontName(), t.spec.Canary.Listen)
	if err != nil {
		return routeFacts{}, fmt.Errorf("nginx -T -c %s: %w", t.conn.ConfigFile, err)
	}
	return rf, nil
}

// limitedBuffer keeps the first maxDump bytes.
type limitedBuffer struct {
	bytes.Buffer
	over bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxDump - l.Len(); len(p) > room {
		l.over = true
		l.Buffer.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return l.Buffer.Write(p)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// workerWait bounds the wait for nginx's new workers after a reload. A
// master that cannot bind a new listener retries for about 2.5 s before it
// gives up and keeps the old workers.
var workerWait = 8 * time.Second

// reload is reload_command when given; else SIGHUP to the master in
// pid_file (what `nginx -s reload` sends), returning once the master has
// started new worker processes — the sign that it took the new
// configuration — and the old ones accept no more (reloaded). A master that refuses it (a listener it cannot bind, a
// file it cannot read: errors nginx -t does not see) keeps its old
// workers, and that is an error here.
func (nginxFlavor) reload(ctx context.Context, t *target) error {
	if len(t.conn.ReloadCommand) > 0 {
		res, err := applykit.Run(ctx, t.conn.ReloadCommand, applykit.RunOptions{Timeout: commandTimeout})
		if err != nil || res.ExitCode != 0 {
			if err == nil {
				err = fmt.Errorf("exit status %d", res.ExitCode)
			}
			return fmt.Errorf("reload_command %s: %w: %s", t.conn.ReloadCommand[0], err, truncate(strings.TrimSpace(string(res.Output)), 2000))
		}
		return nil
	}
	if t.conn.PIDFile == "" {
		return errNoReloadPath(t)
	}
	master, err := readPID(t.conn.PIDFile)
	if err != nil {
		return err
	}
	before := childPIDs(master)
	if err := syscall.Kill(master, syscall.SIGHUP); err != nil {
		return fmt.Errorf("reload nginx (SIGHUP to pid %d from %s): %w", master, t.conn.PIDFile, err)
	}
	deadline := time.Now().Add(workerWait)
	for {
		if reloaded(master, before) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nginx (pid %d) started no new worker processes within %s of the reload: it refused the new configuration (see its error log: e.g. a listen address it cannot bind, which nginx -t does not check) and keeps serving the old one", master, workerWait)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for nginx's new workers: %w", context.Cause(ctx))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// readPID reads a pid file and checks that the process exists.
func readPID(file string) (int, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, fmt.Errorf("pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("pid file %s does not hold a process id", file)
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return 0, fmt.Errorf("pid file %s names pid %d: %w (is the proxy running?)", file, pid, err)
	}
	return pid, nil
}

// reloaded: the master has new worker processes and none of the old ones
// still accepts connections (each has exited or is "shutting down": the
// title nginx gives a worker as it closes its listening sockets). Until
// then a new connection may still reach an old worker and the old
// configuration.
func reloaded(master int, before []int) bool {
	now := childPIDs(master)
	fresh := false
	for _, p := range now {
		if !slices.Contains(before, p) {
			fresh = true
		}
	}
	if !fresh {
		return false
	}
	for _, p := range before {
		if slices.Contains(now, p) {
			title, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/cmdline")
			if bytes.Contains(title, []byte("worker process")) && !bytes.Contains(title, []byte("shutting down")) {
				return false
			}
		}
	}
	return true
}

// childPIDs lists the processes whose parent is pid (/proc/*/stat).
func childPIDs(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	want := strconv.Itoa(pid)
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
		// "pid (comm) state ppid …": comm may hold spaces and ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		if f := strings.Fields(string(stat[i+1:])); len(f) > 1 && f[1] == want {
			out = append(out, p)
		}
	}
	return out
}
