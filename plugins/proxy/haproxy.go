package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// haproxyFlavor manages HAProxy (2.6+) in master-worker mode. The file
// harden owns is an extra -f file on HAProxy's command line: it holds
// proxy sections of harden's own only — the front's port (TCP: TLS
// clients on, plaintext refused with a 400), the TLS front and its
// backend, the canary and its decoy backend — each with its TLS in full
// on its bind and server lines, so nothing depends on what the operator's
// global section sets, and nothing harden writes changes the operator's
// other proxies (no defaults section: a defaults section would become the
// defaults of every proxy loaded after it).
type haproxyFlavor struct{}

func (haproxyFlavor) kind() string { return "haproxy" }

// frontPEMFile is the front's chain and key in one file: HAProxy's crt
// takes both from one PEM (or the key from "<crt>.key", which the core's
// front.key is not).
func (t *target) frontPEMFile() string { return filepath.Join(t.spec.CertDir, "front.pem") }

// flavorFiles is a flavor's own files in cert_dir beside the core's (the
// core asks for them in files()).
type flavorFiles interface {
	certFiles(t *target, c sdk.Certificates) []file
}

func (haproxyFlavor) certFiles(t *target, c sdk.Certificates) []file {
	pem := slices.Clone(c.ChainPEM)
	if len(pem) > 0 && pem[len(pem)-1] != '\n' {
		pem = append(pem, '\n')
	}
	pem = append(pem, c.KeyPEM...)
	return []file{{t.frontPEMFile(), "certs/front.pem", pem, 0o600, true, "the front's certificate chain and private key in one file (HAProxy's crt)", true}}
}

// haproxyName is a proxy name HAProxy accepts (letters, digits, '-', '_',
// '.', ':') made from the target's name.
func haproxyName(target, part string) string {
	b := []byte("harden-" + target + "-" + part)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.:", c) >= 0) {
			b[i] = '_'
		}
	}
	return string(b)
}

