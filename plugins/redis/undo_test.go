package main

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"fmt"
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
	squatter, r := interruptWithPortTaken(t, s, rc)
	if !hasCode(r.Diagnostics, "redis.apply.interrupted") {
		t.Fatalf("apply was not reported interrupted: %+v", r.Diagnostics)
	}
	errorSays(t, "apply error", r.Diagnostics.Err().Error(), "pw-undo",
		"undoing FAILED for: config port", "still applied: config port, config tls-port, config tls-*, file ", "journal is kept")
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

// interruptWithPortTaken runs an apply interrupted at the rewrite, once
// port 0 is set, with the plaintext port taken by another listener before
// the undo of port 0: the rollback stops there, the journal is kept.
func interruptWithPortTaken(t *testing.T, s *redisServer, rc sdk.RequestContext) (net.Listener, sdk.ApplyResponse) {
	t.Helper()
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
	if squatter == nil {
		t.Fatalf("the run never reached the rewrite: %+v", r.Diagnostics)
	}
	t.Cleanup(func() { squatter.Close() })
	return squatter, r
}

// The next apply after TestUndoStopsWhenPlaintextCannotReopen's failed
// undo, with the plaintext port still taken: the rollback cannot reopen
// it, so it puts nothing back — the files the run wrote stay (restoring
// them first left redis serving a certificate its tls-cert-file no longer
// holds: the file the run created was removed). The TLS port serves the
// certificate on disk and reloads it, the journal is kept, the error names
// the port; a retry changes nothing. Once the port is free the next apply
// recovers.
func TestRecoveryWithPortTakenKeepsFilesAndTLS(t *testing.T) {
	s := startRedis(t, "pw-recover")
	p := newPKI(t, "CA")
	rc := s.request(t, p, false, nil, nil)
	squatter, _ := interruptWithPortTaken(t, s, rc)
	tg := rcTarget(t, rc)
	jp, _, _ := tg.journalPaths()
	crt, key := filepath.Join(s.dir, "tls", "redis.crt"), filepath.Join(s.dir, "tls", "redis.key")
	cl := hostclient.InProcess(redisTLS{})
	defer cl.Close()
	for try := 1; try <= 2; try++ {
		pr, err := cl.Plan(context.Background(), rc)
		if err != nil || pr.Diagnostics.HasError() || !hasWarning(pr.Diagnostics, "redis.apply.interrupted") {
			t.Fatalf("plan %d with the port taken: %v %+v", try, err, pr.Diagnostics)
		}
		r := applyOnce(t, cl, rc, pr.PlanToken)
		if !hasCode(r.Diagnostics, "redis.apply.interrupted") || len(r.Applied) != 0 {
			t.Fatalf("apply %d with the port taken did not fail: %+v, applied %+v", try, r.Diagnostics, r.Applied)
		}
		errorSays(t, fmt.Sprintf("apply %d error", try), r.Diagnostics.Err().Error(), "pw-recover", "rolling it back failed",
			"cannot listen on its port "+strconv.Itoa(s.port)+" again", "taken by another process", "certificate files were left", "journal kept")
		if got := s.config("port"); got != "0" {
			t.Errorf("apply %d: port = %s", try, got)
		}
		if got := s.config("tls-port"); got != strconv.Itoa(s.tlsPort) {
			t.Fatalf("apply %d: tls-port = %s, want %d still open", try, got, s.tlsPort)
		}
		// What the TLS port serves is what redis.crt holds.
		onDisk, err := os.ReadFile(crt)
		if err != nil {
			t.Fatalf("apply %d: the certificate redis serves is gone from disk: %v", try, err)
		}
		if string(onDisk) != string(p.serverPEM) {
			t.Errorf("apply %d: redis.crt is not the certificate the run wrote", try)
		}
		c, err := tg.dialTLS(context.Background(), rc)
		if err != nil {
			t.Fatalf("apply %d: TLS with the policy's CA: %v", try, err)
		}
		served := c.nc.(*tls.Conn).ConnectionState().PeerCertificates[0].Raw
		c.Close()
		if block, _ := pem.Decode(onDisk); block == nil || string(block.Bytes) != string(served) {
			t.Errorf("apply %d: the TLS port serves a certificate redis.crt does not hold", try)
		}
		if _, err := os.Stat(jp); err != nil {
			t.Fatalf("apply %d: the journal was not kept: %v", try, err)
		}
	}
	// The files on disk load: redis reloads them and a new TLS login works.
	if _, err := s.cli("CONFIG", "SET", "tls-cert-file", crt, "tls-key-file", key); err != nil {
		t.Fatalf("redis cannot load the files on disk: %v", err)
	}
	if c, err := tg.manage(context.Background(), rc); err != nil || !strings.HasPrefix(c.via, "TLS") {
		t.Fatalf("no TLS login after reloading the files on disk: %v", err)
	} else {
		c.Close()
	}

	squatter.Close()
	pr, err := cl.Plan(context.Background(), rc)
	if err != nil || pr.Diagnostics.HasError() {
		t.Fatalf("plan with the port free: %v %+v", err, pr.Diagnostics)
	}
	if r := applyOnce(t, cl, rc, pr.PlanToken); r.Diagnostics.HasError() || !hasWarning(r.Diagnostics, "redis.apply.interrupted") {
		t.Fatalf("apply with the port free: %+v", r.Diagnostics)
	}
	if got := s.config("port"); got != "0" {
		t.Errorf("port = %s after the recovering apply", got)
	}
	if _, err := os.Stat(jp); err == nil {
		t.Errorf("journal %s left after a completed apply", jp)
	}
}

