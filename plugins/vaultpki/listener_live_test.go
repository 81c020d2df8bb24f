package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/shared/sdk/sdktest"
	"github.com/harden-dev/harden/testenv"
)

// listenerRequest is vaultRequest with spec.listener (testenv's listener
// file and restart hook) and the given secrets beside the root token.
func listenerRequest(t testing.TB, v *testenv.Vault, secrets map[string][]byte) sdk.RequestContext {
	t.Helper()
	return listenerRequestWith(t, v, v.RestartCommand(), secrets)
}

func listenerRequestWith(t testing.TB, v *testenv.Vault, restart []string, secrets map[string][]byte) sdk.RequestContext {
	t.Helper()
	rc := vaultRequest(t, v, rootToken(t, v))
	conn, _ := json.Marshal(map[string]any{"address": v.Address, "ca_file": v.CAFile, "unseal_key_file": v.UnsealKeyFile})
	spec, _ := json.Marshal(map[string]any{"audit": map[string]any{"file": filepath.Join(v.AuditDir(), "vault-audit.log")}, "transit": map[string]any{"keys": []string{"lake-kek"}},
		"listener": map[string]any{"config_file": v.ListenerFile, "restart_command": restart, "restart_timeout": "60s"}})
	all := map[string][]byte{"token": []byte(rootToken(t, v))}
	for k, s := range secrets {
		all[k] = s
	}
	rc.Target = sdk.NewTarget("vault", conn, spec, all)
	return rc
}

