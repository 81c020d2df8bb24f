package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

var netDialer = net.Dialer{Timeout: 5 * time.Second}

// livePasswords reads the store passwords the broker already has: a
// rotation keeps them, so the running broker's password settings stay true.
func livePasswords(file string) *storePasswords {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	ps, err := parseProperties(string(b))
	if err != nil {
		return nil
	}
	m := propertyMap(ps)
	if m["keystore.password"] == "" || m["truststore.password"] == "" {
		return nil
	}
	return &storePasswords{keystore: m["keystore.password"], truststore: m["truststore.password"]}
}

// Apply merges the rendered settings into server.properties and writes the
// stores, broker by broker. Store-only changes on SSL brokers go through
// KIP-226 without a restart; everything else is a static apply, rolled
// through the brokers one at a time: backups, files, the operator's restart
// command, the broker answering again and zero under-replicated partitions
// before the next broker, and (end state) verify before success. Any
// failure restores the files of the brokers this run changed (restarting
// them again) or the previous dynamic settings.
func (p kafka) Apply(ctx context.Context, q sdk.ApplyRequest, r *sdk.ApplyResponse) {
	// One apply per broker at a time; under the locks any journal is a
	// run that died, and any temp file is its leftover.
	c, s, ok := sdk.Decode[connection, spec](q.Target, &r.Diagnostics)
	if !ok {
		return
	}
	var all []brokerTarget
	if bs, err := brokersOf(c, s); err == nil && slices.IndexFunc(bs, func(b brokerTarget) bool { return b.ConfigFile == "" }) < 0 {
		unlock, err := lockBrokers(bs)
		if err != nil {
			applykit.Locked("kafka", "this broker", err, &r.Diagnostics)
			return
		}
		defer unlock()
		all = bs
		sweepTemps(all, s)
	}
	var first sdk.Diagnostics
	tp, ok := plan(ctx, q.RequestContext, c, s, &first, false)
	if ok && !applykit.PlanCurrent(&first, q.PlanToken, tp.token(), "the broker") {
		r.Diagnostics = append(r.Diagnostics, first...)
		return
	}
	// An interrupted run is rolled back first — also when the broker cannot
	// be planned now (it may be down after the kill) — and reported as
	// applied (it was a change); then the broker is planned again as it is.
	var journals []sdk.Change
	if ok {
		journals = tp.journalChanges()
	} else {
		journals = pendingJournals(all, s)
	}
	if len(journals) == 0 {
		r.Diagnostics = append(r.Diagnostics, first...)
		if !ok {
			return
		}
	} else {
		for _, d := range first {
			if d.Severity == sdk.Warning {
				r.Diagnostics = append(r.Diagnostics, d)
			}
		}
		if err := recoverInterrupted(ctx, c, s, all, q.RequestContext, q.Force, &r.Diagnostics); err != nil {
			r.Diagnostics.AddTargetError("kafka.apply.recover", "an interrupted apply could not be rolled back; nothing else was changed", err)
			return
		}
		r.Applied = append(r.Applied, journals...)
		if tp, ok = plan(ctx, q.RequestContext, c, s, &r.Diagnostics, false); !ok {
			return
		}
	}
	var todo []*planState
	rotation := true
	for _, st := range tp.brokers {
		if len(st.changes) > 0 {
			todo = append(todo, st)
			rotation = rotation && st.rotation
		}
	}
	if len(todo) == 0 {
		return
	}
	var problems []string
	for _, st := range todo {
		problems = append(problems, lockoutGuard(q.RequestContext, st)...)
	}
	problems = append(problems, phaseGuard(tp)...)
	if len(problems) > 0 {
		if !q.Force {
			r.Diagnostics.AddTargetError("kafka.lockout_guard", "apply would lock the brokers or harden out; nothing was changed (--force overrides)", errors.New(strings.Join(problems, "; ")))
			return
		}
		r.Diagnostics.AddWarning("lockout guard overridden with --force", strings.Join(problems, "; "))
	}
	var err error
	if rotation {
		for _, st := range todo {
			if err = applyRotation(ctx, q.RequestContext, tp.conn, tp.all, st, &r.Diagnostics); err != nil {
				err = fmt.Errorf("%s: %w", st.rd.broker.label(), err)
				break
			}
			r.Applied = append(r.Applied, st.changes...)
		}
	} else {
		err = p.applyRolling(ctx, q.RequestContext, tp, todo)
		if err == nil {
			r.Applied = append(r.Applied, tp.changes()...)
		}
	}
	var ie interruptedError
	switch {
	case errors.As(err, &ie):
		r.Diagnostics.AddTargetError("kafka.apply.interrupted", "apply interrupted (stopped by the host)", err)
	case err != nil:
		r.Diagnostics.AddTargetError("kafka.apply", "apply failed", err)
	}
}

