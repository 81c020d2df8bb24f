package tlsprofile

import (
	"strings"
	"testing"
)

func TestGroupVerdict(t *testing.T) {
	p := Intermediate()
	for _, c := range []struct {
		group string
		ok    bool
		why   string
	}{
		{"x25519", true, ""},
		{"X25519MLKEM768", true, ""},
		{"secp521r1", true, "256-bit security, at least its weakest group's"},
		{"SecP256r1MLKEM768", true, "not a weakness"},
		{"x448", true, "224-bit"},
		{"ffdhe3072", true, "128-bit"},
		{"ffdhe2048", false, "weaker than its groups (112-bit"},
		{"secp224r1", false, "unknown or deprecated"},
		{"secp256k1", false, "unknown or deprecated"},
		{"brainpoolP256r1", false, "unknown or deprecated"},
		{"brainpoolP256r1tls13", true, "128-bit"},
		{"0x0009", false, "unknown or deprecated"},
	} {
		ok, why := p.GroupVerdict(c.group)
		if ok != c.ok || !strings.Contains(why, c.why) {
			t.Errorf("%s: ok=%v %q, want ok=%v containing %q", c.group, ok, why, c.ok, c.why)
		}
	}
	pq := p
	pq.Groups = []string{"X25519MLKEM768"}
	for g, ok := range map[string]bool{"x25519": false, "secp521r1": false, "ffdhe3072": false, "SecP384r1MLKEM1024": true, "SecP256r1MLKEM768": true} {
		if got, why := pq.GroupVerdict(g); got != ok {
			t.Errorf("post-quantum-only profile: %s ok=%v (%s), want %v", g, got, why, ok)
		}
	}
	p.StrictGroups = true
	if ok, why := p.GroupVerdict("secp521r1"); ok || !strings.Contains(why, "strict_groups") {
		t.Errorf("strict: secp521r1 ok=%v %q", ok, why)
	}
	if ok, _ := p.GroupVerdict("secp384r1"); !ok {
		t.Error("strict: a listed group refused")
	}
}

func TestCustomizeStrongerGroupIsNoWeakening(t *testing.T) {
	strict := true
	p, weak, err := Customize(Intermediate(), Overrides{Groups: []string{"x25519", "secp521r1"}, StrictGroups: &strict})
	if err != nil || len(weak) != 0 || !p.StrictGroups {
		t.Fatalf("stronger group: %v %v strict=%v", err, weak, p.StrictGroups)
	}
	if _, weak, _ := Customize(Intermediate(), Overrides{Groups: []string{"x25519", "ffdhe2048"}}); len(weak) != 1 {
		t.Fatalf("weaker group: weakenings %v, want one", weak)
	}
}