func unsealKeyOf(t testing.TB, v *testenv.Vault) map[string][]byte {
	t.Helper()
	key, err := os.ReadFile(v.UnsealKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{"unseal_key": bytes.TrimSpace(key)}
}

// checkStatus is the status of the one check id has (its subject), or
// fails the test.
func checkStatus(t testing.TB, r sdk.VerifyResponse, id string) checks.Check {
	t.Helper()
	cs := statusOf(r, id)
	if len(cs) != 1 {
		t.Fatalf("%d %s checks: %+v", len(cs), id, cs)
	}
	return cs[0]
}

// The listener flow on a real Vault server: before, the probe fails its
// CBC suites (and the listener file lacks the profile's settings); the
// plan lists the listener as one change; apply writes the file, restarts
// Vault through the operator's command, unseals it and verifies it live;
// every check passes after; nothing is lost across the restart (a
// certificate is issued, a ciphertext made before decrypts); a second
// apply changes nothing and does not restart Vault.
func TestListenerHardening(t *testing.T) {
	v := testenv.VaultForTest(t)
	ctx := context.Background()
	client := hostclient.InProcess(vaultPKI{})
	defer client.Close()
	// The PKI, transit and audit state first, without the listener.
	if ar, err := client.Apply(ctx, vaultRequest(t, v, rootToken(t, v)), nil, false); err != nil || ar.Diagnostics.HasError() {
		t.Fatalf("apply without the listener: %v %v", err, ar.Diagnostics.Err())
	}
	root, err := v.Client()
	if err != nil {
		t.Fatal(err)
	}
	enc, err := root.Logical().WriteWithContext(ctx, "transit/encrypt/lake-kek", map[string]any{"plaintext": "c2VjcmV0IGRhdGEga2V5"})
	if err != nil {
		t.Fatal(err)
	}
	ciphertext := enc.Data["ciphertext"].(string)
	rolesBefore, _ := root.Logical().ListWithContext(ctx, "pki_int/roles")
	caBefore, _ := caPEM(ctx, root, "pki_int")

	rc := listenerRequest(t, v, unsealKeyOf(t, v))
	before, err := client.Verify(ctx, rc)
	if err != nil || before.Diagnostics.HasError() {
		t.Fatalf("verify before: %v %v", err, before.Diagnostics.Err())
	}
	if c := checkStatus(t, before, "tls.cipher_suites"); c.Status != checks.Fail || !strings.Contains(c.Evidence, "CBC") {
		t.Fatalf("before: tls.cipher_suites should fail on the CBC suites: %+v", c)
	}
	if c := checkStatus(t, before, "vaultpki.listener.config"); c.Status != checks.Fail || !c.ConfigurationOnly {
		t.Fatalf("before: vaultpki.listener.config should fail: %+v", c)
	}
	oldFile, _ := os.ReadFile(v.ListenerFile)

	plan, err := client.Plan(ctx, rc)
	if err != nil || plan.Diagnostics.HasError() || len(plan.Changes) != 1 || !strings.HasPrefix(plan.Changes[0].Resource, "vault listener ") {
		t.Fatalf("plan: %v %v %+v", err, plan.Diagnostics.Err(), plan.Changes)
	}
	pid := v.PID()
	t0 := time.Now()
	ar, err := client.Apply(ctx, rc, plan.PlanToken, true)
	if err != nil || ar.Diagnostics.HasError() || len(ar.Applied) != 1 {
		t.Fatalf("apply: %v %v %+v", err, ar.Diagnostics.Err(), ar.Applied)
	}
	t.Logf("listener apply (write, restart, unseal, live verify) took %s", time.Since(t0).Round(time.Millisecond))
	if v.PID() == pid {
		t.Fatal("apply did not restart Vault")
	}
	if sealed, err := v.Sealed(ctx); err != nil || sealed {
		t.Fatalf("Vault after apply: sealed=%v %v", sealed, err)
	}
	newFile, _ := os.ReadFile(v.ListenerFile)
	for _, s := range []string{v.CertFile, v.KeyFile, v.ClusterAddress, "tls_cipher_suites", `"tls12"`} {
		if !bytes.Contains(newFile, []byte(s)) {
			t.Errorf("the hardened listener file lacks %s:\n%s", s, newFile)
		}
	}
	if bytes.Equal(newFile, oldFile) {
		t.Fatal("the listener file did not change")
	}

	after, err := client.Verify(ctx, rc)
	if err != nil || after.Diagnostics.HasError() {
		t.Fatalf("verify after: %v %v", err, after.Diagnostics.Err())
	}
	for _, id := range []string{"tls.enabled", "tls.protocol.versions", "tls.cipher_suites", "tls.key_exchange.groups", "tls.certificate.trusted", "vaultpki.listener.config"} {
		if c := checkStatus(t, after, id); c.Status != checks.Pass {
			t.Errorf("after: %s is %s: %s", id, c.Status, c.Evidence)
		}
	}
	for _, c := range after.Checks {
		if c.Status == checks.Fail || c.Status == checks.Error {
			t.Errorf("after: %s %s %s: %s", c.ID, c.Subject, c.Status, c.Evidence)
		}
	}

	// Nothing lost: file storage survived the restart.
	if ca, _ := caPEM(ctx, root, "pki_int"); ca != caBefore || ca == "" {
		t.Fatal("the intermediate CA changed across the restart")
	}
	if roles, _ := root.Logical().ListWithContext(ctx, "pki_int/roles"); fmt.Sprint(roles.Data["keys"]) != fmt.Sprint(rolesBefore.Data["keys"]) {
		t.Fatalf("roles before %v, after %v", rolesBefore.Data["keys"], roles.Data["keys"])
	}
	if s, err := root.Logical().WriteWithContext(ctx, "pki_int/issue/server", map[string]any{"common_name": "localhost", "ttl": "1h"}); err != nil || s.Data["certificate"] == "" {
		t.Fatalf("issue after the restart: %v", err)
	}
	dec, err := root.Logical().WriteWithContext(ctx, "transit/decrypt/lake-kek", map[string]any{"ciphertext": ciphertext})
	if err != nil || dec.Data["plaintext"] != "c2VjcmV0IGRhdGEga2V5" {
		t.Fatalf("decrypt a ciphertext made before the restart: %v %v", err, dec)
	}

	// Idempotent: nothing planned, nothing applied, no restart.
	pid = v.PID()
	plan, err = client.Plan(ctx, rc)
	if err != nil || plan.Diagnostics.HasError() || len(plan.Changes) != 0 {
		t.Fatalf("plan after apply: %v %v %+v", err, plan.Diagnostics.Err(), plan.Changes)
	}
	ar, err = client.Apply(ctx, rc, nil, false)
	if err != nil || ar.Diagnostics.HasError() || len(ar.Applied) != 0 || v.PID() != pid {
		t.Fatalf("second apply: %v %v %+v (restarted: %v)", err, ar.Diagnostics.Err(), ar.Applied, v.PID() != pid)
	}
	if again, _ := os.ReadFile(v.ListenerFile); !bytes.Equal(again, newFile) {
		t.Fatal("the second apply rewrote the listener file")
	}

	// The file right but Vault not restarted (a killed run, a hand edit):
	// plan says a restart is due, and apply makes it.
	if err := os.WriteFile(v.ListenerFile, oldFile, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := v.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := v.Unseal(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(v.ListenerFile, newFile, 0o600); err != nil {
		t.Fatal(err)
	}
	plan, err = client.Plan(ctx, rc)
	if err != nil || plan.Diagnostics.HasError() || len(plan.Changes) != 1 || !strings.Contains(plan.Changes[0].Before, "tls.cipher_suites") {
		t.Fatalf("plan with a restart due: %v %v %+v", err, plan.Diagnostics.Err(), plan.Changes)
	}
	pid = v.PID()
	if ar, err := client.Apply(ctx, rc, plan.PlanToken, true); err != nil || ar.Diagnostics.HasError() || v.PID() == pid {
		t.Fatalf("apply the due restart: %v %v", err, ar.Diagnostics.Err())
	}
	if plan, err := client.Plan(ctx, rc); err != nil || len(plan.Changes) != 0 {
		t.Fatalf("plan after the due restart: %v %+v", err, plan.Changes)
	}
}

// Sealed after the restart: without an unseal key apply refuses before
// anything changes (one error, Vault running and unsealed, the file as it
// was); with a wrong key it restarts, cannot unseal, puts the old file
// back, restarts again and says precisely that Vault is left sealed.
func TestListenerSealedAfterRestart(t *testing.T) {
	v := testenv.VaultForTest(t)
	ctx := context.Background()
	client := hostclient.InProcess(vaultPKI{})
	defer client.Close()
	if ar, err := client.Apply(ctx, vaultRequest(t, v, rootToken(t, v)), nil, false); err != nil || ar.Diagnostics.HasError() {
		t.Fatalf("apply without the listener: %v %v", err, ar.Diagnostics.Err())
	}
	oldFile, _ := os.ReadFile(v.ListenerFile)
	pid := v.PID()

	ar, err := client.Apply(ctx, listenerRequest(t, v, nil), nil, false)
	if err != nil || errorCount(ar.Diagnostics) != 1 || len(ar.Applied) != 0 {
		t.Fatalf("apply without an unseal key: %v %+v %+v", err, ar.Diagnostics, ar.Applied)
	}
	msg := fmt.Sprint(ar.Diagnostics.Err())
	t.Logf("no unseal key: %s", msg)
	if !strings.Contains(msg, "unseal_key_file is not set") || !strings.Contains(msg, "nothing was changed") {
		t.Fatalf("the error does not say why: %s", msg)
	}
	if now, _ := os.ReadFile(v.ListenerFile); !bytes.Equal(now, oldFile) || v.PID() != pid {
		t.Fatal("the refused apply changed the file or restarted Vault")
	}
	if sealed, err := v.Sealed(ctx); err != nil || sealed {
		t.Fatalf("Vault after the refused apply: sealed=%v %v", sealed, err)
	}

	// A well-formed key that is not Vault's.
	wrong := map[string][]byte{"unseal_key": []byte("ZmFrZWZha2VmYWtlZmFrZWZha2VmYWtlZmFrZWZha2U=")}
	ar, err = client.Apply(ctx, listenerRequest(t, v, wrong), nil, false)
	if err != nil || !ar.Diagnostics.HasError() || len(ar.Applied) != 0 {
		t.Fatalf("apply with a wrong unseal key: %v %+v", err, ar.Diagnostics)
	}
	msg = fmt.Sprint(ar.Diagnostics.Err())
	t.Logf("wrong unseal key: %s", msg)
	if !strings.Contains(msg, "SEALED") || !strings.Contains(msg, "old "+v.ListenerFile+" was put back") || strings.Contains(msg, "ZmFrZWZha2") {
		t.Fatalf("the error does not say where Vault is (or quotes the key): %s", msg)
	}
	if now, _ := os.ReadFile(v.ListenerFile); !bytes.Equal(now, oldFile) {
		t.Fatal("the old listener file was not put back")
	}
	if sealed, err := v.Sealed(ctx); err != nil || !sealed {
		t.Fatalf("Vault should be running and sealed: sealed=%v %v", sealed, err)
	}
	// The operator unseals; the next apply with the right key goes through.
	if err := v.Unseal(ctx); err != nil {
		t.Fatal(err)
	}
	if ar, err := client.Apply(ctx, listenerRequest(t, v, unsealKeyOf(t, v)), nil, false); err != nil || ar.Diagnostics.HasError() || len(ar.Applied) != 1 {
		t.Fatalf("apply with the key: %v %v", err, ar.Diagnostics.Err())
	}
}

// A listener file Vault refuses (its certificate path does not exist):
// the restart fails, the old file is put back, Vault restarted and
// unsealed with it, and harden logs in again.
func TestListenerBrokenFileRollsBack(t *testing.T) {
	v := testenv.VaultForTest(t)
	ctx := context.Background()
	client := hostclient.InProcess(vaultPKI{})
	defer client.Close()
	oldFile, _ := os.ReadFile(v.ListenerFile)
	listenerRenderHook = func(b []byte) []byte { return bytes.ReplaceAll(b, []byte(v.CertFile), []byte(v.CertFile+".missing")) }
	defer func() { listenerRenderHook = nil }()
	rc := listenerRequest(t, v, unsealKeyOf(t, v))
	pid := v.PID()
	ar, err := client.Apply(ctx, rc, nil, false)
	if err != nil || !ar.Diagnostics.HasError() || len(ar.Applied) != 0 {
		t.Fatalf("apply of a broken listener file: %v %+v", err, ar.Diagnostics)
	}
	msg := fmt.Sprint(ar.Diagnostics.Err())
	t.Logf("broken listener file: %s", msg)
	if !strings.Contains(msg, "restart command") || !strings.Contains(msg, "put back and Vault restarted and unsealed with it") || !strings.Contains(msg, "changes were undone") {
		t.Fatalf("the error does not say what happened: %s", msg)
	}
	if now, _ := os.ReadFile(v.ListenerFile); !bytes.Equal(now, oldFile) {
		t.Fatalf("the old listener file was not put back:\n%s", now)
	}
	if v.PID() == pid {
		t.Fatal("Vault was not restarted")
	}
	if sealed, err := v.Sealed(ctx); err != nil || sealed {
		t.Fatalf("Vault after the rollback: sealed=%v %v", sealed, err)
	}
	if _, err := client0(ctx, rc); err != nil {
		t.Fatalf("harden cannot log in after the rollback: %v", err)
	}
	// Every step of the run was undone: no mount is left.
	root, _ := v.Client()
	if mounts, _ := root.Sys().ListMountsWithContext(ctx); mounts["pki/"] != nil || mounts["transit/"] != nil {
		t.Fatal("the API steps before the listener were not undone")
	}
}

// In the mTLS scope the listener requires client certificates from
// client_ca_file. harden is never locked out: without its own client
// certificate, or with one the client CA does not accept, apply refuses
// before any change; with one, the restarted Vault requires a client
// certificate (the probe's tls.client_auth.required passes) and harden
// logs in with its own.
func TestListenerMTLS(t *testing.T) {
	v := testenv.VaultForTest(t)
	ctx := context.Background()
	client := hostclient.InProcess(vaultPKI{})
	defer client.Close()
	oldFile, _ := os.ReadFile(v.ListenerFile)
	mtlsRequest := func(certs sdk.Certificates) sdk.RequestContext {
		rc := listenerRequest(t, v, unsealKeyOf(t, v))
		var spec map[string]any
		json.Unmarshal(rc.Target.Spec, &spec)
		spec["listener"].(map[string]any)["client_ca_file"] = v.CAFile
		raw, _ := json.Marshal(spec)
		secrets := map[string][]byte{"token": []byte(rootToken(t, v))}
		for k, s := range unsealKeyOf(t, v) {
			secrets[k] = s
		}
		rc.Target = sdk.NewTarget("vault", rc.Target.Connection, raw, secrets)
		rc.Policy.MTLSScope = []string{"vault"}
		rc.Policy.Targets[0].MTLS = true
		rc.Certificates = certs
		return rc
	}
	identity := func(ca *testenv.CA) sdk.Certificates {
		cert, key, err := ca.Issue("harden-admin", true)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := os.ReadFile(cert)
		k, _ := os.ReadFile(key)
		return sdk.Certificates{ClientChainPEM: c, ClientKeyPEM: k}
	}
	foreign, err := testenv.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, certs := range map[string]sdk.Certificates{"no client certificate": {}, "a certificate of another CA": identity(foreign)} {
		ar, err := client.Apply(ctx, mtlsRequest(certs), nil, false)
		if err != nil || !ar.Diagnostics.HasError() || !strings.Contains(fmt.Sprint(ar.Diagnostics.Err()), "lock itself out") {
			t.Fatalf("%s: apply was not refused: %v %+v", name, err, ar.Diagnostics)
		}
		if now, _ := os.ReadFile(v.ListenerFile); !bytes.Equal(now, oldFile) {
			t.Fatalf("%s: the refused apply changed the listener file", name)
		}
	}

	rc := mtlsRequest(identity(v.CA))
	ar, err := client.Apply(ctx, rc, nil, false)
	if err != nil || ar.Diagnostics.HasError() {
		t.Fatalf("apply under mTLS: %v %v", err, ar.Diagnostics.Err())
	}
	if f, _ := os.ReadFile(v.ListenerFile); !bytes.Contains(f, []byte("tls_require_and_verify_client_cert = true")) || !bytes.Contains(f, []byte(v.CAFile)) {
		t.Fatalf("listener file under mTLS:\n%s", f)
	}
	after, err := client.Verify(ctx, rc)
	if err != nil || after.Diagnostics.HasError() {
		t.Fatalf("verify under mTLS (harden must still log in): %v %v", err, after.Diagnostics.Err())
	}
	for _, id := range []string{"tls.client_auth.required", "tls.cipher_suites", "tls.protocol.versions", "vaultpki.listener.config", "vaultpki.pki.ca_present"} {
		for _, c := range statusOf(after, id) {
			if c.Status != checks.Pass {
				t.Errorf("after: %s is %s: %s", id, c.Status, c.Evidence)
			}
		}
	}
	// A client without a certificate gets nothing.
	anon, _ := v.Client()
	anon.SetMaxRetries(0)
	if _, err := anon.Sys().ListMountsWithContext(ctx); err == nil {
		t.Fatal("Vault answered a client without a certificate under mTLS")
	}
	if plan, err := client.Plan(ctx, rc); err != nil || plan.Diagnostics.HasError() || len(plan.Changes) != 0 {
		t.Fatalf("plan after the mTLS apply: %v %+v", err, plan.Changes)
	}
}

func errorCount(ds sdk.Diagnostics) int {
	n := 0
	for _, d := range ds {
		if d.Severity == sdk.Error {
			n++
		}
	}
	return n
}

// TestListenerApplyHelperProcess is the plugin process
// TestListenerInterruptedCompletes kills in its listener step. It does
// nothing in a normal test run.
func TestListenerApplyHelperProcess(t *testing.T) {
	raw := os.Getenv("HARDEN_VAULT_LISTENER_HELPER")
	if raw == "" {
		return
	}
	var h struct {
		Vault   testenv.Vault
		Restart []string
	}
	if err := json.Unmarshal([]byte(raw), &h); err != nil {
		t.Fatal(err)
	}
	var r sdk.ApplyResponse
	vaultPKI{}.Apply(context.Background(), sdk.ApplyRequest{RequestContext: listenerRequestWith(t, &h.Vault, h.Restart, unsealKeyOf(t, &h.Vault))}, &r)
	fmt.Println("done", r.Diagnostics.Err())
}

// A real apply process SIGKILLed in its listener step, after the file was
// written (Vault still on the old settings) and after the restart (Vault
// sealed): the next apply says a run was interrupted, unseals a Vault the
// killed run left sealed, restarts one still on the old settings, and
// completes; verify then passes and a second apply changes nothing.
func TestListenerInterruptedCompletes(t *testing.T) {
	t.Setenv(applykit.StateDirEnv, t.TempDir())
	for _, at := range []string{"listener-written", "listener-restarted"} {
		t.Run(at, func(t *testing.T) {
			v := testenv.VaultForTest(t)
			ctx := context.Background()
			client := hostclient.InProcess(vaultPKI{})
			defer client.Close()
			if ar, err := client.Apply(ctx, vaultRequest(t, v, rootToken(t, v)), nil, false); err != nil || ar.Diagnostics.HasError() {
				t.Fatalf("apply without the listener: %v %v", err, ar.Diagnostics.Err())
			}
			raw, _ := json.Marshal(map[string]any{"Vault": v, "Restart": v.RestartCommand()})
			pid := v.PID()
			killed, out := sdktest.RunHelperProcess(t, "TestListenerApplyHelperProcess", "HARDEN_VAULT_LISTENER_HELPER="+string(raw), applykit.CrashEnv+"=vaultpki:"+at)
			if !killed {
				t.Fatalf("the apply process was not killed at %s: %s", at, out)
			}
			sealed, err := v.Sealed(ctx)
			if err != nil || sealed != (at == "listener-restarted") || (v.PID() != pid) != (at == "listener-restarted") {
				t.Fatalf("after a kill at %s: sealed=%v (%v), restarted=%v", at, sealed, err, v.PID() != pid)
			}
			rc := listenerRequest(t, v, unsealKeyOf(t, v))
			ar, err := client.Apply(ctx, rc, nil, false)
			if err != nil || ar.Diagnostics.HasError() || !hasDiag(ar.Diagnostics, "vaultpki.apply.interrupted") {
				t.Fatalf("completing apply: %v %v %+v", err, ar.Diagnostics.Err(), ar.Diagnostics)
			}
			if sealed, err := v.Sealed(ctx); err != nil || sealed {
				t.Fatalf("Vault after the completing apply: sealed=%v %v", sealed, err)
			}
			after, err := client.Verify(ctx, rc)
			if err != nil || after.Diagnostics.HasError() {
				t.Fatalf("verify after: %v %v", err, after.Diagnostics.Err())
			}
			for _, id := range []string{"tls.cipher_suites", "tls.protocol.versions", "vaultpki.listener.config"} {
				if c := checkStatus(t, after, id); c.Status != checks.Pass {
					t.Errorf("after completing: %s is %s: %s", id, c.Status, c.Evidence)
				}
			}
			pid = v.PID()
			if again, err := client.Apply(ctx, rc, nil, false); err != nil || again.Diagnostics.HasError() || len(again.Applied) != 0 || v.PID() != pid {
				t.Fatalf("second apply: %v %+v", err, again)
			}
		})
	}
}

// restartVaultOnOldFile leaves Vault serving oldFile while newFile is on
// disk: a run killed after writing the file, or a rendered file copied in.
func restartVaultOnOldFile(t *testing.T, v *testenv.Vault, oldFile, newFile []byte) {
	t.Helper()
	ctx := context.Background()
	if err := os.WriteFile(v.ListenerFile, oldFile, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := v.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := v.Unseal(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(v.ListenerFile, newFile, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A profile asking for something Vault cannot do (the server's suite
// order: a warning) does not hide a restart still due: with the hardened
// file on disk and Vault on the old one, vaultpki.listener.config fails
// ("restart due") beside the live tls.cipher_suites, the plan lists the
// restart, and after it both pass and nothing more is planned (review R3 M1, M3).
func TestListenerRestartDueDespiteVaultLimits(t *testing.T) {
	v := testenv.VaultForTest(t)
	ctx := context.Background()
	client := hostclient.InProcess(vaultPKI{})
	defer client.Close()
	rc := listenerRequest(t, v, unsealKeyOf(t, v))
	rc.Policy.Profile.ServerPreferredOrder = true
	rc.Policy.Profile.Name = "custom"
	oldFile, _ := os.ReadFile(v.ListenerFile)
	if ar, err := client.Apply(ctx, rc, nil, false); err != nil || ar.Diagnostics.HasError() {
		t.Fatalf("apply: %v %v", err, ar.Diagnostics.Err())
	}
	newFile, _ := os.ReadFile(v.ListenerFile)
	restartVaultOnOldFile(t, v, oldFile, newFile)

	due, err := client.Verify(ctx, rc)
	if err != nil || due.Diagnostics.HasError() {
		t.Fatalf("verify: %v %v", err, due.Diagnostics.Err())
	}
	if c := checkStatus(t, due, "tls.cipher_suites"); c.Status != checks.Fail || !strings.Contains(c.Evidence, "CBC") {
		t.Fatalf("tls.cipher_suites with the old listener live: %+v", c)
	}
	if c := checkStatus(t, due, "vaultpki.listener.config"); c.Status != checks.Fail || !strings.Contains(c.Evidence, "restart due") || !strings.Contains(c.Evidence, "tls.cipher_suites") {
		t.Fatalf("vaultpki.listener.config with a restart due: %+v", c)
	}
	plan, err := client.Plan(ctx, rc)
	if err != nil || plan.Diagnostics.HasError() || len(plan.Changes) != 1 || !strings.Contains(plan.Changes[0].Before, "tls.cipher_suites") {
		t.Fatalf("plan with a restart due: %v %v %+v", err, plan.Diagnostics.Err(), plan.Changes)
	}
	if !hasWarning(plan.Diagnostics, "suite order") {
		t.Errorf("plan does not say the suite order cannot be set: %+v", plan.Diagnostics)
	}
	pid := v.PID()
	if ar, err := client.Apply(ctx, rc, plan.PlanToken, true); err != nil || ar.Diagnostics.HasError() || len(ar.Applied) != 1 || v.PID() == pid {
		t.Fatalf("apply the due restart: %v %v (restarted: %v)", err, ar.Diagnostics.Err(), v.PID() != pid)
	}
	after, err := client.Verify(ctx, rc)
	if err != nil || after.Diagnostics.HasError() {
		t.Fatalf("verify after: %v %v", err, after.Diagnostics.Err())
	}
	for _, id := range []string{"tls.cipher_suites", "tls.protocol.versions", "vaultpki.listener.config"} {
		if c := checkStatus(t, after, id); c.Status != checks.Pass {
			t.Errorf("after the restart: %s is %s: %s", id, c.Status, c.Evidence)
		}
	}
	if plan, err := client.Plan(ctx, rc); err != nil || plan.Diagnostics.HasError() || len(plan.Changes) != 0 {
		t.Fatalf("plan after the restart: %v %+v", err, plan.Changes)
	}
}

// A profile without one of Go's TLS 1.3 suites (no CHACHA20 for TLS 1.3):
// Vault has no setting to leave it out. Apply hardens the rest once — one
// restart, no rollback, a warning naming the limit — verify still fails
// tls.cipher_suites on that suite alone while vaultpki.listener.config
// passes, and the second apply changes nothing and does not restart. The
// limit never hides a restart due on the TLS 1.2 suites (review R3 M2).
func TestListenerTLS13SubsetProfile(t *testing.T) {
	v := testenv.VaultForTest(t)
	ctx := context.Background()
	client := hostclient.InProcess(vaultPKI{})
	defer client.Close()
	rc := listenerRequest(t, v, unsealKeyOf(t, v))
	rc.Policy.Profile.TLS13Suites = []uint16{0x1301, 0x1302}
	rc.Policy.Profile.Name = "custom"
	oldFile, _ := os.ReadFile(v.ListenerFile)
	pid := v.PID()
	ar, err := client.Apply(ctx, rc, nil, false)
	if err != nil || ar.Diagnostics.HasError() || v.PID() == pid {
		t.Fatalf("apply: %v %v (restarted: %v)", err, ar.Diagnostics.Err(), v.PID() != pid)
	}
	if !hasWarning(ar.Diagnostics, "TLS 1.3 suites Go always offers") {
		t.Errorf("apply does not say the TLS 1.3 limit was accepted: %+v", ar.Diagnostics)
	}
	newFile, _ := os.ReadFile(v.ListenerFile)
	if bytes.Equal(newFile, oldFile) || bytes.Contains(newFile, []byte("CBC")) {
		t.Fatalf("the listener file was not hardened (or rolled back):\n%s", newFile)
	}
	after, err := client.Verify(ctx, rc)
	if err != nil || after.Diagnostics.HasError() {
		t.Fatalf("verify after: %v %v", err, after.Diagnostics.Err())
	}
	if c := checkStatus(t, after, "tls.cipher_suites"); c.Status != checks.Fail || !strings.Contains(c.Evidence, "TLS_CHACHA20_POLY1305_SHA256") || strings.Contains(c.Evidence, "CBC") {
		t.Errorf("tls.cipher_suites should fail on the TLS 1.3 CHACHA20 suite alone: %+v", c)
	}
	if c := checkStatus(t, after, "vaultpki.listener.config"); c.Status != checks.Pass || !strings.Contains(c.Evidence, "TLS 1.3") {
		t.Errorf("vaultpki.listener.config with the hardened file served: %+v", c)
	}
	pid = v.PID()
	if again, err := client.Apply(ctx, rc, nil, false); err != nil || again.Diagnostics.HasError() || len(again.Applied) != 0 || v.PID() != pid {
		t.Fatalf("second apply: %v %v %+v (restarted: %v)", err, again.Diagnostics.Err(), again.Applied, v.PID() != pid)
	}

	restartVaultOnOldFile(t, v, oldFile, newFile)
	plan, err := client.Plan(ctx, rc)
	if err != nil || plan.Diagnostics.HasError() || len(plan.Changes) != 1 || !strings.Contains(plan.Changes[0].Before, "tls.cipher_suites") {
		t.Fatalf("plan with a restart due under the TLS 1.3 limit: %v %v %+v", err, plan.Diagnostics.Err(), plan.Changes)
	}
}

func hasWarning(ds sdk.Diagnostics, part string) bool {
	for _, d := range ds {
		if d.Severity == sdk.Warning && strings.Contains(d.Summary+" "+d.Detail, part) {
			return true
		}
	}
	return false
}

// A Vault target in the mTLS scope without spec.listener: harden does not
// manage the listener, so client-certificate enforcement is not judged —
// and verify says so with a warning naming spec.listener, never silently
// (review R3).
func TestListenerClientAuthNotJudgedWithoutListener(t *testing.T) {
	v := testenv.VaultForTest(t)
	client := hostclient.InProcess(vaultPKI{})
	defer client.Close()
	rc := vaultRequest(t, v, rootToken(t, v))
	rc.Policy.MTLSScope = []string{"vault"}
	r, err := client.Verify(context.Background(), rc)
	if err != nil || r.Diagnostics.HasError() {
		t.Fatalf("verify: %v %v", err, r.Diagnostics.Err())
	}
	if c := checkStatus(t, r, "tls.client_auth.required"); c.Status != checks.Warn || !strings.Contains(c.Evidence, "spec.listener") || !strings.Contains(c.Evidence, "not judged") {
		t.Fatalf("tls.client_auth.required without spec.listener: %+v", c)
	}
	if len(statusOf(r, "vaultpki.listener.config")) != 0 {
		t.Fatal("a listener check without spec.listener")
	}
	rc.Policy.MTLSScope = nil
	if r, _ := client.Verify(context.Background(), rc); len(statusOf(r, "tls.client_auth.required")) != 0 {
		t.Fatal("tls.client_auth.required outside the mTLS scope")
	}
}
