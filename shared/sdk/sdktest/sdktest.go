// Package sdktest is the conformance kit for harden plugins. Run drives a
// plugin — a built binary through go-plugin (AutoMTLS, sha256 pin) or a value
// in process — across the real gRPC protocol and checks the contract every
// plugin must keep:
//
//   - metadata names the plugin as its binary does (harden-plugin-<name>);
//   - its connection and spec schemas are valid JSON Schema;
//   - unknown keys in spec and connection are rejected with their path;
//   - render is deterministic and does not contact the target;
//   - Stop cancels an in-flight call of every capability that reaches the
//     target (plan, apply, verify, certificate issuing) promptly, and leaves
//     the plugin serving: render and validation answer as before;
//   - nothing is written to stdout.
//
// The harness supplies a valid target for an address sdktest chooses: a local
// "tarpit" listener that accepts connections and never answers, so a plugin
// that touches the network during render is caught, and a plan or verify is
// guaranteed to be in flight when Stop is sent.
package sdktest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// Harness describes the plugin under test.
type Harness struct {
	// Binary is the path of a harden-plugin-<name> executable. Either Binary
	// or Plugin is set.
	Binary string
	// Plugin is an in-process implementation; Name is then its expected name.
	Plugin sdk.Plugin
	Name   string
	// Target returns a valid target whose endpoint is addr (host:port).
	Target func(addr string) sdk.Target
	// TargetFor, when set, may return a different valid target for one
	// capability (plan and apply often need more than verify: a config
	// file, a certificate), used for that capability's Stop check. ok false
	// means Target.
	TargetFor func(c sdk.Capability, addr string) (t sdk.Target, ok bool)
	// Certificates used for render; empty material is allowed.
	Certificates sdk.Certificates
	// StopTimeout bounds how fast Stop must end in-flight work (default 2 s).
	StopTimeout time.Duration
	// StopSkip names the capabilities whose Stop check legitimately cannot
	// reach the target, each with the reason (e.g. an issuer that refuses
	// any target without its CA). Without an entry, a capability that
	// refuses the harness target before contacting it fails the Stop check
	// under CI=true — the check would otherwise prove nothing, silently —
	// and is skipped elsewhere. Prefer a TargetFor that reaches the target.
	StopSkip map[sdk.Capability]string
}

// tarpit accepts TCP connections on loopback and never answers.
type tarpit struct {
	ln    net.Listener
	count atomic.Int64
	mu    sync.Mutex
	conns []net.Conn
}

func newTarpit(t *testing.T) *tarpit {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("sdktest: listen: %v", err)
	}
	tp := &tarpit{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tp.count.Add(1)
			tp.mu.Lock()
			tp.conns = append(tp.conns, c)
			tp.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		tp.mu.Lock()
		for _, c := range tp.conns {
			c.Close()
		}
		tp.mu.Unlock()
	})
	return tp
}

