package main

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/tlsprofile"
	"github.com/harden-dev/harden/testenv"
)

// renderRequest is an offline render request (no broker needed) with a
// certificate from a throwaway CA and the given spec.
func renderRequest(t testing.TB, spec map[string]any) sdk.RequestContext {
	t.Helper()
	ca, err := testenv.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.IssuePeer("kafka", "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	ccert, ckey, err := ca.Issue("harden", true)
	if err != nil {
		t.Fatal(err)
	}
	conn, _ := json.Marshal(map[string]any{"bootstrap": []string{"127.0.0.1:9092"}, "config_file": "/etc/kafka/server.properties"})
	raw, _ := json.Marshal(spec)
	rc := sdk.RequestContext{Policy: sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate(), MTLSScope: []string{"events"}},
		Target: sdk.NewTarget("events", conn, raw, nil),
		Certificates: sdk.Certificates{ChainPEM: mustRead(t, cert), KeyPEM: mustRead(t, key), CABundlePEM: mustRead(t, ca.CertFile),
			ClientChainPEM: mustRead(t, ccert), ClientKeyPEM: mustRead(t, ckey)}}
	return rc
}

func sslListeners() []map[string]any {
	return []map[string]any{{"name": "SSL", "address": "127.0.0.1:9093"}, {"name": "CONTROLLER", "address": "127.0.0.1:9094", "controller": true}}
}

// Issue 12 item 2: a newline in super_users injected
// allow.everyone.if.no.acl.found=true into the rendered
// server-harden.properties. Now render refuses it at the attribute (the
// host turns the path into policy file:line:col), renders nothing and does
// not echo the value; validate says the same.
func TestRenderRefusesInjectedSuperUser(t *testing.T) {
	const evil = "alice\nallow.everyone.if.no.acl.found=true"
	rc := renderRequest(t, map[string]any{"listeners": sslListeners(), "super_users": []string{"bob", evil}})
	var r sdk.RenderResponse
	kafka{}.Render(t.Context(), sdk.RenderRequest{RequestContext: rc}, &r)
	for _, a := range r.Artifacts {
		if a.Path == "server-harden.properties" {
			if m := propertyMapOf(t, string(a.Content)); m["allow.everyone.if.no.acl.found"] != "false" {
				t.Errorf("injected: allow.everyone.if.no.acl.found=%q\n%s", m["allow.everyone.if.no.acl.found"], a.Content)
			}
		}
	}
	if len(r.Artifacts) != 0 {
		t.Errorf("render wrote %d artifacts for a policy it should refuse", len(r.Artifacts))
	}
	requireAttributeError(t, r.Diagnostics, "spec.super_users[1]", evil)
	var v sdk.ValidateSpecResponse
	kafka{}.ValidateSpec(t.Context(), sdk.ValidateSpecRequest{RequestContext: rc}, &v)
	requireAttributeError(t, v.Diagnostics, "spec.super_users[1]", evil)
}

// requireAttributeError: exactly one error, at path, that does not echo secret.
func requireAttributeError(t *testing.T, d sdk.Diagnostics, path, secret string) {
	t.Helper()
	var at []string
	for _, x := range d {
		if x.Severity == sdk.Error {
			at = append(at, x.Attribute.String())
			if strings.Contains(x.Summary+x.Detail, secret) || strings.Contains(x.Summary+x.Detail, "allow.everyone") {
				t.Errorf("the error echoes the value: %+v", x)
			}
		}
	}
	if len(at) != 1 || at[0] != path {
		t.Errorf("errors at %v, want one at %s: %v", at, path, d.Err())
	}
}

