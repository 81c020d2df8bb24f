package main

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

func init() {
	ref := []string{checks.RefSeedKafkaTLS}
	checks.Register(
		checks.Definition{ID: "kafka.config.client_auth", Title: "Brokers require client certificates (ssl.client.auth=required) in the mTLS scope", Severity: checks.High,
			Remediation: "Set ssl.client.auth=required (harden apply does for targets in mtls.scope).", References: ref},
		checks.Definition{ID: "kafka.config.protocols", Title: "ssl.enabled.protocols holds only the profile's TLS versions", Severity: checks.High,
			Remediation: "Set ssl.enabled.protocols to the profile's versions.", References: []string{checks.RefSeedKafkaTLS, checks.RefMozillaTLS}},
		checks.Definition{ID: "kafka.config.cipher_suites", Title: "ssl.cipher.suites is set and holds only the profile's suites", Severity: checks.Medium,
			Remediation: "Set ssl.cipher.suites to the union of the profile's TLS 1.3 and TLS 1.2 suites (JSSE names).", References: []string{checks.RefMozillaTLS}},
		checks.Definition{ID: "kafka.config.inter_broker_tls", Title: "Inter-broker and controller traffic uses TLS", Severity: checks.High,
			Remediation: "Make inter.broker.listener.name and every controller listener SSL (or SASL_SSL).", References: ref},
		checks.Definition{ID: "kafka.config.authorizer", Title: "An authorizer denies by default under mTLS (a valid certificate is not a skeleton key)", Severity: checks.High,
			Remediation: "Set authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer, allow.everyone.if.no.acl.found=false and super.users to the admin identities; give verify connection.probe_credentials_file (a policy-CA certificate with no ACLs) so it can prove the refusal live.", References: ref},
		checks.Definition{ID: "kafka.client.produce_consume", Title: "A client with a valid certificate produces and consumes over TLS", Severity: checks.High,
			Remediation: "Check the broker's keystore/truststore, ACLs for the client, and the listener's TLS settings.", References: ref},
	)
}

// configCheckIDs are the checks judged per running broker, in report order.
func configCheckIDs(mtls bool) []string {
	ids := []string{"kafka.config.protocols", "kafka.config.cipher_suites", "kafka.config.inter_broker_tls"}
	if mtls {
		ids = append([]string{"kafka.config.client_auth"}, append(ids, "kafka.config.authorizer")...)
	}
	return ids
}

// liveData is what verify read from the running brokers and the client
// exchanges it made; judgeLive turns it into checks once the listener
// probes are in.
type liveData struct {
	// cancelled: verify was stopped before the live checks finished.
	cancelled error
	produce   checks.Check
	// connectErr: no admin connection or no DescribeCluster answer.
	connectErr error
	brokers    []brokerLive
	// probe is the probe identity, or why there is none.
	probe *probeIdentity
}

// brokerLive is one running broker as DescribeConfigs and the probe
// identity saw it.
type brokerLive struct {
	id, addr string
	cfg      map[string]string
	err      error
	// acls: harden's admin listed the ACLs (the authorizer is loaded).
	acls checks.Observation
	// denied: the probe identity's requests (deny by default).
	denied []checks.Observation
}

