package tlsprofile

import (
	"fmt"
	"strconv"
	"strings"
)

// Suite describes one TLS cipher suite.
type Suite struct {
	ID uint16
	// IANA name; also the JSSE (Java) name.
	IANA string
	// OpenSSL name ("" where OpenSSL has none).
	OpenSSL string
	// TLS13 is true for TLS 1.3 suites, which have no key exchange or auth part.
	TLS13 bool
	// AEAD and ForwardSecret describe the suite's strength; Profile weakening
	// checks use them.
	AEAD          bool
	ForwardSecret bool
}

// suites lists the suites harden names in profiles and reports. The probe
// engine keeps its own, larger table for enumeration; this one only needs the
// suites an operator may name in a policy.
var suites = []Suite{
	{0x1301, "TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256", true, true, true},
	{0x1302, "TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384", true, true, true},
	{0x1303, "TLS_CHACHA20_POLY1305_SHA256", "TLS_CHACHA20_POLY1305_SHA256", true, true, true},
	{0x1304, "TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_SHA256", true, true, true},
	{0x1305, "TLS_AES_128_CCM_8_SHA256", "TLS_AES_128_CCM_8_SHA256", true, true, true},
	{0xC02B, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256", false, true, true},
	{0xC02F, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256", false, true, true},
	{0xC02C, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384", false, true, true},
	{0xC030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384", false, true, true},
	{0xCCA9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305", false, true, true},
	{0xCCA8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305", false, true, true},
	{0x009E, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "DHE-RSA-AES128-GCM-SHA256", false, true, true},
	{0x009F, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", "DHE-RSA-AES256-GCM-SHA384", false, true, true},
	{0xCCAA, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "DHE-RSA-CHACHA20-POLY1305", false, true, true},
	{0xC0AC, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM", "ECDHE-ECDSA-AES128-CCM", false, true, true},
	{0xC0AD, "TLS_ECDHE_ECDSA_WITH_AES_256_CCM", "ECDHE-ECDSA-AES256-CCM", false, true, true},
	{0xC023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE-ECDSA-AES128-SHA256", false, false, true},
	{0xC027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA-AES128-SHA256", false, false, true},
	{0xC024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", "ECDHE-ECDSA-AES256-SHA384", false, false, true},
	{0xC028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", "ECDHE-RSA-AES256-SHA384", false, false, true},
	{0xC009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA", false, false, true},
	{0xC013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA", false, false, true},
	{0xC00A, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA", false, false, true},
	{0xC014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA", false, false, true},
	{0x009C, "TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256", false, true, false},
	{0x009D, "TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384", false, true, false},
	{0x003C, "TLS_RSA_WITH_AES_128_CBC_SHA256", "AES128-SHA256", false, false, false},
	{0x003D, "TLS_RSA_WITH_AES_256_CBC_SHA256", "AES256-SHA256", false, false, false},
	{0x002F, "TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA", false, false, false},
	{0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA", false, false, false},
	{0x000A, "TLS_RSA_WITH_3DES_EDE_CBC_SHA", "DES-CBC3-SHA", false, false, false},
	{0x0005, "TLS_RSA_WITH_RC4_128_SHA", "RC4-SHA", false, false, false},
}

var (
	byID   = map[uint16]Suite{}
	byName = map[string]Suite{}
)

func init() {
	for _, s := range suites {
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
