package testenv

import (
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// Kafka brokers are the heaviest servers the tests start (a JVM each; a
// cluster test runs three for minutes). Test packages run in parallel, so
// two Kafka tests of different packages at once starve everything else on
// a 2-core machine (an object store test's requests time out). One Kafka
// test runs at a time machine-wide: KafkaForTest and KafkaClusterForTest
// hold this lock until the test ends (reentrant within a process: a test
// may start several brokers).
var kafkaLock struct {
	sync.Mutex
	holders int
	f       *os.File
}

func exclusiveKafka(t testing.TB) {
	t.Helper()
	kafkaLock.Lock()
	defer kafkaLock.Unlock()
	if kafkaLock.holders == 0 {
		f, err := os.OpenFile(filepath.Join(os.TempDir(), "harden-testenv-kafka.lock"), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Logf("testenv: no machine-wide Kafka lock (%v); running anyway", err)
			return
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			t.Logf("testenv: no machine-wide Kafka lock (%v); running anyway", err)
			return
		}
		kafkaLock.f = f
	}
	kafkaLock.holders++
	t.Cleanup(func() {
		kafkaLock.Lock()
		defer kafkaLock.Unlock()
		kafkaLock.holders--
		if kafkaLock.holders == 0 && kafkaLock.f != nil {
			kafkaLock.f.Close() // releases the flock
			kafkaLock.f = nil
		}
	})
}