// gatherLive connects harden's clients to the running brokers. It never
// judges configuration: that waits for the listener probes (judgeLive).
// undetermined names bootstrap addresses whose protocol the probes could
// not establish (then no TLS listener is not a conclusion).
func gatherLive(c connection, q sdk.RequestContext, tlsAddrs, undetermined []string) liveData {
	var live liveData
	mtls := q.Policy.InMTLSScope(q.Target.Name)
	live.produce = produceConsumeCheck(tlsAddrs, undetermined, q, mtls)
	if mtls {
		live.probe = probeIdentityOf(q)
	}
	admin, err := adminFor(c, q, tlsAddrs)
	// A reset or timeout may be transient: a bounded number of retries
	// before the running configuration counts as unreadable (a healthy
	// broker pays nothing for them).
	for attempt := 1; err != nil && attempt < 3; attempt++ {
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
		admin, err = adminFor(c, q, tlsAddrs)
	}
	if err != nil {
		live.connectErr = err
		return live
	}
	defer admin.Close()
	brokers, _, err := admin.DescribeCluster()
	if err != nil {
		live.connectErr = fmt.Errorf("DescribeCluster: %w", err)
		return live
	}
	for _, b := range brokers {
		bl := brokerLive{id: fmt.Sprint(b.ID()), addr: b.Addr()}
		entries, err := describeBroker(admin, bl.id)
		if err != nil {
			bl.err = err
			live.brokers = append(live.brokers, bl)
			continue
		}
		bl.cfg = map[string]string{}
		for _, e := range entries {
			bl.cfg[e.Name] = e.Value
		}
		if mtls {
			bl.acls = adminListsACLs(admin)
			if p := live.probe; p.cert != nil || p.problem != "" {
				bl.denied = p.denied(probeAddr(bl), q)
			}
		}
		live.brokers = append(live.brokers, bl)
	}
	return live
}

// judgeLive reports every live check for every broker: an error with the
// reason where the broker could not be read, never a silent absence.
func judgeLive(live liveData, q sdk.RequestContext, results []listenerResult, files map[string]map[string]string) []checks.Check {
	mtls := q.Policy.InMTLSScope(q.Target.Name)
	var out []checks.Check
	errAll := func(subject string, err error) {
		for _, id := range configCheckIDs(mtls) {
			out = append(out, checks.Errored(id, subject, err))
		}
	}
	if live.cancelled != nil {
		out = append(out, checks.Errored("kafka.client.produce_consume", "broker listeners", live.cancelled))
		errAll("DescribeConfigs", fmt.Errorf("verify stopped before the running brokers were read: %w", live.cancelled))
		return out
	}
	out = append(out, live.produce)
	if !mtls {
		why := fmt.Sprintf("target %s is not in mtls.scope: clients are not required to present certificates", q.Target.Name)
		out = append(out, checks.NotApplicable("kafka.config.client_auth", "target "+q.Target.Name, why),
			checks.NotApplicable("kafka.config.authorizer", "target "+q.Target.Name, why))
	}
	if live.connectErr != nil {
		errAll("DescribeConfigs", live.connectErr)
		return out
	}
	if len(live.brokers) == 0 {
		errAll("DescribeConfigs", errors.New("DescribeCluster listed no broker: no running configuration to judge"))
		return out
	}
	seen := map[string]bool{}
	for _, b := range live.brokers {
		seen[b.id] = true
		subject := "broker " + b.id + " (" + b.addr + ", DescribeConfigs)"
		if b.err != nil {
			errAll(subject, b.err)
			continue
		}
		out = append(out, brokerConfigChecks(b, q, subject, results, files[b.id])...)
	}
	// A broker whose file harden read but that the cluster does not list
	// was not looked at.
	var ids []string
	for id := range files {
		if id != "" && !seen[id] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		errAll("broker "+id+" (DescribeConfigs)", fmt.Errorf("broker %s has a config_file but the running cluster does not list it", id))
	}
	return out
}

// brokerConfigChecks judges one broker's running configuration. The
// settings are configuration (read through DescribeConfigs, not observed);
// a high-severity one passes only where the listener probes observed the
// behaviour it configures on every listener it governs, otherwise it is
// reported as configuration-only evidence (checks.Configured).
// probedListener: a listener of the running configuration was probed (by
// name, or by port for the bootstrap and wildcard addresses).
func probedListener(results []listenerResult, l listener) bool {
	_, port, _ := net.SplitHostPort(l.Address)
	for _, r := range results {
		_, rport, _ := net.SplitHostPort(r.l.Address)
		if strings.EqualFold(r.l.Name, l.Name) || (port != "" && port == rport) {
			return true
		}
	}
	return false
}

