package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/testenv"
)

// buildPlugin builds this plugin's binary (the interruption test kills a
// real plugin process).
func buildPlugin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), hostclient.BinaryPrefix+"kafka")
	goBin := os.Getenv("GO")
	if goBin == "" {
		goBin = "go"
	}
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build the plugin: %v\n%s", err, out)
	}
	return bin
}

func launchPlugin(t *testing.T, bin string, env ...string) *hostclient.Client {
	t.Helper()
	base := []string{"PATH=" + os.Getenv("PATH"), applykit.StateDirEnv + "=" + os.Getenv(applykit.StateDirEnv)}
	c, err := hostclient.Launch(t.Context(), hostclient.LaunchConfig{Path: bin, Env: append(base, env...)})
	if err != nil {
		t.Fatalf("launch: %v", err)
	}
	return c
}

// referencedFilesExist: every store and password file server.properties
// names is there, so a broker started from disk finds what it needs.
func referencedFilesExist(t *testing.T, props []byte) {
	t.Helper()
	m := propertyMapOf(t, string(props))
	files := []string{}
	for _, k := range []string{"ssl.keystore.location", "ssl.truststore.location"} {
		if m[k] != "" {
			files = append(files, m[k])
		}
	}
	if ref := m["ssl.keystore.password"]; strings.HasPrefix(ref, "${file:") {
		files = append(files, strings.Split(strings.TrimPrefix(ref, "${file:"), ":")[0])
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("server.properties on disk names %s, which is missing: a restart would fail: %v", f, err)
		}
	}
}

// leftovers lists temp files and journals apply left beside its files.
func leftovers(k *testenv.Kafka) []string {
	var out []string
	for _, dir := range []string{filepath.Dir(k.Properties), filepath.Join(filepath.Dir(k.Properties), "harden")} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".harden-tmp") || strings.HasSuffix(e.Name(), ".harden-journal") {
				out = append(out, e.Name())
			}
		}
	}
	if _, err := os.Stat(journalPath(brokerTarget{ConfigFile: k.Properties})); err == nil {
		out = append(out, journalPath(brokerTarget{ConfigFile: k.Properties}))
	}
	return out
}

func hasCode(ds sdk.Diagnostics, code string) bool {
	return slices.ContainsFunc(ds, func(d sdk.Diagnostic) bool { return d.Code == code })
}

func hasChange(cs []sdk.Change, prefix string) bool {
	return slices.ContainsFunc(cs, func(c sdk.Change) bool { return strings.HasPrefix(c.Resource, prefix) })
}

