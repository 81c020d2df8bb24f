package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/faultkit"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/testenv"
)

// The whole verify, against a real Vault in its "before" state (no CA,
// no audit device, no KEK, a listener with CBC suites), directly and
// through every fault of the standard matrix in front of its API and
// listener: a fault never turns a check that fails (or errors) directly
// into a pass, and never makes one vanish. A fault on harden's own login makes the target an error (no
// checks to compare), never a pass.
func TestVerifyNeverPassesThroughFaults(t *testing.T) {
	v := testenv.VaultForTest(t)
	t.Cleanup(probe.WithDefaultTimeout(time.Second))
	root := rootToken(t, v)
	plugin := hostclient.InProcess(vaultPKI{})
	defer plugin.Close()
	verify := func(ctx context.Context, addr string) ([]checks.Check, error) {
		rc := vaultRequest(t, v, root)
		conn, _ := json.Marshal(map[string]any{"address": "https://" + addr, "ca_file": v.CAFile})
		spec, _ := json.Marshal(map[string]any{"audit": map[string]any{"file": filepath.Join(v.AuditDir(), "vault-audit.log")}, "transit": map[string]any{"keys": []string{"lake-kek"}},
			"listener": map[string]any{"config_file": v.ListenerFile, "restart_command": []string{"/bin/false"}}})
		rc.Target = sdk.NewTarget("vault", conn, spec, map[string][]byte{"token": []byte(root)})
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		r, err := plugin.Verify(ctx, rc)
		if err == nil && r.Diagnostics.HasError() {
			err = r.Diagnostics.Err()
		}
		return r.Checks, err
	}
	direct := faultkit.NeverPasses(t, trimScheme(v.Address), verify, faultkit.Standard(true)...)
	for _, id := range []string{"vaultpki.pki.ca_present", "vaultpki.audit.enabled", "vaultpki.transit.keys", "tls.cipher_suites", "vaultpki.listener.config"} {
		cs := only(t, direct, id)
		if cs[0].Status != checks.Fail {
			t.Errorf("direct %s = %s: %s", id, cs[0].Status, cs[0].Evidence)
		}
	}
}

func trimScheme(addr string) string {
	for _, p := range []string{"https://", "http://"} {
		if len(addr) > len(p) && addr[:len(p)] == p {
			return addr[len(p):]
		}
	}
	return addr
}
