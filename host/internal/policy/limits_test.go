package policy

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// max_certificate_lifespan is exact: 12h is not quietly 0 days (which left
// the base profile's 90 days in force), and a lifespan below the rotation's
// max_lifetime is refused.
func TestCertificateLifespanExact(t *testing.T) {
	lifespan := func(v, maxLifetime string) string {
		return "apiVersion: harden/v1\nprofile:\n  base: intermediate\n  overrides: {max_certificate_lifespan: " + v + "}\n" +
			"certificates: {source: files, files: {ca_file: ca.pem}, rotation: {max_lifetime: " + maxLifetime + ", renew_before: 1d}}\n" +
			"targets: [{name: a, plugin: b}]\n"
	}
	for _, tc := range []struct{ v, life, want string }{
		{"12h", "2d", "p.yaml:4:41: profile.overrides.max_certificate_lifespan: 12h is not a whole number of days"},
		{"36h", "2d", "p.yaml:4:41: profile.overrides.max_certificate_lifespan: 36h is not a whole number of days"},
		{"0d", "2d", "p.yaml:4:41: profile.overrides.max_certificate_lifespan: must be longer than 0"},
		{"89d", "90d", "p.yaml:5:82: certificates.rotation.max_lifetime: insecure setting: 90d exceeds the custom profile's maximum certificate lifespan of 89 days"},
		{"2160h", "2161h", "p.yaml:5:82: certificates.rotation.max_lifetime: insecure setting: 2161h0m0s exceeds the custom profile's maximum certificate lifespan of 90 days"},
	} {
		_, err := Parse("p.yaml", []byte(lifespan(tc.v, tc.life)))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("lifespan %s, max_lifetime %s: got %v\nwant %s", tc.v, tc.life, err, tc.want)
		}
	}
	p, err := Parse("p.yaml", []byte(lifespan("1440h", "60d")))
	if err != nil || p.Profile.MaxCertificateLifespanDays != 60 {
		t.Errorf("1440h = 60 days exactly: %v %+v", err, p)
	}
}

// A duration too large for time.Duration is an error, never a wrapped
// negative value that passes every "exceeds" check.
func TestDurationOverflow(t *testing.T) {
	if d, err := ParseDuration("200000d"); err == nil {
		t.Errorf("200000d accepted as %v", d)
	}
	if d, err := ParseDuration("99999999999999999999d"); err == nil {
		t.Errorf("20 digits accepted as %v", d)
	}
	if d, err := ParseDuration("106751d"); err != nil || d != 106751*24*time.Hour {
		t.Errorf("106751d: %v %v", d, err)
	}
	_, err := Parse("p.yaml", []byte("apiVersion: harden/v1\nprofile: modern\ncertificates: {source: files, files: {ca_file: ca.pem}, rotation: {max_lifetime: 200000d}}\ntargets: [{name: a, plugin: b}]\n"))
	if err == nil || !strings.Contains(err.Error(), "p.yaml:3:") || !strings.Contains(err.Error(), "too long") {
		t.Errorf("200000d max_lifetime: %v", err)
	}
}

