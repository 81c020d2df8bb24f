package main

import (
	"fmt"
	"testing"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/shared/sdk/sdktest"
	"github.com/harden-dev/harden/testenv"
)

// BenchmarkVerifyIngest: one full verify of the ingest API as testenv runs
// it under the mTLS scope (probe scan with the client-certificate
// attempts, the security headers over a session with harden's
// certificate, the declared plaintext port) through the real gRPC path;
// every check must pass but the plaintext port's. Reference in the same
// run: sslscan on the same TLS port (protocols and suites only).
func BenchmarkVerifyIngest(b *testing.B) {
	ca, err := testenv.NewCA(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	certFile, keyFile, err := ca.Issue("harden-admin", true)
	if err != nil {
		b.Fatal(err)
	}
	chain, _ := sdk.ReadFile(certFile)
	key, _ := sdk.ReadFile(keyFile)
	ing := testenv.IngestForTest(b, ca.CertFile)
	conn := ingestConn(ing)
	conn["plaintext_addresses"] = []string{ing.PlaintextAddress}
	rc := request(b, "ingest", conn, sdk.Certificates{ClientChainPEM: chain, ClientKeyPEM: key}, true)
	client := hostclient.InProcess(service{})
	defer client.Close()
	sdktest.BenchVerify(b, client, rc, func(r sdk.VerifyResponse) error {
		for _, c := range r.Checks {
			if (c.ID == checkPlaintextRefused) != (c.Status != sdk.StatusPass) {
				return fmt.Errorf("%s %s = %s: %s", c.ID, c.Subject, c.Status, c.Evidence)
			}
		}
		return nil
	}, ing.TLSAddress)
}
