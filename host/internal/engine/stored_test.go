package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/harden-dev/harden/host/internal/policy"
)

// verify never issues: nothing stored is "no certificate", but a stored
// certificate that cannot be read is an error naming it, not a verify that
// silently runs without harden's certificate.
func TestVerifyStoredCertificateUnreadable(t *testing.T) {
	e := &Engine{NoIssue: true}
	pol := &policy.Policy{}
	tgt := policy.Target{Name: "warehouse-pg"}
	dir := t.TempDir()
	chain, key, err := e.storedOrIssued(pol, tgt, dir, "client", "client", "harden-admin", nil, nil, nil)
	if err != nil || chain != nil || key != nil {
		t.Fatalf("nothing stored: %v %v %v", chain, key, err)
	}
	// A directory where the certificate file belongs: unreadable, even as root.
	if err := os.Mkdir(filepath.Join(dir, "client.pem"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "client-key.pem"), []byte("x"), 0o600)
	_, _, err = e.storedOrIssued(pol, tgt, dir, "client", "client", "harden-admin", nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "client.pem") || !strings.Contains(err.Error(), "warehouse-pg") {
		t.Errorf("unreadable stored certificate: %v", err)
	}
}
