package main

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/tlsprofile"
	"github.com/harden-dev/harden/testenv"
)

// nginxRequest is the request harden sends for testenv's ingest-proxy
// target (its generated policy block), with edit applied to the
// connection and spec blocks first.
func nginxRequest(t testing.TB, n *testenv.Nginx, mtls bool, edit func(conn, spec map[string]any)) sdk.RequestContext {
	t.Helper()
	tg := n.Target()
	conn, spec := tg["connection"].(map[string]any), tg["spec"].(map[string]any)
	if edit != nil {
		edit(conn, spec)
	}
	cj, _ := json.Marshal(conn)
	sj, _ := json.Marshal(spec)
	read := func(f string) []byte {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	certs := sdk.Certificates{ChainPEM: read(n.CertFile), KeyPEM: read(n.KeyFile), CABundlePEM: read(n.CAFile)}
	policy := sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate(), CertificateSource: "files",
		Rotation: sdk.Rotation{RenewBefore: 7 * 24 * time.Hour},
		Targets:  []sdk.TargetRef{{Name: "ingest-proxy", Plugin: "proxy", MTLS: mtls}}}
	if mtls {
		policy.MTLSScope = []string{"ingest-proxy"}
		cf, kf, err := n.CA.Issue("harden-client", true)
		if err != nil {
			t.Fatal(err)
		}
		certs.ClientChainPEM, certs.ClientKeyPEM = read(cf), read(kf)
	}
	return sdk.RequestContext{Policy: policy, Target: sdk.NewTarget("ingest-proxy", cj, sj, nil), Certificates: certs}
}

// byID indexes checks by ID and subject-free: the first check of each ID,
// and all of them.
func byID(cs []checks.Check) map[string][]checks.Check {
	out := map[string][]checks.Check{}
	for _, c := range cs {
		out[c.ID] = append(out[c.ID], c)
	}
	return out
}