// render is the extra -f file: the front and the canary. Values were
// checked in load to hold no character HAProxy would read as syntax.
func (haproxyFlavor) render(t *target, p renderInput) ([]byte, error) {
	o := opensslNames(p.Policy.Profile)
	if len(o.Protocols) == 0 {
		return nil, errors.New("the profile allows no TLS version")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# harden: target %s (profile %s). harden owns this file: harden apply rewrites it.\n", t.name, p.Policy.Profile.Name)
	b.WriteString("# Loaded by HAProxy as an extra -f file beside " + t.conn.ConfigFile + ".\n")
	if len(o.Skipped) > 0 {
		b.WriteString("# Key-exchange groups of the profile left out (not in OpenSSL 3.0): " + strings.Join(o.Skipped, ", ") + ".\n")
	}
	b.WriteString("# HAProxy 2.6 has no groups setting for servers: the upstream handshakes offer OpenSSL's default groups.\n")
	front, backend := haproxyName(t.name, "front"), haproxyName(t.name, "backend")
	canary, decoy := haproxyName(t.name, "canary"), haproxyName(t.name, "decoy")
	tlsFront, tlsHop, plain := haproxyName(t.name, "tls"), haproxyName(t.name, "tls-hop"), haproxyName(t.name, "plaintext")
	inner := t.innerFront()
	b.WriteString("\n# The front. HAProxy's ssl bind closes a plaintext request without a word (OpenSSL\n")
	b.WriteString("# sends no alert to one), so the front's own port tells them apart: a TLS ClientHello\n")
	b.WriteString("# goes on to the TLS front below (an abstract socket, with the client's address in\n")
	b.WriteString("# the PROXY protocol), anything else gets HAProxy's refusal, 400.\n")
	fmt.Fprintf(&b, "frontend %s\n    mode tcp\n    option tcplog\n    bind %s\n", front, t.conn.Front)
	b.WriteString("    tcp-request inspect-delay 5s\n    tcp-request content accept if { req.ssl_hello_type 1 }\n")
	fmt.Fprintf(&b, "    use_backend %s if { req.ssl_hello_type 1 }\n    default_backend %s\n\n", tlsHop, plain)
	fmt.Fprintf(&b, "backend %s\n    mode tcp\n    server tls %s send-proxy-v2\n\n", tlsHop, inner)
	fmt.Fprintf(&b, "backend %s\n    mode http\n    http-request return status 400 content-type text/plain string \"%s\"\n", plain, plaintextRefusal)
	b.WriteString("\n# The TLS front, forwarding to the backend over verified TLS.\n")
	haproxyFrontend(&b, t, p, o, tlsFront, inner+" accept-proxy", backend, false)
	b.WriteString("\n")
	haproxyBackend(&b, t, p, o, backend, "backend", t.spec.Backend.Address, false)
	b.WriteString("\n# harden's canary route: the same TLS and upstream TLS as the front, to a loopback\n")
	b.WriteString("# decoy that harden verify runs only while it proves the proxy refuses a backend\n")
	b.WriteString("# certificate from another CA. Nothing listens at the decoy otherwise (503).\n")
	haproxyFrontend(&b, t, p, o, canary, t.spec.Canary.Listen, decoy, true)
	b.WriteString("\n")
	haproxyBackend(&b, t, p, o, decoy, "decoy", t.spec.Canary.Decoy, true)
	return []byte(b.String()), nil
}

// plaintextRefusal is the front's answer to a plaintext request: the
// words nginx uses, which clients and the probe know as "TLS only here".
const plaintextRefusal = "The plain HTTP request was sent to HTTPS port"

// innerFront is the abstract socket between the front's port and its TLS
// termination: one name per route (the include and the front), so two
// HAProxy instances on one host do not share it.
func (t *target) innerFront() string {
	sum := sha256.Sum256([]byte(t.spec.IncludeFile + "\x00" + t.conn.Front))
	return "abns@harden-" + hex.EncodeToString(sum[:8])
}

// versionRange is ssl-min-ver/ssl-max-ver for the profile's versions
// (ascending; HAProxy disables what is outside the range).
func versionRange(o opensslTLS) string {
	return "ssl-min-ver " + o.Protocols[0] + " ssl-max-ver " + o.Protocols[len(o.Protocols)-1]
}

func haproxyFrontend(b *strings.Builder, t *target, p renderInput, o opensslTLS, name, listen, backend string, canary bool) {
	fmt.Fprintf(b, "frontend %s\n    mode http\n", name)
	bind := []string{"bind", listen, "ssl", "crt", t.frontPEMFile(), versionRange(o)}
	if o.Ciphers != "" {
		bind = append(bind, "ciphers", o.Ciphers)
	}
	if o.Ciphersuites != "" {
		bind = append(bind, "ciphersuites", o.Ciphersuites)
	}
	if o.Groups != "" {
		bind = append(bind, "curves", o.Groups)
	}
	if !o.PreferServer {
		bind = append(bind, "prefer-client-ciphers")
	}
	// Tickets would resume sessions across a key rotation nobody does.
	bind = append(bind, "no-tls-tickets")
	if p.MTLS {
		bind = append(bind, "ca-file", p.ClientCAFile, "verify", "required")
	}
	b.WriteString("    " + strings.Join(bind, " ") + "\n")
	if canary {
		// The canary answers harden verify only; it waits for nobody.
		b.WriteString("    timeout client 10s\n    timeout http-request 5s\n")
	}
	// set-header replaces a backend's own: one header each, the front's.
	if t.spec.hsts() {
		b.WriteString("    http-response set-header Strict-Transport-Security \"max-age=63072000\"\n")
	}
	// The probe's http.content_type_options: an API behind the front
	// (S3 among them) may not send it itself.
	b.WriteString("    http-response set-header X-Content-Type-Options nosniff\n")
	fmt.Fprintf(b, "    default_backend %s\n", backend)
}

func haproxyBackend(b *strings.Builder, t *target, p renderInput, o opensslTLS, name, server, addr string, canary bool) {
	fmt.Fprintf(b, "backend %s\n    mode http\n", name)
	if canary {
		// One attempt, quickly over: the decoy is up only during verify.
		b.WriteString("    retries 0\n    timeout connect 2s\n    timeout server 5s\n")
	}
	// verify required checks the chain against ca-file and the names
	// against the SNI sent (sni); verifyhost is the same name for checks
	// made without SNI (health checks).
	line := []string{"server", server, addr, "ssl", "verify", "required", "ca-file", p.BackendCAFile,
		"sni", "str(" + t.backendName() + ")", "verifyhost", t.backendName(), versionRange(o)}
	if o.Ciphers != "" {
		line = append(line, "ciphers", o.Ciphers)
	}
	if o.Ciphersuites != "" {
		line = append(line, "ciphersuites", o.Ciphersuites)
	}
	b.WriteString("    " + strings.Join(line, " ") + "\n")
}

// haproxyBinary is connection.binary, haproxy on PATH, or Debian's
// /usr/sbin/haproxy (not on a non-root PATH).
func (t *target) haproxyBinary() string {
	if t.conn.Binary != "" {
		return t.conn.Binary
	}
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p
	}
	return "/usr/sbin/haproxy"
}