func brokerConfigChecks(b brokerLive, q sdk.RequestContext, subject string, results []listenerResult, file map[string]string) []checks.Check {
	cfg := b.cfg
	p := q.Policy.Profile
	mtls := q.Policy.InMTLSScope(q.Target.Name)
	var out []checks.Check
	ls, lerr := listenersOf(cfg)
	var tlsLs []listener
	for _, l := range ls {
		if l.tls() {
			tlsLs = append(tlsLs, l)
		}
	}
	// A listener the running broker has but harden did not probe (not in
	// config_file, not the bootstrap): without TLS it fails
	// kafka.listener.plaintext on the broker's own report of it — a
	// plaintext door left open must not go unmentioned.
	if lerr == nil {
		for _, l := range ls {
			if !l.tls() && !probedListener(results, l) {
				out = append(out, checks.Configured("kafka.listener.plaintext", subject, fmt.Sprintf(
					"the running broker lists listener %s (%s) at %s, which carries no TLS and was not probed (DescribeConfigs listeners)", l.Name, l.Protocol, l.Address), false))
			}
		}
	}
	// Listener-level overrides (listener.name.<l>.ssl.client.auth) win.
	clientAuth := func(l listener) string {
		if v := cfg["listener.name."+strings.ToLower(l.Name)+".ssl.client.auth"]; v != "" {
			return v
		}
		return cfg["ssl.client.auth"]
	}
	if mtls {
		if lerr != nil {
			out = append(out, checks.Errored("kafka.config.client_auth", subject, fmt.Errorf("listeners of the running broker unreadable: %w", lerr)))
		} else {
			var weak []string
			for _, l := range ls {
				switch {
				case !l.tls():
					weak = append(weak, fmt.Sprintf("%s: %s, no client certificate at all", l.Name, l.Protocol))
				case clientAuth(l) != "required":
					weak = append(weak, fmt.Sprintf("%s: ssl.client.auth=%s", l.Name, clientAuth(l)))
				}
			}
			out = append(out, corroborated("kafka.config.client_auth", subject, len(weak) == 0, orAll(weak, "ssl.client.auth=required on every listener"),
				tlsLs, results, "tls.client_auth.required", "clients without a trusted certificate refused"))
		}
	}
	var allowed []string
	for _, v := range p.Versions {
		allowed = append(allowed, tlsprofile.VersionName(v))
	}
	var extra []string
	for _, v := range splitList(cfg["ssl.enabled.protocols"]) {
		if !slices.Contains(allowed, v) {
			extra = append(extra, v)
		}
	}
	out = append(out, corroborated("kafka.config.protocols", subject, len(extra) == 0 && cfg["ssl.enabled.protocols"] != "",
		fmt.Sprintf("ssl.enabled.protocols=%s (profile: %s)", cfg["ssl.enabled.protocols"], strings.Join(allowed, ",")),
		tlsLs, results, "tls.protocol.versions", "only the profile's versions accepted"))
	want := jsseSuites(p)
	suites := splitList(cfg["ssl.cipher.suites"])
	var outside []string
	for _, s := range suites {
		if !slices.Contains(want, s) {
			outside = append(outside, s)
		}
	}
	if len(suites) == 0 {
		out = append(out, configFailed("kafka.config.cipher_suites", subject, "ssl.cipher.suites is empty: the JVM's defaults apply (CBC suites included)"))
	} else {
		out = append(out, corroborated("kafka.config.cipher_suites", subject, len(outside) == 0,
			orAll(prefix("outside the profile: ", outside), fmt.Sprintf("%d suites, all in the profile", len(suites))),
			tlsLs, results, "tls.cipher_suites", "only the profile's suites accepted"))
	}
	inter := strings.ToUpper(cfg["inter.broker.listener.name"])
	if lerr != nil {
		out = append(out, checks.Errored("kafka.config.inter_broker_tls", subject, fmt.Errorf("listeners of the running broker unreadable: %w", lerr)))
	} else {
		var plain []string
		var governed []listener
		for _, l := range ls {
			if l.Name == inter || l.Controller {
				governed = append(governed, l)
				if !l.tls() {
					plain = append(plain, fmt.Sprintf("%s (%s)", l.Name, l.Protocol))
				}
			}
		}
		ok := len(plain) == 0 && inter != "" && slices.ContainsFunc(governed, func(l listener) bool { return l.Name == inter })
		ev := orAll(prefix("inter-broker/controller listeners without TLS: ", plain), "inter-broker listener "+inter+" and the controller listeners use TLS")
		if inter == "" {
			ev = "inter.broker.listener.name is not reported"
		} else if !slices.ContainsFunc(governed, func(l listener) bool { return l.Name == inter }) {
			ev = "inter.broker.listener.name=" + inter + " is none of the broker's listeners"
		}
		out = append(out, corroborated("kafka.config.inter_broker_tls", subject, ok, ev, governed, results, "kafka.listener.plaintext", "cleartext refused"))
	}
	if mtls {
		out = append(out, authorizerCheck(b, file, subject))
	}
	return out
}

