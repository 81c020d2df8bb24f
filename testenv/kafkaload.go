package testenv

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// KafkaLoad is a producer sending numbered messages every 20 ms with
// acks=all and a consumer reading every partition of one topic: the
// clients whose sends and messages must survive a migration or a rotation.
// It records what was acknowledged and what arrived.
type KafkaLoad struct {
	t        testing.TB
	topic    string
	Acked    sync.Map // value -> true
	Received sync.Map
	// Failed counts sends that returned an error.
	Failed   atomic.Int64
	next     *atomic.Int64
	stop     chan struct{}
	stopProd chan struct{}
	prodDone chan struct{}
	wg       sync.WaitGroup
	offsets  []int64
	mu       sync.Mutex
}

// StartKafkaLoad starts producing to and consuming topic (its partitions
// from offsets: sarama.OffsetOldest each, or where an earlier load
// stopped); next numbers the messages across loads.
func StartKafkaLoad(t testing.TB, addrs []string, cfg *sarama.Config, topic string, next *atomic.Int64, offsets []int64) *KafkaLoad {
	t.Helper()
	p := &KafkaLoad{t: t, topic: topic, next: next, stop: make(chan struct{}), stopProd: make(chan struct{}), prodDone: make(chan struct{}), offsets: offsets}
	pcfg := *cfg
	pcfg.Producer.Return.Successes = true
	pcfg.Producer.RequiredAcks = sarama.WaitForAll
	pcfg.Producer.Retry.Max, pcfg.Producer.Retry.Backoff = 30, 250*time.Millisecond
	pcfg.Metadata.Retry.Max = 30
	prod, err := sarama.NewSyncProducer(addrs, &pcfg)
	if err != nil {
		t.Fatalf("producer on %v: %v", addrs, err)
	}
	ccfg := *cfg
	ccfg.Consumer.Retry.Backoff = 250 * time.Millisecond
	cons, err := sarama.NewConsumer(addrs, &ccfg)
	if err != nil {
		t.Fatalf("consumer on %v: %v", addrs, err)
	}
	go func() { <-p.stop; p.wg.Wait(); cons.Close() }()
	for part := range offsets {
		pc, err := cons.ConsumePartition(topic, int32(part), offsets[part])
		if err != nil {
			t.Fatalf("consume partition %d: %v", part, err)
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer pc.Close()
			for {
				select {
				case m := <-pc.Messages():
					p.Received.Store(string(m.Value), true)
					p.mu.Lock()
					p.offsets[part] = m.Offset + 1
					p.mu.Unlock()
				case <-pc.Errors():
				case <-p.stop:
					return
				}
			}
		}()
	}
	go func() {
		defer close(p.prodDone)
		defer prod.Close()
		for {
			select {
			case <-p.stopProd:
				return
			case <-time.After(20 * time.Millisecond):
			}
			v := strconv.FormatInt(p.next.Add(1), 10)
			if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(v)}); err != nil {
				p.Failed.Add(1)
				t.Logf("send %s: %v", v, err)
				continue
			}
			p.Acked.Store(v, true)
		}
	}()
	return p
}

// Finish stops producing, lets the consumer catch up with everything
// acknowledged (up to 30 s), stops it and returns the next offset of every
// partition.
func (p *KafkaLoad) Finish() []int64 {
	close(p.stopProd)
	<-p.prodDone
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, missing := p.Counts(); missing == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(p.stop)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int64{}, p.offsets...)
}

// Counts: messages acknowledged, and of those not (yet) received.
func (p *KafkaLoad) Counts() (acked, missing int) {
	p.Acked.Range(func(k, _ any) bool {
		acked++
		if _, ok := p.Received.Load(k); !ok {
			missing++
		}
		return true
	})
	return
}
