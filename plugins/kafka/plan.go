package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// saramaVersion: Kafka 4 removed old protocol versions; sarama must speak a
// version the broker still accepts.
var saramaVersion = sarama.V4_0_0_0

// clientTLS is harden's TLS client configuration for the broker
// (sdk.ClientTLS): the policy's CA and harden's client identity (mTLS).
// Material that does not parse is reported by plan (checkClientTLS); here a
// configuration that trusts nothing and presents nothing stands in for it.
// Without a CA bundle (a PLAINTEXT broker) nothing is trusted either.
func clientTLS(q sdk.RequestContext) *tls.Config {
	cfg, err := sdk.ClientTLS(q.Certificates, sdk.ClientTLSOptions{})
	if err != nil {
		return &tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12}
	}
	return cfg
}

// checkClientTLS reports harden's client TLS material that cannot be used
// (a client key that does not match its certificate, half a pair, a CA
// bundle with garbage) as a diagnostic: it is never dropped silently.
func checkClientTLS(q sdk.RequestContext, d *sdk.Diagnostics) bool {
	if _, err := sdk.ClientTLS(q.Certificates, sdk.ClientTLSOptions{}); err != nil && !errors.Is(err, sdk.ErrNoCA) {
		d.AddAttributeError(sdk.Path{"certificate"}, "harden's TLS client material for the broker cannot be used", err.Error())
		return false
	}
	return true
}

// untilDone runs fn — sarama calls, which take no context — and returns
// ctx's error as soon as ctx ends (the host's Stop, Ctrl-C). fn then ends
// on its own (its clients are closed from a context.AfterFunc, and every
// network call is bounded by saramaConfig's timeouts).
func untilDone[T any](ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := fn(ctx)
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, context.Cause(ctx)
	}
}

// closeOnDone closes c when ctx ends before the returned stop is called;
// stop closes it otherwise. Either way c is closed exactly once.
func closeOnDone(ctx context.Context, c interface{ Close() error }) (stop func()) {
	after := context.AfterFunc(ctx, func() { c.Close() })
	return func() {
		if after() {
			c.Close()
		}
	}
}

// saramaConfig is harden's client configuration; tlsOn selects TLS with
// harden's identity.
func saramaConfig(q sdk.RequestContext, tlsOn bool) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = saramaVersion
	cfg.ClientID = "harden"
	cfg.Net.DialTimeout, cfg.Net.ReadTimeout, cfg.Net.WriteTimeout = 10*time.Second, 10*time.Second, 10*time.Second
	cfg.Admin.Timeout = 10 * time.Second
	cfg.Metadata.Retry.Max = 0
	if tlsOn {
		cfg.Net.TLS.Enable, cfg.Net.TLS.Config = true, clientTLS(q)
	}
	return cfg
}

// newAdmin connects harden's admin client: in cleartext first, then over
// TLS with harden's identity when the bootstrap listener is TLS-only.
func newAdmin(c connection, q sdk.RequestContext) (sarama.ClusterAdmin, error) {
	admin, err := sarama.NewClusterAdmin(c.Bootstrap, saramaConfig(q, false))
	if err != nil && len(q.Certificates.CABundlePEM) > 0 {
		admin, err = sarama.NewClusterAdmin(c.Bootstrap, saramaConfig(q, true))
	}
	if err != nil {
		return nil, fmt.Errorf("connect admin client to %v: %w", c.Bootstrap, err)
	}
	return admin, nil
}

// adminFor connects harden's admin client over TLS to the TLS listeners
// when there are any (no cleartext attempt against a TLS port), else as
// newAdmin does.
func adminFor(c connection, q sdk.RequestContext, tlsAddrs []string) (sarama.ClusterAdmin, error) {
	if len(tlsAddrs) == 0 || len(q.Certificates.CABundlePEM) == 0 {
		return newAdmin(c, q)
	}
	admin, err := sarama.NewClusterAdmin(tlsAddrs, saramaConfig(q, true))
	if err != nil {
		return nil, fmt.Errorf("connect admin client over TLS to %v: %w", tlsAddrs, err)
	}
	return admin, nil
}

