package tlsprofile

import (
	"fmt"
	"slices"
	"strings"
)

// Guideline names the source of the built-in profiles' facts.
const Guideline = "mozilla-server-side-tls-6.0"

// Protocol versions as on the wire.
const (
	VersionSSL30 uint16 = 0x0300
	VersionTLS10 uint16 = 0x0301
	VersionTLS11 uint16 = 0x0302
	VersionTLS12 uint16 = 0x0303
	VersionTLS13 uint16 = 0x0304
)

var versionNames = []struct {
	v    uint16
	name string
}{
	{VersionSSL30, "SSLv3"}, {VersionTLS10, "TLSv1"}, {VersionTLS11, "TLSv1.1"},
	{VersionTLS12, "TLSv1.2"}, {VersionTLS13, "TLSv1.3"},
}

// VersionName returns "TLSv1.2" style names (OpenSSL/PostgreSQL spelling).
func VersionName(v uint16) string {
	for _, n := range versionNames {
		if n.v == v {
			return n.name
		}
	}
	return fmt.Sprintf("0x%04X", v)
}

// ParseVersion accepts "TLSv1.2", "TLS1.2", "1.2", "TLSv1" and "SSLv3".
func ParseVersion(s string) (uint16, error) {
	n := strings.ToLower(strings.TrimSpace(s))
	n = strings.TrimPrefix(strings.TrimPrefix(n, "tlsv"), "tls")
	switch n {
	case "1", "1.0":
		return VersionTLS10, nil
	case "1.1":
		return VersionTLS11, nil
	case "1.2":
		return VersionTLS12, nil
	case "1.3":
		return VersionTLS13, nil
	case "sslv3", "ssl3":
		return VersionSSL30, nil
	}
	return 0, fmt.Errorf("unknown TLS version %q (want TLSv1.2 or TLSv1.3)", s)
}

// Profile is the complete set of TLS facts a target must enforce.
type Profile struct {
	Name      string
	Guideline string
	// Versions accepted, ascending.
	Versions []uint16
	// TLS12Suites are IANA ids for TLS 1.2 (and below), in preference order.
	TLS12Suites []uint16
	TLS13Suites []uint16
	// Groups by IANA name, in preference order.
	Groups                      []string
	CertificateTypes            []string
	CertificateCurves           []string
	MaxCertificateLifespanDays  int
	RecommendedCertLifespanDays int
	ServerPreferredOrder        bool
	RSAMinKeyBits               int
	ECDHMinBits                 int
	// StrictGroups: a server may accept only the listed groups, not also
	// stronger ones (see GroupVerdict).
	StrictGroups bool
	// InsecureReason is set when the operator accepted a weakening.
	InsecureReason string
}

// MinVersion is the lowest accepted version.
func (p Profile) MinVersion() uint16 { return slices.Min(p.Versions) }

// MaxVersion is the highest accepted version.
func (p Profile) MaxVersion() uint16 { return slices.Max(p.Versions) }

// AllowsVersion reports whether v is accepted.
func (p Profile) AllowsVersion(v uint16) bool { return slices.Contains(p.Versions, v) }

// AllowsSuite reports whether the suite id is accepted for its protocol family.
func (p Profile) AllowsSuite(id uint16) bool {
	return slices.Contains(p.TLS12Suites, id) || slices.Contains(p.TLS13Suites, id)
}

// OpenSSLCipherList renders TLS 1.2 suites as an OpenSSL cipher string. It is
// never TLS 1.3 names (OpenSSL rejects those in cipher lists).
func (p Profile) OpenSSLCipherList() string {
	var names []string
	for _, id := range p.TLS12Suites {
		if s, ok := byID[id]; ok && s.OpenSSL != "" {
			names = append(names, s.OpenSSL)
		}
	}
	return strings.Join(names, ":")
}

