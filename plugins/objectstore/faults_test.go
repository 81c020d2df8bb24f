package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/faultkit"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/testenv"
)

// The whole verify, against a real SeaweedFS in its "before" state (no
// default encryption, no deny policy), directly and through every fault of
// the standard matrix in front of its HTTPS S3 endpoint (the API and the
// listener scan), then through every fault in front of its plaintext
// endpoint: no check that fails (or errors) directly passes through a
// fault or vanishes. In particular a plaintext port that resets, stalls,
// closes or answers garbage is no refusal of plaintext.
func TestVerifyNeverPassesThroughFaults(t *testing.T) {
	s := testenv.SeaweedFSForTest(t)
	t.Cleanup(probe.WithDefaultTimeout(time.Second))
	plugin := hostclient.InProcess(objectStore{})
	defer plugin.Close()
	base := s3Request(t, s, s.AccessKeyFile, s.SecretKeyFile)
	verifyAt := func(ctx context.Context, https, http string) ([]checks.Check, error) {
		var conn map[string]any
		_ = json.Unmarshal(base.Target.Connection, &conn)
		conn["endpoint"], conn["http_endpoint"] = "https://"+https, "http://"+http
		cj, _ := json.Marshal(conn)
		rc := base
		rc.Target = sdk.NewTarget("lake", cj, base.Target.Spec, map[string][]byte{"access_key": readKey(t, s.AccessKeyFile), "secret_key": readKey(t, s.SecretKeyFile)})
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		r, err := plugin.Verify(ctx, rc)
		if err == nil && r.Diagnostics.HasError() {
			err = r.Diagnostics.Err()
		}
		return r.Checks, err
	}
	httpsUp, httpUp := strings.TrimPrefix(s.HTTPS, "https://"), strings.TrimPrefix(s.HTTP, "http://")
	direct := faultkit.NeverPasses(t, httpsUp, func(ctx context.Context, addr string) ([]checks.Check, error) {
		return verifyAt(ctx, addr, httpUp)
	}, faultkit.Standard(true)...)
	d := map[string]checks.Check{}
	for _, c := range direct {
		d[c.ID] = c
	}
	for _, id := range []string{"objectstore.encryption.default", "objectstore.policy.denies", "objectstore.http.refused", "objectstore.put.unencrypted_refused"} {
		if d[id].Status != checks.Fail {
			t.Errorf("direct %s = %s: %s", id, d[id].Status, d[id].Evidence)
		}
	}

	// The plaintext endpoint behind each fault, for every connection.
	for _, f := range faultkit.Faults {
		t.Run("http_endpoint_"+f.String(), func(t *testing.T) {
			p, err := faultkit.Start(httpUp, faultkit.Rule{Fault: f})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			through, err := verifyAt(context.Background(), httpsUp, p.Addr)
			if err != nil {
				t.Fatal(err)
			}
			if p.Faulted() == 0 {
				t.Fatalf("%s never fired", f)
			}
			for _, c := range through {
				if (c.ID == "objectstore.http.refused" || c.ID == "objectstore.policy.denies") && c.Status == checks.Pass {
					t.Errorf("%s passes with the plaintext endpoint behind %s: %s", c.ID, f, c.Evidence)
				}
			}
			if c := byIDChecks(through)["objectstore.http.refused"]; c.Status != checks.Error && c.Status != checks.Fail {
				t.Errorf("objectstore.http.refused behind %s: %s: %s", f, c.Status, c.Evidence)
			}
		})
	}
}

func byIDChecks(cs []checks.Check) map[string]checks.Check {
	out := map[string]checks.Check{}
	for _, c := range cs {
		out[c.ID] = c
	}
	return out
}