// interruptedError: the request was cancelled (Ctrl-C, the host's Stop)
// and the apply stopped at a step boundary, rolled back.
type interruptedError struct{ err error }

func (e interruptedError) Error() string { return e.err.Error() }
func (e interruptedError) Unwrap() error { return e.err }

// phaseGuard: in a cluster, jumping to a phase that moves inter-broker or
// controller traffic to listeners the other brokers do not have yet cuts
// the restarted broker off (the rolling restart would never get its
// partitions back in sync): the migration goes add-tls, switch, tls-only.
func phaseGuard(tp *targetPlan) []string {
	if len(tp.brokers) < 2 || tp.spec.phase() == phaseAddTLS {
		return nil
	}
	var out []string
	for _, st := range tp.brokers {
		ls, err := listenersOf(st.props)
		if err != nil {
			continue
		}
		for _, want := range st.rd.broker.Listeners {
			if !slices.ContainsFunc(ls, func(l listener) bool { return strings.EqualFold(l.Name, want.Name) && l.tls() }) {
				out = append(out, fmt.Sprintf("%s has no %s listener yet: apply migration phase %s to every broker before %s", st.rd.broker.label(), want.Name, phaseAddTLS, tp.spec.phase()))
				break
			}
		}
		if tp.spec.phase() == phaseTLSOnly {
			inter := strings.ToUpper(st.props["inter.broker.listener.name"])
			if !slices.ContainsFunc(ls, func(l listener) bool { return l.Name == inter && l.tls() }) {
				out = append(out, fmt.Sprintf("%s still replicates over %s: apply migration phase %s before %s", st.rd.broker.label(), inter, phaseSwitch, phaseTLSOnly))
			}
		}
	}
	return out
}

// lockoutGuard lists what would keep the brokers from talking to each
// other or harden from administering them after the change.
func lockoutGuard(q sdk.RequestContext, st *planState) []string {
	var out []string
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(q.Certificates.CABundlePEM)
	inter := x509.NewCertPool()
	chain, _ := sdk.ParseCertificatesPEM(q.Certificates.ChainPEM)
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	// Brokers are clients of their own listeners (inter-broker, controller)
	// and check the names (ssl.endpoint.identification.algorithm=https).
	usage := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	if st.rd.mtls {
		usage = append(usage, x509.ExtKeyUsageClientAuth)
	}
	for _, l := range st.rd.broker.Listeners {
		host, _, _ := net.SplitHostPort(l.Address)
		if host == "" || host == "0.0.0.0" || host == "::" {
			continue
		}
		for _, u := range usage {
			if _, err := st.rd.leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
				what := "as a server"
				if u == x509.ExtKeyUsageClientAuth {
					what = "as a client of its own listeners (mTLS)"
				}
				out = append(out, fmt.Sprintf("the broker certificate does not work %s for listener %s at %s: %v", what, l.Name, l.Address, err))
			}
		}
	}
	if st.rd.mtls {
		client, err := sdk.ParseCertificatesPEM(q.Certificates.ClientChainPEM)
		if err != nil || len(client) == 0 {
			return append(out, "the target is in the mTLS scope but harden has no client certificate for it (certificate.client_cert_file/client_key_file): harden could not administer the broker afterwards")
		}
		if _, err := client[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			out = append(out, fmt.Sprintf("harden's client certificate would be refused by the new truststore: %v", err))
		}
	}
	return out
}

// transaction is one broker's change under its intent journal.
type transaction struct {
	j *applykit.Journal
	// restarted: the restart command ran (the broker may run the new
	// files), so undoing needs a restart too.
	restarted bool
}