// adminForTarget connects to the brokers' hardened listeners when every
// broker answers TLS there (the old bootstrap listeners may be gone after a
// migration), else as newAdmin does. Kafka's metadata lists only the
// brokers that have the listener a request came in on, so a listener not
// every broker has yet would hide brokers.
func adminForTarget(ctx context.Context, c connection, q sdk.RequestContext, all []brokerTarget) (sarama.ClusterAdmin, error) {
	var addrs []string
	for _, b := range all {
		for _, l := range brokerListeners(b.Listeners) {
			addrs = append(addrs, l.Address)
		}
	}
	if ok := answering(ctx, addrs, q); len(ok) == len(addrs) {
		return adminFor(c, q, ok)
	}
	return newAdmin(c, q)
}

// liveConfig is the running broker's configuration (DescribeConfigs), with
// the per-broker dynamic overrides (KIP-226) apart.
type liveConfig struct {
	values  map[string]string
	dynamic map[string]string
}

// liveBrokerConfig reads the broker's effective configuration through
// DescribeConfigs (sarama ClusterAdmin), over TLS with harden's client
// identity when the bootstrap listener needs it. It ends when ctx does.
func liveBrokerConfig(ctx context.Context, c connection, q sdk.RequestContext, all []brokerTarget, brokerID string) (liveConfig, error) {
	return untilDone(ctx, func(ctx context.Context) (liveConfig, error) {
		live := liveConfig{values: map[string]string{}, dynamic: map[string]string{}}
		admin, err := adminForTarget(ctx, c, q, all)
		if err != nil {
			return live, err
		}
		defer closeOnDone(ctx, admin)()
		entries, err := describeBroker(admin, brokerID)
		if err != nil {
			return live, err
		}
		for _, e := range entries {
			live.values[e.Name] = e.Value
			if e.Source == sarama.SourceDynamicBroker {
				live.dynamic[e.Name] = e.Value
			}
		}
		return live, nil
	})
}

// brokerID is the broker's node id from its server.properties.
func brokerID(props map[string]string) string {
	if id := props["node.id"]; id != "" {
		return id
	}
	return props["broker.id"]
}

// fileWrite is one store-dir file apply writes.
type fileWrite struct {
	path    string
	content []byte
	mode    os.FileMode
	exists  bool
}

// planState is what plan found and apply acts on.
type planState struct {
	rd      rendered
	text    []byte            // server.properties as read
	props   map[string]string // its values
	merged  []byte            // server.properties after the merge
	files   []fileWrite       // store-dir files to write
	live    liveConfig
	changes []sdk.Change
	// rotation: only the stores change on a broker that already runs the
	// rendered listeners, and the new certificate keeps the served one's
	// subject and names — a KIP-226 update without restart.
	rotation bool
	// why a change that could have been a rotation needs a restart.
	restartReason string
	// dynamic: per-listener store overrides (KIP-226) the broker has, which
	// a static apply must clear or they would win over server.properties.
	dynamic map[string]string
	// journal: an interrupted apply left its journal (apply rolls it back
	// first).
	journal *sdk.Change
}

// rotationKeys are the settings a KIP-226 rotation may change.
var rotationKeys = []string{"ssl.keystore.location", "ssl.truststore.location"}

// targetPlan is the plan of every broker of the target.
type targetPlan struct {
	conn    connection
	spec    spec
	all     []brokerTarget
	brokers []*planState
}

// changes lists every broker's changes (prefixed by the broker in a
// cluster).
func (tp *targetPlan) changes() []sdk.Change {
	out := tp.journalChanges()
	for _, st := range tp.brokers {
		out = append(out, st.changes...)
	}
	return out
}

