package tlsprofile

import (
	"fmt"
	"strconv"
	"strings"
)

// Suite describes one TLS cipher suite (registry_gen.go lists them all).
type Suite struct {
	ID uint16
	// IANA name; also the JSSE (Java) name.
	IANA string
	// OpenSSL name.
	OpenSSL string
	// TLS13 is true for TLS 1.3 suites, which have no key exchange or auth part.
	TLS13 bool
	// Kx, Au, Enc, Mac as OpenSSL describes them (Kx=ECDH, Enc=AESGCM(128), Mac=AEAD).
	Kx, Au, Enc, Mac string
}

// AEAD reports an authenticated-encryption suite (GCM, CCM, ChaCha20-Poly1305).
func (s Suite) AEAD() bool { return s.Mac == "AEAD" }

// Anonymous reports a suite without server authentication.
func (s Suite) Anonymous() bool { return s.Au == "None" }

// All returns every known suite, ordered by id.
func All() []Suite { return append([]Suite(nil), registry...) }

var (
	byID   = map[uint16]Suite{}
	byName = map[string]Suite{}
)

func init() {
	for _, s := range registry {
		byID[s.ID] = s
		byName[strings.ToUpper(s.IANA)] = s
		if s.OpenSSL != "" {
			byName[strings.ToUpper(s.OpenSSL)] = s
		}
	}
}

// SuiteByID returns the suite with the IANA id.
func SuiteByID(id uint16) (Suite, bool) {
	s, ok := byID[id]
	return s, ok
}

// LookupSuite finds a suite by IANA name, OpenSSL name or hex id ("0xC02B").
func LookupSuite(name string) (Suite, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if s, ok := byName[n]; ok {
		return s, nil
	}
	if strings.HasPrefix(n, "0X") {
		if v, err := strconv.ParseUint(n[2:], 16, 16); err == nil {
			if s, ok := byID[uint16(v)]; ok {
				return s, nil
			}
		}
	}
	return Suite{}, fmt.Errorf("unknown cipher suite %q (use an IANA name such as TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, an OpenSSL name or a hex id)", name)
}

// HexID formats an IANA id as "0xC02B".
func HexID(id uint16) string { return fmt.Sprintf("0x%04X", id) }