// configFailed: the running configuration itself violates the policy.
func configFailed(id, subject, evidence string) checks.Check {
	c := checks.Configured(id, subject, evidence, false)
	c.ConfigurationOnly = true
	return c
}

// corroborated judges a setting read from the running broker: bad
// configuration fails; good configuration passes only when the probes
// observed its effect (liveID passed) on every listener it governs;
// otherwise it is configuration-only evidence, which never passes a
// high-severity check.
func corroborated(id, subject string, good bool, evidence string, governed []listener, results []listenerResult, liveID, liveWhat string) checks.Check {
	if !good {
		return configFailed(id, subject, evidence)
	}
	var seen, missing []string
	for _, l := range governed {
		lr, ok := probed(results, l)
		if !ok {
			missing = append(missing, l.Name+" "+l.Address+" was not probed")
			continue
		}
		if s, ok := lr.status(liveID); !ok || s != checks.Pass {
			missing = append(missing, fmt.Sprintf("%s on %s %s is %s", liveID, l.Name, l.Address, statusOr(s, ok)))
			continue
		}
		seen = append(seen, l.Name+" "+l.Address)
	}
	if len(governed) == 0 {
		missing = append(missing, "no TLS listener to observe it on")
	}
	if len(missing) > 0 {
		return checks.Configured(id, subject, evidence+"; not confirmed live: "+strings.Join(missing, "; "), true)
	}
	return checks.Passed(id, subject, fmt.Sprintf("DescribeConfigs: %s; observed live (%s): %s", evidence, liveID, liveWhat+" on "+strings.Join(seen, ", ")))
}

func statusOr(s checks.Status, ok bool) string {
	if !ok {
		return "missing"
	}
	return s.String()
}

// probed finds the probes' result for a listener of the running
// configuration: same address, or the same port on a loopback or wildcard
// host (listenersOf probes wildcard listeners on 127.0.0.1).
func probed(results []listenerResult, l listener) (listenerResult, bool) {
	for _, lr := range results {
		if lr.l.Address == l.Address {
			return lr, true
		}
	}
	h, p, _ := net.SplitHostPort(l.Address)
	for _, lr := range results {
		rh, rp, _ := net.SplitHostPort(lr.l.Address)
		if rp == p && loopback(h) && loopback(rh) {
			return lr, true
		}
	}
	return listenerResult{}, false
}