// Run checks the plugin contract. Each rule is a subtest.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.StopTimeout == 0 {
		h.StopTimeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var stdout bytes.Buffer
	var client *hostclient.Client
	wantName := h.Name
	restoreStdout := func() {}
	switch {
	case h.Binary != "":
		sum, err := fileSHA256(h.Binary)
		if err != nil {
			t.Fatalf("sdktest: %v", err)
		}
		// Apply's journal goes where the test package keeps it
		// (MainWithStateDir), never in /var/lib/harden.
		env := []string{"PATH=/usr/bin:/bin"}
		if d, ok := os.LookupEnv(applykit.StateDirEnv); ok {
			env = append(env, applykit.StateDirEnv+"="+d)
		}
		client, err = hostclient.Launch(ctx, hostclient.LaunchConfig{Path: h.Binary, SHA256: sum, Env: env,
			Stdout: &lockedBuffer{b: &stdout}, LogOutput: testWriter{t}})
		if err != nil {
			t.Fatalf("sdktest: launch %s: %v", h.Binary, err)
		}
		wantName = hostclient.NameFromPath(h.Binary)
	case h.Plugin != nil:
		restoreStdout = captureStdout(t, &stdout)
		client = hostclient.InProcess(h.Plugin)
	default:
		t.Fatal("sdktest: Harness needs Binary or Plugin")
	}
	defer client.Close()

	tp := newTarpit(t)
	policy := sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate(), CertificateSource: "files"}
	rc := sdk.RequestContext{Policy: policy, Target: h.Target(tp.ln.Addr().String()), Certificates: h.Certificates}
	policy.Targets = []sdk.TargetRef{{Name: rc.Target.Name, Plugin: wantName}}
	rc.Policy = policy

	meta, err := client.Metadata(ctx)
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}

	t.Run("metadata_name_matches_binary", func(t *testing.T) {
		if meta.Name == "" || meta.Name != wantName {
			t.Errorf("metadata name %q, want %q (binary harden-plugin-%s)", meta.Name, wantName, wantName)
		}
		if meta.Version == "" {
			t.Errorf("metadata has no version")
		}
	})

	t.Run("schemas_are_valid", func(t *testing.T) {
		s, err := client.Schema(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.Diagnostics.HasError() {
			t.Fatalf("schema diagnostics: %v", s.Diagnostics.Err())
		}
		for name, doc := range map[string][]byte{"connection": s.Connection, "spec": s.Spec} {
			if len(doc) == 0 {
				t.Errorf("%s schema is empty", name)
				continue
			}
			if err := compileLikeHost(name+" schema", doc); err != nil {
				t.Errorf("%v", err)
			}
		}
	})

	t.Run("valid_target_accepted", func(t *testing.T) {
		r, err := client.ValidateSpec(ctx, rc)
		if err != nil {
			t.Fatal(err)
		}
		if r.Diagnostics.HasError() {
			t.Fatalf("the harness's valid target was rejected: %v", r.Diagnostics.Err())
		}
	})

	t.Run("unknown_keys_rejected", func(t *testing.T) {
		for _, block := range []string{"spec", "connection"} {
			bad := rc
			raw := rc.Target.Spec
			if block == "connection" {
				raw = rc.Target.Connection
			}
			withKey, err := addKey(raw, "harden_conformance_unknown_key", 1)
			if err != nil {
				t.Fatalf("%s of the harness target is not a JSON object: %v", block, err)
			}
			if block == "spec" {
				bad.Target = sdk.NewTarget(rc.Target.Name, rc.Target.Connection, withKey, nil)
			} else {
				bad.Target = sdk.NewTarget(rc.Target.Name, withKey, rc.Target.Spec, nil)
			}
			r, err := client.ValidateSpec(ctx, bad)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(r.Diagnostics, func(d sdk.Diagnostic) bool {
				return d.Severity == sdk.Error && slices.Equal(d.Attribute, sdk.Path{block, "harden_conformance_unknown_key"})
			}) {
				t.Errorf("unknown %s key accepted; diagnostics: %v", block, r.Diagnostics)
			}
		}
	})

	if slices.Contains(meta.Capabilities, sdk.CapRender) {
		t.Run("render_deterministic_and_offline", func(t *testing.T) {
			before := tp.count.Load()
			a, err := client.Render(ctx, rc)
			if err != nil {
				t.Fatal(err)
			}
			if a.Diagnostics.HasError() {
				t.Fatalf("render failed on the harness's valid target: %v", a.Diagnostics.Err())
			}
			b, err := client.Render(ctx, rc)
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Artifacts) == 0 {
				t.Errorf("render returned no artifacts")
			}
			if !slices.EqualFunc(a.Artifacts, b.Artifacts, func(x, y sdk.Artifact) bool {
				return x.Path == y.Path && bytes.Equal(x.Content, y.Content) && x.Mode == y.Mode && x.Sensitive == y.Sensitive
			}) {
				t.Errorf("two renders of the same request differ")
			}
			for _, art := range a.Artifacts {
				if art.Sensitive && art.Mode&0o077 != 0 {
					t.Errorf("sensitive artifact %s has mode %o; want 0600 or stricter", art.Path, art.Mode)
				}
			}
			time.Sleep(50 * time.Millisecond)
			if n := tp.count.Load() - before; n != 0 {
				t.Errorf("render opened %d connection(s) to the target; render must be offline", n)
			}
		})
	}

	stopChecks(t, h, client, meta, rc, tp, ctx)

	t.Run("nothing_on_stdout", func(t *testing.T) {
		// go-plugin forwards the plugin's stdout asynchronously.
		time.Sleep(100 * time.Millisecond)
		restoreStdout()
		if stdout.Len() != 0 {
			t.Errorf("plugin wrote %d bytes to stdout (stdout belongs to the host): %.200q", stdout.Len(), stdout.String())
		}
	})
}

func addKey(raw json.RawMessage, key string, v any) (json.RawMessage, error) {
	m := map[string]any{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, err
		}
	}
	m[key] = v
	return json.Marshal(m)
}

func fileSHA256(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// captureStdout redirects os.Stdout into buf until the returned func runs.
func captureStdout(t *testing.T, buf *bytes.Buffer) func() {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatalf("sdktest: pipe: %v", err)
	}
	orig := os.Stdout
	os.Stdout = w
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(buf, r); close(copied) }()
	var once sync.Once
	restore := func() {
		once.Do(func() {
			os.Stdout = orig
			w.Close()
			<-copied
			r.Close()
		})
	}
	t.Cleanup(restore)
	return restore
}
