// Command gensuites writes shared/tlsprofile/registry_gen.go: every cipher
// suite the local OpenSSL knows (`openssl ciphers -stdname -V
// 'ALL:COMPLEMENTOFALL:@SECLEVEL=0'`) plus legacy suites OpenSSL 3 dropped
// (RC4, DES, 3DES, IDEA, SEED, EXPORT), with IANA ids and names. The probe
// offers all of them in raw ClientHellos.
//
//	go run ./scripts/gensuites > shared/tlsprofile/registry_gen.go
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
)

type suite struct {
	id               uint16
	iana, openssl    string
	kx, au, enc, mac string
	tls13            bool
}

// legacy suites absent from OpenSSL 3: id, IANA name, OpenSSL 1.0 name, kx, au, enc, mac.
var legacy = []string{
	"0x0001 TLS_RSA_WITH_NULL_MD5 NULL-MD5 RSA RSA None MD5",
	"0x0002 TLS_RSA_WITH_NULL_SHA NULL-SHA RSA RSA None SHA1",
	"0x0003 TLS_RSA_EXPORT_WITH_RC4_40_MD5 EXP-RC4-MD5 RSA(512) RSA RC4(40) MD5",
	"0x0004 TLS_RSA_WITH_RC4_128_MD5 RC4-MD5 RSA RSA RC4(128) MD5",
	"0x0005 TLS_RSA_WITH_RC4_128_SHA RC4-SHA RSA RSA RC4(128) SHA1",
	"0x0006 TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5 EXP-RC2-CBC-MD5 RSA(512) RSA RC2(40) MD5",
	"0x0007 TLS_RSA_WITH_IDEA_CBC_SHA IDEA-CBC-SHA RSA RSA IDEA(128) SHA1",
	"0x0008 TLS_RSA_EXPORT_WITH_DES40_CBC_SHA EXP-DES-CBC-SHA RSA(512) RSA DES(40) SHA1",
	"0x0009 TLS_RSA_WITH_DES_CBC_SHA DES-CBC-SHA RSA RSA DES(56) SHA1",
	"0x000A TLS_RSA_WITH_3DES_EDE_CBC_SHA DES-CBC3-SHA RSA RSA 3DES(168) SHA1",
	"0x000D TLS_DH_DSS_WITH_3DES_EDE_CBC_SHA DH-DSS-DES-CBC3-SHA DH/DSS DH 3DES(168) SHA1",
	"0x0010 TLS_DH_RSA_WITH_3DES_EDE_CBC_SHA DH-RSA-DES-CBC3-SHA DH/RSA DH 3DES(168) SHA1",
	"0x0011 TLS_DHE_DSS_EXPORT_WITH_DES40_CBC_SHA EXP-DHE-DSS-DES-CBC-SHA DH(512) DSS DES(40) SHA1",
	"0x0012 TLS_DHE_DSS_WITH_DES_CBC_SHA DHE-DSS-DES-CBC-SHA DH DSS DES(56) SHA1",
	"0x0013 TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA DHE-DSS-DES-CBC3-SHA DH DSS 3DES(168) SHA1",
	"0x0014 TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA EXP-DHE-RSA-DES-CBC-SHA DH(512) RSA DES(40) SHA1",
	"0x0015 TLS_DHE_RSA_WITH_DES_CBC_SHA DHE-RSA-DES-CBC-SHA DH RSA DES(56) SHA1",
	"0x0016 TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA DHE-RSA-DES-CBC3-SHA DH RSA 3DES(168) SHA1",
	"0x0017 TLS_DH_anon_EXPORT_WITH_RC4_40_MD5 EXP-ADH-RC4-MD5 DH(512) None RC4(40) MD5",
	"0x0018 TLS_DH_anon_WITH_RC4_128_MD5 ADH-RC4-MD5 DH None RC4(128) MD5",
	"0x0019 TLS_DH_anon_EXPORT_WITH_DES40_CBC_SHA EXP-ADH-DES-CBC-SHA DH(512) None DES(40) SHA1",
	"0x001A TLS_DH_anon_WITH_DES_CBC_SHA ADH-DES-CBC-SHA DH None DES(56) SHA1",
	"0x001B TLS_DH_anon_WITH_3DES_EDE_CBC_SHA ADH-DES-CBC3-SHA DH None 3DES(168) SHA1",
	"0x0096 TLS_RSA_WITH_SEED_CBC_SHA SEED-SHA RSA RSA SEED(128) SHA1",
	"0x0099 TLS_DHE_DSS_WITH_SEED_CBC_SHA DHE-DSS-SEED-SHA DH DSS SEED(128) SHA1",
	"0x009A TLS_DHE_RSA_WITH_SEED_CBC_SHA DHE-RSA-SEED-SHA DH RSA SEED(128) SHA1",
	"0x009B TLS_DH_anon_WITH_SEED_CBC_SHA ADH-SEED-SHA DH None SEED(128) SHA1",
	"0xC002 TLS_ECDH_ECDSA_WITH_RC4_128_SHA ECDH-ECDSA-RC4-SHA ECDH/ECDSA ECDH RC4(128) SHA1",
	"0xC003 TLS_ECDH_ECDSA_WITH_3DES_EDE_CBC_SHA ECDH-ECDSA-DES-CBC3-SHA ECDH/ECDSA ECDH 3DES(168) SHA1",
	"0xC007 TLS_ECDHE_ECDSA_WITH_RC4_128_SHA ECDHE-ECDSA-RC4-SHA ECDH ECDSA RC4(128) SHA1",
	"0xC008 TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA ECDHE-ECDSA-DES-CBC3-SHA ECDH ECDSA 3DES(168) SHA1",
	"0xC00C TLS_ECDH_RSA_WITH_RC4_128_SHA ECDH-RSA-RC4-SHA ECDH/RSA ECDH RC4(128) SHA1",
	"0xC00D TLS_ECDH_RSA_WITH_3DES_EDE_CBC_SHA ECDH-RSA-DES-CBC3-SHA ECDH/RSA ECDH 3DES(168) SHA1",
	"0xC011 TLS_ECDHE_RSA_WITH_RC4_128_SHA ECDHE-RSA-RC4-SHA ECDH RSA RC4(128) SHA1",
	"0xC012 TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA ECDHE-RSA-DES-CBC3-SHA ECDH RSA 3DES(168) SHA1",
	"0xC016 TLS_ECDH_anon_WITH_RC4_128_SHA AECDH-RC4-SHA ECDH None RC4(128) SHA1",
	"0xC017 TLS_ECDH_anon_WITH_3DES_EDE_CBC_SHA AECDH-DES-CBC3-SHA ECDH None 3DES(168) SHA1",
	"0x1304 TLS_AES_128_CCM_SHA256 TLS_AES_128_CCM_SHA256 any any AESCCM(128) AEAD",
	"0x1305 TLS_AES_128_CCM_8_SHA256 TLS_AES_128_CCM_8_SHA256 any any AESCCM8(128) AEAD",
}

