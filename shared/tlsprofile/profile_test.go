package tlsprofile

import (
	"strings"
	"testing"
)

func TestBuiltinProfilesMatchMozilla60(t *testing.T) {
	im := Intermediate()
	if im.MinVersion() != VersionTLS12 || im.MaxVersion() != VersionTLS13 || im.MaxCertificateLifespanDays != 366 || im.ServerPreferredOrder {
		t.Errorf("intermediate %+v", im)
	}
	want := []uint16{0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8}
	for i, id := range want {
		if im.TLS12Suites[i] != id {
			t.Errorf("intermediate suite %d = %s, want %s", i, HexID(im.TLS12Suites[i]), HexID(id))
		}
	}
	m := Modern()
	if m.MinVersion() != VersionTLS13 || len(m.TLS12Suites) != 0 || m.CertificateTypes[0] != "ecdsa" || m.MaxCertificateLifespanDays != 90 {
		t.Errorf("modern %+v", m)
	}
	if m.Groups[0] != "X25519MLKEM768" || im.Groups[0] != "X25519MLKEM768" {
		t.Errorf("hybrid PQ group must come first")
	}
}

func TestOpenSSLCipherListHasNoTLS13Names(t *testing.T) {
	got := Intermediate().OpenSSLCipherList()
	if got != "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305" {
		t.Errorf("got %q", got)
	}
	if strings.Contains(got, "TLS_AES") {
		t.Errorf("TLS 1.3 names break OpenSSL cipher lists")
	}
	if Modern().OpenSSLCipherList() != "" {
		t.Errorf("modern has no TLS 1.2 suites")
	}
}

func TestLookupSuite(t *testing.T) {
	for _, name := range []string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ecdhe-rsa-aes128-gcm-sha256", "0xc02f", "0xC02F"} {
		s, err := LookupSuite(name)
		if err != nil || s.ID != 0xC02F {
			t.Errorf("%s: %v %+v", name, err, s)
		}
	}
	if _, err := LookupSuite("TLS_FAKE"); err == nil {
		t.Errorf("unknown suite accepted")
	}
}

func TestCustomize(t *testing.T) {
	tests := map[string]struct {
		o        Overrides
		weak     int
		errField string
	}{
		"stricter":          {o: Overrides{MinVersion: "TLSv1.3"}},
		"tls 1.0":           {o: Overrides{MinVersion: "TLSv1"}, weak: 2},
		"cbc suite":         {o: Overrides{TLS12Ciphers: []string{"ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES128-GCM-SHA256"}}, weak: 1},
		"longer lifespan":   {o: Overrides{MaxCertificateLifespanDays: 400}, weak: 1},
		"rsa in modern":     {o: Overrides{CertificateTypes: []string{"rsa"}}, weak: 0},
		"min above max":     {o: Overrides{MinVersion: "TLSv1.3", MaxVersion: "TLSv1.2"}, errField: "min_version"},
		"wrong family":      {o: Overrides{TLS13Ciphers: []string{"ECDHE-RSA-AES128-GCM-SHA256"}}, errField: "tls13_ciphers"},
		"unknown version":   {o: Overrides{MinVersion: "TLSv2"}, errField: "min_version"},
		"unknown cert type": {o: Overrides{CertificateTypes: []string{"dsa"}}, errField: "certificate_types"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, weak, err := Customize(Intermediate(), tc.o)
			if tc.errField != "" {
				oe, ok := err.(*OverrideError)
				if !ok || oe.Field != tc.errField {
					t.Fatalf("err %v, want field %s", err, tc.errField)
				}
				return
			}
			if err != nil || len(weak) != tc.weak {
				t.Errorf("err %v weakenings %+v, want %d", err, weak, tc.weak)
			}
		})
	}
	_, weak, _ := Customize(Modern(), Overrides{CertificateTypes: []string{"rsa"}})
	if len(weak) != 1 {
		t.Errorf("rsa certificates weaken modern: %+v", weak)
	}
}
