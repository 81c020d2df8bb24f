package main

import (
	"fmt"
	"testing"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/shared/sdk/sdktest"
	"github.com/harden-dev/harden/testenv"
)

// BenchmarkVerifyHAProxy is one whole verify of the applied HAProxy route
// in front of SeaweedFS's S3 through the plugin's gRPC path — the front's
// scan and headers, weed's scan with its plaintext request, the decoy
// proof, haproxy -c and the cfg files' route facts — with sslscan of the
// front alone as the reference measured in the same run (issue 16: at
// most 0.5 s median on 2 cores).
//
//	CI=true go test ./plugins/proxy -run XXX -bench VerifyHAProxy -benchtime 20x
func BenchmarkVerifyHAProxy(b *testing.B) {
	h := testenv.HAProxyForTest(b, nil)
	q := haproxyRequest(b, h, false, nil)
	var ar sdk.ApplyResponse
	proxyTLS{}.Apply(b.Context(), sdk.ApplyRequest{RequestContext: q}, &ar)
	if ar.Diagnostics.HasError() {
		b.Fatal(ar.Diagnostics)
	}
	client := hostclient.InProcess(proxyTLS{})
	defer client.Close()
	sdktest.BenchVerify(b, client, q, func(r sdk.VerifyResponse) error {
		for _, c := range r.Checks {
			if c.Status != checks.Pass {
				return fmt.Errorf("%s (%s) = %s: %s", c.ID, c.Subject, c.Status, c.Evidence)
			}
		}
		return nil
	}, h.Front)
}
