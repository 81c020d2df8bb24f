package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/shared/sdk/sdktest"
)

// helperEnv carries the server and the certificates to the helper process.
const helperEnv = "HARDEN_REDIS_APPLY_HELPER"

type helperState struct {
	Dir, Conf, Sock, Password string
	Port, TLSPort             int
	PKI                       struct{ CA, Server, Key, Client, ClientKey []byte }
}

// TestApplyHelperProcess is one apply in a process of its own, started by
// TestApplyKilledIsRolledBack with the crash hook set; alone it does nothing.
func TestApplyHelperProcess(t *testing.T) {
	raw := os.Getenv(helperEnv)
	if raw == "" {
		return
	}
	var h helperState
	if err := json.Unmarshal([]byte(raw), &h); err != nil {
		t.Fatal(err)
	}
	s := &redisServer{t: t, dir: h.Dir, conf: h.Conf, sock: h.Sock, port: h.Port, tlsPort: h.TLSPort, password: h.Password}
	p := pki{caPEM: h.PKI.CA, serverPEM: h.PKI.Server, serverKey: h.PKI.Key, clientPEM: h.PKI.Client, clientKey: h.PKI.ClientKey}
	var r sdk.ApplyResponse
	redisTLS{}.Apply(context.Background(), sdk.ApplyRequest{RequestContext: s.request(t, p, false, nil, nil)}, &r)
	t.Fatalf("the crash hook did not fire: %v", r.Diagnostics.Err())
}

// A real apply process SIGKILLed at a step (after the TLS port opened,
// after the plaintext port closed, before the rewrite): plan then says an
// apply was interrupted; the next apply first rolls it back (files and
// settings as before it) and then applies anew; the journal is gone and a
// third apply changes nothing.
func TestApplyKilledIsRolledBack(t *testing.T) {
	for _, at := range []string{"tls-login", "plaintext-closed", "rewrite"} {
		t.Run(at, func(t *testing.T) {
			s := startRedis(t, "pw-killed")
			p := newPKI(t, "CA")
			var h helperState
			h.Dir, h.Conf, h.Sock, h.Password, h.Port, h.TLSPort = s.dir, s.conf, s.sock, s.password, s.port, s.tlsPort
			h.PKI.CA, h.PKI.Server, h.PKI.Key = p.caPEM, p.serverPEM, p.serverKey
			raw, _ := json.Marshal(h)
			killed, _ := sdktest.RunHelperProcess(t, "TestApplyHelperProcess", helperEnv+"="+string(raw), applykit.CrashEnv+"=redis:"+at)
			if !killed {
				t.Fatal("the helper apply was not killed at " + at)
			}
			if got := s.config("tls-port"); got == "0" && at != "tls-login" {
				t.Errorf("killed at %s, tls-port is 0: the kill came too early to test anything", at)
			}
			rc := s.request(t, p, false, nil, nil)
			cl := hostclient.InProcess(redisTLS{})
			defer cl.Close()
			pr, err := cl.Plan(context.Background(), rc)
			if err != nil || pr.Diagnostics.HasError() {
				t.Fatalf("plan: %v %v", err, pr.Diagnostics.Err())
			}
			if !hasWarning(pr.Diagnostics, "redis.apply.interrupted") {
				t.Errorf("plan does not say an apply was interrupted: %+v", pr.Diagnostics)
			}
			r := applyOnce(t, cl, rc, pr.PlanToken)
			if r.Diagnostics.HasError() {
				t.Fatalf("apply after the kill: %v", r.Diagnostics.Err())
			}
			if !hasWarning(r.Diagnostics, "redis.apply.interrupted") {
				t.Errorf("apply does not say it rolled the killed run back: %+v", r.Diagnostics)
			}
			if got := s.config("port"); got != "0" {
				t.Errorf("port = %s after the recovering apply", got)
			}
			jp, _, _ := rcTarget(t, rc).journalPaths()
			if _, err := os.Stat(jp); err == nil {
				t.Errorf("journal %s left after a completed apply", jp)
			}
			if r := applyOnce(t, cl, rc, nil); r.Diagnostics.HasError() || len(r.Applied) != 0 {
				t.Errorf("third apply: %v %+v", r.Diagnostics.Err(), r.Applied)
			}
			if _, err := os.Stat(filepath.Join(s.dir, "tls", "redis.key")); err != nil {
				t.Error(err)
			}
		})
	}
}