func loopback(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// describeBroker reads one broker's running configuration (DescribeConfigs);
// sensitive entries are left out.
func describeBroker(admin sarama.ClusterAdmin, id string) ([]sarama.ConfigEntry, error) {
	results, err := admin.DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.BrokerResource, Name: id}}, sarama.DescribeConfigsOptions{})
	if err != nil {
		return nil, fmt.Errorf("DescribeConfigs for broker %s: %w", id, err)
	}
	if len(results) == 0 {
		return nil, fmt.Errorf("DescribeConfigs for broker %s: no resource in the answer", id)
	}
	var out []sarama.ConfigEntry
	for _, res := range results {
		if res.ErrorCode != sarama.ErrNoError {
			return nil, fmt.Errorf("DescribeConfigs for broker %s: %s %s", id, res.ErrorCode, res.ErrorMsg)
		}
		for _, e := range res.Configs {
			if !e.Sensitive {
				out = append(out, e)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("DescribeConfigs for broker %s: no configuration entries in the answer", id)
	}
	return out, nil
}

// adminListsACLs: harden's admin asks for the ACLs. An answer shows an
// authorizer is loaded (a broker without one answers SECURITY_DISABLED);
// it says nothing about what the authorizer allows.
func adminListsACLs(admin sarama.ClusterAdmin) checks.Observation {
	acls, err := admin.ListAcls(sarama.AclFilter{ResourceType: sarama.AclResourceAny, ResourcePatternTypeFilter: sarama.AclPatternAny,
		Operation: sarama.AclOperationAny, PermissionType: sarama.AclPermissionAny})
	if err != nil {
		var kerr sarama.KError
		if errors.As(err, &kerr) && kerr == sarama.ErrSecurityDisabled {
			return checks.Bad("DescribeAcls as harden's admin: SECURITY_DISABLED (no authorizer loaded)")
		}
		return observeErr("DescribeAcls as harden's admin", err)
	}
	return checks.Good(fmt.Sprintf("DescribeAcls as harden's admin answered (%d resource(s) with ACLs): an authorizer is loaded", len(acls)))
}

// authorizerCheck: deny by default, proven live by the probe identity (a
// certificate from the policy CA without ACLs) being refused by every
// broker's authorizer. Without a probe identity only configuration can be
// read — authorizer.class.name from DescribeConfigs,
// allow.everyone.if.no.acl.found from DescribeConfigs or server.properties
// — and that never passes this high-severity check.
func authorizerCheck(b brokerLive, file map[string]string, subject string) checks.Check {
	const id = "kafka.config.authorizer"
	authz := b.cfg["authorizer.class.name"]
	if authz == "" {
		return configFailed(id, subject, "no authorizer.class.name: every authenticated client may do everything")
	}
	allowEveryone, from := b.cfg["allow.everyone.if.no.acl.found"], "DescribeConfigs"
	if allowEveryone == "" && file != nil {
		allowEveryone, from = file["allow.everyone.if.no.acl.found"], "server.properties"
	}
	config := fmt.Sprintf("authorizer.class.name=%s; allow.everyone.if.no.acl.found=%s (%s)", authz, orDefault(strings.TrimSpace(allowEveryone), "false (default)"), from)
	if allowEveryone == "" && file == nil {
		config = fmt.Sprintf("authorizer.class.name=%s; allow.everyone.if.no.acl.found not reported by DescribeConfigs and no connection.config_file to read it from", authz)
	}
	if strings.EqualFold(strings.TrimSpace(allowEveryone), "true") {
		return configFailed(id, subject, config+": allow by default")
	}
	obs := append([]checks.Observation{b.acls}, b.denied...)
	if len(b.denied) == 0 {
		ev := config + "; " + b.acls.String() + "; deny-by-default not observed: no probe identity (connection.probe_credentials_file: a policy-CA certificate with no ACLs)"
		if !b.acls.Conclusive() || b.acls.Bad {
			// The one live look failed: that decides.
			return checks.Reduce(id, subject, b.acls)
		}
		return checks.Configured(id, subject, ev, true)
	}
	c := checks.Reduce(id, subject, obs...)
	c.Evidence = config + "; " + c.Evidence
	return c
}

// probeIdentity is the unprivileged identity verify presents to prove
// deny-by-default, or why there is none usable.
type probeIdentity struct {
	cert *tls.Certificate
	cn   string
	// problem: given but unusable (the reason); the authorizer check is
	// then an error, never configuration-only.
	problem string
}

// probeIdentityOf reads connection.probe_credentials_file (the host hands
// its content over as the secret "probe_credentials"). The identity must
// chain to the policy CA — a refusal of any other certificate is the TLS
// layer's, not the authorizer's — and must not be harden's own.
func probeIdentityOf(q sdk.RequestContext) *probeIdentity {
	pemData, ok := q.Target.Secret("probe_credentials")
	if !ok {
		return &probeIdentity{}
	}
	pair, err := tls.X509KeyPair([]byte(pemData), []byte(pemData))
	if err != nil {
		return &probeIdentity{problem: "connection.probe_credentials_file holds no certificate chain with its private key: " + err.Error()}
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return &probeIdentity{problem: "probe certificate: " + err.Error()}
	}
	pi := &probeIdentity{cert: &pair, cn: leaf.Subject.CommonName}
	if len(q.Certificates.CABundlePEM) == 0 {
		pi.problem = "no policy CA to check the probe identity against"
		return pi
	}
	cas, err := sdk.ParseCertificatesPEM(q.Certificates.CABundlePEM)
	if err != nil {
		pi.problem = "the policy's CA bundle, to check the probe identity against: " + err.Error()
		return pi
	}
	roots := x509.NewCertPool()
	for _, ca := range cas {
		roots.AddCert(ca)
	}
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		pi.problem = fmt.Sprintf("the probe identity %q does not chain to the policy CA as a client (%v): the brokers would refuse it at TLS, which says nothing about the authorizer", pi.cn, err)
		return pi
	}
	if own, err := tls.X509KeyPair(q.Certificates.ClientChainPEM, q.Certificates.ClientKeyPEM); err == nil {
		if ownLeaf, err := x509.ParseCertificate(own.Certificate[0]); err == nil && ownLeaf.Subject.CommonName == pi.cn {
			pi.problem = fmt.Sprintf("the probe identity %q is harden's own admin identity (a super user): use one without ACLs", pi.cn)
		}
	}
	return pi
}