// journalChanges: the interrupted applies found.
func (tp *targetPlan) journalChanges() []sdk.Change {
	var out []sdk.Change
	for _, st := range tp.brokers {
		if st.journal != nil {
			out = append(out, *st.journal)
		}
	}
	return out
}

// token fingerprints every file read, every pending change and the
// interrupted applies found.
func (tp *targetPlan) token() []byte {
	var parts []string
	for _, st := range tp.brokers {
		parts = append(parts, string(planToken(st.text, st.changes)))
		if st.journal != nil {
			parts = append(parts, st.journal.Description)
		}
	}
	return applykit.PlanToken(parts...)
}

// plan reads every broker's file, store dir, apply journal and running
// configuration and works out the changes of the decoded target (c, s).
// probeLock: tell a running apply from a dead one (plan and verify; apply
// holds the locks itself). It ends promptly when ctx does.
func plan(ctx context.Context, q sdk.RequestContext, c connection, s spec, d *sdk.Diagnostics, probeLock bool) (*targetPlan, bool) {
	tp := &targetPlan{conn: c, spec: s}
	if !checkClientTLS(q, d) {
		return nil, false
	}
	var err error
	if tp.all, err = brokersOf(tp.conn, tp.spec); err != nil {
		d.AddAttributeError(sdk.Path{"connection"}, "invalid broker list", err.Error())
		return nil, false
	}
	for _, b := range tp.all {
		st, ok := planBroker(ctx, q, tp.conn, tp.spec, b, tp.all, d, probeLock)
		if !ok {
			return nil, false
		}
		if len(tp.all) > 1 {
			for i := range st.changes {
				st.changes[i].Resource = b.label() + ": " + st.changes[i].Resource
			}
		}
		tp.brokers = append(tp.brokers, st)
	}
	return tp, true
}

