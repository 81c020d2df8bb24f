package sdk

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/tlsprofile"
)

type ctxT = context.Context

type panicky struct{ onlyVerify }

func (panicky) Verify(context.Context, VerifyRequest, *VerifyResponse) { panic("boom") }

// The wire round trip keeps the policy context, and a panicking plugin
// method becomes a diagnostic instead of killing the process.
func TestInProcessRoundTrip(t *testing.T) {
	c := InProcess(panicky{})
	defer c.Close()
	rc := RequestContext{Policy: Policy{APIVersion: "harden/v1", Profile: tlsprofile.Modern(), MTLSScope: []string{"a"},
		Rotation: Rotation{MaxLifetime: 90 * 24 * time.Hour, AlertAt: []time.Duration{7 * 24 * time.Hour}}},
		Target: NewTarget("a", []byte(`{}`), []byte(`{}`), nil)}
	r, err := c.Verify(context.Background(), rc)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Diagnostics.HasError() || !strings.Contains(r.Diagnostics.Err().Error(), "plugin panicked: boom") {
		t.Errorf("diagnostics %v", r.Diagnostics)
	}
	got := policyFromPB(policyToPB(rc.Policy))
	if got.Profile.MinVersion() != tlsprofile.VersionTLS13 || !got.InMTLSScope("a") || got.Rotation.AlertAt[0] != 7*24*time.Hour {
		t.Errorf("policy round trip %+v", got)
	}
	if r, _ := c.Render(context.Background(), rc); !strings.Contains(r.Diagnostics.Err().Error(), "does not support render") {
		t.Errorf("render on a verify-only plugin: %v", r.Diagnostics)
	}
}