// Every value that would change meaning in server.properties is refused at
// its attribute: in super.users (; , blanks, control characters), in
// listeners (, / blanks), in the ${file:path:key} references (: { } $).
func TestGrammarRefusesValues(t *testing.T) {
	cases := map[string]struct {
		spec map[string]any
		path string
	}{
		"super user with ;":           {map[string]any{"listeners": sslListeners(), "super_users": []string{"a;User:b"}}, "spec.super_users[0]"},
		"super user with CR":          {map[string]any{"listeners": sslListeners(), "super_users": []string{"a\rb"}}, "spec.super_users[0]"},
		"super user with NUL":         {map[string]any{"listeners": sslListeners(), "super_users": []string{"a\x00b"}}, "spec.super_users[0]"},
		"super user with U+2028":      {map[string]any{"listeners": sslListeners(), "super_users": []string{"a\u2028b"}}, "spec.super_users[0]"},
		"super user with blanks":      {map[string]any{"listeners": sslListeners(), "super_users": []string{" a"}}, "spec.super_users[0]"},
		"super user prefixed":         {map[string]any{"listeners": sslListeners(), "super_users": []string{"User:a"}}, "spec.super_users[0]"},
		"address with a 2nd listener": {map[string]any{"listeners": []map[string]any{{"name": "SSL", "address": "127.0.0.1:9093,PLAINTEXT://0.0.0.0:9"}}}, "spec.listeners[0].address"},
		"address with newline":        {map[string]any{"listeners": []map[string]any{{"name": "SSL", "address": "a\nb:9093"}}}, "spec.listeners[0].address"},
		"listener name":               {map[string]any{"listeners": []map[string]any{{"name": "S=L", "address": "127.0.0.1:9093"}}}, "spec.listeners[0].name"},
		"inter broker listener":       {map[string]any{"listeners": sslListeners(), "inter_broker_listener": "SSL\nx=y"}, "spec.inter_broker_listener"},
		"store dir with :":            {map[string]any{"listeners": sslListeners(), "store_dir": "/etc/kafka:x"}, "spec.store_dir"},
		"store dir with newline":      {map[string]any{"listeners": sslListeners(), "store_dir": "/etc/kafka\nauthorizer.class.name="}, "spec.store_dir"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rc := renderRequest(t, tc.spec)
			var r sdk.RenderResponse
			kafka{}.Render(t.Context(), sdk.RenderRequest{RequestContext: rc}, &r)
			if len(r.Artifacts) != 0 {
				t.Errorf("rendered %d artifacts", len(r.Artifacts))
			}
			var at []string
			for _, x := range r.Diagnostics {
				at = append(at, x.Attribute.String())
			}
			if len(at) != 1 || at[0] != tc.path {
				t.Errorf("errors at %v, want one at %s: %v", at, tc.path, r.Diagnostics.Err())
			}
			// validate (the host's admission of every request) says it once too.
			var v sdk.ValidateSpecResponse
			kafka{}.ValidateSpec(t.Context(), sdk.ValidateSpecRequest{RequestContext: rc}, &v)
			at = nil
			for _, x := range v.Diagnostics {
				at = append(at, x.Attribute.String())
			}
			if len(at) != 1 || at[0] != tc.path {
				t.Errorf("validate: errors at %v, want one at %s: %v", at, tc.path, v.Diagnostics.Err())
			}
		})
	}
}

// A certificate CN becomes a super user: one with ; would add a principal.
func TestRenderRefusesCertificateCNWithSeparator(t *testing.T) {
	rc := renderRequest(t, map[string]any{"listeners": sslListeners()})
	ca, _ := testenv.NewCA(t.TempDir())
	cert, key, err := ca.Issue("harden;User:mallory", true)
	if err != nil {
		t.Fatal(err)
	}
	rc.Certificates.CABundlePEM = mustRead(t, ca.CertFile)
	rc.Certificates.ClientChainPEM, rc.Certificates.ClientKeyPEM = mustRead(t, cert), mustRead(t, key)
	var r sdk.RenderResponse
	kafka{}.Render(t.Context(), sdk.RenderRequest{RequestContext: rc}, &r)
	if !r.Diagnostics.HasError() || !strings.Contains(fmt.Sprint(r.Diagnostics.Err()), "client certificate's CN cannot be a Kafka super user") || len(r.Artifacts) != 0 {
		t.Errorf("render with a client CN holding ;: %v, %d artifacts", r.Diagnostics.Err(), len(r.Artifacts))
	}
}

// The parser follows java.util.Properties where the old one did not.
func TestParsePropertiesJavaRules(t *testing.T) {
	cases := []struct {
		text string
		want map[string]string
	}{
		{"a=\\u0041\\u00e9\n", map[string]string{"a": "Aé"}},                     // \uXXXX (was read as "u0041")
		{"a=1\rb=2\r", map[string]string{"a": "1", "b": "2"}},                    // a lone CR ends a line
		{"=v\n", map[string]string{"": "v"}},                                     // an empty key is legal
		{"a=x\\\r\n  y\n", map[string]string{"a": "xy"}},                         // continuation over CRLF
		{"a=x\\\n# not a comment\n", map[string]string{"a": "x# not a comment"}}, // # on a continuation line
		{"# c\\\na=1\n", map[string]string{"a": "1"}},                            // a comment does not continue
		{"a = = b\n", map[string]string{"a": "= b"}},                             // one separator only
		{"k\\ ey v\n", map[string]string{"k ey": "v"}},                           // escaped blank in a key
		{"a=caf\xe9\n", map[string]string{"a": "café"}},                          // ISO 8859-1 bytes
		{"a=\\uD83D\\uDE00\n", map[string]string{"a": "\U0001F600"}},             // a surrogate pair
		{"a=x\\", map[string]string{"a": "x"}},                                   // a backslash at EOF
	}
	for _, tc := range cases {
		ps, err := parseProperties(tc.text)
		if err != nil {
			t.Errorf("%q: %v", tc.text, err)
			continue
		}
		if got := propertyMap(ps); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %q, want %q", tc.text, got, tc.want)
		}
	}
	for _, bad := range []string{"a=\\u12\n", "a=\\uzzzz\n"} {
		if _, err := parseProperties(bad); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: %v, want a line 1 error (the broker refuses it)", bad, err)
		}
	}
}

