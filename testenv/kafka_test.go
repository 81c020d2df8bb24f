package testenv

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

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
