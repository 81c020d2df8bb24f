package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/shared/sdk/sdktest"
	"github.com/harden-dev/harden/shared/tlsprofile"
	"github.com/harden-dev/harden/testenv"
)

// helperParams carries the target to the helper process.
type helperParams struct {
	Target               map[string]any
	AccessKey, SecretKey string
}

func requestFromParams(t testing.TB, p helperParams) sdk.RequestContext {
	conn, _ := json.Marshal(p.Target["connection"])
	spec, _ := json.Marshal(p.Target["spec"])
	ca, err := os.ReadFile(p.Target["connection"].(map[string]any)["ca_file"].(string))
	if err != nil {
		t.Fatal(err)
	}
	return sdk.RequestContext{Policy: sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate()},
		Target:       sdk.NewTarget("lake", conn, spec, map[string][]byte{"access_key": readKey(t, p.AccessKey), "secret_key": readKey(t, p.SecretKey)}),
		Certificates: sdk.Certificates{CABundlePEM: ca}}
}

// TestApplyHelperProcess is the plugin process the interruption test kills
// (HARDEN_CRASH_AT=objectstore:<step> makes it SIGKILL itself there). It
// does nothing in a normal test run.
func TestApplyHelperProcess(t *testing.T) {
	raw := os.Getenv("HARDEN_S3_APPLY_HELPER")
	if raw == "" {
		return // only as the child of TestApplyInterruptedAtEveryStep
	}
	var p helperParams
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		t.Fatal(err)
	}
	var r sdk.ApplyResponse
	objectStore{}.Apply(context.Background(), sdk.ApplyRequest{RequestContext: requestFromParams(t, p)}, &r)
	fmt.Println("done", r.Diagnostics.Err())
}

func runS3Helper(t *testing.T, p helperParams, crashAt string) (killed bool, out string) {
	t.Helper()
	raw, _ := json.Marshal(p)
	return sdktest.RunHelperProcess(t, "TestApplyHelperProcess", "HARDEN_S3_APPLY_HELPER="+string(raw), applykit.CrashEnv+"="+crashAt)
}

func diagCode(ds sdk.Diagnostics, code string) bool {
	for _, d := range ds {
		if d.Code == code {
			return true
		}
	}
	return false
}

// unharden puts the bucket back to its "before" state: no default
// encryption and only the operator's statement.
func unharden(t *testing.T, tg *target, operator string) {
	t.Helper()
	ctx := context.Background()
	if err := tg.cl.RemoveBucketEncryption(ctx, tg.spec.Bucket); err != nil {
		var er minio.ErrorResponse
		if !errors.As(err, &er) || er.Code != "ServerSideEncryptionConfigurationNotFoundError" {
			t.Fatal(err)
		}
	}
	if err := tg.cl.SetBucketPolicy(ctx, tg.spec.Bucket, operator); err != nil {
		t.Fatal(err)
	}
}

