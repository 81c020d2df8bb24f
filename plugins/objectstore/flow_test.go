package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"

	"github.com/harden-dev/harden/plugins/objectstore/envelope"
	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/shared/tlsprofile"
	"github.com/harden-dev/harden/testenv"
)

func readKey(t testing.TB, f string) []byte {
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.TrimSpace(string(b)))
}

func s3Request(t testing.TB, s *testenv.SeaweedFS, accessFile, secretFile string) sdk.RequestContext {
	tgt := s.Target()
	conn, _ := json.Marshal(tgt["connection"])
	spec, _ := json.Marshal(tgt["spec"])
	ca, _ := os.ReadFile(tgt["connection"].(map[string]any)["ca_file"].(string))
	return sdk.RequestContext{Policy: sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate()},
		Target:       sdk.NewTarget("lake", conn, spec, map[string][]byte{"access_key": readKey(t, accessFile), "secret_key": readKey(t, secretFile)}),
		Certificates: sdk.Certificates{CABundlePEM: ca}}
}

func byID(r sdk.VerifyResponse) map[string]checks.Check {
	out := map[string]checks.Check{}
	for _, c := range r.Checks {
		if _, seen := out[c.ID]; !seen || c.Status != checks.Pass {
			out[c.ID] = c
		}
	}
	return out
}

