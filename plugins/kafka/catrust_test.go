package main

import (
	"context"
	"strings"
	"testing"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
)

// A policy CA bundle that does not parse is named: verify says so in a
// diagnostic (and, when the probe kit could still use part of it, reports
// its checks, none passing), and the probe identity is not checked against
// whatever part of it parsed. A bundle without any certificate is refused
// by probe.ForRequest before any check (as before).
func TestGarbageCABundleIsNamed(t *testing.T) {
	client := hostclient.InProcess(kafka{})
	defer client.Close()
	good := mtlsRequest(t, nil).Certificates.CABundlePEM
	for name, tc := range map[string]struct {
		bundle     []byte
		want       string
		wantChecks bool
	}{
		"not PEM":                     {[]byte("not a certificate\n"), "no PEM certificates found", false},
		"truncated after a valid one": {append(append([]byte{}, good...), "-----BEGIN CERTIFICATE-----\nMIIB\n"...), "a PEM block does not decode", false},
	} {
		t.Run(name, func(t *testing.T) {
			rc := mtlsRequest(t, map[string]any{"bootstrap": []string{closedPort(t)}})
			rc.Certificates.CABundlePEM = tc.bundle
			r, err := client.Verify(context.Background(), rc)
			if err != nil {
				t.Fatal(err)
			}
			if msg := errText(r.Diagnostics.Err()); !strings.Contains(msg, "the policy's CA bundle: "+tc.want) {
				t.Errorf("verify diagnostics %q, want them to name the policy's CA bundle and say %q", msg, tc.want)
			}
			if tc.wantChecks && len(r.Checks) == 0 {
				t.Error("verify reported no checks")
			}
			for _, c := range r.Checks {
				if c.Status == checks.Pass {
					t.Errorf("%s passed: %s", c.ID, c.Evidence)
				}
			}
			withProbe := rc
			withProbe.Target = sdk.NewTarget("events", []byte(`{"bootstrap":["127.0.0.1:1"]}`), []byte(`{}`),
				map[string][]byte{"probe_credentials": append(append([]byte{}, rc.Certificates.ChainPEM...), rc.Certificates.KeyPEM...)})
			if pi := probeIdentityOf(withProbe); !strings.Contains(pi.problem, "the policy's CA bundle") || !strings.Contains(pi.problem, tc.want) {
				t.Errorf("probe identity problem %q, want it to name the policy's CA bundle and say %q", pi.problem, tc.want)
			}
		})
	}
	// Control: with the CA the probe identity is checked and usable.
	rc := mtlsRequest(t, nil)
	rc.Certificates.ClientChainPEM, rc.Certificates.ClientKeyPEM = nil, nil
	rc.Target = sdk.NewTarget("events", []byte(`{"bootstrap":["127.0.0.1:1"]}`), []byte(`{}`),
		map[string][]byte{"probe_credentials": append(append([]byte{}, rc.Certificates.ChainPEM...), rc.Certificates.KeyPEM...)})
	if pi := probeIdentityOf(rc); pi.cert == nil || strings.Contains(pi.problem, "CA bundle") {
		t.Errorf("control: probe identity %+v", pi)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