// beginTransaction writes and fsyncs the broker's journal before the first
// change: what will change (resource names, never values).
func beginTransaction(q sdk.RequestContext, st *planState) (*transaction, error) {
	var intent []string
	for _, ch := range st.changes {
		intent = append(intent, string(ch.Action)+" "+ch.Resource)
	}
	j, err := applykit.Begin(journalPath(st.rd.broker), applykit.State{Plugin: "kafka", Target: q.Target.Name, Phase: phasePrepared,
		Intent: intent, Data: map[string]string{"broker": brokerID(st.props)}})
	if err != nil {
		return nil, err
	}
	if err := j.Restrict(allowedFiles(st.rd.broker, st.rd.spec)); err != nil {
		return nil, err
	}
	applykit.Crash("kafka", phasePrepared)
	return &transaction{j: j}, nil
}

// write replaces a file atomically, its backup recorded in the journal
// first (mode and owner of ref).
func (t *transaction) write(path string, content []byte, mode os.FileMode, ref os.FileInfo) error {
	return t.j.Replace(path, content, mode, ref)
}

// rollback puts every recorded file back (removing those apply created).
func (t *transaction) rollback() error {
	return errors.Join(t.j.Restore()...)
}

// writeFiles writes the store files and then server.properties.
func (t *transaction) writeFiles(st *planState) error {
	configFile := st.rd.broker.ConfigFile
	ref, err := os.Stat(configFile)
	if err != nil {
		return err
	}
	// As the config file's owner (applykit.MkdirAll): root following a
	// symlink the broker's user planted would chown its target.
	if err := applykit.MkdirAll(st.rd.dir, 0o700, ref); err != nil {
		return fmt.Errorf("create %s: %w", st.rd.dir, err)
	}
	for _, f := range st.files {
		if err := t.write(f.path, f.content, f.mode, ref); err != nil {
			return err
		}
	}
	if err := setPhase(t.j, phaseStoresWritten); err != nil {
		return err
	}
	// server.properties last, in one rename: a broker started from disk
	// finds either the old file or the new one with its stores in place.
	if bytes.Equal(st.merged, st.text) {
		return nil
	}
	if err := t.write(configFile, st.merged, ref.Mode().Perm(), ref); err != nil {
		return err
	}
	return setPhase(t.j, phaseConfigWritten)
}

func (c connection) restartTimeout() time.Duration {
	if d, err := time.ParseDuration(c.RestartTimeout); err == nil && d > 0 {
		return d
	}
	return 3 * time.Minute
}