// THE interruption test (issue 12 items 1 and 6): a real plugin process
// is SIGKILLed at every step of a static apply (the fault hook
// HARDEN_CRASH_AT=kafka:<phase>) and after a real delay, on a real broker.
// After each kill: server.properties is old or new and names only files
// that exist, harden still reaches the broker, plan reports the
// interrupted apply (never "nothing to apply"), apply rolls it back and
// applies, ending new and verified, a second apply changes nothing, and no
// journal or temp file is left. The first kill is item 6: files written,
// broker not restarted, still serving PLAINTEXT. Then Ctrl-C (the host's
// Stop) during an apply rolls back and says so.
func TestApplyInterrupted(t *testing.T) {
	k := testenv.KafkaForTest(t)
	bin := buildPlugin(t)
	ctx := context.Background()
	rc := brokerRequest(t, k, true)
	steps := []struct {
		name    string
		crashAt string
		delay   time.Duration
		// killBroker: the broker dies too (a restart that stopped it and
		// failed to start it again).
		killBroker bool
	}{
		// Every step boundary of a static apply once (config-written is
		// item 6's), then a real delay.
		{"PLAINTEXT broker, files written, not restarted (item 6)", phaseConfigWritten, 0, false},
		{"journal written", phasePrepared, 0, false},
		{"stores written", phaseStoresWritten, 0, false},
		{"restart about to run", phaseRestarting, 0, false},
		{"restarted, not verified", phaseRestarted, 0, false},
		{"verifying", phaseVerifying, 0, false},
		{"killed 2.5s into apply", "", 2500 * time.Millisecond, false},
		{"killed at the restart, the broker down", phaseRestarting, 0, true},
	}
	start := time.Now()
	for i, step := range steps {
		if i > 0 {
			// A certificate with another subject: a static apply with a
			// restart every time.
			cert, key, err := k.CA.IssuePeer(fmt.Sprintf("kafka-%d", i), "127.0.0.1", "localhost")
			if err != nil {
				t.Fatal(err)
			}
			rc.Certificates.ChainPEM, rc.Certificates.KeyPEM = mustRead(t, cert), mustRead(t, key)
		}
		ok := t.Run(step.name, func(t *testing.T) {
			old := mustRead(t, k.Properties)
			var env []string
			if step.crashAt != "" {
				env = append(env, applykit.CrashEnv+"=kafka:"+step.crashAt)
			}
			c := launchPlugin(t, bin, env...)
			pid := c.PID()
			var ar sdk.ApplyResponse
			var aerr error
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				ar, aerr = c.Apply(ctx, rc, nil, false)
			}()
			if step.delay > 0 {
				time.Sleep(step.delay)
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
					t.Logf("kill %d: %v (already gone)", pid, err)
				}
			}
			wg.Wait()
			c.Close()
			if aerr == nil && step.delay == 0 {
				t.Fatalf("the plugin was not killed at %s: %+v %v", step.crashAt, ar.Applied, ar.Diagnostics.Err())
			}
			if !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
				t.Errorf("plugin process %d still there", pid)
			}
			// A restart the killed run started runs on (own process group):
			// k.PID waits for testenv's restart to finish.
			time.Sleep(300 * time.Millisecond)
			_ = k.PID()
			disk := mustRead(t, k.Properties)
			referencedFilesExist(t, disk)
			if step.killBroker {
				if err := syscall.Kill(k.PID(), syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				for brokerAnswers(ctx, k.Bootstrap, clientTLS(rc)) || brokerAnswers(ctx, k.Bootstrap, nil) {
					time.Sleep(100 * time.Millisecond)
				}
			} else if !brokerAnswers(ctx, k.Bootstrap, clientTLS(rc)) && !brokerAnswers(ctx, k.Bootstrap, nil) {
				t.Fatalf("harden cannot reach the broker after the kill:\n%s", testenvTail(k))
			}
			_, journalErr := os.Stat(journalPath(brokerTarget{ConfigFile: k.Properties}))
			interrupted := journalErr == nil

			pc := launchPlugin(t, bin)
			defer pc.Close()
			p, err := pc.Plan(ctx, rc)
			if step.killBroker {
				// The broker cannot be planned, the interrupted apply is said.
				if err != nil || !p.Diagnostics.HasError() || !hasCode(p.Diagnostics, "kafka.apply.interrupted") {
					t.Fatalf("plan with the broker down: %v %v", err, p.Diagnostics)
				}
				p.Changes = append(p.Changes, sdk.Change{Resource: "journal:"}) // said as a diagnostic
				p.PlanToken = nil
			} else if err != nil || p.Diagnostics.HasError() {
				t.Fatalf("plan after the kill: %v %v", err, p.Diagnostics.Err())
			}
			if step.delay == 0 && !interrupted {
				t.Errorf("no journal after a kill at %s", step.crashAt)
			}
			if interrupted && (!hasChange(p.Changes, "journal:") || !hasCode(p.Diagnostics, "kafka.apply.interrupted")) {
				t.Errorf("plan does not report the interrupted apply: %+v %v", p.Changes, p.Diagnostics)
			}
			if i == 0 {
				// Item 6: the broker still serves PLAINTEXT from its old start.
				if !brokerAnswers(ctx, k.Bootstrap, nil) {
					t.Errorf("expected the broker to still serve PLAINTEXT")
				}
				if !hasChange(p.Changes, "broker 1 running config:listeners") {
					t.Errorf("plan does not report the pending restart (file new, broker old): %+v", p.Changes)
				}
				v, err := pc.Verify(ctx, rc)
				if err != nil || !hasCode(v.Diagnostics, "kafka.apply.interrupted") {
					t.Errorf("verify does not report the interrupted apply: %v %v", err, v.Diagnostics)
				}
			}
			if !interrupted && len(p.Changes) == 0 && bytes.Equal(disk, old) {
				t.Errorf("nothing to apply, the broker unchanged")
			}

			before := k.PID()
			rec, err := pc.Apply(ctx, rc, p.PlanToken, false)
			if err != nil || rec.Diagnostics.HasError() {
				t.Fatalf("apply after the kill: %v %v\n%s", err, rec.Diagnostics.Err(), testenvTail(k))
			}
			if interrupted && (!hasChange(rec.Applied, "journal:") || !strings.Contains(fmt.Sprint(rec.Diagnostics), "interrupted apply was rolled back")) {
				t.Errorf("apply does not say it rolled the interrupted apply back: %+v %v", rec.Applied, rec.Diagnostics)
			}
			if step.killBroker && !strings.Contains(fmt.Sprint(rec.Diagnostics), "the broker, which did not answer, is restarted with them") {
				t.Errorf("apply does not say it brought the broker back: %v", rec.Diagnostics)
			}
			if len(rec.Applied) > 0 && k.PID() == before {
				t.Errorf("apply did not restart the broker")
			}
			now := mustRead(t, k.Properties)
			if !bytes.Equal(disk, old) && !bytes.Equal(disk, now) {
				t.Errorf("after the kill server.properties was neither old nor new:\n%s", disk)
			}
			if l := leftovers(k); len(l) > 0 {
				t.Errorf("left behind: %v", l)
			}
			pid = k.PID()
			again, err := pc.Apply(ctx, rc, nil, false)
			if err != nil || again.Diagnostics.HasError() || len(again.Applied) != 0 || k.PID() != pid {
				t.Errorf("second apply: %v %v %+v (restarted: %v)", err, again.Diagnostics.Err(), again.Applied, k.PID() != pid)
			}
		})
		if !ok {
			break
		}
	}
	t.Logf("%d kills in %s", len(steps), time.Since(start).Round(time.Second))

	t.Run("Ctrl-C during apply rolls back and says so", func(t *testing.T) {
		cert, key, err := k.CA.IssuePeer("kafka-stopped", "127.0.0.1", "localhost")
		if err != nil {
			t.Fatal(err)
		}
		rc.Certificates.ChainPEM, rc.Certificates.KeyPEM = mustRead(t, cert), mustRead(t, key)
		old := mustRead(t, k.Properties)
		c := launchPlugin(t, bin)
		defer c.Close()
		time.AfterFunc(1500*time.Millisecond, func() { _ = c.Stop(ctx) })
		ar, err := c.Apply(ctx, rc, nil, false)
		if err != nil {
			t.Fatalf("apply: %v", err)
		}
		var codes []string
		for _, d := range ar.Diagnostics {
			codes = append(codes, d.Code)
		}
		if !slices.Contains(codes, "kafka.apply.interrupted") || !strings.Contains(fmt.Sprint(ar.Diagnostics.Err()), "previous files are restored") {
			t.Fatalf("apply stopped by the host: %v (codes %v)", ar.Diagnostics.Err(), codes)
		}
		t.Logf("stopped: %v", ar.Diagnostics.Err())
		if now := mustRead(t, k.Properties); !bytes.Equal(now, old) {
			t.Errorf("server.properties not restored after the interrupted apply")
		}
		if l := leftovers(k); len(l) > 0 {
			t.Errorf("left behind: %v", l)
		}
		if !brokerAnswers(ctx, k.Bootstrap, clientTLS(rc)) {
			t.Errorf("harden cannot reach the broker after the rollback")
		}
	})

	pc := launchPlugin(t, bin)
	defer pc.Close()
	if ar, err := pc.Apply(ctx, rc, nil, false); err != nil || ar.Diagnostics.HasError() {
		t.Fatalf("apply: %v %v", err, ar.Diagnostics.Err())
	}

	// A KIP-226 rotation killed once the broker took the new stores, before
	// server.properties names them: the recovery takes the dynamic
	// overrides back before it removes the stores, then rotates again —
	// no restart at any point.
	t.Run("rotation killed after the dynamic update", func(t *testing.T) {
		cert, key, err := k.CA.IssuePeer("kafka-stopped", "127.0.0.1", "localhost") // a renewal
		if err != nil {
			t.Fatal(err)
		}
		rc.Certificates.ChainPEM, rc.Certificates.KeyPEM = mustRead(t, cert), mustRead(t, key)
		old, pid := mustRead(t, k.Properties), k.PID()
		c := launchPlugin(t, bin, applykit.CrashEnv+"=kafka:"+phaseDynamicSet)
		if _, err := c.Apply(ctx, rc, nil, false); err == nil {
			t.Fatalf("the plugin was not killed at %s", phaseDynamicSet)
		}
		c.Close()
		if disk := mustRead(t, k.Properties); !bytes.Equal(disk, old) {
			t.Errorf("server.properties changed before the rotation was confirmed")
		}
		referencedFilesExist(t, old)
		p, err := pc.Plan(ctx, rc)
		if err != nil || p.Diagnostics.HasError() || !hasChange(p.Changes, "journal:") {
			t.Fatalf("plan after the kill: %v %v %+v", err, p.Diagnostics.Err(), p.Changes)
		}
		rec, err := pc.Apply(ctx, rc, p.PlanToken, false)
		if err != nil || rec.Diagnostics.HasError() || !hasChange(rec.Applied, "journal:") {
			t.Fatalf("apply after the kill: %v %v %+v", err, rec.Diagnostics.Err(), rec.Applied)
		}
		served, err := servedCertificate(context.Background(), rc, rendered{broker: brokerTarget{Listeners: []listenerSpec{{Name: "SSL", Address: k.Bootstrap}}}})
		if err != nil || !bytes.Equal(served.Raw, mustPEMCert(t, rc.Certificates.ChainPEM)) {
			t.Errorf("the renewed certificate is not served: %v", err)
		}
		if k.PID() != pid {
			t.Errorf("the rotation's recovery restarted the broker")
		}
		if l := leftovers(k); len(l) > 0 {
			t.Errorf("left behind: %v", l)
		}
		// What is left is the controller listener's restart (Kafka reloads
		// broker listeners only), said as such.
		if again, err := pc.Plan(ctx, rc); err != nil || len(again.Changes) != 1 || again.Changes[0].Resource != "broker 1 controller listener CONTROLLER:ssl.keystore.location" {
			t.Errorf("plan after the recovered rotation: %v %+v", err, again.Changes)
		}
	})

	// End state: verify passes the checks the hardening promises.
	v, err := pc.Verify(ctx, rc)
	if err != nil || v.Diagnostics.HasError() {
		t.Fatalf("verify: %v %v", err, v.Diagnostics.Err())
	}
	requireChecks(t, v.Checks, map[string]checks.Status{"kafka.listener.plaintext": checks.Pass, "kafka.config.client_auth": checks.Pass,
		"kafka.config.inter_broker_tls": checks.Pass, "kafka.config.protocols": checks.Pass, "kafka.client.produce_consume": checks.Pass})
}

