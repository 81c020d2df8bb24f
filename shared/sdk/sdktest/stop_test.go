package sdktest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
)

// stubborn connects to its target in every network capability and then
// waits: on the request context when honest, for a minute when not (the
// plan of a plugin that forgot ctx).
type stubborn struct{ ignorePlanCtx, refuseApply bool }

func (stubborn) Metadata(_ context.Context, _ sdk.MetadataRequest, r *sdk.MetadataResponse) {
	r.Name, r.Version = "stubborn", "1.0.0"
}

func (stubborn) Schema(_ context.Context, _ sdk.SchemaRequest, r *sdk.SchemaResponse) {
	r.Connection = []byte(`{"type":"object","properties":{"address":{"type":"string"}},"additionalProperties":false}`)
	r.Spec = []byte(`{"type":"object","additionalProperties":false}`)
}

func (stubborn) wait(ctx context.Context, t sdk.Target, ignore bool, d *sdk.Diagnostics) {
	var c struct{ Address string }
	if err := t.DecodeConnection(&c); err != nil {
		d.AddError("bad connection", err.Error())
		return
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", c.Address)
	if err != nil {
		d.AddError("dial", err.Error())
		return
	}
	defer conn.Close()
	if ignore {
		time.Sleep(time.Minute)
		return
	}
	<-ctx.Done()
	d.AddError("cancelled", ctx.Err().Error())
}

func (s stubborn) Plan(ctx context.Context, q sdk.PlanRequest, r *sdk.PlanResponse) {
	s.wait(ctx, q.Target, s.ignorePlanCtx, &r.Diagnostics)
}
func (s stubborn) Apply(ctx context.Context, q sdk.ApplyRequest, r *sdk.ApplyResponse) {
	if s.refuseApply {
		// Like a plugin that wants a plan token before it goes anywhere.
		r.Diagnostics.AddError("no plan token", "run plan first")
		return
	}
	s.wait(ctx, q.Target, false, &r.Diagnostics)
}
func (s stubborn) Verify(ctx context.Context, q sdk.VerifyRequest, r *sdk.VerifyResponse) {
	s.wait(ctx, q.Target, false, &r.Diagnostics)
}
func (s stubborn) IssueCertificate(ctx context.Context, q sdk.IssueCertificateRequest, r *sdk.IssueCertificateResponse) {
	s.wait(ctx, q.Target, false, &r.Diagnostics)
}

func stubbornHarness(ignore bool) Harness {
	return Harness{Plugin: stubborn{ignorePlanCtx: ignore}, Name: "stubborn", StopTimeout: time.Second,
		Target: func(addr string) sdk.Target {
			return sdk.NewTarget("s", []byte(`{"address":"`+addr+`"}`), []byte(`{}`), nil)
		}}
}

// Every network capability gets its own Stop check; an honest plugin passes
// them all.
func TestStopCheckedOnEveryCapability(t *testing.T) {
	switch os.Getenv("SDKTEST_META") {
	case "ignore-plan-ctx":
		Run(t, stubbornHarness(true))
	case "refuse-apply":
		h := stubbornHarness(false)
		h.Plugin = stubborn{refuseApply: true}
		Run(t, h)
	case "refuse-apply-declared":
		h := stubbornHarness(false)
		h.Plugin = stubborn{refuseApply: true}
		h.StopSkip = map[sdk.Capability]string{sdk.CapApply: "apply needs a plan token the harness cannot have"}
		Run(t, h)
	default:
		Run(t, stubbornHarness(false))
	}
}

// A capability that refuses the harness target before contacting it proves
// nothing about Stop: under CI=true that fails, unless the harness declares
// why the capability cannot reach the target (then it is skipped with that
// reason). The kit runs in child test processes.
func TestStopCheckRefusedBeforeContactFailsUnderCI(t *testing.T) {
	run := func(meta string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestStopCheckedOnEveryCapability$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "SDKTEST_META="+meta, "CI=true")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	s, err := run("refuse-apply")
	if err == nil || !strings.Contains(s, "--- FAIL: TestStopCheckedOnEveryCapability/stop_cancels_in_flight/apply") ||
		!strings.Contains(s, "apply refused the harness target before contacting it") || !strings.Contains(s, "Harness.StopSkip") {
		t.Fatalf("undeclared refusal under CI=true did not fail (err %v):\n%s", err, s)
	}
	s, err = run("refuse-apply-declared")
	if err != nil || !strings.Contains(s, "--- SKIP: TestStopCheckedOnEveryCapability/stop_cancels_in_flight/apply") ||
		!strings.Contains(s, "apply needs a plan token the harness cannot have") {
		t.Fatalf("declared refusal (err %v):\n%s", err, s)
	}
	for _, ok := range []string{"plan", "verify", "issue_certificate"} {
		if !strings.Contains(s, "--- PASS: TestStopCheckedOnEveryCapability/stop_cancels_in_flight/"+ok) {
			t.Errorf("%s's Stop check did not pass:\n%s", ok, s)
		}
	}
}

// A plan that ignores its context is caught by the plan's own Stop check,
// although the plugin's verify honours Stop (before, only verify was
// checked). The kit runs in a child test process that must fail.
func TestStopCheckCatchesPlanIgnoringContext(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestStopCheckedOnEveryCapability$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "SDKTEST_META=ignore-plan-ctx")
	out, err := cmd.CombinedOutput()
	s := string(out)
	if err == nil || !strings.Contains(s, "--- FAIL: TestStopCheckedOnEveryCapability/stop_cancels_in_flight/plan") ||
		!strings.Contains(s, "in-flight plan still running") {
		t.Fatalf("sdktest did not flag the plan (err %v):\n%s", err, s)
	}
	for _, ok := range []string{"apply", "verify", "issue_certificate"} {
		if !strings.Contains(s, "--- PASS: TestStopCheckedOnEveryCapability/stop_cancels_in_flight/"+ok) {
			t.Errorf("%s's Stop check did not pass:\n%s", ok, s)
		}
	}
}
