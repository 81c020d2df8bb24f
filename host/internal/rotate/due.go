package rotate

import (
	"crypto/x509"
	"fmt"
	"time"

	"github.com/harden-dev/harden/host/internal/certstore"
	"github.com/harden-dev/harden/shared/sdk"
)

// Due says why a stored pair must be renewed now, "" when it need not be:
// nothing stored, not a pair, not valid now (expired or not yet valid),
// not chaining to the issuer's current CA, missing a name the target needs,
// or within renewBefore of its end.
func Due(p certstore.Pair, w certstore.Want, renewBefore time.Duration, now time.Time) string {
	if len(p.Chain) == 0 && len(p.Key) == 0 {
		return "no certificate stored"
	}
	if !p.Valid() {
		return "certificate and key do not match"
	}
	certs, err := sdk.ParseCertificatesPEM(p.Chain)
	if err != nil || len(certs) == 0 {
		return "unreadable certificate"
	}
	leaf := certs[0]
	switch {
	case !now.Before(leaf.NotAfter):
		return fmt.Sprintf("expired on %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return fmt.Sprintf("not valid before %s (check the clocks)", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if why := certstore.Stale(p.Chain, p.Key, w.CAPEM, w.Names, renewBefore, now); why != "" {
		if why == "within renew_before of its end" {
			return fmt.Sprintf("within renew_before (%s) of its end on %s", renewBefore, leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		return why
	}
	return ""
}

// Leaf is the first certificate of a pair (nil when there is none).
func Leaf(p certstore.Pair) *x509.Certificate {
	certs, err := sdk.ParseCertificatesPEM(p.Chain)
	if err != nil || len(certs) == 0 {
		return nil
	}
	return certs[0]
}