// planBroker plans one broker.
func planBroker(ctx context.Context, q sdk.RequestContext, c connection, s spec, b brokerTarget, all []brokerTarget, d *sdk.Diagnostics, probeLock bool) (*planState, bool) {
	if b.ConfigFile == "" {
		d.AddAttributeError(sdk.Path{"connection", "config_file"}, "plan and apply need the broker's server.properties", "")
		return nil, false
	}
	if len(b.Listeners) == 0 {
		d.AddAttributeError(sdk.Path{"spec", "listeners"}, "plan and apply need the listeners of "+b.label()+" after hardening", "list every listener (controller ones marked) with its address")
		return nil, false
	}
	journal, ok := noteJournal(b, s, probeLock, d)
	if !ok {
		return nil, false
	}
	text, current, ok := readBrokerProperties(b.ConfigFile, d)
	if !ok {
		return nil, false
	}
	if b.NodeID != 0 && brokerID(current) != strconv.Itoa(b.NodeID) {
		d.AddTargetError("kafka.config.node_id", b.label()+": "+b.ConfigFile, fmt.Errorf("the file says node.id=%s", brokerID(current)))
		return nil, false
	}
	pw := livePasswords(filepath.Join(s.storeDir(b.ConfigFile), "secrets.properties"))
	rd, ok := renderTarget(q, c, s, b, all, current, pw, d)
	if !ok {
		return nil, false
	}
	st := &planState{rd: rd, text: text, props: current, journal: journal}
	merged, err := mergeProperties(string(text), rd.settings)
	if err != nil {
		d.AddTargetError("kafka.config.parse", b.ConfigFile, err)
		return nil, false
	}
	st.merged = []byte(merged)
	var keysChanged []string
	for _, kv := range rd.settings {
		cur, ok := current[kv[0]]
		switch {
		case !ok:
			st.changes = append(st.changes, sdk.Change{Resource: "server.properties:" + kv[0], Action: sdk.Create, After: kv[1], RequiresRestart: true, CertificateMaterial: storeKey(kv[0])})
			keysChanged = append(keysChanged, kv[0])
		case cur != kv[1]:
			st.changes = append(st.changes, sdk.Change{Resource: "server.properties:" + kv[0], Action: sdk.Update, Before: cur, After: kv[1], RequiresRestart: true, CertificateMaterial: storeKey(kv[0])})
			keysChanged = append(keysChanged, kv[0])
		}
	}
	fileRestart := false
	for _, a := range rd.artifacts {
		rel, ok := strings.CutPrefix(a.Path, "harden/")
		if !ok {
			continue
		}
		path := filepath.Join(rd.dir, rel)
		old, err := os.ReadFile(path)
		fw := fileWrite{path: path, content: a.Content, mode: os.FileMode(a.Mode), exists: err == nil}
		switch {
		case err != nil:
			st.changes = append(st.changes, sdk.Change{Resource: "file:" + path, Action: sdk.Create, After: fmt.Sprintf("%d bytes, mode %04o", len(a.Content), a.Mode), Sensitive: a.Sensitive, CertificateMaterial: storeFile(path)})
		case !bytes.Equal(old, a.Content):
			st.changes = append(st.changes, sdk.Change{Resource: "file:" + path, Action: sdk.Update, Sensitive: a.Sensitive, CertificateMaterial: storeFile(path)})
		default:
			continue
		}
		st.files = append(st.files, fw)
		if rel == "jvm.args" || rel == "secrets.properties" {
			fileRestart = true
		}
	}
	// The running broker's view: a difference from the file means the file
	// was changed without a restart.
	live, err := liveBrokerConfig(ctx, rd.conn, q, all, brokerID(current))
	if err != nil {
		d.AddTargetError("kafka.describe_configs", "cannot read the running broker's configuration", err)
		return nil, false
	}
	st.live = live
	// Files on disk the running broker does not serve are a pending change
	// (an apply killed between writing and restarting, or a hand edit):
	// apply restarts the broker and verifies, never "nothing to apply".
	pending := false
	for _, key := range pendingKeys {
		run, known := runningValue(live, key, b)
		if f, ok := current[key]; ok && known && run != f {
			pending = true
			d.AddWarning("the running broker differs from server.properties for "+key, fmt.Sprintf("running %q, file %q: a restart is pending", run, f))
			st.changes = append(st.changes, sdk.Change{Resource: "broker " + brokerID(current) + " running config:" + key, Action: sdk.Update,
				Before: run, After: f, RequiresRestart: true, Description: "server.properties is not what the running broker serves: a restart is pending", CertificateMaterial: storeKey(key)})
		}
	}
	// Listeners the rotation could not reach: a pending restart too, named
	// by the listener (plan's changes say so last, apart from the rest).
	stale := staleStores(live, current)
	pending = pending || len(stale) > 0
	// Dynamic store overrides that do not point at the rendered stores.
	st.dynamic = map[string]string{}
	want := map[string]string{"ssl.keystore.location": settingOf(rd.settings, "ssl.keystore.location"), "ssl.truststore.location": settingOf(rd.settings, "ssl.truststore.location")}
	for key, v := range live.dynamic {
		if base, ok := storeOverride(key); ok {
			st.dynamic[key] = v
			if v != want[base] {
				st.changes = append(st.changes, sdk.Change{Resource: "broker " + brokerID(current) + " dynamic config:" + key, Action: sdk.Update, Before: v, After: want[base], RequiresRestart: true, CertificateMaterial: true})
				keysChanged = append(keysChanged, key)
			}
		}
	}
	if len(st.changes) == 0 {
		st.changes = stale // apply restarts the broker for them (static)
		return st, true
	}
	st.rotation, st.restartReason = rotationPossible(ctx, q, st, keysChanged, fileRestart, pending)
	if st.rotation {
		for i := range st.changes {
			st.changes[i].RequiresRestart = false
			st.changes[i].Description = "KIP-226 keystore/truststore update on the running broker, no restart"
		}
	} else {
		for i := range st.changes {
			st.changes[i].RequiresRestart = true
			if st.restartReason != "" {
				st.changes[i].Description = "static change with restart: " + st.restartReason
			}
		}
	}
	st.changes = append(st.changes, stale...)
	return st, true
}

