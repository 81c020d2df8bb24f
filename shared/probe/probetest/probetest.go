// Package probetest helps a plugin's tests hold the probe to an independent
// scanner: SSLScan runs Debian's sslscan against a live server and returns
// its (protocol, suite) pairs in the form Pairs gives a probe result, so a
// test compares the two sets with Diff.
package probetest

import (
	"encoding/xml"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// NeedTool returns the path of an installed tool; without it the test skips,
// or fails under CI=true (CI installs it).
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not installed (CI=true: failing instead of skipping)", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

type sslscanXML struct {
	Ciphers []struct {
		Version string `xml:"sslversion,attr"`
		ID      string `xml:"id,attr"`
	} `xml:"ssltest>cipher"`
	Groups []struct {
		Version string `xml:"sslversion,attr"`
		ID      string `xml:"id,attr"`
	} `xml:"ssltest>group"`
}

// SSLScan runs sslscan against addr (extra flags such as --starttls-psql
// first) and returns the sorted "TLSv1.2 0xC02B" pairs and TLS 1.3 groups it
// found.
func SSLScan(t testing.TB, addr string, extra ...string) (pairs, groups []string) {
	t.Helper()
	out, err := exec.Command(NeedTool(t, "sslscan"), append(append([]string{"--no-colour", "--xml=-"}, extra...), addr)...).Output()
	if err != nil {
		t.Fatalf("sslscan: %v", err)
	}
	var doc sslscanXML
	if err := xml.Unmarshal(out, &doc); err != nil {
		t.Fatalf("sslscan xml: %v", err)
	}
	for _, c := range doc.Ciphers {
		id, _ := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(c.ID), "0x"), 16, 16)
		v := c.Version
		if v == "TLSv1.0" {
			v = "TLSv1"
		}
		pairs = append(pairs, v+" "+tlsprofile.HexID(uint16(id)))
	}
	for _, g := range doc.Groups {
		id, _ := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(g.ID), "0x"), 16, 16)
		if g.Version == "TLSv1.3" {
			groups = append(groups, tlsprofile.HexID(uint16(id)))
		}
	}
	slices.Sort(pairs)
	slices.Sort(groups)
	return pairs, groups
}

// Pairs returns a probe result's accepted (protocol, suite) pairs, sorted,
// in SSLScan's form.
func Pairs(res *probe.Result) []string {
	var pairs []string
	for _, c := range res.Ciphers {
		pairs = append(pairs, tlsprofile.VersionName(c.Version)+" "+tlsprofile.HexID(c.ID))
	}
	slices.Sort(pairs)
	return pairs
}

// Diff returns what only a has and what only b has.
func Diff(a, b []string) (onlyA, onlyB []string) {
	for _, x := range a {
		if !slices.Contains(b, x) {
			onlyA = append(onlyA, x)
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			onlyB = append(onlyB, x)
		}
	}
	return onlyA, onlyB
}

// RequireConclusive fails the test when a scan of a healthy server had
// inconclusive observations or retries.
func RequireConclusive(t testing.TB, res *probe.Result) {
	t.Helper()
	if n := res.Inconclusive(); n > 0 || res.Retries > 0 {
		t.Errorf("%d inconclusive observations, %d retries on a healthy server:", n, res.Retries)
		for _, p := range res.Protocols {
			t.Errorf("  %s: %s %s %s", tlsprofile.VersionName(p.Version), p.Outcome, p.Evidence, p.SuitesIncomplete)
		}
		t.Errorf("  groups: %s; plaintext: %s; client auth: %v / %v / %v", res.GroupsIncomplete, res.Plaintext.Evidence, res.ClientAuth.NoCert, res.ClientAuth.WrongCA, res.ClientAuth.Trusted)
	}
}