// Issue 12 item 5: a restart_command that leaves a background child
// holding its stdout (a daemonised broker) finishes, is reported
// successful, and restarted the broker exactly once. Before, apply waited
// for the child, reported the working restart failed, rolled back and
// restarted the broker twice.
func TestApplyRestartCommandLeavesAChild(t *testing.T) {
	k := testenv.KafkaForTest(t)
	ctx := context.Background()
	rc := brokerRequest(t, k, false)
	var conn map[string]any
	_ = json.Unmarshal(rc.Target.Connection, &conn)
	count := filepath.Join(t.TempDir(), "restarts")
	conn["restart_command"] = []string{"/bin/bash", "-c", fmt.Sprintf(`echo restart >> %q; %s; rc=$?; sleep 90 & echo "restart done"; exit $rc`, count, shellJoin(k.RestartCommand()))}
	conn["restart_timeout"] = "30s"
	raw, _ := json.Marshal(conn)
	rc.Target = sdk.NewTarget("events", raw, rc.Target.Spec, nil)
	client := hostclient.InProcess(kafka{})
	defer client.Close()
	start := time.Now()
	ar, err := client.Apply(ctx, rc, nil, false)
	took := time.Since(start)
	if err != nil || ar.Diagnostics.HasError() {
		t.Fatalf("apply: %v %v", err, ar.Diagnostics.Err())
	}
	n := strings.Count(string(mustRead(t, count)), "restart")
	if n != 1 {
		t.Errorf("the broker was restarted %d times, want 1", n)
	}
	if took > 60*time.Second {
		t.Errorf("apply took %s: it waited for the restart command's child", took)
	}
	t.Logf("apply with a restart command leaving a child: %s, %d restart(s)", took.Round(time.Second), n)
}
