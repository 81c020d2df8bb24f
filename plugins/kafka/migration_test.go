package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/shared/tlsprofile"
	"github.com/harden-dev/harden/testenv"
)

const migrationTopic = "migration"

// The rolling PLAINTEXT→SSL migration of a running 3-node cluster: phases
// add-tls, switch, tls-only, each rolled broker by broker (restart, every
// broker back, zero under-replicated partitions), while a producer (acks=all)
// and a consumer keep running — on PLAINTEXT until the switch, then on SSL
// with harden's client certificate. No acknowledged message is lost and no
// send fails; the end state passes verify; a second apply changes nothing.
func TestClusterMigration(t *testing.T) {
	c := testenv.KafkaClusterForTest(t, 3)
	ctx := context.Background()
	n := c.Nodes[0]
	var brokers, specs []map[string]any
	var sslAddrs []string
	for _, k := range c.Nodes {
		p1, _ := testenv.FreePort()
		p2, _ := testenv.FreePort()
		ssl, ctl := net.JoinHostPort("127.0.0.1", strconv.Itoa(p1)), net.JoinHostPort("127.0.0.1", strconv.Itoa(p2))
		sslAddrs = append(sslAddrs, ssl)
		brokers = append(brokers, map[string]any{"node_id": k.NodeID, "config_file": k.Properties, "restart_command": k.RestartCommand()})
		specs = append(specs, map[string]any{"node_id": k.NodeID, "listeners": []map[string]any{{"name": "SSL", "address": ssl}, {"name": "CONTROLLER_SSL", "address": ctl, "controller": true}}})
	}
	conn, _ := json.Marshal(map[string]any{"bootstrap": c.Bootstrap, "brokers": brokers})
	rc := sdk.RequestContext{Policy: sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate(), MTLSScope: []string{"events"}},
		Certificates: sdk.Certificates{ChainPEM: mustRead(t, n.CertFile), KeyPEM: mustRead(t, n.KeyFile), CABundlePEM: mustRead(t, n.CA.CertFile),
			ClientChainPEM: mustRead(t, n.ClientCertFile), ClientKeyPEM: mustRead(t, n.ClientKeyFile)}}
	rc.Policy.Rotation.RenewBefore = 7 * 24 * time.Hour
	withPhase := func(phase string) sdk.RequestContext {
		s, _ := json.Marshal(map[string]any{"brokers": specs, "migration": map[string]any{"phase": phase}})
		r := rc
		r.Target = sdk.NewTarget("events", conn, s, nil)
		return r
	}
	client := hostclient.InProcess(kafka{})
	defer client.Close()

	// Jumping straight to the end state is refused: it would cut the first
	// restarted broker off from the others.
	ar, err := client.Apply(ctx, withPhase(phaseTLSOnly), nil, false)
	if err != nil || !ar.Diagnostics.HasError() || !strings.Contains(fmt.Sprint(ar.Diagnostics.Err()), "apply migration phase add-tls") {
		t.Fatalf("tls-only before add-tls: %v %v", err, ar.Diagnostics.Err())
	}

	plainCfg := sarama.NewConfig()
	plainCfg.Version = saramaVersion
	admin, err := sarama.NewClusterAdmin(c.Bootstrap, plainCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateTopic(migrationTopic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 3}, false); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	var next atomic.Int64
	pair := testenv.StartKafkaLoad(t, c.Bootstrap, plainCfg, migrationTopic, &next, []int64{sarama.OffsetOldest, sarama.OffsetOldest, sarama.OffsetOldest})
	time.Sleep(time.Second)

	applyPhase := func(phase string) {
		t.Helper()
		start := time.Now()
		r := withPhase(phase)
		p, err := client.Plan(ctx, r)
		if err != nil || p.Diagnostics.HasError() || len(p.Changes) == 0 {
			t.Fatalf("plan %s: %v %v %d changes", phase, err, p.Diagnostics.Err(), len(p.Changes))
		}
		ar, err := client.Apply(ctx, r, p.PlanToken, false)
		if err != nil || ar.Diagnostics.HasError() {
			t.Fatalf("apply %s: %v %v", phase, err, ar.Diagnostics.Err())
		}
		t.Logf("phase %s applied to 3 brokers in %v", phase, time.Since(start).Round(time.Millisecond))
	}
	applyPhase(phaseAddTLS)
	applyPhase(phaseSwitch)
	// Switch the clients to SSL (harden's client certificate), resuming where
	// the PLAINTEXT consumer stopped.
	sslCfg := saramaConfig(rc, true)
	offsets := pair.Finish()
	plainPair := pair
	pair = testenv.StartKafkaLoad(t, sslAddrs, sslCfg, migrationTopic, &next, offsets)
	applyPhase(phaseTLSOnly)
	time.Sleep(2 * time.Second)
	pair.Finish()

	a1, m1 := plainPair.Counts()
	a2, m2 := pair.Counts()
	// The second consumer reads from where the first stopped: a message
	// acknowledged on PLAINTEXT but not read before the switch arrives there.
	missing := 0
	plainPair.Acked.Range(func(k, _ any) bool {
		_, r1 := plainPair.Received.Load(k)
		_, r2 := pair.Received.Load(k)
		if !r1 && !r2 {
			missing++
		}
		return true
	})
	t.Logf("clients: %d messages acknowledged on PLAINTEXT, %d on SSL; %d and %d send failures; unread: %d, %d", a1, a2, plainPair.Failed.Load(), pair.Failed.Load(), missing, m2)
	if missing+m2 != 0 || a1 == 0 || a2 == 0 {
		t.Errorf("lost messages: %d of %d (PLAINTEXT), %d of %d (SSL)", missing, a1, m2, a2)
	}
	if f := plainPair.Failed.Load() + pair.Failed.Load(); f != 0 {
		t.Errorf("%d sends failed during the migration", f)
	}
	_ = m1

	final := withPhase(phaseTLSOnly)
	vr, err := client.Verify(ctx, withProbeIdentity(t, final, n.CA, "harden-probe"))
	if err != nil || vr.Diagnostics.HasError() {
		t.Fatalf("verify: %v %v", err, vr.Diagnostics.Err())
	}
	failed, passed := checkStatus(vr)
	if len(failed) > 0 {
		t.Errorf("verify after the migration:\n%s", strings.Join(failed, "\n"))
	}
	if strings.Count(strings.Join(passed, " "), "kafka.listener.plaintext") != 6 {
		t.Errorf("expected the plaintext check on 6 listeners (3 brokers × broker+controller): %v", passed)
	}
	// Every broker's running configuration, confirmed by the probes of its
	// listeners, and its authorizer refusing the probe identity.
	want := map[string]checks.Status{"kafka.client.produce_consume": checks.Pass}
	for _, id := range configCheckIDs(true) {
		want[id] = checks.Pass
		if n := countID(vr.Checks, id); n != 3 {
			t.Errorf("%d %s checks, want one per broker", n, id)
		}
	}
	requireChecks(t, vr.Checks, want)
	again, err := client.Apply(ctx, final, nil, false)
	if err != nil || again.Diagnostics.HasError() || len(again.Applied) != 0 {
		t.Errorf("second apply: %v %v %+v", err, again.Diagnostics.Err(), again.Applied)
	}
}

func countID(cs []checks.Check, id string) int {
	n := 0
	for _, c := range cs {
		if c.ID == id {
			n++
		}
	}
	return n
}