func main() {
	out, err := exec.Command("openssl", "ciphers", "-stdname", "-V", "ALL:COMPLEMENTOFALL:@SECLEVEL=0").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gensuites: openssl:", err)
		os.Exit(1)
	}
	byID := map[uint16]suite{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// 0xC0,0x2C - IANA - OPENSSL TLSv1.2 Kx=.. Au=.. Enc=.. Mac=..
		if len(f) < 9 {
			continue
		}
		hi, _ := strconv.ParseUint(strings.TrimPrefix(strings.Split(f[0], ",")[0], "0x"), 16, 8)
		lo, _ := strconv.ParseUint(strings.TrimPrefix(strings.Split(f[0], ",")[1], "0x"), 16, 8)
		s := suite{id: uint16(hi)<<8 | uint16(lo), iana: f[2], openssl: f[4], tls13: f[5] == "TLSv1.3"}
		for _, kv := range f[6:] {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "Kx":
				s.kx = v
			case "Au":
				s.au = v
			case "Enc":
				s.enc = v
			case "Mac":
				s.mac = v
			}
		}
		byID[s.id] = s
	}
	for _, l := range legacy {
		f := strings.Fields(l)
		id, _ := strconv.ParseUint(strings.TrimPrefix(f[0], "0x"), 16, 16)
		if _, ok := byID[uint16(id)]; ok {
			continue
		}
		byID[uint16(id)] = suite{id: uint16(id), iana: f[1], openssl: f[2], kx: f[3], au: f[4], enc: f[5], mac: f[6], tls13: id>>8 == 0x13}
	}
	ids := make([]int, 0, len(byID))
	for id := range byID {
		ids = append(ids, int(id))
	}
	sort.Ints(ids)
	fmt.Println("// Code generated by scripts/gensuites from `openssl ciphers -stdname -V` and a list of legacy suites. DO NOT EDIT.")
	fmt.Println()
	fmt.Println("package tlsprofile")
	fmt.Println()
	fmt.Println("var registry = []Suite{")
	for _, id := range ids {
		s := byID[uint16(id)]
		fmt.Printf("\t{ID: 0x%04X, IANA: %q, OpenSSL: %q, TLS13: %v, Kx: %q, Au: %q, Enc: %q, Mac: %q},\n", s.id, s.iana, s.openssl, s.tls13, s.kx, s.au, s.enc, s.mac)
	}
	fmt.Println("}")
}
