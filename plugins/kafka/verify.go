package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
)

// Verify probes every listener of the broker, then judges the running
// brokers' configurations against what the probes observed.
//
// Every check verify promises is reported, whatever happened: a listener
// or broker that could not be looked at gives errors with the reason, a
// check that does not apply is skipped with the reason. Nothing that could
// not be observed passes (README: Reduction rules).
func (kafka) Verify(ctx context.Context, q sdk.VerifyRequest, r *sdk.VerifyResponse) {
	c, sp, ok := sdk.Decode[connection, spec](q.Target, &r.Diagnostics)
	if !ok {
		return
	}
	// harden's own TLS material that cannot be used is said, not dropped;
	// every check is still reported (those that need the client are then
	// errors from the TLS layer, never passes).
	if _, err := sdk.ClientTLS(q.Certificates, sdk.ClientTLSOptions{}); err != nil && !errors.Is(err, sdk.ErrNoCA) {
		r.Diagnostics.AddAttributeError(sdk.Path{"certificate"}, "harden's TLS client material for the broker cannot be used", err.Error())
	}
	ls, files, ok := declaredListeners(c, &r.Diagnostics, func(f string) bool {
		// An interrupted apply is said, whatever the broker answers now.
		_, ok := noteJournal(brokerTarget{ConfigFile: f}, sp, true, &r.Diagnostics)
		return ok
	})
	if !ok {
		return
	}
	target, exp, err := probe.ForRequest(q.RequestContext, probe.Kafka)
	if err != nil {
		r.Diagnostics.AddAttributeError(sdk.Path{"certificate"}, "invalid certificate material", err.Error())
		return
	}
	results := make([]listenerResult, len(ls))
	var wg sync.WaitGroup
	for i, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs, d := verifyListener(ctx, l, target, exp)
			results[i] = listenerResult{l: l, checks: cs, desc: d}
		}()
	}
	scanned := make(chan struct{})
	go func() { wg.Wait(); close(scanned) }()
	// Meanwhile: the running brokers' configurations (DescribeConfigs), a
	// canary produced and consumed, and the probe identity's refusals.
	// sarama takes no context: the live checks run aside, and a cancelled
	// verify (Ctrl-C, harden's timeout) does not wait for their timeouts.
	liveCh := make(chan liveData, 1)
	go func() {
		tlsAddrs, undetermined := tlsBrokerAddrs(ls, nil), []string(nil)
		if hasUnknown(ls) {
			// Which bootstrap address speaks TLS is what the probes found.
			<-scanned
			tlsAddrs, undetermined = tlsBrokerAddrs(ls, results), undeterminedAddrs(results)
		}
		liveCh <- gatherLive(c, q.RequestContext, tlsAddrs, undetermined)
	}()
	var live liveData
	select {
	case live = <-liveCh:
	case <-ctx.Done():
		live = liveData{cancelled: ctx.Err()}
	}
	<-scanned
	for _, lr := range results {
		r.Checks = append(r.Checks, lr.checks...)
		if lr.desc != nil {
			r.Endpoints = append(r.Endpoints, *lr.desc)
		}
	}
	r.Checks = append(r.Checks, judgeLive(live, q.RequestContext, results, files)...)
}

// declaredListeners lists every listener the brokers' server.properties
// declare (connection.config_file, connection.brokers), controller
// listeners included, and each file's properties by node id; before (if
// set) runs first on each file and stops the listing by returning false.
// Without the brokers' files only the bootstrap addresses are known: their
// protocol is "unknown", found out by probing.
func declaredListeners(c connection, d *sdk.Diagnostics, before func(file string) bool) ([]listener, map[string]map[string]string, bool) {
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
		if before != nil && !before(f) {
			return nil, nil, false
		}
		_, props, ok := readBrokerProperties(f, d)
		if !ok {
			return nil, nil, false
		}
		bls, err := listenersOf(props)
		if err != nil {
			d.AddTargetError("kafka.config.listeners", f, err)
			return nil, nil, false
		}
		for i := range bls {
			bls[i].NodeID = brokerID(props)
			if len(configFiles) > 1 {
				bls[i].Node = "broker " + brokerID(props)
			}
		}
		ls = append(ls, bls...)
		files[brokerID(props)] = props
	}
	if len(configFiles) == 0 {
		for _, b := range c.Bootstrap {
			ls = append(ls, listener{Name: "bootstrap", Protocol: "unknown", Address: b})
		}
	}
	return ls, files, true
}

