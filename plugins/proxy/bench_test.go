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

// BenchmarkVerifyProxy is one whole verify of the applied nginx route
// through the plugin's gRPC path — the front's scan and headers, the
// backend's scan with its plaintext request, the decoy proof, nginx -t
// and nginx -T — with sslscan of the front alone as the reference
// measured in the same run (issue 16: at most 0.5 s median on 2 cores).
//
//	CI=true go test ./plugins/proxy -run XXX -bench VerifyProxy -benchtime 20x
func BenchmarkVerifyProxy(b *testing.B) {
	n := testenv.NginxForTest(b)
	q := nginxRequest(b, n, false, nil)
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
	}, n.Front)
}
