package probe

import (
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
)

// A CA bundle with a block that does not decode is refused, not trusted as
// far as it parses: verify would otherwise judge the server against a CA
// set nobody configured.
func TestForRequestRefusesABrokenCABundle(t *testing.T) {
	good := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: newPKI(t, time.Hour).server.Certificate[0]})
	for name, bundle := range map[string][]byte{
		"garbage":               []byte("not a certificate"),
		"truncated after valid": append(append([]byte{}, good...), good[:len(good)/2]...),
	} {
		q := sdk.RequestContext{Certificates: sdk.Certificates{CABundlePEM: bundle}}
		if _, _, err := ForRequest(q, TLS); err == nil || !strings.Contains(err.Error(), "CA bundle") {
			t.Errorf("%s: %v, want an error naming the CA bundle", name, err)
		}
	}
	q := sdk.RequestContext{Certificates: sdk.Certificates{CABundlePEM: good}}
	if tg, _, err := ForRequest(q, TLS); err != nil || tg.RootCAs == nil {
		t.Errorf("good bundle: %v", err)
	}
}