// listenerResult is what the probes observed on one listener.
type listenerResult struct {
	l      listener
	checks []checks.Check
	// desc: the TLS scan's description (nil when there was no scan).
	desc *sdk.EndpointScan
}

// status is the status of the listener's check id (false: no such check).
func (lr listenerResult) status(id string) (checks.Status, bool) {
	for _, c := range lr.checks {
		if c.ID == id {
			return c.Status, true
		}
	}
	return checks.StatusUnknown, false
}

// servesTLS: a TLS scan of the listener concluded (versions were judged).
func (lr listenerResult) servesTLS() bool {
	s, ok := lr.status("tls.protocol.versions")
	return ok && (s == checks.Pass || s == checks.Fail)
}

func hasUnknown(ls []listener) bool {
	for _, l := range ls {
		if l.Protocol == "unknown" {
			return true
		}
	}
	return false
}

// tlsBrokerAddrs: the broker (not controller) listeners that speak TLS —
// by their declared protocol, or, for bootstrap addresses of unknown
// protocol, by what the probes observed (results).
func tlsBrokerAddrs(ls []listener, results []listenerResult) []string {
	var out []string
	for i, l := range ls {
		switch {
		case l.Controller:
		case l.tls():
			out = append(out, l.Address)
		case l.Protocol == "unknown" && results != nil && results[i].servesTLS():
			out = append(out, l.Address)
		}
	}
	return out
}

// undeterminedAddrs: bootstrap addresses of unknown protocol that the
// probes found neither speaking TLS nor answering cleartext.
func undeterminedAddrs(results []listenerResult) []string {
	var out []string
	for _, lr := range results {
		if lr.l.Protocol != "unknown" || lr.servesTLS() {
			continue
		}
		if s, _ := lr.status("kafka.listener.plaintext"); s != checks.Fail {
			out = append(out, lr.l.Address)
		}
	}
	return out
}

func verifyListener(ctx context.Context, l listener, base probe.Target, exp probe.Expectations) ([]checks.Check, *sdk.EndpointScan) {
	subject := fmt.Sprintf("%s listener %s (%s)", l.Name, l.Address, l.Protocol)
	if l.Controller {
		subject = "controller " + subject
	}
	if l.Node != "" {
		subject = l.Node + " " + subject
	}
	base.Address = l.Address
	// A cleartext ApiVersions to every port: an answer is a failure,
	// whatever the file says the listener is; only the Kafka dialect's
	// refusal (a TLS record in reply) passes.
	pt := probe.PlaintextOnly(ctx, base, probe.Options{})
	var out []checks.Check
	switch {
	case pt.Err != nil:
		out = append(out, checks.Reduce("kafka.listener.plaintext", subject, checks.Unknown("cleartext ApiVersions", pt.Err.Error())))
	case !pt.Tested:
		out = append(out, checks.Reduce("kafka.listener.plaintext", subject, checks.Unknown("cleartext ApiVersions", "not attempted")))
	case pt.Accepted:
		out = append(out, checks.Failed("kafka.listener.plaintext", subject, pt.Evidence))
	default:
		out = append(out, checks.Passed("kafka.listener.plaintext", subject, pt.Evidence))
	}
	name := l.Name
	if l.Node != "" {
		name = l.Node + " " + l.Name
	}
	if !l.tls() && l.Protocol != "unknown" {
		// No TLS scan, so no endpoint description: EndpointScan has no way
		// to say "TLS not probed" that reports would not read as "could
		// not be scanned" (kafka.listener.plaintext above is the finding).
		return out, nil
	}
	res, err := probe.Scan(ctx, base, probe.Options{})
	if err != nil {
		return append(out, checks.Errored("tls.enabled", subject, err)), nil
	}
	desc := res.Describe(name)
	for _, ch := range res.Checks(exp) {
		if ch.ID == "tls.plaintext.refused" {
			continue // kafka.listener.plaintext above is the same question
		}
		ch.Subject = subject
		out = append(out, ch)
	}
	return out, &desc
}