// restart runs the operator's restart command and waits until a broker
// listener answers ApiVersions (over TLS with harden's identity, or in
// cleartext on a PLAINTEXT broker).
func restart(ctx context.Context, c connection, q sdk.RequestContext, argv, addrs []string) error {
	ctx, cancel := context.WithTimeout(ctx, c.restartTimeout())
	defer cancel()
	// Own process group, killed whole on timeout or Ctrl-C; a broker the
	// command leaves running in the background is no failure and does not
	// block (applykit.Run). The output goes only into the error, trimmed:
	// it could hold anything the operator's script prints.
	res, err := applykit.Run(ctx, argv, applykit.RunOptions{Env: os.Environ()})
	if err != nil {
		if out := lastLines(string(res.Output), 5); out != "" {
			return fmt.Errorf("restart command failed: %w: %s", err, out)
		}
		return fmt.Errorf("restart command failed: %w", err)
	}
	for {
		for _, a := range addrs {
			// Ready is an answer, over TLS or in cleartext (a rollback brings a
			// PLAINTEXT broker back); verify judges the listeners afterwards.
			if brokerAnswers(ctx, a, clientTLS(q)) || brokerAnswers(ctx, a, nil) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the broker did not answer on %v within %s of the restart", addrs, c.restartTimeout())
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// brokerAnswers: one ApiVersions exchange over TLS (with harden's
// identity), or in cleartext when cfg is nil; false as soon as ctx ends.
func brokerAnswers(ctx context.Context, addr string, cfg *tls.Config) bool {
	conf := saramaConfig(sdk.RequestContext{}, false)
	if cfg != nil {
		conf.Net.TLS.Enable, conf.Net.TLS.Config = true, cfg
	}
	conf.Net.DialTimeout, conf.Net.ReadTimeout = 2*time.Second, 2*time.Second
	ok, _ := untilDone(ctx, func(ctx context.Context) (bool, error) {
		b := sarama.NewBroker(addr)
		if err := b.Open(conf); err != nil {
			return false, nil
		}
		defer closeOnDone(ctx, b)()
		_, err := b.ApiVersions(&sarama.ApiVersionsRequest{Version: 0})
		return err == nil, nil
	})
	return ok && ctx.Err() == nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		if len(l) > 200 {
			lines[i] = l[:200] + "…"
		}
	}
	return strings.Join(lines, " | ")
}

// applied is one broker changed by a rolling apply, to undo.
type applied struct {
	st *planState
	tx *transaction
}

// applyRolling applies the static changes broker by broker; after the last
// one, the end state (tls-only) must pass verify. A failure undoes every
// broker this run changed, newest first, restarting those the restart
// command had run on. Cancellation (Ctrl-C) is looked at between the steps
// and during the restart and wait: the undo then runs on an uncancelled,
// bounded context and the error says what was done.
func (p kafka) applyRolling(ctx context.Context, q sdk.RequestContext, tp *targetPlan, todo []*planState) error {
	for _, st := range todo {
		if len(st.rd.broker.RestartCommand) == 0 {
			return fmt.Errorf("%s: these changes need a broker restart and no restart_command is set; nothing was changed (set it, or use harden render and restart by hand)", st.rd.broker.label())
		}
	}
	var done []applied
	undo := func(cause error) error {
		interrupted := ctx.Err() != nil
		uctx, cancel := undoContext(ctx, tp.conn)
		defer cancel()
		var errs []string
		var restarted []string
		for i := len(done) - 1; i >= 0; i-- {
			a := done[i]
			if err := a.tx.rollback(); err != nil {
				// The journal stays: the next run sees it and tries again.
				errs = append(errs, fmt.Sprintf("%s: restoring files: %v", a.st.rd.broker.label(), err))
				continue
			}
			keep := false
			if len(a.st.dynamic) > 0 {
				if err := alterDynamic(tp.conn, q, tp.all, brokerID(a.st.props), nil, a.st.dynamic); err != nil {
					// The journal stays (it holds the overrides to
					// restore); the broker still goes back to its files.
					errs = append(errs, fmt.Sprintf("%s: restoring dynamic store settings: %v", a.st.rd.broker.label(), err))
					keep = true
				}
			}
			if a.tx.restarted {
				if err := restart(uctx, tp.conn, q, a.st.rd.broker.RestartCommand, listenerAddrs(a.st.props)); err != nil {
					errs = append(errs, fmt.Sprintf("%s: restarted with its previous files but did not come back: %v", a.st.rd.broker.label(), err))
					continue
				}
				restarted = append(restarted, a.st.rd.broker.label())
				if err := waitInSync(uctx, tp, q); err != nil {
					errs = append(errs, fmt.Sprintf("after restoring %s: %v", a.st.rd.broker.label(), err))
				}
			}
			if keep {
				continue
			}
			if err := a.tx.j.Done(); err != nil {
				errs = append(errs, err.Error())
			}
		}
		var out error
		switch {
		case len(errs) > 0:
			out = fmt.Errorf("%w; undoing FAILED: %s", cause, strings.Join(errs, "; "))
		case len(restarted) > 0:
			out = fmt.Errorf("%w; the previous files are restored and the broker(s) restarted with them (%s)", cause, strings.Join(restarted, ", "))
		default:
			out = fmt.Errorf("%w; the previous files are restored (no broker had been restarted)", cause)
		}
		if interrupted {
			return interruptedError{out}
		}
		return out
	}
	stopped := func(where string) error {
		if ctx.Err() == nil {
			return nil
		}
		return undo(fmt.Errorf("interrupted %s", where))
	}
	for _, st := range todo {
		b := st.rd.broker
		if err := stopped("before " + b.label()); err != nil {
			return err
		}
		tx, err := beginTransaction(q, st)
		if err != nil {
			return undo(fmt.Errorf("%s: %w", b.label(), err))
		}
		done = append(done, applied{st, tx})
		if len(st.dynamic) > 0 {
			// Per-listener overrides from an earlier rotation would win over
			// server.properties after the restart: remove them first (the
			// broker falls back to its current static stores, still in place).
			if err := alterDynamic(tp.conn, q, tp.all, brokerID(st.props), st.dynamic, nil); err != nil {
				return undo(fmt.Errorf("%s: remove the dynamic store overrides before the restart: %w", b.label(), err))
			}
		}
		if err := tx.writeFiles(st); err != nil {
			return undo(fmt.Errorf("%s: %w", b.label(), err))
		}
		if err := stopped("after writing the files of " + b.label() + ", before its restart"); err != nil {
			return err
		}
		var addrs []string
		for _, l := range brokerListeners(b.Listeners) {
			addrs = append(addrs, l.Address)
		}
		if err := setPhase(tx.j, phaseRestarting); err != nil {
			return undo(fmt.Errorf("%s: %w", b.label(), err))
		}
		tx.restarted = true
		if err := restart(ctx, tp.conn, q, b.RestartCommand, addrs); err != nil {
			if ctx.Err() != nil {
				return undo(fmt.Errorf("interrupted during the restart of %s: %w", b.label(), err))
			}
			return undo(fmt.Errorf("%s: %w", b.label(), err))
		}
		if err := setPhase(tx.j, phaseRestarted); err != nil {
			return undo(fmt.Errorf("%s: %w", b.label(), err))
		}
		if err := waitInSync(ctx, tp, q); err != nil {
			if ctx.Err() != nil {
				return undo(fmt.Errorf("interrupted waiting for the cluster after restarting %s", b.label()))
			}
			return undo(fmt.Errorf("after restarting %s: %w", b.label(), err))
		}
	}
	if tp.spec.phase() == phaseTLSOnly {
		if err := p.verifyRestarted(ctx, q, done); err != nil {
			if ctx.Err() != nil {
				return undo(fmt.Errorf("interrupted during verify: %w", err))
			}
			return undo(err)
		}
	} // else a migration step: verify fails by design until tls-only
	for _, a := range done {
		if err := a.tx.j.Done(); err != nil {
			return err
		}
	}
	return nil
}

// verifyRestarted: success only on evidence from the restarted brokers.
func (p kafka) verifyRestarted(ctx context.Context, q sdk.RequestContext, done []applied) error {
	for _, a := range done {
		if err := setPhase(a.tx.j, phaseVerifying); err != nil {
			return err
		}
	}
	var vr sdk.VerifyResponse
	p.Verify(ctx, sdk.VerifyRequest{RequestContext: q}, &vr)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if vr.Diagnostics.HasError() {
		return fmt.Errorf("verify after the restart: %w", vr.Diagnostics.Err())
	}
	var bad []string
	for _, ch := range vr.Checks {
		if ch.Status == checks.Fail || ch.Status == checks.Error {
			bad = append(bad, fmt.Sprintf("%s %s (%s): %s", ch.ID, ch.Status, ch.Subject, ch.Evidence))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("the restarted broker does not pass verify: %s", strings.Join(bad, "; "))
	}
	return nil
}

// waitInSync gates a rolling restart: every broker of the target is back
// in the cluster and no partition is under-replicated or offline.
func waitInSync(ctx context.Context, tp *targetPlan, q sdk.RequestContext) error {
	ctx, cancel := context.WithTimeout(ctx, tp.conn.restartTimeout())
	defer cancel()
	last := "no answer"
	for {
		type count struct {
			n      int
			detail string
		}
		got, err := untilDone(ctx, func(ctx context.Context) (count, error) {
			n, detail, err := underReplicated(ctx, tp, q)
			return count{n, detail}, err
		})
		switch {
		case ctx.Err() != nil:
		case err != nil:
			last = err.Error()
		case got.n == 0:
			return nil
		default:
			last = got.detail
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the cluster did not get back in sync within %s: %s", tp.conn.restartTimeout(), last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// underReplicated counts missing brokers and partitions whose ISR is
// smaller than their replica set (or that have no leader).
func underReplicated(ctx context.Context, tp *targetPlan, q sdk.RequestContext) (int, string, error) {
	admin, err := adminForTarget(ctx, tp.conn, q, tp.all)
	if err != nil {
		return 0, "", err
	}
	defer admin.Close()
	brokers, _, err := admin.DescribeCluster()
	if err != nil {
		return 0, "", err
	}
	if len(brokers) < len(tp.all) {
		return len(tp.all) - len(brokers), fmt.Sprintf("%d of %d brokers registered", len(brokers), len(tp.all)), nil
	}
	topics, err := admin.ListTopics()
	if err != nil {
		return 0, "", err
	}
	names := make([]string, 0, len(topics))
	for n := range topics {
		names = append(names, n)
	}
	if len(names) == 0 {
		return 0, "", nil
	}
	meta, err := admin.DescribeTopics(names)
	if err != nil {
		return 0, "", err
	}
	var bad []string
	for _, t := range meta {
		for _, pm := range t.Partitions {
			if pm.Leader < 0 || len(pm.Isr) < len(pm.Replicas) {
				bad = append(bad, fmt.Sprintf("%s-%d (isr %v of %v)", t.Name, pm.ID, pm.Isr, pm.Replicas))
			}
		}
	}
	return len(bad), fmt.Sprintf("%d under-replicated partition(s): %s", len(bad), strings.Join(bad[:min(len(bad), 5)], ", ")), nil
}

// answering keeps the addresses where harden's TLS client gets an answer.
func answering(ctx context.Context, addrs []string, q sdk.RequestContext) []string {
	var out []string
	for _, a := range addrs {
		if brokerAnswers(ctx, a, clientTLS(q)) {
			out = append(out, a)
		}
	}
	return out
}

// listenerAddrs are the addresses in a server.properties' listeners.
func listenerAddrs(props map[string]string) []string {
	ls, _ := listenersOf(props)
	var out []string
	for _, l := range ls {
		if !l.Controller {
			out = append(out, l.Address)
		}
	}
	return out
}

// alterDynamic deletes the keys of del and sets those of set on the
// broker's per-broker dynamic configuration (KIP-226).
func alterDynamic(c connection, q sdk.RequestContext, all []brokerTarget, broker string, del, set map[string]string) error {
	// A write: it runs to its end (bounded by saramaConfig's timeouts), a
	// rollback's too, whatever the request's cancellation says.
	admin, err := adminForTarget(context.Background(), c, q, all)
	if err != nil {
		return err
	}
	defer admin.Close()
	entries := map[string]sarama.IncrementalAlterConfigsEntry{}
	for k := range del {
		entries[k] = sarama.IncrementalAlterConfigsEntry{Operation: sarama.IncrementalAlterConfigsOperationDelete}
	}
	for k, v := range set {
		entries[k] = sarama.IncrementalAlterConfigsEntry{Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &v}
	}
	return admin.IncrementalAlterConfig(sarama.BrokerResource, broker, entries, false)
}

// applyRotation writes the new stores next to the old ones, points every
// broker listener at them through IncrementalAlterConfigs, and confirms
// with fresh handshakes that the new certificate is served; then
// server.properties follows, so a restart keeps the new stores.
func applyRotation(ctx context.Context, q sdk.RequestContext, c connection, all []brokerTarget, st *planState, d *sdk.Diagnostics) error {
	broker := brokerID(st.props)
	set := map[string]string{}
	previous := map[string]string{}
	for _, l := range brokerListeners(st.rd.broker.Listeners) {
		prefix := "listener.name." + strings.ToLower(l.Name) + "."
		for _, key := range rotationKeys {
			want := settingOf(st.rd.settings, key)
			cur, dyn := st.live.dynamic[prefix+key]
			if !dyn {
				cur = st.live.values[key]
			}
			if cur != want {
				set[prefix+key] = want
				if dyn {
					previous[prefix+key] = cur
				}
			}
		}
	}
	tx, err := beginTransaction(q, st)
	if err != nil {
		return err
	}
	// The journal knows the overrides before the broker does: a killed run
	// is undone on the broker too (store paths, no secrets).
	for k, v := range set {
		tx.j.State.Data[dynSet+k] = v
		tx.j.State.Data[dynPrev+k] = "-"
		if p, ok := previous[k]; ok {
			tx.j.State.Data[dynPrev+k] = p
		}
	}
	if err := tx.j.Save(); err != nil {
		_ = tx.j.Done()
		return err
	}
	// The steps (applykit.Journal.RunSteps: at each boundary the phase,
	// the fault hook and Ctrl-C). Their undo is one: the overrides taken
	// back, then every file the journal recorded restored.
	files := *st
	files.merged = st.text // server.properties only after the broker took the stores
	steps := []applykit.Step{
		// Stores first (new names, so the running broker's files are untouched).
		{Phase: phasePrepared, Apply: func(context.Context) error { return tx.writeFiles(&files) }},
		{Phase: phaseStoresWritten, Apply: func(context.Context) error {
			if len(set) == 0 {
				return nil
			}
			if err := alterDynamic(c, q, all, broker, nil, set); err != nil {
				return fmt.Errorf("KIP-226 update refused by the broker: %w", err)
			}
			return nil
		}},
		{Phase: phaseDynamicSet, Apply: func(ctx context.Context) error { return confirmServed(ctx, q, st.rd) }},
		{Phase: phaseServed, Apply: func(context.Context) error {
			if bytes.Equal(st.merged, st.text) {
				return nil
			}
			ref, err := os.Stat(st.rd.broker.ConfigFile)
			if err == nil {
				err = tx.write(st.rd.broker.ConfigFile, st.merged, ref.Mode().Perm(), ref)
			}
			if err == nil {
				err = setPhase(tx.j, phaseConfigWritten)
			}
			return err
		}},
	}
	rollback := func(context.Context) error {
		del := map[string]string{}
		for k := range set {
			if _, ok := previous[k]; !ok {
				del[k] = ""
			}
		}
		return errors.Join(alterDynamic(c, q, all, broker, del, previous), tx.rollback())
	}
	_, err = tx.j.RunSteps(ctx, steps, applykit.StepOptions{Rollback: rollback, UndoTimeout: undoTimeout(c)})
	var se *applykit.StepError
	if errors.As(err, &se) {
		if len(se.UndoFailed) > 0 {
			return fmt.Errorf("%w; restoring the previous stores FAILED (the journal stays for the next run): %s", se.Err, strings.Join(se.UndoFailed, "; "))
		}
		if err := tx.j.Done(); err != nil {
			return fmt.Errorf("%w; the broker is back on its previous stores, but: %v", se.Err, err)
		}
		out := fmt.Errorf("%w; the broker is back on its previous stores", se.Err)
		if se.Interrupted {
			return interruptedError{out}
		}
		return out
	}
	if err := tx.j.Done(); err != nil {
		return err
	}
	for _, l := range st.rd.broker.Listeners {
		if l.Controller {
			d.AddWarning("controller listener "+l.Name+" keeps its previous certificate until the next broker restart",
				"Kafka reloads keystores dynamically on broker listeners only; server.properties already names the new stores")
		}
	}
	return nil
}

// confirmServed: the broker reconfigures its network threads one by one,
// so one handshake is no proof — 8 consecutive fresh handshakes on every
// broker listener must serve the new certificate.
func confirmServed(ctx context.Context, q sdk.RequestContext, rd rendered) error {
	cfg := clientTLS(q)
	// DialContext: a cancelled apply stops waiting in the middle of a
	// handshake too, not only between handshakes.
	dialer := tls.Dialer{NetDialer: &netDialer, Config: cfg}
	deadline := time.Now().Add(30 * time.Second)
	for _, l := range brokerListeners(rd.broker.Listeners) {
		streak := 0
		last := ""
		for streak < 8 {
			if ctx.Err() != nil {
				return fmt.Errorf("listener %s at %s: confirming the new certificate was interrupted (%w); last seen: %s", l.Name, l.Address, ctx.Err(), last)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("listener %s at %s still serves another certificate (%s) 30 s after the update", l.Name, l.Address, last)
			}
			conn, err := dialer.DialContext(ctx, "tcp", l.Address)
			if err != nil {
				last, streak = err.Error(), 0
				time.Sleep(100 * time.Millisecond)
				continue
			}
			served := conn.(*tls.Conn).ConnectionState().PeerCertificates[0]
			conn.Close()
			if bytes.Equal(served.Raw, rd.leaf.Raw) {
				streak++
				continue
			}
			last, streak = "serial "+served.SerialNumber.String(), 0
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}
