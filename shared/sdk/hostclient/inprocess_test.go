package hostclient

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

type panicky struct{}

func (panicky) Metadata(context.Context, sdk.MetadataRequest, *sdk.MetadataResponse) {}
func (panicky) Schema(context.Context, sdk.SchemaRequest, *sdk.SchemaResponse)       {}
func (panicky) Verify(context.Context, sdk.VerifyRequest, *sdk.VerifyResponse)       { panic("boom") }

// The wire round trip keeps the policy context, and a panicking plugin
// method becomes a diagnostic instead of killing the process.
func TestInProcessRoundTrip(t *testing.T) {
	c := InProcess(panicky{})
	defer c.Close()
	rc := sdk.RequestContext{Policy: sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Modern(), MTLSScope: []string{"a"},
		Rotation: sdk.Rotation{MaxLifetime: 90 * 24 * time.Hour, AlertAt: []time.Duration{7 * 24 * time.Hour}}},
		Target: sdk.NewTarget("a", []byte(`{}`), []byte(`{}`), nil)}
	r, err := c.Verify(context.Background(), rc)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Diagnostics.HasError() || !strings.Contains(r.Diagnostics.Err().Error(), "plugin panicked: boom") {
		t.Errorf("diagnostics %v", r.Diagnostics)
	}
	if r, _ := c.Render(context.Background(), rc); !strings.Contains(r.Diagnostics.Err().Error(), "does not support render") {
		t.Errorf("render on a verify-only plugin: %v", r.Diagnostics)
	}
}