// A huge policy is refused before YAML parsing, with a message about its
// size — not after gigabytes with one about aliases.
func TestPolicySizeCaps(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	head := "apiVersion: harden/v1\nprofile: modern\ntargets:\n"
	if err := os.WriteFile(big, append([]byte(head), bytes.Repeat([]byte("  - {name: a, plugin: b}\n"), 2<<20/25)...), 0o600); err != nil {
		t.Fatal(err)
	}
	// Alias-free but 50 MB: refused from the first 4 MiB + 1 bytes.
	huge := filepath.Join(dir, "huge.yaml")
	f, _ := os.Create(huge)
	f.WriteString(head)
	f.Write(bytes.Repeat([]byte("  - {name: a, plugin: b}\n"), 50<<20/25))
	f.Close()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err := Load(huge)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if err == nil || err.Error() != huge+": policy file is larger than 4 MiB; a policy is a page of YAML" {
		t.Errorf("50 MB policy: %v", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 || time.Since(start) > 5*time.Second {
		t.Errorf("50 MB policy cost %d MB and %v before it was refused", alloc>>20, time.Since(start))
	}
	// Under the size cap but with more values than a policy has.
	_, err = Load(big)
	if err == nil || !strings.Contains(err.Error(), "policy file has more than 200000 YAML values") {
		t.Errorf("2 MiB of targets: %v", err)
	}
	// /dev/zero as the policy: capped too.
	if _, err := Load("/dev/zero"); err == nil || !strings.Contains(err.Error(), "larger than 4 MiB") {
		t.Errorf("/dev/zero policy: %v", err)
	}
	// Aliases are still called aliases.
	_, err = Parse("p.yaml", []byte("a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"))
	if err == nil || !strings.Contains(err.Error(), "through its aliases") {
		t.Errorf("billion laughs: %v", err)
	}
}

func TestReadBounded(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, bytes.Repeat([]byte("a"), size), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		kind FileKind
		want string
	}{
		{"/dev/zero", Public, "/dev/zero: not a regular file (a character device)"},
		{dir, Public, dir + ": not a regular file (a directory)"},
		{fifo, Secret, fifo + ": not a regular file (a named pipe)"},
		{write("big.pem", MaxFileSize+1, 0o644), Public, "big.pem: larger than 1 MiB (1048577 bytes)"},
		{write("key-644.pem", 10, 0o644), Secret, "key-644.pem: secret file has mode 0644: group or others may access it"},
		{write("key-604.pem", 10, 0o604), Secret, "key-604.pem: secret file has mode 0604"},
		{filepath.Join(dir, "missing.pem"), Public, "missing.pem: no such file"},
	}
	for _, tc := range tests {
		_, err := ReadBounded(tc.path, tc.kind)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.path, err, tc.want)
		}
	}
	for _, ok := range []struct {
		path string
		kind FileKind
	}{{write("key.pem", 10, 0o600), Secret}, {write("ca.pem", MaxFileSize, 0o644), Public}, {write("key-400.pem", 3, 0o400), Secret}} {
		if _, err := ReadBounded(ok.path, ok.kind); err != nil {
			t.Errorf("%s: %v", ok.path, err)
		}
	}
	// root may share a key with a group (0640 root:ssl-cert), as libpq allows.
	if os.Geteuid() == 0 {
		if _, err := ReadBounded(write("root-640.pem", 3, 0o640), Secret); err != nil {
			t.Errorf("root-owned 0640: %v", err)
		}
	}
}

// Files the policy says must exist are checked at their policy line; the
// secret files of a connection and the target's keys must be private.
func TestCheckFiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "pg.pem"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "pg-key.pem"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "pg-password"), []byte("x"), 0o600)
	doc := `apiVersion: harden/v1
profile: intermediate
certificates: {source: files, files: {ca_file: ca.pem, crl_file: missing.crl}}
targets:
  - name: pg
    plugin: postgres
    connection: {host: 127.0.0.1, port: 5432, password_file: pg-password}
    certificate: {cert_file: pg.pem, key_file: pg-key.pem, client_cert_file: nope.pem, client_key_file: /dev/zero}
`
	pf := filepath.Join(dir, "policy.yaml")
	os.WriteFile(pf, []byte(doc), 0o600)
	p, err := Load(pf)
	if err != nil {
		t.Fatal(err)
	}
	err = p.CheckFiles(p.Targets)
	want := []string{
		pf + ":3:66: certificates.files.crl_file: " + filepath.Join(dir, "missing.crl") + ": no such file",
		pf + ":8:48: targets[0].certificate.key_file: " + filepath.Join(dir, "pg-key.pem") + ": secret file has mode 0644",
		pf + ":8:78: targets[0].certificate.client_cert_file: " + filepath.Join(dir, "nope.pem") + ": no such file",
		pf + ":8:105: targets[0].certificate.client_key_file: /dev/zero: not a regular file (a character device)",
	}
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("error %d:\n  %s\nwant prefix\n  %s", i, lines[i], w)
		}
	}
	// ResolveSecrets reads with the same rules.
	os.Chmod(filepath.Join(dir, "pg-password"), 0o644)
	_, err = p.ResolveSecrets(p.Targets[0], nil)
	if err == nil || !strings.HasPrefix(err.Error(), pf+":7:62: targets[0].connection.password_file: "+filepath.Join(dir, "pg-password")+": secret file has mode 0644") {
		t.Errorf("group-readable password file: %v", err)
	}
}
