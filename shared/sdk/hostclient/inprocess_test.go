package hostclient

import (
	"context"
	"reflect"
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

type describing struct{ panicky }

func (describing) Verify(_ context.Context, _ sdk.VerifyRequest, r *sdk.VerifyResponse) {
	r.Checks = append(r.Checks, sdk.Check{ID: "tls.enabled", Status: 1, Subject: "a:1", Evidence: "ok"})
	r.Endpoints = []sdk.EndpointScan{{Name: "a", Address: "127.0.0.1:1", Dialect: "tls",
		Versions: []sdk.VersionObservation{{Version: "TLSv1.2", Outcome: "accepted", Evidence: "e", SuitesIncomplete: "s"}},
		Suites:   []sdk.SuiteObservation{{Version: "TLSv1.2", ID: 0xC02B, Name: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}},
		Groups:   []string{"x25519"}, GroupsIncomplete: "g", ChainDER: [][]byte{{0x30, 0x01}}, TrustChecked: true, TrustError: "t",
		ClientCertRequested: true, NoClientCert: "refused", Plaintext: "refused", Inconclusive: 2}}
}

// The endpoint scans cross the wire field for field.
func TestEndpointScansRoundTrip(t *testing.T) {
	c := InProcess(describing{})
	defer c.Close()
	rc := sdk.RequestContext{Policy: sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Modern()}, Target: sdk.NewTarget("a", []byte(`{}`), []byte(`{}`), nil)}
	r, err := c.Verify(context.Background(), rc)
	if err != nil {
		t.Fatal(err)
	}
	var want sdk.VerifyResponse
	describing{}.Verify(context.Background(), sdk.VerifyRequest{}, &want)
	if len(r.Endpoints) != 1 || !reflect.DeepEqual(r.Endpoints, want.Endpoints) {
		t.Fatalf("endpoints after the wire:\n%+v\nwant\n%+v", r.Endpoints, want.Endpoints)
	}
}