// Modern is Mozilla Server Side TLS 6.0 "modern": TLS 1.3 only, ECDSA certificates.
func Modern() Profile {
	return Profile{
		Name:                        "modern",
		Guideline:                   Guideline,
		Versions:                    []uint16{VersionTLS13},
		TLS13Suites:                 []uint16{0x1301, 0x1302, 0x1303},
		Groups:                      []string{"X25519MLKEM768", "x25519", "secp256r1", "secp384r1"},
		CertificateTypes:            []string{"ecdsa"},
		CertificateCurves:           []string{"prime256v1", "secp384r1"},
		MaxCertificateLifespanDays:  90,
		RecommendedCertLifespanDays: 90,
		ServerPreferredOrder:        false,
		ECDHMinBits:                 256,
	}
}

// Intermediate is Mozilla Server Side TLS 6.0 "intermediate": TLS 1.2 and 1.3,
// six ECDHE AEAD suites for TLS 1.2, ECDSA or RSA (>= 2048 bit) certificates.
func Intermediate() Profile {
	return Profile{
		Name:                        "intermediate",
		Guideline:                   Guideline,
		Versions:                    []uint16{VersionTLS12, VersionTLS13},
		TLS12Suites:                 []uint16{0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8},
		TLS13Suites:                 []uint16{0x1301, 0x1302, 0x1303},
		Groups:                      []string{"X25519MLKEM768", "x25519", "secp256r1", "secp384r1"},
		CertificateTypes:            []string{"ecdsa", "rsa"},
		CertificateCurves:           []string{"prime256v1", "secp384r1"},
		MaxCertificateLifespanDays:  366,
		RecommendedCertLifespanDays: 90,
		ServerPreferredOrder:        false,
		RSAMinKeyBits:               2048,
		ECDHMinBits:                 256,
	}
}

// Named returns a built-in profile by name.
func Named(name string) (Profile, bool) {
	switch name {
	case "modern":
		return Modern(), true
	case "intermediate":
		return Intermediate(), true
	}
	return Profile{}, false
}

// Names lists the built-in profile names.
func Names() []string { return []string{"modern", "intermediate"} }

// Overrides adjusts a base profile. Nil/empty fields keep the base value.
type Overrides struct {
	MinVersion                 string
	MaxVersion                 string
	TLS12Ciphers               []string
	TLS13Ciphers               []string
	Groups                     []string
	CertificateTypes           []string
	MaxCertificateLifespanDays int
	ServerPreferredOrder       *bool
	// StrictGroups: accept only the listed groups (see GroupVerdict).
	StrictGroups *bool
}

// OverrideError names the override field that is wrong.
type OverrideError struct {
	Field string
	Err   error
}

func (e *OverrideError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *OverrideError) Unwrap() error { return e.Err }

// Weakening describes one way a custom profile is weaker than its base.
type Weakening struct {
	Field  string
	Reason string
}