// A redis reached only over its Unix socket (port 0, tls-port 0) whose new
// TLS login fails: closing the TLS port again is going back to how it was
// (it had no TCP listener before), so the undo does it — TLS closed, the
// files removed, the journal gone — and a second apply fails the same way
// from the same state: nothing left open between runs.
func TestTLSPortUndoUnixSocketOnly(t *testing.T) {
	s := startRedis(t, "")
	if _, err := s.cli("CONFIG", "SET", "port", "0"); err != nil {
		t.Fatal(err)
	}
	rc := s.request(t, newPKI(t, "CA"), false, map[string]any{"server_name": "not-the-server.example"}, nil)
	cl := hostclient.InProcess(redisTLS{})
	defer cl.Close()
	jp, _, _ := rcTarget(t, rc).journalPaths()
	for try := 1; try <= 2; try++ {
		r := applyOnce(t, cl, rc, nil)
		if !hasCode(r.Diagnostics, "redis.apply") || hasCode(r.Diagnostics, "redis.apply.interrupted") {
			t.Fatalf("apply %d did not fail at the login: %+v", try, r.Diagnostics)
		}
		msg := r.Diagnostics.Err().Error()
		if !strings.Contains(msg, "tls-login") || !strings.Contains(msg, "this run's earlier changes were undone") || strings.Contains(msg, "FAILED") {
			t.Errorf("apply %d error: %s", try, msg)
		}
		for name, want := range map[string]string{"tls-port": "0", "port": "0", "tls-cert-file": ""} {
			if got := s.config(name); got != want {
				t.Errorf("apply %d: %s = %q after the undo, want %q as before", try, name, got, want)
			}
		}
		if _, err := os.Stat(filepath.Join(s.dir, "tls", "redis.crt")); err == nil {
			t.Errorf("apply %d: redis.crt left after the undo", try)
		}
		if _, err := os.Stat(jp); err == nil {
			t.Errorf("apply %d: journal %s left after a complete undo", try, jp)
		}
	}
}

// The guarded case: redis had a plaintext port, and CONFIG SET port 0 took
// effect although the step failed (its reply lost: here set by the test at
// the step's boundary, then the run cancelled), so its undo never runs.
// Closing the TLS port now would leave redis no TCP listener where it had
// one: the undo refuses, the TLS port stays open, the journal is kept, and
// the next apply rolls back (the old port reopened with tls-port 0 in one
// CONFIG SET) and applies anew.
func TestTLSPortUndoKeepsATCPListener(t *testing.T) {
	s := startRedis(t, "")
	rc := s.request(t, newPKI(t, "CA"), false, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stepHook = func(phase string) {
		if phase != "plaintext-closed" {
			return
		}
		if _, err := s.cli("CONFIG", "SET", "port", "0"); err != nil {
			t.Error(err)
		}
		cancel()
	}
	defer func() { stepHook = nil }()
	var r sdk.ApplyResponse
	redisTLS{}.Apply(ctx, sdk.ApplyRequest{RequestContext: rc}, &r)
	stepHook = nil
	if !hasCode(r.Diagnostics, "redis.apply.interrupted") {
		t.Fatalf("apply was not reported interrupted: %+v", r.Diagnostics)
	}
	errorSays(t, "apply error", r.Diagnostics.Err().Error(), "",
		"undoing FAILED for: config tls-port", "redis reports port 0", "no TCP listener", "journal is kept")
	if got := s.config("tls-port"); got != strconv.Itoa(s.tlsPort) {
		t.Errorf("tls-port = %s: the undo closed the last TCP listener", got)
	}
	jp, _, _ := rcTarget(t, rc).journalPaths()
	if _, err := os.Stat(jp); err != nil {
		t.Fatalf("the journal was not kept: %v", err)
	}
	cl := hostclient.InProcess(redisTLS{})
	defer cl.Close()
	pr, err := cl.Plan(context.Background(), rc)
	if err != nil || pr.Diagnostics.HasError() {
		t.Fatalf("plan: %v %+v", err, pr.Diagnostics)
	}
	if r := applyOnce(t, cl, rc, pr.PlanToken); r.Diagnostics.HasError() || !hasWarning(r.Diagnostics, "redis.apply.interrupted") {
		t.Fatalf("the next apply: %+v", r.Diagnostics)
	}
	if got := s.config("port"); got != "0" {
		t.Errorf("port = %s after the next apply", got)
	}
	if _, err := os.Stat(jp); err == nil {
		t.Errorf("journal %s left after a completed apply", jp)
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