// A rotation on a live TLS port killed between two file writes: redis.crt
// is the new certificate, redis.key still the old key, and redis serves
// the old pair. The next apply restores the files before any CONFIG SET
// reloads them (loading this pair would fail: the certificate and the key
// do not match), so it rolls back and applies the rotation anew.
func TestRotationKilledBetweenFilesIsRolledBack(t *testing.T) {
	s := startRedis(t, "pw-rotate-killed")
	p := newPKI(t, "CA")
	cl := hostclient.InProcess(redisTLS{})
	defer cl.Close()
	if r := applyOnce(t, cl, s.request(t, p, false, nil, nil), nil); r.Diagnostics.HasError() {
		t.Fatal(r.Diagnostics.Err())
	}
	rotated := p
	rotated.serverPEM, rotated.serverKey = p.issue(12, "localhost", []string{"localhost"}, true)
	var h helperState
	h.Dir, h.Conf, h.Sock, h.Password, h.Port, h.TLSPort = s.dir, s.conf, s.sock, s.password, s.port, s.tlsPort
	h.PKI.CA, h.PKI.Server, h.PKI.Key = rotated.caPEM, rotated.serverPEM, rotated.serverKey
	raw, _ := json.Marshal(h)
	if killed, _ := sdktest.RunHelperProcess(t, "TestApplyHelperProcess", helperEnv+"="+string(raw), applykit.CrashEnv+"=redis:file-redis.key"); !killed {
		t.Fatal("the helper apply was not killed between the two files")
	}
	if crt, _ := os.ReadFile(filepath.Join(s.dir, "tls", "redis.crt")); string(crt) != string(rotated.serverPEM) {
		t.Fatal("the killed run did not write the new redis.crt: nothing between two files to test")
	}
	if key, _ := os.ReadFile(filepath.Join(s.dir, "tls", "redis.key")); string(key) != string(p.serverKey) {
		t.Fatal("the killed run got past redis.key")
	}
	rc := s.request(t, rotated, false, nil, nil)
	pr, err := cl.Plan(context.Background(), rc)
	if err != nil || pr.Diagnostics.HasError() || !hasWarning(pr.Diagnostics, "redis.apply.interrupted") {
		t.Fatalf("plan after the kill: %v %+v", err, pr.Diagnostics)
	}
	r := applyOnce(t, cl, rc, pr.PlanToken)
	if r.Diagnostics.HasError() || !hasWarning(r.Diagnostics, "redis.apply.interrupted") {
		t.Fatalf("apply after the kill: %+v", r.Diagnostics)
	}
	if got := servedSerial(t, s, p); got != "12" {
		t.Errorf("after the recovered rotation redis serves serial %s, want 12", got)
	}
	jp, _, _ := rcTarget(t, rc).journalPaths()
	if _, err := os.Stat(jp); err == nil {
		t.Errorf("journal %s left after a completed apply", jp)
	}
}

func hasWarning(ds sdk.Diagnostics, code string) bool {
	for _, d := range ds {
		if d.Code == code && d.Severity == sdk.Warning {
			return true
		}
	}
	return false
}

func rcTarget(t *testing.T, rc sdk.RequestContext) *target {
	t.Helper()
	var d sdk.Diagnostics
	tg, ok := load(rc, &d)
	if !ok {
		t.Fatal(d.Err())
	}
	return tg
}