// haproxyLoad is what the running HAProxy loads: its -f files in order
// and whether it runs with -dV (server verification off by default).
type haproxyLoad struct {
	files []string
	// fromMaster: the list is the running master's command line (what a
	// reload re-executes), not config_file and include_file.
	fromMaster bool
	dashDV     bool
}

// load finds the files. A reload re-executes the master with its own
// command line, so when the master's is readable (pid_file, /proc) that is
// the list — and the file harden owns must be on it, or harden would write
// a file HAProxy never loads. Otherwise config_file then include_file
// (when it exists: before the first apply it may not).
func (t *target) haproxyLoad() (haproxyLoad, error) {
	if t.conn.PIDFile != "" {
		if pid, err := readPID(t.conn.PIDFile); err == nil {
			if argv, cwd, err := procCmdline(pid); err == nil {
				l := haproxyArgs(argv, cwd)
				l.fromMaster = true
				if !slices.ContainsFunc(l.files, func(f string) bool { return f == t.spec.IncludeFile || f == filepath.Dir(t.spec.IncludeFile) }) {
					return l, fmt.Errorf("the running HAProxy (pid %d from %s) does not load %s: its command line has -f %s; add -f %s and restart it once (a reload re-executes the same command line)",
						pid, t.conn.PIDFile, t.spec.IncludeFile, strings.Join(l.files, " -f "), t.spec.IncludeFile)
				}
				return l, nil
			}
		}
	}
	l := haproxyLoad{files: []string{t.conn.ConfigFile}}
	if _, err := os.Stat(t.spec.IncludeFile); err == nil {
		l.files = append(l.files, t.spec.IncludeFile)
	}
	return l, nil
}

// procCmdline is a process's argv and working directory.
func procCmdline(pid int) ([]string, string, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return nil, "", err
	}
	cwd, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
	if err != nil {
		return nil, "", err
	}
	return strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00"), cwd, nil
}

// haproxyArgs reads HAProxy's command line: -f <file|dir> (repeatable),
// the files after "--", -C <dir> (the directory relative paths start
// from) and -dV.
func haproxyArgs(argv []string, cwd string) haproxyLoad {
	var l haproxyLoad
	var raw []string
	dir := cwd
	for i := 1; i < len(argv); i++ {
		switch a := argv[i]; {
		case a == "--":
			raw = append(raw, argv[i+1:]...)
			i = len(argv)
		case a == "-f" && i+1 < len(argv):
			i++
			raw = append(raw, argv[i])
		case a == "-C" && i+1 < len(argv):
			i++
			dir = argv[i]
			if !filepath.IsAbs(dir) {
				dir = filepath.Join(cwd, dir)
			}
		case a == "-dV":
			l.dashDV = true
		}
	}
	for _, f := range raw {
		if !filepath.IsAbs(f) {
			f = filepath.Join(dir, f)
		}
		l.files = append(l.files, filepath.Clean(f))
	}
	return l
}

// expand lists the files HAProxy reads for the -f arguments: a directory
// is its *.cfg files in lexical order.
func (l haproxyLoad) expand() ([]string, error) {
	var out []string
	for _, f := range l.files {
		fi, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			out = append(out, f)
			continue
		}
		entries, err := os.ReadDir(f)
		if err != nil {
			return nil, err
		}
		for _, e := range entries { // ReadDir sorts by name
			if !e.IsDir() && strings.HasSuffix(e.Name(), ".cfg") {
				out = append(out, filepath.Join(f, e.Name()))
			}
		}
	}
	return out, nil
}

// test is `haproxy -c -f … -f …` with the files the running HAProxy
// loads: HAProxy's own verdict on the configuration as it is on disk,
// with its alerts (file:line).
func (haproxyFlavor) test(ctx context.Context, t *target) error {
	l, err := t.haproxyLoad()
	if err != nil {
		return err
	}
	argv := []string{t.haproxyBinary(), "-c"}
	if l.dashDV {
		argv = append(argv, "-dV")
	}
	for _, f := range l.files {
		argv = append(argv, "-f", f)
	}
	res, err := applykit.Run(ctx, argv, applykit.RunOptions{Timeout: commandTimeout})
	if err != nil || res.ExitCode != 0 {
		if err == nil {
			err = fmt.Errorf("exit status %d", res.ExitCode)
		}
		return fmt.Errorf("%s: %w: %s", strings.Join(argv[1:], " "), err, haproxyAlerts(res.Output))
	}
	return nil
}