// probeAddr is the broker's TLS listener to present the probe identity
// on: the advertised address harden's admin reached it at when that
// listener is TLS, else the first TLS broker listener of its configuration.
func probeAddr(b brokerLive) string {
	ls, _ := listenersOf(b.cfg)
	_, port, _ := net.SplitHostPort(b.addr)
	for _, l := range ls {
		if l.tls() && !l.Controller && portOf(l.Address) == port {
			return b.addr
		}
	}
	for _, l := range ls {
		if l.tls() && !l.Controller {
			return l.Address
		}
	}
	return ""
}

// denied makes the probe identity's requests to one broker: Metadata of a
// random topic (Describe on a topic without ACLs) and DescribeAcls
// (Describe on the cluster). Only the broker's own answer concludes: an
// authorization error is the refusal deny-by-default promises, an answer
// is allow-by-default; a TLS failure, timeout or reset is inconclusive.
func (pi *probeIdentity) denied(addr string, q sdk.RequestContext) []checks.Observation {
	who := fmt.Sprintf("probe identity %q (no ACLs)", pi.cn)
	if pi.problem != "" {
		return []checks.Observation{checks.Unknown("requests as the "+who, pi.problem)}
	}
	if addr == "" {
		return []checks.Observation{checks.Unknown("requests as the "+who, "the broker has no TLS listener to present it on")}
	}
	cfg := saramaConfig(q, true)
	cfg.Net.TLS.Config = cfg.Net.TLS.Config.Clone()
	cfg.Net.TLS.Config.Certificates = []tls.Certificate{*pi.cert}
	br := sarama.NewBroker(addr)
	if err := br.Open(cfg); err != nil {
		return []checks.Observation{checks.Unknown("connect as the "+who+" to "+addr, err.Error())}
	}
	defer br.Close()
	nonce := make([]byte, 6)
	_, _ = rand.Read(nonce)
	topic := "harden-deny-probe-" + hex.EncodeToString(nonce)
	var obs []checks.Observation
	what := fmt.Sprintf("Metadata of topic %s as the %s at %s", topic, who, addr)
	md, err := br.GetMetadata(&sarama.MetadataRequest{Version: 11, Topics: []string{topic}, AllowAutoTopicCreation: false})
	switch {
	case err != nil:
		obs = append(obs, probeTransport(what, err))
	case len(md.Topics) != 1:
		obs = append(obs, checks.Unknown(what, fmt.Sprintf("answer lists %d topics", len(md.Topics))))
	case md.Topics[0].Err == sarama.ErrTopicAuthorizationFailed:
		obs = append(obs, checks.Good(what+": refused with TOPIC_AUTHORIZATION_FAILED"))
	case md.Topics[0].Err == sarama.ErrNoError || md.Topics[0].Err == sarama.ErrUnknownTopicOrPartition:
		obs = append(obs, checks.Bad(what+": answered ("+md.Topics[0].Err.Error()+"): a certificate without ACLs may describe topics (allow by default)"))
	default:
		obs = append(obs, checks.Unknown(what, "the broker answered "+md.Topics[0].Err.Error()))
	}
	what = fmt.Sprintf("DescribeAcls as the %s at %s", who, addr)
	da, err := br.DescribeAcls(&sarama.DescribeAclsRequest{Version: 1, AclFilter: sarama.AclFilter{Version: 1, ResourceType: sarama.AclResourceAny,
		ResourcePatternTypeFilter: sarama.AclPatternAny, Operation: sarama.AclOperationAny, PermissionType: sarama.AclPermissionAny}})
	switch {
	case err != nil:
		obs = append(obs, probeTransport(what, err))
	case da.Err == sarama.ErrClusterAuthorizationFailed:
		obs = append(obs, checks.Good(what+": refused with CLUSTER_AUTHORIZATION_FAILED"))
	case da.Err == sarama.ErrNoError:
		obs = append(obs, checks.Bad(fmt.Sprintf("%s: answered (%d resource(s) with ACLs): a certificate without ACLs may read every ACL", what, len(da.ResourceAcls))))
	case da.Err == sarama.ErrSecurityDisabled:
		obs = append(obs, checks.Bad(what+": SECURITY_DISABLED (no authorizer loaded)"))
	default:
		obs = append(obs, checks.Unknown(what, "the broker answered "+da.Err.Error()))
	}
	return obs
}

