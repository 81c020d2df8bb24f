package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/shared/sdk/sdktest"
	"github.com/harden-dev/harden/testenv"
)

// TestApplyHelperProcess is the plugin process the interruption test kills
// (HARDEN_CRASH_AT=vaultpki:<step> makes it SIGKILL itself there). It does
// nothing in a normal test run.
func TestApplyHelperProcess(t *testing.T) {
	raw := os.Getenv("HARDEN_VAULT_APPLY_HELPER")
	if raw == "" {
		return // only as the child of TestApplyInterruptedCompletes
	}
	var v testenv.Vault
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		t.Fatal(err)
	}
	var r sdk.ApplyResponse
	vaultPKI{}.Apply(context.Background(), sdk.ApplyRequest{RequestContext: vaultRequest(t, &v, rootToken(t, &v))}, &r)
	fmt.Println("done", r.Diagnostics.Err())
}

func runVaultHelper(t *testing.T, v *testenv.Vault, crashAt string) (killed bool, out string) {
	t.Helper()
	raw, _ := json.Marshal(v)
	return sdktest.RunHelperProcess(t, "TestApplyHelperProcess", "HARDEN_VAULT_APPLY_HELPER="+string(raw), applykit.CrashEnv+"="+crashAt)
}

func hasDiag(ds sdk.Diagnostics, code string) bool {
	for _, d := range ds {
		if d.Code == code {
			return true
		}
	}
	return false
}

// TestApplyInterruptedCompletes kills a real apply process (SIGKILL) on a
// real Vault after its first step, in the middle and after its last one.
// Each time plan says an apply was interrupted and lists a change (never
// "nothing to apply", even when every step had been made), verify warns,
// and the next apply completes it: the vault.* checks pass, a second apply
// changes nothing, the journal is gone.
func TestApplyInterruptedCompletes(t *testing.T) {
	t.Setenv(applykit.StateDirEnv, t.TempDir()) // the journals of this test only
	for _, at := range []string{"step-2", "step-6", "done"} {
		t.Run(at, func(t *testing.T) {
			v := testenv.VaultForTest(t)
			ctx := context.Background()
			rc := vaultRequest(t, v, rootToken(t, v))
			client := hostclient.InProcess(vaultPKI{})
			defer client.Close()
			killed, out := runVaultHelper(t, v, "vaultpki:"+at)
			if !killed {
				t.Fatalf("the apply process was not killed at %s: %s", at, out)
			}
			plan, err := client.Plan(ctx, rc)
			if err != nil || plan.Diagnostics.HasError() {
				t.Fatalf("plan: %v %v", err, plan.Diagnostics.Err())
			}
			if !hasDiag(plan.Diagnostics, "vaultpki.apply.interrupted") || len(plan.Changes) == 0 || !strings.Contains(plan.Changes[0].Description, "interrupted at "+at) {
				t.Fatalf("plan after a kill at %s does not report it: %+v %+v", at, plan.Diagnostics, plan.Changes)
			}
			ver, err := client.Verify(ctx, rc)
			if err != nil || !hasDiag(ver.Diagnostics, "vaultpki.apply.interrupted") {
				t.Fatalf("verify after a kill at %s does not say so: %v %+v", at, err, ver.Diagnostics)
			}
			ar, err := client.Apply(ctx, rc, plan.PlanToken, false)
			if err != nil || ar.Diagnostics.HasError() || !hasDiag(ar.Diagnostics, "vaultpki.apply.interrupted") {
				t.Fatalf("completing apply: %v %v %+v", err, ar.Diagnostics.Err(), ar.Diagnostics)
			}
			after, err := client.Verify(ctx, rc)
			if err != nil || after.Diagnostics.HasError() {
				t.Fatalf("verify after: %v %v", err, after.Diagnostics.Err())
			}
			for _, id := range []string{"vaultpki.pki.ca_present", "vaultpki.audit.enabled", "vaultpki.transit.keys"} {
				cs := statusOf(after, id)
				if len(cs) == 0 || cs[0].Status != checks.Pass {
					t.Errorf("after completing: %s: %+v", id, cs)
				}
			}
			again, err := client.Apply(ctx, rc, nil, false)
			if err != nil || again.Diagnostics.HasError() || len(again.Applied) != 0 {
				t.Fatalf("second apply: %v %v %+v", err, again.Diagnostics.Err(), again.Applied)
			}
			left, _ := filepath.Glob(filepath.Join(os.Getenv(applykit.StateDirEnv), "journal", "*.journal"))
			if len(left) != 0 {
				t.Fatalf("journals left: %v", left)
			}
		})
	}
}

// TestApplyCancelledUndoes: the host's Stop (Ctrl-C) cancels the request
// between two steps; apply undoes the steps it made on a context that is
// not cancelled, says it was interrupted, and leaves no journal.
func TestApplyCancelledUndoes(t *testing.T) {
	t.Setenv(applykit.StateDirEnv, t.TempDir())
	v := testenv.VaultForTest(t)
	rc := vaultRequest(t, v, rootToken(t, v))
	ctx, cancel := context.WithCancel(context.Background())
	stepHook = func(step string) {
		if step == "step-4" {
			cancel()
		}
	}
	defer func() { stepHook = nil }()
	var r sdk.ApplyResponse
	vaultPKI{}.Apply(ctx, sdk.ApplyRequest{RequestContext: rc}, &r)
	if !hasDiag(r.Diagnostics, "vaultpki.apply.interrupted") || len(r.Applied) != 0 {
		t.Fatalf("a cancelled apply: %+v applied %+v", r.Diagnostics, r.Applied)
	}
	if !strings.Contains(fmt.Sprint(r.Diagnostics.Err()), "earlier changes were undone") {
		t.Errorf("the interrupted apply does not say it undid its steps: %v", r.Diagnostics.Err())
	}
	left, _ := filepath.Glob(filepath.Join(os.Getenv(applykit.StateDirEnv), "journal", "*.journal"))
	if len(left) != 0 {
		t.Fatalf("journals left after an undone apply: %v", left)
	}
}