// haproxyAlerts keeps HAProxy's [ALERT] lines (its NOTICE lines say only
// the version and path), the last 2000 bytes.
func haproxyAlerts(out []byte) string {
	var keep []string
	for line := range strings.Lines(string(out)) {
		if strings.Contains(line, "[ALERT]") {
			keep = append(keep, strings.TrimSpace(line))
		}
	}
	msg := strings.Join(keep, "\n")
	if msg == "" {
		msg = strings.TrimSpace(string(out))
	}
	if len(msg) > 2000 {
		msg = "…" + msg[len(msg)-2000:]
	}
	return msg
}

// routes parses the files HAProxy loads (each at most sdk.MaxFileSize).
func (haproxyFlavor) routes(_ context.Context, t *target) (routeFacts, error) {
	l, err := t.haproxyLoad()
	if err != nil {
		return routeFacts{}, err
	}
	names, err := l.expand()
	if err != nil {
		return routeFacts{}, fmt.Errorf("HAProxy's configuration: %w", err)
	}
	var files []hapFile
	for _, n := range names {
		data, err := sdk.ReadFile(n)
		if err != nil {
			return routeFacts{}, fmt.Errorf("HAProxy's configuration: %w", err)
		}
		files = append(files, hapFile{n, string(data)})
	}
	cfg, err := parseHAProxy(files)
	if err != nil {
		return routeFacts{}, err
	}
	return haproxyRoutes(cfg, t.conn.Front, t.spec.Canary.Listen, l.dashDV)
}

// reloadWait bounds the wait for HAProxy's new worker after a reload.
var reloadWait = 15 * time.Second

// reload is reload_command when given; else `reload` on the master CLI,
// returning once the master has re-executed itself with the new files and
// started a new worker generation. HAProxy 2.6 answers a reload with
// nothing: `show proc` before and after says what happened — the master's
// reload count went up, and either its failed count did too (it refused
// the files and kept the old workers: an error here) or a worker of a new
// generation runs.
func (haproxyFlavor) reload(ctx context.Context, t *target) error {
	if len(t.conn.ReloadCommand) > 0 {
		return runReloadCommand(ctx, t)
	}
	if t.conn.MasterSocket == "" {
		return errNoReloadPath(t)
	}
	sock := t.conn.MasterSocket
	before, err := showProc(ctx, sock)
	if err != nil {
		return err
	}
	if _, err := masterCommand(ctx, sock, "reload"); err != nil {
		return fmt.Errorf("reload HAProxy (master CLI %s): %w", sock, err)
	}
	deadline := time.Now().Add(reloadWait)
	var last error
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for HAProxy's new worker: %w", context.Cause(ctx))
		case <-time.After(30 * time.Millisecond):
		}
		now, err := showProc(ctx, sock)
		switch {
		case err != nil:
			last = err // the master is re-executing itself
		case now.master != before.master:
			return fmt.Errorf("HAProxy's master changed from pid %d to %d during the reload: it was restarted, not reloaded", before.master, now.master)
		case now.reloads == before.reloads:
			last = fmt.Errorf("the master's reload count is still %d", now.reloads)
		case now.failed > before.failed:
			return fmt.Errorf("HAProxy (master pid %d) refused the new configuration at reload (failed reloads %d -> %d; see its log: e.g. a bind it cannot make, which haproxy -c does not check) and keeps serving the old one", now.master, before.failed, now.failed)
		default:
			for _, w := range now.workers {
				if w.reloads == 0 && !slices.ContainsFunc(before.workers, func(o hapWorker) bool { return o.pid == w.pid }) {
					return nil
				}
			}
			last = errors.New("no worker of the new generation yet")
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("HAProxy (master CLI %s) did not start a new worker within %s of the reload: %v", sock, reloadWait, last)
		}
	}
}

// runReloadCommand runs connection.reload_command: its exit status is the
// verdict (the served gate then checks the front).
func runReloadCommand(ctx context.Context, t *target) error {
	res, err := applykit.Run(ctx, t.conn.ReloadCommand, applykit.RunOptions{Timeout: commandTimeout})
	if err != nil || res.ExitCode != 0 {
		if err == nil {
			err = fmt.Errorf("exit status %d", res.ExitCode)
		}
		return fmt.Errorf("reload_command %s: %w: %s", t.conn.ReloadCommand[0], err, truncate(strings.TrimSpace(string(res.Output)), 2000))
	}
	return nil
}
