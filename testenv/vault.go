package testenv

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// Vault is a HashiCorp Vault dev server (in-memory storage, unsealed) on
// 127.0.0.1 with TLS (-dev-tls), built from the Go module proxy by
// scripts/vault-build.sh. It starts empty: no PKI, transit or audit device —
// the "before" state the vaultpki plugin hardens.
type Vault struct {
	Binary  string
	Version string
	// Address is the https:// API address; CAFile the dev CA it is served
	// with; TokenFile holds the root token (0600).
	Address   string
	CAFile    string
	TokenFile string
	Base      string
	LogFile   string

	proc process
}

// Name implements Service.
func (v *Vault) Name() string { return "vault" }

// VaultBinary finds the cached Vault build.
func VaultBinary() (string, error) {
	return cachedBuild(vaultTool)
}

// Start starts the dev server and waits until /v1/sys/health answers 200.
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
	if err := os.MkdirAll(v.AuditDir(), 0o700); err != nil {
		return err
	}
	token := make([]byte, 20)
	rand.Read(token)
	// Custom root token ids may not start with "hvs.": a plain hex id.
	v.TokenFile = filepath.Join(env.Dir, "vault-token")
	if err := os.WriteFile(v.TokenFile, []byte(hex.EncodeToString(token)), 0o600); err != nil {
		return err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if lastErr = v.startOnce(ctx, hex.EncodeToString(token)); lastErr == nil {
			return nil
		}
		v.stopProcess()
		if !strings.Contains(lastErr.Error(), "address already in use") {
			break
		}
	}
	v.Stop()
	return lastErr
}

// freePortPair finds a port whose successor is free too: Vault's dev
// cluster listener takes the API port + 1.
func freePortPair() (int, error) {
	for range 20 {
		p, err := FreePort()
		if err != nil {
			return 0, err
		}
		if ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+1)); err == nil {
			ln.Close()
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free port pair")
}

func (v *Vault) startOnce(ctx context.Context, token string) error {
	port, err := freePortPair()
	if err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	v.Address = "https://" + addr
	certDir := filepath.Join(v.Base, "tls")
	os.RemoveAll(certDir)
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return err
	}
	v.CAFile, v.LogFile = filepath.Join(certDir, "vault-ca.pem"), filepath.Join(v.Base, "vault.log")
	logf, err := os.OpenFile(v.LogFile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(v.Binary, "server", "-dev", "-dev-tls", "-dev-tls-cert-dir="+certDir, "-dev-listen-address="+addr, "-dev-no-store-token")
	// The root token travels in the environment (not in ps output); HOME
	// points into the state dir so nothing lands in the caller's home.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + v.Base, "VAULT_DEV_ROOT_TOKEN_ID=" + token}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := v.proc.start(cmd); err != nil {
		return fmt.Errorf("start vault: %w", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if code, err := v.health(); err == nil && code == http.StatusOK {
			out, _ := exec.Command(v.Binary, "version").Output()
			v.Version = strings.TrimSpace(string(out))
			return nil
		}
		select {
		case <-v.proc.exited:
			return fmt.Errorf("vault exited during start-up: %s", redact(tail(v.LogFile, 15), token))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vault did not answer within 60 s: %s", redact(tail(v.LogFile, 15), token))
		}
	}
}

// redact removes the root token from text quoted in errors (Vault's dev
// mode prints it in its log).
func redact(s, token string) string { return strings.ReplaceAll(s, token, "<root token>") }

// health asks /v1/sys/health over TLS with the dev CA.
func (v *Vault) health() (int, error) {
	ca, err := os.ReadFile(v.CAFile)
	if err != nil {
		return 0, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(v.Address + "/v1/sys/health")
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (v *Vault) stopProcess() { v.proc.stop(10 * time.Second) }

// Stop shuts Vault down (its storage is in memory) and removes its files.
func (v *Vault) Stop() error {
	v.stopProcess()
	if v.Base != "" {
		return os.RemoveAll(v.Base)
	}
	return nil
}

// AuditDir is where the generated policy puts Vault's file audit log.
func (v *Vault) AuditDir() string { return filepath.Join(v.Base, "audit") }

// Info implements Service: the vault entry of env.json (no token, its file).
func (v *Vault) Info() any {
	return map[string]any{"address": v.Address, "ca_file": v.CAFile, "token_file": v.TokenFile, "log_file": v.LogFile, "version": v.Version}
}

// Target implements Service: the vaultpki target of the generated policy.
func (v *Vault) Target() map[string]any {
	return map[string]any{"name": "vault", "plugin": "vaultpki",
		"connection": map[string]any{"address": v.Address, "ca_file": v.CAFile, "token_file": v.TokenFile},
		"spec": map[string]any{"audit": map[string]any{"file": filepath.Join(v.AuditDir(), "vault-audit.log")},
			// harden's own admin identity and an unprivileged probe
			// identity (testenv probe-identity) for Kafka's deny-by-default.
			"pki": map[string]any{"client_names": []string{"harden-admin", ProbeIdentityCN}},
			// The object store's envelope KEK (harden objectstore put/get/rewrap).
			"transit": map[string]any{"keys": []string{"lake-kek"}}}}
}

// VaultForTest starts a dev Vault for one test and stops it at cleanup.
func VaultForTest(t testing.TB) *Vault {
	t.Helper()
	return startForTest(t, &Vault{})
}

// Client is a Vault API client with the root token, verifying the dev CA.
func (v *Vault) Client() (*vault.Client, error) {
	token, err := os.ReadFile(v.TokenFile)
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(v.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cfg := vault.DefaultConfig()
	cfg.Address = v.Address
	cfg.HttpClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 32}}
	cl, err := vault.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	cl.SetToken(strings.TrimSpace(string(token)))
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