// probeTransport: a probe-identity request that got no Kafka answer. Even
// the broker's own TLS alert is inconclusive here: it refused the
// certificate, so the authorizer was never asked.
func probeTransport(what string, err error) checks.Observation {
	var kerr sarama.KError
	if errors.As(err, &kerr) {
		return checks.Unknown(what, "the broker answered "+kerr.Error())
	}
	reason := err.Error()
	if strings.Contains(reason, "remote error: tls: ") {
		reason = "the broker refused the probe certificate at TLS (" + reason + "), before any authorizer decision: give a certificate the brokers trust"
	}
	return checks.Unknown(what, reason)
}

// observeErr classifies an error of harden's own client: the broker's own
// answer — a Kafka error code, a TLS alert it sent, a certificate the
// policy CA does not verify — is conclusive; anything else (timeout,
// reset, refused or closed connection, garbled bytes) is inconclusive.
func observeErr(what string, err error) checks.Observation {
	var kerr sarama.KError
	if errors.As(err, &kerr) {
		return checks.Bad(what + ": the broker answered " + kerr.Error())
	}
	var verr *tls.CertificateVerificationError
	var uerr x509.UnknownAuthorityError
	var herr x509.HostnameError
	var cerr x509.CertificateInvalidError
	if errors.As(err, &verr) || errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &cerr) {
		return checks.Bad(what + ": the broker's certificate does not verify against the policy CA: " + err.Error())
	}
	if strings.Contains(err.Error(), "remote error: tls: ") {
		return checks.Bad(what + ": the broker refused harden's TLS session: " + err.Error())
	}
	return checks.Unknown(what, err.Error())
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

func orAll(problems []string, ok string) string {
	if len(problems) == 0 {
		return ok
	}
	return strings.Join(problems, "; ")
}

func prefix(p string, items []string) []string {
	if len(items) == 0 {
		return nil
	}
	return []string{p + strings.Join(items, ", ")}
}

// verifyTopic is the topic harden's produce/consume check writes to.
const verifyTopic = "harden-verify"

