package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
)

// Verify probes every listener of the broker.
func (kafka) Verify(ctx context.Context, q sdk.VerifyRequest, r *sdk.VerifyResponse) {
	var c connection
	if err := q.Target.DecodeConnection(&c); err != nil {
		r.Diagnostics.AddAttributeError(sdk.Path{"connection"}, "invalid connection", err.Error())
		return
	}
	var ls []listener
	files := map[string]map[string]string{} // node id -> server.properties
	var configFiles []string
	if c.ConfigFile != "" {
		configFiles = append(configFiles, c.ConfigFile)
	}
	for _, b := range c.Brokers {
		configFiles = append(configFiles, b.ConfigFile)
	}
	for _, f := range configFiles {
		_, props, ok := readBrokerProperties(f, &r.Diagnostics)
		if !ok {
			return
		}
		bls, err := listenersOf(props)
		if err != nil {
			r.Diagnostics.AddTargetError("kafka.config.listeners", f, err)
			return
		}
		for i := range bls {
			if len(configFiles) > 1 {
				bls[i].Node = "broker " + brokerID(props)
			}
		}
		ls = append(ls, bls...)
		files[brokerID(props)] = props
	}
	if len(configFiles) == 0 {
		// Without the brokers' files only the bootstrap addresses are known;
		// their protocol is found out by probing.
		for _, b := range c.Bootstrap {
			ls = append(ls, listener{Name: "bootstrap", Protocol: "unknown", Address: b})
		}
	}
	target, exp, err := probe.ForRequest(q.RequestContext, probe.Kafka)
	if err != nil {
		r.Diagnostics.AddAttributeError(sdk.Path{"certificate"}, "invalid certificate material", err.Error())
		return
	}
	results := make([][]checks.Check, len(ls))
	var wg sync.WaitGroup
	for i, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = verifyListener(ctx, l, target, exp)
		}()
	}
	// Meanwhile: a client with a valid certificate produces and consumes,
	// and the running brokers' configurations (DescribeConfigs).
	var tlsAddrs []string
	for _, l := range ls {
		if !l.Controller && l.tls() {
			tlsAddrs = append(tlsAddrs, l.Address)
		}
	}
	// sarama takes no context: the live checks run aside, and a cancelled
	// verify (Ctrl-C, harden's timeout) does not wait for their timeouts.
	liveCh := make(chan []checks.Check, 1)
	go func() { liveCh <- liveChecks(c, q.RequestContext, tlsAddrs, files) }()
	var live []checks.Check
	select {
	case live = <-liveCh:
	case <-ctx.Done():
		live = []checks.Check{checks.Errored("kafka.client.produce_consume", "broker listeners", ctx.Err())}
	}
	wg.Wait()
	for _, cs := range results {
		r.Checks = append(r.Checks, cs...)
	}
	r.Checks = append(r.Checks, live...)
}

func verifyListener(ctx context.Context, l listener, base probe.Target, exp probe.Expectations) []checks.Check {
	subject := fmt.Sprintf("%s listener %s (%s)", l.Name, l.Address, l.Protocol)
	if l.Controller {
		subject = "controller " + subject
	}
	if l.Node != "" {
		subject = l.Node + " " + subject
	}
	base.Address = l.Address
	// A cleartext ApiVersions to every port: an answer is a failure,
	// whatever the file says the listener is.
	pt := probe.PlaintextOnly(ctx, base, probe.Options{})
	var out []checks.Check
	switch {
	case pt.Err != nil:
		out = append(out, checks.Errored("kafka.listener.plaintext", subject, pt.Err))
	case pt.Accepted:
		out = append(out, checks.Failed("kafka.listener.plaintext", subject, pt.Evidence))
	default:
		out = append(out, checks.Passed("kafka.listener.plaintext", subject, pt.Evidence))
	}
	if !l.tls() && l.Protocol != "unknown" {
		return out
	}
	res, err := probe.Scan(ctx, base, probe.Options{})
	if err != nil {
		return append(out, checks.Errored("tls.enabled", subject, err))
	}
	for _, ch := range res.Checks(exp) {
		if ch.ID == "tls.plaintext.refused" {
			continue // kafka.listener.plaintext above is the same question
		}
		ch.Subject = subject
		out = append(out, ch)
	}
	return out
}

// liveChecks: a client with a valid certificate produces and consumes, and
// the running brokers' configurations (DescribeConfigs).
func liveChecks(c connection, q sdk.RequestContext, tlsAddrs []string, files map[string]map[string]string) []checks.Check {
	var live []checks.Check
	if len(tlsAddrs) == 0 {
		live = append(live, checks.Failed("kafka.client.produce_consume", "broker listeners", "no TLS broker listener to produce and consume over"))
	}
	if len(tlsAddrs) > 0 && len(q.Certificates.CABundlePEM) > 0 {
		nonce := make([]byte, 16)
		_, _ = rand.Read(nonce)
		live = append(live, produceConsume(tlsAddrs, q, hex.EncodeToString(nonce)))
	}
	admin, err := adminFor(c, q, tlsAddrs)
	if err != nil {
		return append(live, checks.Errored("kafka.config.inter_broker_tls", "DescribeConfigs", err))
	}
	defer admin.Close()
	return append(live, verifyBrokerConfigs(admin, q, files)...)
}