// TestApplyInterruptedAtEveryStep kills a real apply process (SIGKILL) at
// every step boundary on a real SeaweedFS. After each kill harden still
// lists the bucket over TLS, plan says an apply was interrupted and lists
// a change (never "nothing to apply"), verify warns, and the next apply
// completes it: the encryption default and the deny policy pass verify, a
// second apply changes nothing, and the journal is gone.
func TestApplyInterruptedAtEveryStep(t *testing.T) {
	s := testenv.SeaweedFSForTest(t)
	ctx := context.Background()
	p := helperParams{Target: s.Target(), AccessKey: s.AccessKeyFile, SecretKey: s.SecretKeyFile}
	rc := requestFromParams(t, p)
	client := hostclient.InProcess(objectStore{})
	defer client.Close()
	var d sdk.Diagnostics
	tg, ok := open(rc, &d)
	if !ok {
		t.Fatal(d.Err())
	}
	operator := `{"Version":"2012-10-17","Statement":[{"Sid":"OpsReadCurated","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::lake/curated/*"}]}`
	jp, _, err := tg.journalPaths()
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []string{stepBegun, stepEncryption, stepPolicy, stepConfirmed} {
		t.Run(at, func(t *testing.T) {
			unharden(t, tg, operator)
			killed, out := runS3Helper(t, p, "objectstore:"+at)
			if !killed {
				t.Fatalf("the apply process was not killed at %s: %s", at, out)
			}
			if _, err := os.Stat(jp); err != nil {
				t.Fatalf("no journal after a kill at %s: %v", at, err)
			}
			// harden can still list the bucket over TLS.
			if obj, ok := <-tg.cl.ListObjects(ctx, tg.spec.Bucket, minio.ListObjectsOptions{MaxKeys: 1}); ok && obj.Err != nil {
				t.Fatalf("after a kill at %s harden cannot list the bucket: %v", at, obj.Err)
			}
			plan, err := client.Plan(ctx, rc)
			if err != nil || plan.Diagnostics.HasError() {
				t.Fatalf("plan: %v %v", err, plan.Diagnostics.Err())
			}
			if !diagCode(plan.Diagnostics, "objectstore.apply.interrupted") || len(plan.Changes) == 0 || !strings.Contains(plan.Changes[0].Description, "interrupted at "+at) {
				t.Fatalf("plan after a kill at %s does not report the interrupted apply: %+v %+v", at, plan.Diagnostics, plan.Changes)
			}
			v, err := client.Verify(ctx, rc)
			if err != nil || !diagCode(v.Diagnostics, "objectstore.apply.interrupted") {
				t.Fatalf("verify after a kill at %s does not say so: %v %+v", at, err, v.Diagnostics)
			}
			ar, err := client.Apply(ctx, rc, plan.PlanToken, false)
			if err != nil || ar.Diagnostics.HasError() || !diagCode(ar.Diagnostics, "objectstore.apply.interrupted") {
				t.Fatalf("recovering apply: %v %v %+v", err, ar.Diagnostics.Err(), ar.Diagnostics)
			}
			if _, err := os.Stat(jp); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the journal is still there after the recovering apply: %v", err)
			}
			after, err := client.Verify(ctx, rc)
			if err != nil {
				t.Fatal(err)
			}
			a := byID(after)
			for _, id := range []string{"objectstore.encryption.default", "objectstore.policy.denies", "objectstore.put.unencrypted_refused"} {
				if a[id].Status != checks.Pass {
					t.Errorf("after recovery: %s %s: %s", id, a[id].Status, a[id].Evidence)
				}
			}
			if pol, _ := tg.cl.GetBucketPolicy(ctx, tg.spec.Bucket); !strings.Contains(pol, "OpsReadCurated") {
				t.Errorf("the operator's statement was lost: %s", pol)
			}
			again, err := client.Apply(ctx, rc, nil, false)
			if err != nil || again.Diagnostics.HasError() || len(again.Applied) != 0 {
				t.Fatalf("second apply: %v %v %+v", err, again.Diagnostics.Err(), again.Applied)
			}
		})
	}
}

// TestApplyCancelledRestores: the host's Stop (Ctrl-C) cancels the request
// between two steps; apply restores the configuration it started from on a
// context that is not cancelled, says it was interrupted, and leaves no
// journal.
func TestApplyCancelledRestores(t *testing.T) {
	s := testenv.SeaweedFSForTest(t)
	p := helperParams{Target: s.Target(), AccessKey: s.AccessKeyFile, SecretKey: s.SecretKeyFile}
	rc := requestFromParams(t, p)
	var d sdk.Diagnostics
	tg, ok := open(rc, &d)
	if !ok {
		t.Fatal(d.Err())
	}
	operator := `{"Version":"2012-10-17","Statement":[{"Sid":"OpsReadCurated","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::lake/curated/*"}]}`
	unharden(t, tg, operator)
	ctx, cancel := context.WithCancel(context.Background())
	stepHook = func(step string) {
		if step == stepEncryption {
			cancel()
		}
	}
	defer func() { stepHook = nil }()
	var r sdk.ApplyResponse
	objectStore{}.Apply(ctx, sdk.ApplyRequest{RequestContext: rc}, &r)
	if !diagCode(r.Diagnostics, "objectstore.apply.interrupted") || len(r.Applied) != 0 {
		t.Fatalf("a cancelled apply: %+v applied %+v", r.Diagnostics, r.Applied)
	}
	bg := context.Background()
	if enc, err := tg.cl.GetBucketEncryption(bg, tg.spec.Bucket); err == nil && enc != nil && len(enc.Rules) > 0 {
		t.Errorf("the encryption default set before Ctrl-C was not restored: %s", describeEncryption(enc))
	}
	if pol, _ := tg.cl.GetBucketPolicy(bg, tg.spec.Bucket); strings.Contains(pol, "HardenDeny") || !strings.Contains(pol, "OpsReadCurated") {
		t.Errorf("the policy is not the one apply started from: %s", pol)
	}
	jp, _, _ := tg.journalPaths()
	if _, err := os.Stat(jp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a journal is left after a rolled-back apply: %v", err)
	}
}

