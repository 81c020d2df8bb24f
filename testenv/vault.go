package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// Vault is a HashiCorp Vault server as an operator runs one — not dev mode:
// `vault server -config=ConfigDir` with file storage under Base, TLS on
// 127.0.0.1 with a certificate from the testenv CA, initialised (one key
// share) and unsealed by testenv. It starts empty apart from the kv-v2
// mount at secret/ that dev mode used to make: no PKI, transit or audit
// device — the "before" state the vaultpki plugin hardens. Its listener
// stanza is a file of its own (ListenerFile), the one the vaultpki
// target's spec.listener lets harden own; before apply it sets no TLS
// version or suites, so Go's defaults (CBC suites included) are served.
//
// Like a real Vault it comes back SEALED after every restart: the
// restart hook (RestartCommand) does not unseal it, whoever restarts it
// must (harden apply does, with UnsealKeyFile).
//
// Vault has no setting for TLS key-exchange groups, and Go 1.26 offers
// SecP256r1MLKEM768 and SecP384r1MLKEM1024 beside the profile's groups:
// testenv starts it with GODEBUG=tlssecpmlkem=0 in its environment, the
// operator-level setting for it (Go still accepts secp521r1, which no
// GODEBUG turns off).
type Vault struct {
	Binary  string
	Version string
	// Address is the https:// API address; CAFile the testenv CA its
	// listener certificate (CertFile, KeyFile) chains to.
	Address           string
	CAFile            string
	CertFile, KeyFile string
	// TokenFile holds the root token, UnsealKeyFile the unseal key (both
	// 0600, never in a log or an error).
	TokenFile     string
	UnsealKeyFile string
	// ConfigDir holds vault.hcl (storage, addresses) and ListenerFile
	// (listener.hcl): Vault loads every .hcl file in the directory.
	ConfigDir    string
	ListenerFile string
	// ClusterAddress is the listener's cluster port (free, as the API's).
	ClusterAddress string
	Base           string
	LogFile        string
	// CA issued the listener certificate (tests issue client certificates
	// from it).
	CA *CA `json:"-"`

	proc process
	// restart: a loopback port that restarts Vault on request, the
	// operator's restart command of the generated policy.
	restartLn net.Listener
	restartMu sync.Mutex
}

// Name implements Service.
func (v *Vault) Name() string { return "vault" }

// VaultBinary finds the cached Vault build.
func VaultBinary() (string, error) {
	return cachedBuild(vaultTool)
}

// Start writes the configuration, starts the server, initialises it with
// one key share, unseals it and mounts kv-v2 at secret/.
func (v *Vault) Start(ctx context.Context, env *Env) error {
	var err error
	if v.Binary == "" {
		if v.Binary, err = VaultBinary(); err != nil {
			return err
		}
	}
	if v.Base, err = os.MkdirTemp("", "harden-vault-"); err != nil {
		return err
	}
	v.CA, v.CAFile = env.CA, env.CA.CertFile
	v.ConfigDir = filepath.Join(v.Base, "config")
	v.ListenerFile = filepath.Join(v.ConfigDir, "listener.hcl")
	v.LogFile = filepath.Join(v.Base, "vault.log")
	v.TokenFile = filepath.Join(env.Dir, "vault-token")
	v.UnsealKeyFile = filepath.Join(env.Dir, "vault-unseal-key")
	for _, d := range []string{v.AuditDir(), v.ConfigDir, filepath.Join(v.Base, "data")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			v.Stop()
			return err
		}
	}
	if v.CertFile, v.KeyFile, err = env.CA.Issue("vault", false, "127.0.0.1", "localhost"); err != nil {
		v.Stop()
		return err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if lastErr = v.startOnce(ctx); lastErr == nil {
			break
		}
		v.stopProcess()
		if !strings.Contains(lastErr.Error(), "address already in use") {
			break
		}
	}
	if lastErr == nil {
		lastErr = v.initialise(ctx)
	}
	if lastErr == nil {
		lastErr = v.serveRestarts()
	}
	if lastErr != nil {
		v.Stop()
		return lastErr
	}
	out, _ := exec.Command(v.Binary, "version").Output()
	v.Version = strings.TrimSpace(string(out))
	return nil
}

// freePorts finds two distinct free loopback ports (API and cluster).
func freePorts() (int, int, error) {
	a, err := FreePort()
	if err != nil {
		return 0, 0, err
	}
	for range 20 {
		b, err := FreePort()
		if err != nil {
			return 0, 0, err
		}
		if b != a {
			return a, b, nil
		}
	}
	return 0, 0, fmt.Errorf("no second free port")
}

