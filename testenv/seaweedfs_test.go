package testenv

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"

	"github.com/harden-dev/harden/shared/tlsprofile"
)

// weed fails to start (glog.Fatalf) on a suite name crypto/tls does not
// know: every name in security.toml must be one of tls.CipherSuites(), and
// together they must be the profile's TLS 1.2 suites.
func TestWeedSecurityTOMLNamesGoSuites(t *testing.T) {
	toml := weedSecurityTOML()
	if !strings.Contains(toml, "[tls]\nmin_version = \"TLS 1.2\"\n") {
		t.Fatalf("no TLS 1.2 minimum in:\n%s", toml)
	}
	_, list, ok := strings.Cut(toml, "cipher_suites = \"")
	if !ok {
		t.Fatalf("no cipher_suites in:\n%s", toml)
	}
	list, _, _ = strings.Cut(list, "\"")
	var ids []uint16
	for _, name := range strings.Split(list, ",") {
		i := slices.IndexFunc(tls.CipherSuites(), func(s *tls.CipherSuite) bool { return s.Name == name })
		if i < 0 {
			t.Fatalf("weed would refuse suite %q (not in tls.CipherSuites)", name)
		}
		ids = append(ids, tls.CipherSuites()[i].ID)
	}
	if want := tlsprofile.Intermediate().TLS12Suites; !slices.Equal(ids, want) {
		t.Fatalf("suites %x, want the profile's %x", ids, want)
	}
}
