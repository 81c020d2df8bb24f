package testenv

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// KafkaCluster is a multi-node Apache Kafka cluster in KRaft mode: every
// node is broker and controller (static voters), PLAINTEXT only, topics
// replicated to every node with min.insync.replicas=2 — the "before" state of
// a rolling PLAINTEXT→SSL migration.
type KafkaCluster struct {
	Nodes []*Kafka
	// Bootstrap lists every node's PLAINTEXT listener.
	Bootstrap []string
}

// StartKafkaCluster starts n nodes sharing one cluster id and voter set,
// each with its own dir, ports, server.properties and restart port.
func StartKafkaCluster(ctx context.Context, env *Env, n int) (*KafkaCluster, error) {
	libs, version, err := KafkaLibs()
	if err != nil {
		return nil, err
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, fmt.Errorf("java not found (Java 17 runs the broker): %w", err)
	}
	c := &KafkaCluster{}
	// One broker certificate for the cluster (every node is 127.0.0.1) and
	// harden's admin identity.
	cert, key, err := env.CA.IssuePeer("kafka", "127.0.0.1", "localhost")
	if err != nil {
		return nil, err
	}
	ccert, ckey, err := env.CA.Issue("harden-admin", true)
	if err != nil {
		return nil, err
	}
	var voters []string
	for i := 1; i <= n; i++ {
		k := &Kafka{Libs: libs, Version: version, NodeID: i, CA: env.CA, CertFile: cert, KeyFile: key, ClientCertFile: ccert, ClientKeyFile: ckey}
		if k.Base, err = os.MkdirTemp("", fmt.Sprintf("harden-kafka%d-", i)); err != nil {
			c.Stop()
			return nil, err
		}
		c.Nodes = append(c.Nodes, k)
		port, err1 := FreePort()
		cport, err2 := FreePort()
		if err1 != nil || err2 != nil {
			c.Stop()
			return nil, fmt.Errorf("free ports: %v %v", err1, err2)
		}
		k.Bootstrap, k.Controller = net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), net.JoinHostPort("127.0.0.1", strconv.Itoa(cport))
		voters = append(voters, fmt.Sprintf("%d@%s", i, k.Controller))
		c.Bootstrap = append(c.Bootstrap, k.Bootstrap)
	}
	id := make([]byte, 16)
	rand.Read(id)
	clusterID := base64.RawURLEncoding.EncodeToString(id)
	q := &quorum{voters: strings.Join(voters, ","), size: n}
	for _, k := range c.Nodes {
		if err := k.writeAndFormat(ctx, java, clusterID, q); err != nil {
			c.Stop()
			return nil, err
		}
		if err := k.launch(java); err != nil {
			c.Stop()
			return nil, err
		}
	}
	// The nodes need each other (quorum) before any answers: wait for all.
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, k := range c.Nodes {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = k.waitAnswer(ctx) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			c.Stop()
			return nil, fmt.Errorf("node %d: %w", i+1, err)
		}
	}
	for _, k := range c.Nodes {
		if err := k.serveRestarts(); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// Stop stops every node and removes their files.
func (c *KafkaCluster) Stop() error {
	// In parallel: a node stopped last would otherwise wait for a quorum
	// that is gone.
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, k := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := k.Stop(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("stop kafka cluster: %v", errs)
	}
	return nil
}

// KafkaClusterForTest starts an n-node cluster for one test.
func KafkaClusterForTest(t testing.TB, n int) *KafkaCluster {
	t.Helper()
	exclusiveKafka(t)
	dir := t.TempDir()
	ca, err := NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := StartKafkaCluster(context.Background(), &Env{Dir: dir, CA: ca}, n)
	if err != nil {
		unavailable(t, "Kafka cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return c
}
