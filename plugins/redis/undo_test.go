package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
)

// The review's lock-out: the run is interrupted at the rewrite, and the
// undo of "port 0" fails because something took the plaintext port in the
// meantime. The rollback stops there — the TLS port is NOT closed after it
// (redis would have no TCP listener left) — the error names the failed
// undo and what stays applied, and the journal is kept. Once the port is
// free again the next apply rolls the run back and applies anew.
func TestUndoStopsWhenPlaintextCannotReopen(t *testing.T) {
	s := startRedis(t, "pw-undo")
	rc := s.request(t, newPKI(t, "CA"), false, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var squatter net.Listener
	stepHook = func(phase string) {
		if phase != "rewrite" {
			return
		}
		var err error // port 0 is set: redis let go of the plaintext port
		if squatter, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(s.port)); err != nil {
			t.Errorf("take the plaintext port: %v", err)
		}
		cancel()
	}
	defer func() { stepHook = nil }()
	var r sdk.ApplyResponse
	redisTLS{}.Apply(ctx, sdk.ApplyRequest{RequestContext: rc}, &r)
	stepHook = nil
	if squatter == nil {
		t.Fatalf("the run never reached the rewrite: %+v", r.Diagnostics)
	}
	if !hasCode(r.Diagnostics, "redis.apply.interrupted") {
		t.Fatalf("apply was not reported interrupted: %+v", r.Diagnostics)
	}
	msg := r.Diagnostics.Err().Error()
	for _, want := range []string{"undoing FAILED for: config port", "still applied: config port, config tls-port, config tls-*, file ", "journal is kept"} {
		if !strings.Contains(msg, want) {
			t.Errorf("apply error does not say %q: %s", want, msg)
		}
	}
	if strings.Contains(msg, "pw-undo") {
		t.Errorf("the password is in the error: %s", msg)
	}
	if got := s.config("tls-port"); got != strconv.Itoa(s.tlsPort) {
		t.Errorf("tls-port = %s after the failed undo, want %d still open", got, s.tlsPort)
	}
	tg := rcTarget(t, rc)
	c, err := tg.manage(context.Background(), rc)
	if err != nil || !strings.HasPrefix(c.via, "TLS") {
		t.Fatalf("harden cannot log in over TLS after the failed undo: %v", err)
	}
	c.Close()
	jp, _, _ := tg.journalPaths()
	if _, err := os.Stat(jp); err != nil {
		t.Fatalf("the journal was not kept: %v", err)
	}

	squatter.Close()
	cl := hostclient.InProcess(redisTLS{})
	defer cl.Close()
	pr, err := cl.Plan(context.Background(), rc)
	if err != nil || pr.Diagnostics.HasError() || !hasWarning(pr.Diagnostics, "redis.apply.interrupted") {
		t.Fatalf("plan after the failed undo: %v %+v", err, pr.Diagnostics)
	}
	ar := applyOnce(t, cl, rc, pr.PlanToken)
	if ar.Diagnostics.HasError() || !hasWarning(ar.Diagnostics, "redis.apply.interrupted") {
		t.Fatalf("the next apply: %+v", ar.Diagnostics)
	}
	if got := s.config("port"); got != "0" {
		t.Errorf("port = %s after the next apply", got)
	}
	if _, err := os.Stat(jp); err == nil {
		t.Errorf("journal %s left after a completed apply", jp)
	}
}

// Closing the TLS port again is refused while redis reports port 0 (here:
// a redis reached only over its Unix socket, and the new TLS login
// fails): the TLS port stays open, and the error says why.
func TestTLSPortUndoKeepsATCPListener(t *testing.T) {
	s := startRedis(t, "")
	if _, err := s.cli("CONFIG", "SET", "port", "0"); err != nil {
		t.Fatal(err)
	}
	rc := s.request(t, newPKI(t, "CA"), false, map[string]any{"server_name": "not-the-server.example"}, nil)
	cl := hostclient.InProcess(redisTLS{})
	defer cl.Close()
	r := applyOnce(t, cl, rc, nil)
	if !hasCode(r.Diagnostics, "redis.apply") {
		t.Fatalf("apply did not fail: %+v", r.Diagnostics)
	}
	msg := r.Diagnostics.Err().Error()
	for _, want := range []string{"tls-login", "undoing FAILED for: config tls-port", "redis reports port 0", "journal is kept"} {
		if !strings.Contains(msg, want) {
			t.Errorf("apply error does not say %q: %s", want, msg)
		}
	}
	if got := s.config("tls-port"); got != strconv.Itoa(s.tlsPort) {
		t.Errorf("tls-port = %s: the undo closed the last TCP listener", got)
	}
	jp, _, _ := rcTarget(t, rc).journalPaths()
	if _, err := os.Stat(jp); err != nil {
		t.Fatalf("the journal was not kept: %v", err)
	}
}