// produceConsumeCheck is kafka.client.produce_consume, always present: it
// cannot run without a TLS broker listener (a failure: nothing to produce
// to over TLS), without the policy CA (in the mTLS scope an error — the
// policy requires a trusted client path it gave no CA for; elsewhere not
// applicable: without a CA there is no "valid certificate" to speak of),
// or, in the mTLS scope, without harden's client certificate (an error).
func produceConsumeCheck(tlsAddrs, undetermined []string, q sdk.RequestContext, mtls bool) checks.Check {
	const id = "kafka.client.produce_consume"
	switch {
	case len(tlsAddrs) == 0 && len(undetermined) > 0:
		return checks.Reduce(id, "broker listeners", checks.Unknown("find a TLS broker listener", "the protocol of "+strings.Join(undetermined, ", ")+" could not be established (see kafka.listener.plaintext and tls.enabled)"))
	case len(tlsAddrs) == 0:
		return checks.Failed(id, "broker listeners", "no TLS broker listener to produce and consume over")
	case len(q.Certificates.CABundlePEM) == 0 && mtls:
		return checks.Errored(id, "TLS client "+strings.Join(tlsAddrs, ","), errors.New("no policy CA in the request (certificates.files.ca_file or vault-pki): harden cannot make the trusted TLS client this mTLS target requires, so nothing was produced"))
	case len(q.Certificates.CABundlePEM) == 0:
		return checks.NotApplicable(id, "TLS client "+strings.Join(tlsAddrs, ","), "the policy gives no CA: no certificate can be valid for it, and harden does not produce over an unverified TLS session")
	case mtls && len(q.Certificates.ClientChainPEM) == 0:
		return checks.Errored(id, "TLS client "+strings.Join(tlsAddrs, ","), errors.New("no client certificate for harden in the request (certificate.client_cert_file, or vault-pki's after harden apply): an mTLS broker refuses a client without one"))
	}
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	return produceConsume(tlsAddrs, q, hex.EncodeToString(nonce))
}

// produceConsume sends a random canary as harden's identity over TLS and
// reads it back: a valid certificate can produce and consume.
func produceConsume(addrs []string, q sdk.RequestContext, nonce string) checks.Check {
	const id = "kafka.client.produce_consume"
	subject := "TLS client " + strings.Join(addrs, ",")
	cfg := saramaConfig(q, true)
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Metadata.Retry.Max, cfg.Metadata.Retry.Backoff = 5, 200*time.Millisecond
	// A short long-poll: closing the consumer waits for the fetch in flight.
	cfg.Consumer.MaxWaitTime = 20 * time.Millisecond
	fail := func(what string, err error) checks.Check { return checks.Reduce(id, subject, observeErr(what, err)) }
	client, err := sarama.NewClient(addrs, cfg)
	if err != nil {
		return fail("connect harden's TLS client", err)
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return fail("admin client", err)
	}
	if err := admin.CreateTopic(verifyTopic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: int16(min(3, len(client.Brokers())))}, false); err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return fail("create topic "+verifyTopic, err)
	}
	prod, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		return fail("producer", err)
	}
	defer prod.Close()
	part, off, err := prod.SendMessage(&sarama.ProducerMessage{Topic: verifyTopic, Value: sarama.StringEncoder(nonce)})
	if err != nil {
		return fail("produce to "+verifyTopic, err)
	}
	cons, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fail("consumer", err)
	}
	defer cons.Close()
	pc, err := cons.ConsumePartition(verifyTopic, part, off)
	if err != nil {
		return fail("consume from "+verifyTopic, err)
	}
	defer pc.Close()
	select {
	case m := <-pc.Messages():
		if string(m.Value) != nonce {
			return checks.Failed(id, subject, fmt.Sprintf("read back another value at offset %d", off))
		}
		return checks.Passed(id, subject, fmt.Sprintf("produced a random canary to %s[%d] at offset %d over TLS with harden's certificate and read it back", verifyTopic, part, off))
	case err := <-pc.Errors():
		return fail("consume from "+verifyTopic, err)
	case <-time.After(10 * time.Second):
		return checks.Reduce(id, subject, checks.Unknown(fmt.Sprintf("read back the canary at %s[%d] offset %d", verifyTopic, part, off), "it did not arrive within 10 s"))
	}
}
