package cli

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/harden-dev/harden/host/internal/report"
	"github.com/harden-dev/harden/shared/sdk"
)

// FuzzArtifactListing: artifact bytes come from a plugin. Property: what
// render prints without --out is valid UTF-8 without control characters
// other than tab, newline and carriage return (no PKCS#12 bytes, no
// terminal escapes), never holds a PEM private key, and shows a text
// artifact's content whole.
func FuzzArtifactListing(f *testing.F) {
	f.Add([]byte("ssl = on\n"), false)
	f.Add([]byte{0x30, 0x82, 0x01, 0x0a, 0x00, 0xff}, false)
	f.Add([]byte("x\x1b[2Jy"), false)
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n"), false)
	f.Add([]byte("secret"), true)
	f.Add([]byte("a\u0085b\u2028c"), false)
	f.Fuzz(func(t *testing.T, content []byte, sensitiveFlag bool) {
		r := &report.Run{Targets: []report.Target{{Name: "t", Plugin: "p", Status: "ok",
			Artifacts: report.Artifacts([]sdk.Artifact{{Path: "a", Content: content, Mode: 0o644, Sensitive: sensitiveFlag}})}}}
		var out bytes.Buffer
		if err := printRun(&out, r, "text", "render"); err != nil {
			t.Fatal(err)
		}
		s := out.String()
		if !utf8.ValidString(s) {
			t.Fatalf("listing is not UTF-8: %q", s)
		}
		for _, c := range s {
			if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f || (c >= 0x80 && c < 0xa0) {
				t.Fatalf("listing holds control character %U: %q", c, s)
			}
		}
		if privateKeyInListing.MatchString(s) {
			t.Fatalf("listing shows a private key: %q", s)
		}
		a := r.Targets[0].Artifacts[0]
		if !a.Sensitive && !a.Binary && len(content) > 0 {
			for _, line := range strings.Split(strings.TrimRight(string(content), "\n"), "\n") {
				if !strings.Contains(s, "    | "+line+"\n") {
					t.Fatalf("text artifact line %q not shown:\n%q", line, s)
				}
			}
		} else if a.Size != len(content) || a.Content != "" {
			t.Fatalf("hidden artifact reported as %+v", a)
		}
	})
}

var privateKeyInListing = regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----`)