// The plan token covers what the files hold: redis.crt replaced between
// plan and apply (the same files still change) makes the plan stale, and
// nothing is changed; so does redis.key replaced, whose change shows no
// digest. The plan shows the public files' digests, never the key's.
func TestStalePlanFileContent(t *testing.T) {
	s := startRedis(t, "")
	rc := s.request(t, newPKI(t, "CA"), false, nil, nil)
	tlsDir := filepath.Join(s.dir, "tls")
	crt, key := filepath.Join(tlsDir, "redis.crt"), filepath.Join(tlsDir, "redis.key")
	for path, data := range map[string]string{crt: "an older certificate\n", key: "an older key\n"} {
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cl := hostclient.InProcess(redisTLS{})
	defer cl.Close()
	pr, err := cl.Plan(context.Background(), rc)
	if err != nil || pr.Diagnostics.HasError() {
		t.Fatalf("plan: %v %v", err, pr.Diagnostics.Err())
	}
	for _, c := range pr.Changes {
		switch c.Resource {
		case "file " + crt:
			if !strings.Contains(c.Before, "sha256 ") || !strings.Contains(c.After, "sha256 ") {
				t.Errorf("the certificate's change shows no digests: %+v", c)
			}
		case "file " + key:
			if strings.Contains(c.Before+c.After, "sha256") || strings.Contains(c.Before+c.After, "older key") {
				t.Errorf("the key's change shows its content or a digest of it: %+v", c)
			}
		}
	}
	replaced := []byte("the operator's certificate, put there after the plan\n")
	if err := os.WriteFile(crt, replaced, 0o600); err != nil {
		t.Fatal(err)
	}
	r := applyOnce(t, cl, rc, pr.PlanToken)
	if !hasCode(r.Diagnostics, applykit.PlanStaleCode) || len(r.Applied) != 0 {
		t.Fatalf("apply after redis.crt was replaced: %+v, applied %+v", r.Diagnostics, r.Applied)
	}
	if got, _ := os.ReadFile(crt); string(got) != string(replaced) {
		t.Errorf("a stale apply rewrote redis.crt: %q", got)
	}
	if got, _ := os.ReadFile(key); string(got) != "an older key\n" {
		t.Errorf("a stale apply rewrote redis.key")
	}
	if got := s.config("tls-port"); got != "0" {
		t.Errorf("a stale apply set tls-port %s", got)
	}
	// The key replaced after the plan: its change shows no digest, the
	// token still covers it.
	pr, err = cl.Plan(context.Background(), rc)
	if err != nil || pr.Diagnostics.HasError() {
		t.Fatalf("plan: %v %v", err, pr.Diagnostics.Err())
	}
	if err := os.WriteFile(key, []byte("the operator's key, put there after the plan\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := applyOnce(t, cl, rc, pr.PlanToken); !hasCode(r.Diagnostics, applykit.PlanStaleCode) || len(r.Applied) != 0 {
		t.Fatalf("apply after redis.key was replaced: %+v, applied %+v", r.Diagnostics, r.Applied)
	}
	if got := s.config("tls-port"); got != "0" {
		t.Errorf("a stale apply set tls-port %s", got)
	}
	// The same files again, unchanged since the plan: the token holds.
	pr, err = cl.Plan(context.Background(), rc)
	if err != nil || pr.Diagnostics.HasError() {
		t.Fatalf("plan: %v %v", err, pr.Diagnostics.Err())
	}
	if r := applyOnce(t, cl, rc, pr.PlanToken); r.Diagnostics.HasError() || len(r.Applied) == 0 {
		t.Fatalf("apply with a current plan: %v %+v", r.Diagnostics.Err(), r.Applied)
	}
}