// staleStores lists the running broker's TLS listeners that still serve a
// store server.properties no longer names: a listener without its own
// per-listener override (KIP-226) runs the store the broker started with,
// and after a rotation that is every controller listener — Kafka reloads
// dynamic stores on broker listeners only. Each is a pending restart,
// reported per listener and store (resource "broker <id> controller
// listener <NAME>:<store setting>") so that the host can tell it from any
// other pending change. A store setting without overrides is the pending
// keys' matter (a file the broker was not restarted on).
func staleStores(live liveConfig, props map[string]string) []sdk.Change {
	ls, err := listenersOf(props)
	if err != nil {
		return nil // reported by the listener checks
	}
	var out []sdk.Change
	for _, key := range rotationKeys {
		run, file := live.values[key], props[key]
		overridden := false
		for k := range live.dynamic {
			if base, ok := storeOverride(k); ok && base == key {
				overridden = true
			}
		}
		if !overridden || run == "" || file == "" || run == file {
			continue
		}
		what := "the new certificate is served"
		if key == "ssl.truststore.location" {
			what = "the new truststore (CA bundle) is used"
		}
		for _, l := range ls {
			if _, own := live.dynamic["listener.name."+strings.ToLower(l.Name)+"."+key]; own || !l.tls() {
				continue
			}
			kind := "listener"
			if l.Controller {
				kind = "controller listener"
			}
			out = append(out, sdk.Change{Resource: fmt.Sprintf("broker %s %s %s:%s", brokerID(props), kind, l.Name, key), Action: sdk.Update,
				Before: run, After: file, RequiresRestart: true, CertificateMaterial: true,
				Description: fmt.Sprintf("%s %s at %s still runs the store the broker started with (Kafka reloads KIP-226 stores on broker listeners only): %s there after the next broker restart", kind, l.Name, l.Address, what)})
		}
	}
	return out
}

// pendingKeys are the settings harden manages whose running value the
// broker reports (DescribeConfigs) as it started with them; passwords are
// never reported.
var pendingKeys = []string{"listeners", "advertised.listeners", "listener.security.protocol.map", "inter.broker.listener.name", "controller.listener.names",
	"ssl.client.auth", "ssl.enabled.protocols", "ssl.protocol", "ssl.cipher.suites", "authorizer.class.name", "allow.everyone.if.no.acl.found", "super.users",
	"ssl.keystore.location", "ssl.truststore.location"}

// runningValue is what the running broker started with for key. A store
// a KIP-226 rotation overrides per listener is no restart matter: the
// plan's dynamic-config changes compare the overrides (and the broker
// reports a fresh override a moment late), so it is not compared here.
func runningValue(live liveConfig, key string, b brokerTarget) (string, bool) {
	if slices.Contains(rotationKeys, key) {
		for k := range live.dynamic {
			if base, ok := storeOverride(k); ok && base == key {
				return "", false
			}
		}
	}
	v := live.values[key]
	return v, v != ""
}

// storeOverride reports whether key is a per-listener store location
// override and which setting it overrides.
func storeOverride(key string) (string, bool) {
	if !strings.HasPrefix(key, "listener.name.") {
		return "", false
	}
	for _, k := range rotationKeys {
		if strings.HasSuffix(key, "."+k) {
			return k, true
		}
	}
	return "", false
}

func settingOf(settings [][2]string, key string) string {
	for _, kv := range settings {
		if kv[0] == key {
			return kv[1]
		}
	}
	return ""
}

