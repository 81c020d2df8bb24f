package testenv

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/harden-dev/harden/shared/probe"
)

func TestKafkaSmoke(t *testing.T) {
	start := time.Now()
	k := KafkaForTest(t)
	t.Logf("Kafka %s up in %v at %s", k.Version, time.Since(start).Round(time.Millisecond), k.Bootstrap)
	if !kafkaAnswers(k.Bootstrap) {
		t.Fatalf("broker does not answer ApiVersions")
	}
	// The probe kit's Kafka dialect sees the plaintext listener for what it is.
	pt := probe.PlaintextOnly(context.Background(), probe.Target{Address: k.Bootstrap, Dialect: probe.Kafka}, probe.Options{})
	if !pt.Accepted || pt.Err != nil {
		t.Errorf("plaintext ApiVersions not detected: %+v", pt)
	}
	props, _ := os.ReadFile(k.Properties)
	if !strings.Contains(string(props), "listener.security.protocol.map=PLAINTEXT:PLAINTEXT") {
		t.Errorf("broker must start unhardened:\n%s", props)
	}
	base := k.Base
	if err := k.Stop(); err != nil {
		t.Fatal(err)
	}
	if kafkaAnswers(k.Bootstrap) {
		t.Errorf("broker still answers after Stop")
	}
	if _, err := os.Stat(base); !os.IsNotExist(err) {
		t.Errorf("broker dir left behind")
	}
}

// Three KRaft nodes form one cluster: three brokers in the metadata, a
// topic replicated to all of them, a node restarted through its restart
// port comes back in sync.
func TestKafkaCluster(t *testing.T) {
	start := time.Now()
	c := KafkaClusterForTest(t, 3)
	t.Logf("3-node cluster up in %v", time.Since(start).Round(time.Millisecond))
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V4_0_0_0
	admin, err := sarama.NewClusterAdmin(c.Bootstrap, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	brokers, _, err := admin.DescribeCluster()
	if err != nil || len(brokers) != 3 {
		t.Fatalf("brokers: %v %d", err, len(brokers))
	}
	if err := admin.CreateTopic("replicated", &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 3}, false); err != nil {
		t.Fatal(err)
	}
	restartAt := time.Now()
	out, err := exec.Command(c.Nodes[1].RestartCommand()[0], c.Nodes[1].RestartCommand()[1:]...).CombinedOutput()
	t.Logf("restart command returned after %v", time.Since(restartAt).Round(time.Millisecond))
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("restart node 2: %v %s", err, out)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ts, err := admin.DescribeTopics([]string{"replicated"})
		inSync := err == nil && len(ts) == 1 && len(ts[0].Partitions) == 3
		for _, p := range ts[0].Partitions {
			inSync = inSync && len(p.Isr) == 3
		}
		if inSync {
			t.Logf("in sync %v after the restart", time.Since(restartAt).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitions not back in sync after the restart: %v %+v", err, ts)
		}
		time.Sleep(300 * time.Millisecond)
	}
}