// The parser and the writer agree with the JDK's own java.util.Properties
// (Kafka loads server.properties with Properties.load(InputStream)) on
// tricky texts and a few thousand random ones, in one JVM run.
func TestPropertiesAgreeWithJava(t *testing.T) {
	java, err := exec.LookPath("java")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("java is needed to compare with java.util.Properties: %v", err)
		}
		t.Skip("no java")
	}
	dir := t.TempDir()
	texts := []string{"a=b\n# c\nkey: value\nk v\\\n  continued\n", "\\=x\\:y = z\\\\\n", "a=\\u0041\n", "a=1\rb=2", "=v\n",
		"a=x\\\r\n  y\n", "a=x\\\n# no\n", "# c\\\na=1\n", "a = = b\n", "a=caf\xe9\n", "a=\\uD83D\\uDE00\n", "a=x\\", " \f\tk\\\n\\\n v\n", "a=\\\n\nb=c\n"}
	rnd := rand.New(rand.NewSource(12))
	alphabet := []string{"a", "b", "=", ":", " ", "\t", "\f", "\\", "\n", "\r", "#", "!", "\\u00", "4", "e", "\xe9", "é", "k.x"}
	for range 3000 {
		var b strings.Builder
		for range rnd.Intn(24) {
			b.WriteString(alphabet[rnd.Intn(len(alphabet))])
		}
		texts = append(texts, b.String())
	}
	// What harden writes: propertyLine over hostile keys and values.
	values := []string{"x\nallow.everyone.if.no.acl.found=true", " lead", "#c", "!c", "a\\", "\\u0041", "é\U0001F600", "\r\f\t\x00\x7f", "=:", "tail "}
	for _, k := range values {
		for _, v := range values {
			texts = append(texts, propertyLine(k, v)+"\n"+propertyLine("after", "1")+"\n")
		}
	}
	var files []string
	for i, text := range texts {
		f := filepath.Join(dir, fmt.Sprintf("%04d.properties", i))
		if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	src := filepath.Join(dir, "PropsDump.java")
	if err := os.WriteFile(src, []byte(propsDumpJava), 0o600); err != nil {
		t.Fatal(err)
	}
	listFile := filepath.Join(dir, "files.txt")
	os.WriteFile(listFile, []byte(strings.Join(files, "\n")+"\n"), 0o600)
	out, err := exec.Command(java, src, listFile).Output()
	if err != nil {
		t.Fatalf("java: %v", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) != len(texts) {
		t.Fatalf("java answered %d lines for %d files", len(lines), len(texts))
	}
	bad := 0
	for i, text := range texts {
		ps, perr := parseProperties(text)
		if lines[i] == "ERROR" {
			if perr == nil {
				t.Errorf("%q: java refuses it, harden parsed %q", text, propertyMap(ps))
				bad++
			}
			continue
		}
		var want map[string]string
		if err := json.Unmarshal([]byte(lines[i]), &want); err != nil {
			t.Fatalf("java output %q: %v", lines[i], err)
		}
		if perr != nil {
			t.Errorf("%q: java reads %q, harden: %v", text, want, perr)
			bad++
		} else if got := propertyMap(ps); !reflect.DeepEqual(got, want) {
			t.Errorf("%q: java reads %q, harden %q", text, want, got)
			bad++
		}
		if bad > 10 {
			t.Fatal("too many differences")
		}
	}
	for i := len(texts) - len(values)*len(values); i < len(texts); i++ {
		var m map[string]string
		_ = json.Unmarshal([]byte(lines[i]), &m)
		if len(m) != 2 || m["after"] != "1" {
			t.Errorf("java reads %q from harden's line %q", m, texts[i])
		}
	}
}

// propsDumpJava loads each file of a list with Properties.load(InputStream)
// as Kafka does and prints its keys and values as JSON (every UTF-16 unit
// escaped), or ERROR when Java refuses the file.
const propsDumpJava = `import java.io.*; import java.nio.file.*; import java.util.*;
public class PropsDump {
  public static void main(String[] a) throws Exception {
    for (String f : Files.readAllLines(Paths.get(a[0]))) {
      Properties p = new Properties();
      try (InputStream in = Files.newInputStream(Paths.get(f))) { p.load(in); }
      catch (IllegalArgumentException e) { System.out.println("ERROR"); continue; }
      StringBuilder sb = new StringBuilder("{");
      boolean first = true;
      for (String k : new TreeSet<>(p.stringPropertyNames())) {
        if (!first) sb.append(',');
        first = false;
        sb.append(q(k)).append(':').append(q(p.getProperty(k)));
      }
      System.out.println(sb.append('}'));
    }
  }
  static String q(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char c : s.toCharArray()) b.append(String.format("\\u%04x", (int) c));
    return b.append('"').toString();
  }
}
`

// FuzzRenderedProperties: for arbitrary policy values that pass the
// grammar checks, the settings render writes and apply merges into an
// arbitrary server.properties parse back (Java's rules) to exactly the
// key/values the policy asked for, the file's other keys keep their
// values, and no other key appears. Values that fail the checks are never
// rendered.
func FuzzRenderedProperties(f *testing.F) {
	f.Add("alice", "SSL", "127.0.0.1:9093", "/etc/kafka/harden", "log.dirs=/tmp/x\n# c\nsuper.users=User:old\n")
	f.Add("alice\nallow.everyone.if.no.acl.found=true", "SSL", "127.0.0.1:9093", "", "")
	f.Add("é", "EXTERNAL", "[::1]:9093", "/d\\x", "listeners=PLAINTEXT://:9092\\\n ,X://:1\r\nk\\\n")
	f.Add("a b", "SSL", "host.example:9093", " /lead", "a=\\u0041\n!x\n")
	f.Fuzz(func(t *testing.T, user, name, addr, dir, base string) {
		s := spec{Listeners: []listenerSpec{{Name: name, Address: addr}}, SuperUsers: []string{user}, StoreDir: dir}
		c := connection{ConfigFile: "/etc/kafka/server.properties"}
		var d sdk.Diagnostics
		if !addGrammarProblems(c, s, &d) {
			if strings.ContainsAny(user, "\n\r;") && checkPrincipal(user) == "" {
				t.Fatalf("a principal with a separator passed: %q", user)
			}
			return
		}
		if dir == "" {
			dir = "/etc/kafka/harden"
		}
		layout, err := listenerLayout(s, brokerTarget{Listeners: s.Listeners}, nil, nil)
		if err != nil {
			return
		}
		ref := func(k string) string { return "${file:" + filepath.Join(dir, "secrets.properties") + ":" + k + "}" }
		settings := brokerSettings(layout, tlsprofile.Intermediate(), true, true, []string{"kafka", user}, filepath.Join(dir, "k.p12"), filepath.Join(dir, "t.p12"), ref)
		want := map[string]string{}
		for _, kv := range settings {
			want[kv[0]] = kv[1]
		}
		if want["super.users"] != "User:kafka;User:"+user || want["allow.everyone.if.no.acl.found"] != "false" {
			t.Fatalf("settings %q", want)
		}
		var rendered strings.Builder
		for _, kv := range settings {
			rendered.WriteString(propertyLine(kv[0], kv[1]) + "\n")
		}
		ps, err := parseProperties(rendered.String())
		if err != nil {
			t.Fatalf("rendered text does not parse: %v\n%s", err, rendered.String())
		}
		if got := propertyMap(ps); !reflect.DeepEqual(got, want) {
			t.Fatalf("rendered %q parses to %q, want %q", rendered.String(), got, want)
		}
		baseProps, err := parseProperties(base)
		if err != nil {
			return
		}
		merged, err := mergeProperties(base, settings)
		if err != nil {
			// Only a file whose last line continues is refused.
			if lines := physicalLines(strings.TrimRight(base, "\r\n")); !strings.HasSuffix(lines[len(lines)-1], "\\") {
				t.Fatalf("merge into %q: %v", base, err)
			}
			return
		}
		ps, err = parseProperties(merged)
		if err != nil {
			t.Fatalf("merged text does not parse: %v\n%s", err, merged)
		}
		expect := propertyMap(baseProps)
		for k, v := range want {
			expect[k] = v
		}
		if got := propertyMap(ps); !reflect.DeepEqual(got, expect) {
			t.Fatalf("merged %q into %q: got %q, want %q", settings, base, got, expect)
		}
	})
}