// A stale plan after a kill changes nothing and KEEPS the killed run's
// journal: it is the only record of the configuration that run started
// from (before, the stale apply removed it). The next plan still reports
// the interrupted run, and its apply completes it.
func TestApplyStalePlanAfterKillKeepsJournal(t *testing.T) {
	s := testenv.SeaweedFSForTest(t)
	ctx := context.Background()
	p := helperParams{Target: s.Target(), AccessKey: s.AccessKeyFile, SecretKey: s.SecretKeyFile}
	rc := requestFromParams(t, p)
	client := hostclient.InProcess(objectStore{})
	defer client.Close()
	var d sdk.Diagnostics
	tg, ok := open(rc, &d)
	if !ok {
		t.Fatal(d.Err())
	}
	operator := `{"Version":"2012-10-17","Statement":[{"Sid":"OpsReadCurated","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::lake/curated/*"}]}`
	unharden(t, tg, operator)
	jp, _, err := tg.journalPaths()
	if err != nil {
		t.Fatal(err)
	}
	if killed, out := runS3Helper(t, p, "objectstore:"+stepEncryption); !killed {
		t.Fatalf("the apply process was not killed at %s: %s", stepEncryption, out)
	}
	before, err := os.ReadFile(jp)
	if err != nil {
		t.Fatalf("no journal after the kill: %v", err)
	}
	plan, err := client.Plan(ctx, rc)
	if err != nil || plan.Diagnostics.HasError() {
		t.Fatalf("plan: %v %v", err, plan.Diagnostics.Err())
	}
	// The bucket changes between plan and apply.
	changed := `{"Version":"2012-10-17","Statement":[{"Sid":"OpsReadRaw","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::lake/raw/*"}]}`
	if err := tg.cl.SetBucketPolicy(ctx, tg.spec.Bucket, changed); err != nil {
		t.Fatal(err)
	}
	stale, err := client.Apply(ctx, rc, plan.PlanToken, false)
	if err != nil || !diagCode(stale.Diagnostics, applykit.PlanStaleCode) || len(stale.Applied) != 0 {
		t.Fatalf("apply with the stale plan: %v %+v %+v", err, stale.Diagnostics, stale.Applied)
	}
	after, err := os.ReadFile(jp)
	if err != nil {
		t.Fatalf("the stale apply removed the killed run's journal: %v", err)
	}
	if string(after) != string(before) {
		t.Fatalf("the stale apply changed the killed run's journal:\n%s\nwant\n%s", after, before)
	}
	if pol, _ := tg.cl.GetBucketPolicy(ctx, tg.spec.Bucket); !strings.Contains(pol, "OpsReadRaw") {
		t.Fatalf("the stale apply changed the bucket policy: %s", pol)
	}
	plan, err = client.Plan(ctx, rc)
	if err != nil || !diagCode(plan.Diagnostics, "objectstore.apply.interrupted") {
		t.Fatalf("plan after the stale apply: %v %+v", err, plan.Diagnostics)
	}
	ar, err := client.Apply(ctx, rc, plan.PlanToken, false)
	if err != nil || ar.Diagnostics.HasError() || !diagCode(ar.Diagnostics, "objectstore.apply.interrupted") {
		t.Fatalf("recovering apply: %v %+v", err, ar.Diagnostics)
	}
	if _, err := os.Stat(jp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the journal is still there after the recovering apply: %v", err)
	}
}