// Customize applies overrides to base and returns the profile and every
// weakening relative to the base. The caller decides whether weakenings are
// allowed (policy: only with allow_insecure).
func Customize(base Profile, o Overrides) (Profile, []Weakening, error) {
	p := base
	p.Name = "custom"
	p.Versions = slices.Clone(base.Versions)
	var weak []Weakening
	if o.MinVersion != "" || o.MaxVersion != "" {
		lo, hi := base.MinVersion(), base.MaxVersion()
		if o.MinVersion != "" {
			v, err := ParseVersion(o.MinVersion)
			if err != nil {
				return Profile{}, nil, &OverrideError{"min_version", err}
			}
			lo = v
		}
		if o.MaxVersion != "" {
			v, err := ParseVersion(o.MaxVersion)
			if err != nil {
				return Profile{}, nil, &OverrideError{"max_version", err}
			}
			hi = v
		}
		if lo > hi {
			return Profile{}, nil, &OverrideError{"min_version", fmt.Errorf("%s is above max_version %s", VersionName(lo), VersionName(hi))}
		}
		p.Versions = nil
		for _, vn := range versionNames {
			if vn.v >= lo && vn.v <= hi {
				p.Versions = append(p.Versions, vn.v)
				if !base.AllowsVersion(vn.v) {
					weak = append(weak, Weakening{"min_version", VersionName(vn.v) + " is not allowed by the " + base.Name + " profile"})
				}
			}
		}
	}
	if o.TLS12Ciphers != nil {
		ids, w, err := customSuites("tls12_ciphers", o.TLS12Ciphers, false, base.TLS12Suites, base.Name)
		if err != nil {
			return Profile{}, nil, err
		}
		p.TLS12Suites, weak = ids, append(weak, w...)
	}
	if o.TLS13Ciphers != nil {
		ids, w, err := customSuites("tls13_ciphers", o.TLS13Ciphers, true, base.TLS13Suites, base.Name)
		if err != nil {
			return Profile{}, nil, err
		}
		p.TLS13Suites, weak = ids, append(weak, w...)
	}
	if p.AllowsVersion(VersionTLS12) && len(p.TLS12Suites) == 0 {
		if !base.AllowsVersion(VersionTLS12) {
			return Profile{}, nil, &OverrideError{"tls12_ciphers", fmt.Errorf("TLS 1.2 is enabled but no TLS 1.2 cipher suites are listed")}
		}
	}
	if o.Groups != nil {
		for _, g := range o.Groups {
			// A group at least as strong as the base's weakest is no
			// weakening (GroupVerdict); anything else needs allow_insecure.
			if ok, why := base.GroupVerdict(g); !ok {
				weak = append(weak, Weakening{"groups", "group " + g + ": " + why})
			}
		}
		p.Groups = slices.Clone(o.Groups)
	}
	if o.CertificateTypes != nil {
		for _, t := range o.CertificateTypes {
			if t != "rsa" && t != "ecdsa" && t != "ed25519" {
				return Profile{}, nil, &OverrideError{"certificate_types", fmt.Errorf("unknown certificate type %q (want ecdsa, rsa or ed25519)", t)}
			}
			if !slices.Contains(base.CertificateTypes, t) {
				weak = append(weak, Weakening{"certificate_types", t + " certificates are not in the " + base.Name + " profile"})
			}
		}
		p.CertificateTypes = slices.Clone(o.CertificateTypes)
	}
	if o.MaxCertificateLifespanDays != 0 {
		if o.MaxCertificateLifespanDays > base.MaxCertificateLifespanDays {
			weak = append(weak, Weakening{"max_certificate_lifespan", fmt.Sprintf("%d days exceeds the %s maximum of %d days", o.MaxCertificateLifespanDays, base.Name, base.MaxCertificateLifespanDays)})
		}
		p.MaxCertificateLifespanDays = o.MaxCertificateLifespanDays
	}
	if o.StrictGroups != nil {
		p.StrictGroups = *o.StrictGroups
	}
	if o.ServerPreferredOrder != nil {
		p.ServerPreferredOrder = *o.ServerPreferredOrder
	}
	return p, weak, nil
}

func customSuites(field string, names []string, tls13 bool, base []uint16, baseName string) ([]uint16, []Weakening, error) {
	var ids []uint16
	var weak []Weakening
	for _, n := range names {
		s, err := LookupSuite(n)
		if err != nil {
			return nil, nil, &OverrideError{field, err}
		}
		if s.TLS13 != tls13 {
			other := "tls12_ciphers"
			if s.TLS13 {
				other = "tls13_ciphers"
			}
			return nil, nil, &OverrideError{field, fmt.Errorf("%s is a %s suite; list it under %s", s.IANA, map[bool]string{true: "TLS 1.3", false: "TLS 1.2"}[s.TLS13], other)}
		}
		if slices.Contains(ids, s.ID) {
			continue
		}
		ids = append(ids, s.ID)
		if !slices.Contains(base, s.ID) {
			weak = append(weak, Weakening{field, s.IANA + " is not in the " + baseName + " profile"})
		}
	}
	return ids, weak, nil
}