// rotationPossible decides between a KIP-226 rotation and a static apply
// with restart, and says why when it must restart.
func rotationPossible(ctx context.Context, q sdk.RequestContext, st *planState, keysChanged []string, fileRestart, pending bool) (bool, string) {
	var reasons []string
	var static []string
	for _, k := range keysChanged {
		if _, dyn := storeOverride(k); !dyn && !slices.Contains(rotationKeys, k) {
			static = append(static, k)
		}
	}
	if len(static) > 0 {
		reasons = append(reasons, "settings that only take effect at start-up change ("+strings.Join(static, ", ")+")")
	}
	if fileRestart {
		reasons = append(reasons, "the password file or the JVM options change")
	}
	if pending {
		reasons = append(reasons, "the running broker still differs from server.properties")
	}
	// The served certificate is what Kafka compares a new keystore with.
	served, err := servedCertificate(ctx, q, st.rd)
	switch {
	case err != nil:
		reasons = append(reasons, "the broker does not serve TLS yet ("+err.Error()+")")
	case served.Subject.String() != st.rd.leaf.Subject.String():
		reasons = append(reasons, fmt.Sprintf("the new certificate's subject %q differs from the served %q (Kafka refuses a dynamic keystore with another DN)", st.rd.leaf.Subject, served.Subject))
	default:
		newNames := certNames(st.rd.leaf)
		for _, n := range certNames(served) {
			if !slices.Contains(newNames, n) {
				reasons = append(reasons, fmt.Sprintf("the new certificate drops the name %s the served one has (Kafka refuses a dynamic keystore whose SANs are not a superset)", n))
			}
		}
	}
	return len(reasons) == 0, strings.Join(reasons, "; ")
}

// certNames lists a certificate's SANs as Kafka compares them.
func certNames(c *x509.Certificate) []string {
	out := append([]string{}, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	return out
}

// servedCertificate handshakes with the first broker listener, as harden's
// client identity, and returns the certificate it serves.
func servedCertificate(ctx context.Context, q sdk.RequestContext, rd rendered) (*x509.Certificate, error) {
	addr := brokerListeners(rd.broker.Listeners)[0].Address
	cfg := clientTLS(q)
	cfg.InsecureSkipVerify = true //nolint:gosec // reading what is served, not trusting it
	conn, err := (&tls.Dialer{NetDialer: &netDialer, Config: cfg}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

// brokerListeners are the non-controller listeners.
func brokerListeners(ls []listenerSpec) []listenerSpec {
	var out []listenerSpec
	for _, l := range ls {
		if !l.Controller {
			out = append(out, l)
		}
	}
	return out
}

// Plan lists what apply would change: server.properties settings, store
// files, per-listener dynamic overrides; each change says whether it needs
// a restart or goes through KIP-226 without one.
func (kafka) Plan(ctx context.Context, q sdk.PlanRequest, r *sdk.PlanResponse) {
	c, s, ok := sdk.Decode[connection, spec](q.Target, &r.Diagnostics)
	if !ok {
		return
	}
	tp, ok := plan(ctx, q.RequestContext, c, s, &r.Diagnostics, true)
	if !ok {
		return
	}
	r.Changes = tp.changes()
	r.PlanToken = tp.token()
}

// planToken fingerprints the file and the pending changes the plan saw.
func planToken(file []byte, changes []sdk.Change) []byte {
	h := sha256.New()
	h.Write(file)
	for _, ch := range changes {
		fmt.Fprintf(h, "%s|%s|%s\n", ch.Resource, ch.Action, ch.Before)
	}
	return h.Sum(nil)
}

// storeFile: a key- or truststore (or the file holding their passwords)
// among the rendered files — certificate material for harden rotate.
func storeFile(path string) bool {
	base := filepath.Base(path)
	return strings.HasSuffix(base, ".p12") || base == "secrets.properties"
}

// storeKey: a server.properties key naming a key- or truststore (or its
// password) — certificate material for harden rotate.
func storeKey(key string) bool {
	return strings.Contains(key, "ssl.keystore.") || strings.Contains(key, "ssl.truststore.")
}