// Unhardened SeaweedFS → verify fails with specific IDs → apply (operator
// statement kept) → every s3.* check passes on live evidence, including the
// at-rest canary → refusals hold for the non-admin identity and for pii/
// with SSE-S3 → second apply changes nothing.
func TestFlow(t *testing.T) {
	s := testenv.SeaweedFSForTest(t)
	ctx := context.Background()
	rc := s3Request(t, s, s.AccessKeyFile, s.SecretKeyFile)
	client := hostclient.InProcess(objectStore{})
	defer client.Close()
	var d sdk.Diagnostics
	tg, ok := open(rc, &d)
	if !ok {
		t.Fatal(d.Err())
	}
	// An operator statement that apply must keep.
	operator := `{"Version":"2012-10-17","Statement":[{"Sid":"OpsReadCurated","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::lake/curated/*"}]}`
	if err := tg.cl.SetBucketPolicy(ctx, "lake", operator); err != nil {
		t.Fatal(err)
	}
	// Control: bytes stored WITHOUT server-side encryption are found on disk
	// by the same search the canary uses — the search can see plaintext.
	control := make([]byte, 64<<10)
	rand.Read(control)
	if _, err := tg.cl.PutObject(ctx, "lake", "control/plain", bytes.NewReader(control), int64(len(control)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for searchTree(os.DirFS(s.DataDir), s.DataDir, control[1000:1064], searchBuffer).found == "" {
		if time.Now().After(deadline) {
			t.Fatalf("a plaintext object's bytes are not found under %s: the canary search would prove nothing", s.DataDir)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := tg.cl.RemoveObject(ctx, "lake", "control/plain", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	before, err := client.Verify(ctx, rc)
	if err != nil || before.Diagnostics.HasError() {
		t.Fatalf("verify before: %v %v", err, before.Diagnostics.Err())
	}
	b := byID(before)
	for _, id := range []string{"objectstore.encryption.default", "objectstore.policy.denies", "objectstore.http.refused", "objectstore.put.unencrypted_refused"} {
		if b[id].Status != checks.Fail {
			t.Errorf("before: %s %s: %s", id, b[id].Status, b[id].Evidence)
		}
	}
	plan, err := client.Plan(ctx, rc)
	if err != nil || plan.Diagnostics.HasError() || len(plan.Changes) != 2 {
		t.Fatalf("plan: %v %v %+v", err, plan.Diagnostics.Err(), plan.Changes)
	}
	ar, err := client.Apply(ctx, rc, plan.PlanToken, false)
	if err != nil || ar.Diagnostics.HasError() {
		t.Fatalf("apply: %v %v", err, ar.Diagnostics.Err())
	}
	if pol, _ := tg.cl.GetBucketPolicy(ctx, "lake"); os.Getenv("HARDEN_DEBUG_CHECKS") != "" || !strings.Contains(pol, "OpsReadCurated") || !strings.Contains(pol, "HardenDenyUnencryptedUpload") {
		t.Logf("policy after apply:\n%s", pol)
	}
	if _, err := tg.cl.PutObject(ctx, "lake", "curated/part-0", strings.NewReader("rows"), 4, minio.PutObjectOptions{ServerSideEncryption: tg.sseFor("curated/part-0")}); err != nil {
		t.Fatal(err)
	}
	after, err := client.Verify(ctx, rc)
	if err != nil || after.Diagnostics.HasError() {
		t.Fatalf("verify after: %v %v", err, after.Diagnostics.Err())
	}
	a := byID(after)
	for _, id := range []string{"objectstore.encryption.default", "objectstore.policy.denies", "objectstore.http.refused", "objectstore.put.unencrypted_refused", "objectstore.put.encrypted_accepted", "objectstore.objects.encrypted", "objectstore.at_rest.canary", "tls.certificate.trusted"} {
		if a[id].Status != checks.Pass {
			t.Errorf("after: %s %s: %s", id, a[id].Status, a[id].Evidence)
		}
	}
	// The policy check rests on live refusals of every deny a request can
	// exercise (transport, unencrypted, SSE-S3 on a KMS bucket, pii/).
	for _, live := range []string{"live: PUT over http", "live: PUT without SSE refused", "live: CopyObject without SSE refused", "live: PUT with SSE-S3 (AES256) where aws:kms is required refused", "live: PUT under pii/ with SSE-S3 (AES256) refused"} {
		if !strings.Contains(a["objectstore.policy.denies"].Evidence, live) {
			t.Errorf("objectstore.policy.denies lacks %q: %s", live, a["objectstore.policy.denies"].Evidence)
		}
	}
	if a["objectstore.policy.denies"].ConfigurationOnly || a["objectstore.at_rest.canary"].Inconclusive != 0 {
		t.Errorf("after: policy configuration only %v, canary inconclusive %d", a["objectstore.policy.denies"].ConfigurationOnly, a["objectstore.at_rest.canary"].Inconclusive)
	}
	// The non-admin identity is held to the same denies; pii/ needs SSE-KMS.
	user, ok := open(s3Request(t, s, s.UserKeyFile, s.UserSecretFile), &d)
	if !ok {
		t.Fatal(d.Err())
	}
	if _, err := user.cl.PutObject(ctx, "lake", "raw/x", strings.NewReader("x"), 1, minio.PutObjectOptions{}); err == nil {
		t.Errorf("the non-admin identity uploaded without SSE")
	}
	if _, err := user.cl.PutObject(ctx, "lake", "raw/y", strings.NewReader("y"), 1, minio.PutObjectOptions{ServerSideEncryption: user.sseFor("raw/y")}); err != nil {
		t.Errorf("the non-admin identity could not upload with SSE-KMS: %v", err)
	}
	if _, err := tg.cl.PutObject(ctx, "lake", "pii/z", strings.NewReader("z"), 1, minio.PutObjectOptions{ServerSideEncryption: encrypt.NewSSE()}); err == nil {
		t.Errorf("pii/ accepted SSE-S3")
	}
	again, err := client.Apply(ctx, rc, nil, false)
	if err != nil || again.Diagnostics.HasError() || len(again.Applied) != 0 {
		t.Errorf("second apply: %v %v %+v", err, again.Diagnostics.Err(), again.Applied)
	}
	// Envelope records: three objects with their own data keys pass; a copy
	// that reuses one's record (same DEK) fails.
	kekFile := t.TempDir() + "/kek"
	if err := envelope.NewLocalKEKFile(kekFile); err != nil {
		t.Fatal(err)
	}
	kek, _ := envelope.LoadLocalKEK(kekFile)
	for _, k := range []string{"env/a", "env/b", "env/c"} {
		if _, err := envelope.PutObject(ctx, tg.cl, "lake", k, strings.NewReader("data "+k), int64(len("data "+k)), kek, tg.sseFor(k), envelope.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	var sp map[string]any
	_ = json.Unmarshal(rc.Target.Spec, &sp)
	sp["envelope"] = map[string]any{"kek": kek.ID(), "prefix": "env/"}
	spJSON, _ := json.Marshal(sp)
	erc := rc
	erc.Target = sdk.NewTarget("lake", rc.Target.Connection, spJSON, map[string][]byte{"access_key": readKey(t, s.AccessKeyFile), "secret_key": readKey(t, s.SecretKeyFile)})
	ev, _ := client.Verify(ctx, erc)
	if c := byID(ev)["objectstore.envelope.records"]; c.Status != checks.Pass || !strings.Contains(c.Evidence, "coverage 3/3") || byID(after)["objectstore.objects.encrypted"].Evidence != "coverage 1/1 objects, every one with an approved server-side encryption" {
		t.Errorf("envelope records: %s %s", c.Status, c.Evidence)
	}
	if _, err := tg.cl.CopyObject(ctx, minio.CopyDestOptions{Bucket: "lake", Object: "env/d", Encryption: tg.sseFor("env/d")}, minio.CopySrcOptions{Bucket: "lake", Object: "env/a"}); err != nil {
		t.Fatal(err)
	}
	ev, _ = client.Verify(ctx, erc)
	if c := byID(ev)["objectstore.envelope.records"]; c.Status != checks.Fail || !strings.Contains(c.Evidence, "data key reused") {
		t.Errorf("reused data key: %s %s", c.Status, c.Evidence)
	}
	// An envelope prefix with no objects has nothing to judge: not a pass.
	sp["envelope"] = map[string]any{"kek": kek.ID(), "prefix": "empty/"}
	spJSON, _ = json.Marshal(sp)
	erc.Target = sdk.NewTarget("lake", rc.Target.Connection, spJSON, map[string][]byte{"access_key": readKey(t, s.AccessKeyFile), "secret_key": readKey(t, s.SecretKeyFile)})
	ev, _ = client.Verify(ctx, erc)
	if c := byID(ev)["objectstore.envelope.records"]; c.Status != checks.Skip || !strings.Contains(c.Evidence, `no objects under "empty/"`) {
		t.Errorf("empty envelope prefix: %s %s", c.Status, c.Evidence)
	}

	// harden's statements by name, with Effect Allow: the names alone are
	// no evidence. The policy check fails on their content and on the
	// requests the server now accepts.
	pol, err := tg.cl.GetBucketPolicy(ctx, "lake")
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.cl.SetBucketPolicy(ctx, "lake", strings.ReplaceAll(pol, `"Deny"`, `"Allow"`)); err != nil {
		t.Fatal(err)
	}
	allow, _ := client.Verify(ctx, rc)
	al := byID(allow)
	if c := al["objectstore.policy.denies"]; c.Status != checks.Fail || !strings.Contains(c.Evidence, "Effect is Allow") || !strings.Contains(c.Evidence, "accepted") {
		t.Errorf("harden's Sids with Effect Allow: objectstore.policy.denies %s: %s", c.Status, c.Evidence)
	}
	for _, id := range []string{"objectstore.put.unencrypted_refused", "objectstore.http.refused"} {
		if al[id].Status != checks.Fail {
			t.Errorf("with the denies turned into allows: %s %s: %s", id, al[id].Status, al[id].Evidence)
		}
	}
	if os.Getenv("HARDEN_DEBUG_CHECKS") != "" {
		for _, c := range after.Checks {
			t.Logf("%s %s %s: %s", c.ID, c.Status, c.Subject, c.Evidence)
		}
	}
}
