package tlsprofile

import (
	"fmt"
	"slices"
)

// groupSecurity is each named group's classical security level in bits
// (NIST SP 800-57 Part 1 Table 2 for the curves and finite-field groups;
// a hybrid with ML-KEM counts its classical half, the post-quantum half
// only adds to it). Groups TLS deprecated (RFC 8446 §4.2.7 leaves them
// out: secp256k1, secp224r1 (RFC 8422 §5.1.1), the TLS 1.2 brainpool code
// points RFC 8446 marks obsolete (their RFC 8734 TLS 1.3 ones stay), the
// binary and smaller curves) are absent: never acceptable, whatever their
// size. FFDHE groups of 3072 bits and more are strong, if costly for the
// server: acceptable beside the profile's, not recommended by it.
var groupSecurity = map[string]int{
	"X25519MLKEM768": 128, "SecP256r1MLKEM768": 128, "SecP384r1MLKEM1024": 192,
	"x25519": 128, "x448": 224,
	"secp256r1": 128, "secp384r1": 192, "secp521r1": 256,
	"brainpoolP256r1tls13": 128, "brainpoolP384r1tls13": 192, "brainpoolP512r1tls13": 256,
	"ffdhe2048": 112, "ffdhe3072": 128, "ffdhe4096": 152, "ffdhe6144": 176, "ffdhe8192": 200,
}

// postQuantum are the hybrids with ML-KEM: a profile that lists only
// those wants post-quantum key exchange, which no classical group gives
// whatever its size.
var postQuantum = map[string]bool{"X25519MLKEM768": true, "SecP256r1MLKEM768": true, "SecP384r1MLKEM1024": true}

// GroupSecurityBits is a group's security level in bits (false: unknown
// or deprecated for TLS).
func GroupSecurityBits(name string) (int, bool) {
	b, ok := groupSecurity[name]
	return b, ok
}

// GroupVerdict says whether a server may accept the named group under p.
// The profile's groups are what harden configures and recommends; a group
// outside that list is acceptable only when it is at least as strong as
// the profile's weakest group (P-521 beside P-384, a post-quantum hybrid):
// a server that also accepts a stronger group is not weakened by it, and
// servers without a group setting (Go's default list: Vault, SeaweedFS)
// accept P-521. StrictGroups turns that off. Weaker, deprecated and
// unknown groups are never acceptable. why explains a group outside the
// list ("" for one in it).
func (p Profile) GroupVerdict(name string) (ok bool, why string) {
	if slices.Contains(p.Groups, name) {
		return true, ""
	}
	floor, floorName, pqOnly := 0, "", len(p.Groups) > 0
	for _, g := range p.Groups {
		if b, known := groupSecurity[g]; known && (floorName == "" || b < floor) {
			floor, floorName = b, g
		}
		pqOnly = pqOnly && postQuantum[g]
	}
	bits, known := groupSecurity[name]
	switch {
	case !known:
		return false, fmt.Sprintf("outside the %s profile, unknown or deprecated for TLS", p.Name)
	case p.StrictGroups:
		return false, fmt.Sprintf("outside the %s profile (strict_groups)", p.Name)
	case pqOnly && !postQuantum[name]:
		return false, fmt.Sprintf("outside the %s profile, which lists only post-quantum hybrids: a classical group is no substitute", p.Name)
	case floorName == "" || bits < floor:
		return false, fmt.Sprintf("outside the %s profile and weaker than its groups (%d-bit security)", p.Name, bits)
	}
	return true, fmt.Sprintf("not in the %s profile's list, but %d-bit security, at least its weakest group's (%s, %d-bit): not a weakness", p.Name, bits, floorName, floor)
}