// startOnce picks ports, writes vault.hcl and listener.hcl for them and
// starts the server until its listener answers (uninitialised: 501).
func (v *Vault) startOnce(ctx context.Context) error {
	port, cport, err := freePorts()
	if err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	v.Address = "https://" + addr
	v.ClusterAddress = net.JoinHostPort("127.0.0.1", strconv.Itoa(cport))
	server := fmt.Sprintf(`# testenv: Vault as a real server (file storage; sealed after every start).
storage "file" {
  path = %q
}
disable_mlock = true
api_addr      = %q
cluster_addr  = %q
ui            = false
`, filepath.Join(v.Base, "data"), v.Address, "https://"+v.ClusterAddress)
	// The listener as an operator writes one before hardening: address and
	// certificate, no TLS version or suite settings (Go's defaults).
	listener := fmt.Sprintf(`listener "tcp" {
  address         = %q
  cluster_address = %q
  tls_cert_file   = %q
  tls_key_file    = %q
}
`, addr, v.ClusterAddress, v.CertFile, v.KeyFile)
	if err := os.WriteFile(filepath.Join(v.ConfigDir, "vault.hcl"), []byte(server), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(v.ListenerFile, []byte(listener), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(v.LogFile, nil, 0o600); err != nil {
		return err
	}
	if err := v.launch(); err != nil {
		return err
	}
	return v.waitListening(ctx, 60*time.Second, "start-up")
}

// launch starts `vault server` from ConfigDir as it is now.
func (v *Vault) launch() error {
	logf, err := os.OpenFile(v.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(v.Binary, "server", "-config="+v.ConfigDir)
	// HOME points into the state dir so nothing lands in the caller's
	// home. GODEBUG=tlssecpmlkem=0: Vault has no TLS group setting, and
	// Go 1.26's default offers two hybrid groups outside the profile; this
	// is the operator-level switch for them (see the type's comment).
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + v.Base, "GODEBUG=tlssecpmlkem=0"}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := v.proc.start(cmd); err != nil {
		return fmt.Errorf("start vault: %w", err)
	}
	return nil
}

// waitListening waits until Vault's listener answers (any HTTP status:
// sealed is 503, uninitialised 501), or refuses a handshake without a
// client certificate (a hardened listener under mTLS is up too).
func (v *Vault) waitListening(ctx context.Context, limit time.Duration, what string) error {
	deadline := time.Now().Add(limit)
	for {
		if v.answers() {
			return nil
		}
		select {
		case <-v.proc.exited:
			return fmt.Errorf("vault exited during %s: %s", what, v.redact(tail(v.LogFile, 15)))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vault did not answer within %s of its %s: %s", limit, what, v.redact(tail(v.LogFile, 15)))
		}
	}
}

// answers: an HTTP answer from /v1/sys/health, or a TLS alert saying the
// listener wants a client certificate.
func (v *Vault) answers() bool {
	_, err := v.health()
	if err == nil {
		return true
	}
	var alert tls.AlertError
	return errors.As(err, &alert) || strings.Contains(err.Error(), "certificate required") || strings.Contains(err.Error(), "bad certificate")
}

// initialise: sys/init with one key share (root token and unseal key to
// their 0600 files), unseal, wait until active, mount kv-v2 at secret/.
func (v *Vault) initialise(ctx context.Context) error {
	cl, err := v.client("")
	if err != nil {
		return err
	}
	resp, err := cl.Sys().InitWithContext(ctx, &vault.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		return fmt.Errorf("vault operator init: %w", err)
	}
	if len(resp.KeysB64) != 1 || resp.RootToken == "" {
		return fmt.Errorf("vault operator init: %d key(s), root token given: %v", len(resp.KeysB64), resp.RootToken != "")
	}
	if err := os.WriteFile(v.TokenFile, []byte(resp.RootToken), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(v.UnsealKeyFile, []byte(resp.KeysB64[0]+"\n"), 0o600); err != nil {
		return err
	}
	if err := v.Unseal(ctx); err != nil {
		return err
	}
	if cl, err = v.Client(); err != nil {
		return err
	}
	// Dev mode's kv-v2 at secret/, which tests and client deliveries use.
	if err := cl.Sys().MountWithContext(ctx, "secret", &vault.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		return fmt.Errorf("mount kv-v2 at secret/: %w", err)
	}
	// A fresh kv-v2 mount upgrades itself before it serves.
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := cl.Logical().ReadWithContext(ctx, "secret/config"); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("kv-v2 at secret/ did not serve within 15 s: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Unseal unseals Vault with UnsealKeyFile (after a restart, which leaves
// it sealed) and waits until it is active.
func (v *Vault) Unseal(ctx context.Context) error {
	key, err := os.ReadFile(v.UnsealKeyFile)
	if err != nil {
		return err
	}
	cl, err := v.client("")
	if err != nil {
		return err
	}
	s, err := cl.Sys().UnsealWithContext(ctx, strings.TrimSpace(string(key)))
	if err != nil {
		return fmt.Errorf("unseal vault: %s", v.redact(err.Error()))
	}
	if s.Sealed {
		return fmt.Errorf("vault is still sealed after the unseal key (progress %d/%d)", s.Progress, s.T)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, err := v.health(); err == nil && code == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vault was unsealed but not active within 30 s: %s", v.redact(tail(v.LogFile, 15)))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Sealed asks sys/seal-status (unauthenticated).
func (v *Vault) Sealed(ctx context.Context) (bool, error) {
	cl, err := v.client("")
	if err != nil {
		return false, err
	}
	s, err := cl.Sys().SealStatusWithContext(ctx)
	if err != nil {
		return false, err
	}
	return s.Sealed, nil
}

// redact removes the root token and the unseal key from text quoted in
// errors.
func (v *Vault) redact(s string) string {
	for _, f := range []struct{ file, label string }{{v.TokenFile, "<root token>"}, {v.UnsealKeyFile, "<unseal key>"}} {
		if b, err := os.ReadFile(f.file); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			s = strings.ReplaceAll(s, strings.TrimSpace(string(b)), f.label)
		}
	}
	return s
}

// roots trusts the testenv CA.
func (v *Vault) roots() (*x509.CertPool, error) {
	ca, err := os.ReadFile(v.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return pool, nil
}

// health asks /v1/sys/health over TLS with the testenv CA.
func (v *Vault) health() (int, error) {
	pool, err := v.roots()
	if err != nil {
		return 0, err
	}
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer c.CloseIdleConnections()
	resp, err := c.Get(v.Address + "/v1/sys/health")
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// serveRestarts answers "restart" lines on a loopback port with "ok" once
// the restarted Vault's listener answers (sealed), or "error: ..." (the
// log's tail).
func (v *Vault) serveRestarts() error {
	ln, err := serveRestarts(v.Restart)
	if err != nil {
		return err
	}
	v.restartLn = ln
	return nil
}

// RestartCommand is an operator's restart command for this Vault (argv):
// it asks testenv to restart it and succeeds once its listener answers
// again — sealed, as after a real restart.
func (v *Vault) RestartCommand() []string { return restartCommand(v.restartLn) }

// Restart stops Vault and starts it again from ConfigDir as it is now (an
// apply may have changed the listener file). It does not unseal: Vault
// answers sealed, as a real one does after a restart.
func (v *Vault) Restart(ctx context.Context) error {
	v.restartMu.Lock()
	defer v.restartMu.Unlock()
	v.stopProcess()
	if err := v.launch(); err != nil {
		return err
	}
	return v.waitListening(ctx, 60*time.Second, "restart")
}

// PID is the running server's process id (tests tell a restart by it).
func (v *Vault) PID() int {
	v.restartMu.Lock()
	defer v.restartMu.Unlock()
	return v.proc.pid()
}

func (v *Vault) stopProcess() { v.proc.stop(10 * time.Second) }

// Stop shuts Vault down and removes its files (storage included).
func (v *Vault) Stop() error {
	if v.restartLn != nil {
		v.restartLn.Close()
	}
	v.restartMu.Lock()
	defer v.restartMu.Unlock()
	v.stopProcess()
	if v.Base != "" {
		return os.RemoveAll(v.Base)
	}
	return nil
}

// AuditDir is where the generated policy puts Vault's file audit log.
func (v *Vault) AuditDir() string { return filepath.Join(v.Base, "audit") }

// Info implements Service: the vault entry of env.json (no secrets, their
// files).
func (v *Vault) Info() any {
	return map[string]any{"address": v.Address, "ca_file": v.CAFile, "token_file": v.TokenFile, "unseal_key_file": v.UnsealKeyFile,
		"config_dir": v.ConfigDir, "listener_file": v.ListenerFile, "log_file": v.LogFile, "version": v.Version}
}

// Target implements Service: the vaultpki target of the generated policy.
func (v *Vault) Target() map[string]any {
	return map[string]any{"name": "vault", "plugin": "vaultpki",
		"connection": map[string]any{"address": v.Address, "ca_file": v.CAFile, "token_file": v.TokenFile, "unseal_key_file": v.UnsealKeyFile},
		"spec": map[string]any{"audit": map[string]any{"file": filepath.Join(v.AuditDir(), "vault-audit.log")},
			// harden's own admin identity and an unprivileged probe
			// identity (testenv probe-identity) for Kafka's deny-by-default.
			"pki": map[string]any{"client_names": []string{"harden-admin", ProbeIdentityCN}},
			// The object store's envelope KEK (harden objectstore put/get/rewrap).
			"transit": map[string]any{"keys": []string{"lake-kek"}},
			// Vault's own listener: harden renders its TLS settings into
			// this file, restarts Vault through testenv and unseals it.
			"listener": map[string]any{"config_file": v.ListenerFile, "restart_command": v.RestartCommand()}}}
}

// VaultForTest starts a Vault for one test and stops it at cleanup.
func VaultForTest(t testing.TB) *Vault {
	t.Helper()
	return startForTest(t, &Vault{})
}

// Client is a Vault API client with the root token, verifying the
// testenv CA.
func (v *Vault) Client() (*vault.Client, error) {
	token, err := os.ReadFile(v.TokenFile)
	if err != nil {
		return nil, err
	}
	return v.client(strings.TrimSpace(string(token)))
}

// client is an API client with token ("" none: init, unseal, seal status).
func (v *Vault) client(token string) (*vault.Client, error) {
	pool, err := v.roots()
	if err != nil {
		return nil, err
	}
	cfg := vault.DefaultConfig()
	cfg.Address = v.Address
	cfg.HttpClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 32}}
	cl, err := vault.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	cl.ClearToken()
	if token != "" {
		cl.SetToken(token)
	}
	return cl, nil
}

// TransitKey mounts transit (once) and creates an aes256-gcm96 key: a KEK
// for envelope-encryption tests. It returns the root client.
func (v *Vault) TransitKey(name string) (*vault.Client, error) {
	cl, err := v.Client()
	if err != nil {
		return nil, err
	}
	mounts, err := cl.Sys().ListMounts()
	if err != nil {
		return nil, err
	}
	if _, ok := mounts["transit/"]; !ok {
		if err := cl.Sys().Mount("transit", &vault.MountInput{Type: "transit"}); err != nil {
			return nil, err
		}
	}
	_, err = cl.Logical().Write("transit/keys/"+name, map[string]any{"type": "aes256-gcm96"})
	return cl, err
}

// ProbeIdentityCN is the common name of the unprivileged identity the demo
// gives Kafka verify: no ACLs, no super user, so the broker must refuse it.
const ProbeIdentityCN = "harden-probe"

// IssueProbeIdentity has the Vault of the state dir (hardened by harden's
// vaultpki target: pki_int mount, client role) issue a 90-day client
// certificate for cn and returns certificate, issuing chain and key as PEM.
func IssueProbeIdentity(ctx context.Context, stateDir, cn string) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(stateDir, "env.json"))
	if err != nil {
		return nil, err
	}
	var env struct {
		Services struct {
			Vault *struct {
				Address   string `json:"address"`
				CAFile    string `json:"ca_file"`
				TokenFile string `json:"token_file"`
			} `json:"vault"`
		} `json:"services"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("env.json: %w", err)
	}
	if env.Services.Vault == nil {
		return nil, fmt.Errorf("no vault service in %s", stateDir)
	}
	v := &Vault{Address: env.Services.Vault.Address, CAFile: env.Services.Vault.CAFile, TokenFile: env.Services.Vault.TokenFile}
	client, err := v.Client()
	if err != nil {
		return nil, err
	}
	s, err := client.Logical().WriteWithContext(ctx, "pki_int/issue/client", map[string]any{"common_name": cn, "ttl": "2160h"})
	if err != nil {
		return nil, fmt.Errorf("issue %s (run harden apply --target vault first): %w", cn, err)
	}
	if s == nil || s.Data == nil {
		return nil, fmt.Errorf("issue %s: empty answer", cn)
	}
	var out []byte
	for _, k := range []string{"certificate", "issuing_ca", "private_key"} {
		pem, _ := s.Data[k].(string)
		if pem == "" {
			return nil, fmt.Errorf("issue %s: no %s in the answer", cn, k)
		}
		out = append(out, strings.TrimSpace(pem)+"\n"...)
	}
	return out, nil
}
