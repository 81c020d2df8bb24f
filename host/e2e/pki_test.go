package e2e

import (
	"testing"

	"github.com/harden-dev/harden/testenv"
)

// writeTestPKI writes a throwaway CA and a server certificate for 127.0.0.1.
func writeTestPKI(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	ca, err := testenv.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err = ca.Issue("echo", false, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return ca.CertFile, certFile, keyFile
}
