package main

import (
	"fmt"
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
			Remediation: "Set authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer, allow.everyone.if.no.acl.found=false and super.users to the admin identities.", References: ref},
		checks.Definition{ID: "kafka.client.produce_consume", Title: "A client with a valid certificate produces and consumes over TLS", Severity: checks.High,
			Remediation: "Check the broker's keystore/truststore, ACLs for the client, and the listener's TLS settings.", References: ref},
	)
}

// verifyBrokerConfigs reads every broker's configuration through
// DescribeConfigs (the running values, not the file) and checks them
// against the policy.
// files are the server.properties harden read, by node id.
func verifyBrokerConfigs(admin sarama.ClusterAdmin, q sdk.RequestContext, files map[string]map[string]string) []checks.Check {
	brokers, _, err := admin.DescribeCluster()
	if err != nil {
		return []checks.Check{checks.Errored("kafka.config.client_auth", "cluster", fmt.Errorf("DescribeCluster: %w", err))}
	}
	var out []checks.Check
	for _, b := range brokers {
		id := fmt.Sprint(b.ID())
		subject := "broker " + id + " (" + b.Addr() + ", DescribeConfigs)"
		entries, err := describeBroker(admin, id)
		if err != nil {
			out = append(out, checks.Errored("kafka.config.client_auth", subject, err))
			continue
		}
		cfg := map[string]string{}
		for _, e := range entries {
			cfg[e.Name] = e.Value
		}
		out = append(out, brokerConfigChecks(cfg, q, subject)...)
		if q.Policy.InMTLSScope(q.Target.Name) {
			out = append(out, authorizerCheck(admin, cfg, files[id], subject))
		}
	}
	return out
}

// describeBroker reads one broker's running configuration (DescribeConfigs);
// sensitive entries are left out.
func describeBroker(admin sarama.ClusterAdmin, id string) ([]sarama.ConfigEntry, error) {
	results, err := admin.DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.BrokerResource, Name: id}}, sarama.DescribeConfigsOptions{})
	if err != nil {
		return nil, fmt.Errorf("DescribeConfigs for broker %s: %w", id, err)
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
	return out, nil
}

// brokerConfigChecks judges one broker's running configuration.
func brokerConfigChecks(cfg map[string]string, q sdk.RequestContext, subject string) []checks.Check {
	p := q.Policy.Profile
	mtls := q.Policy.InMTLSScope(q.Target.Name)
	var out []checks.Check
	judge := func(id string, ok bool, evidence string) {
		if ok {
			out = append(out, checks.Passed(id, subject, evidence))
		} else {
			out = append(out, checks.Failed(id, subject, evidence))
		}
	}
	ls, lerr := listenersOf(cfg)
	// Listener-level overrides (listener.name.<l>.ssl.client.auth) win.
	clientAuth := func(l listener) string {
		if v := cfg["listener.name."+strings.ToLower(l.Name)+".ssl.client.auth"]; v != "" {
			return v
		}
		return cfg["ssl.client.auth"]
	}
	if mtls {
		var weak []string
		for _, l := range ls {
			switch {
			case !l.tls():
				weak = append(weak, fmt.Sprintf("%s: %s, no client certificate at all", l.Name, l.Protocol))
			case clientAuth(l) != "required":
				weak = append(weak, fmt.Sprintf("%s: ssl.client.auth=%s", l.Name, clientAuth(l)))
			}
		}
		judge("kafka.config.client_auth", lerr == nil && len(weak) == 0, orAll(weak, "ssl.client.auth=required on every TLS listener"))
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
	judge("kafka.config.protocols", len(extra) == 0 && cfg["ssl.enabled.protocols"] != "",
		fmt.Sprintf("ssl.enabled.protocols=%s (profile: %s)", cfg["ssl.enabled.protocols"], strings.Join(allowed, ",")))
	want := jsseSuites(p)
	suites := splitList(cfg["ssl.cipher.suites"])
	var outside []string
	for _, s := range suites {
		if !slices.Contains(want, s) {
			outside = append(outside, s)
		}
	}
	switch {
	case len(suites) == 0:
		judge("kafka.config.cipher_suites", false, "ssl.cipher.suites is empty: the JVM's defaults apply (CBC suites included)")
	default:
		judge("kafka.config.cipher_suites", len(outside) == 0, orAll(prefix("outside the profile: ", outside), fmt.Sprintf("%d suites, all in the profile", len(suites))))
	}
	var plain []string
	inter := strings.ToUpper(cfg["inter.broker.listener.name"])
	for _, l := range ls {
		if (l.Name == inter || l.Controller) && !l.tls() {
			plain = append(plain, fmt.Sprintf("%s (%s)", l.Name, l.Protocol))
		}
	}
	judge("kafka.config.inter_broker_tls", lerr == nil && len(plain) == 0 && inter != "",
		orAll(prefix("inter-broker/controller listeners without TLS: ", plain), "inter-broker listener "+inter+" and the controller listeners use TLS"))
	return out
}

// authorizerCheck: the broker reports an authorizer class and answers
// DescribeAcls (a broker without one refuses it: security disabled). The
// authorizer's own settings (allow.everyone.if.no.acl.found, super.users)
// are not in DescribeConfigs; they come from server.properties when
// harden can read it.
func authorizerCheck(admin sarama.ClusterAdmin, cfg, file map[string]string, subject string) checks.Check {
	authz := cfg["authorizer.class.name"]
	if authz == "" {
		return checks.Failed("kafka.config.authorizer", subject, "no authorizer.class.name: every authenticated client may do everything")
	}
	acls, err := admin.ListAcls(sarama.AclFilter{ResourceType: sarama.AclResourceAny, ResourcePatternTypeFilter: sarama.AclPatternAny,
		Operation: sarama.AclOperationAny, PermissionType: sarama.AclPermissionAny})
	if err != nil {
		return checks.Failed("kafka.config.authorizer", subject, fmt.Sprintf("authorizer.class.name=%s but DescribeAcls failed: %v", authz, err))
	}
	ev := fmt.Sprintf("authorizer.class.name=%s; DescribeAcls answered (%d resource(s) with ACLs)", authz, len(acls))
	if file == nil {
		return checks.Passed("kafka.config.authorizer", subject, ev+"; allow.everyone.if.no.acl.found not readable without connection.config_file")
	}
	if strings.EqualFold(strings.TrimSpace(file["allow.everyone.if.no.acl.found"]), "true") {
		return checks.Failed("kafka.config.authorizer", subject, ev+"; but server.properties sets allow.everyone.if.no.acl.found=true (allow by default)")
	}
	return checks.Passed("kafka.config.authorizer", subject, fmt.Sprintf("%s; server.properties: allow.everyone.if.no.acl.found=%s, super.users=%s", ev, orDefault(file["allow.everyone.if.no.acl.found"], "false (default)"), orDefault(file["super.users"], "none")))
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

// produceConsume sends a random canary as harden's identity over TLS and
// reads it back: a valid certificate can produce and consume.
func produceConsume(addrs []string, q sdk.RequestContext, nonce string) checks.Check {
	subject := "TLS client " + strings.Join(addrs, ",")
	cfg := saramaConfig(q, true)
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Metadata.Retry.Max, cfg.Metadata.Retry.Backoff = 5, 200*time.Millisecond
	// A short long-poll: closing the consumer waits for the fetch in flight.
	cfg.Consumer.MaxWaitTime = 20 * time.Millisecond
	client, err := sarama.NewClient(addrs, cfg)
	if err != nil {
		return checks.Failed("kafka.client.produce_consume", subject, "harden's TLS client could not connect: "+err.Error())
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return checks.Errored("kafka.client.produce_consume", subject, err)
	}
	if err := admin.CreateTopic(verifyTopic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: int16(min(3, len(client.Brokers())))}, false); err != nil && !strings.Contains(err.Error(), "already exists") {
		return checks.Failed("kafka.client.produce_consume", subject, "create topic "+verifyTopic+": "+err.Error())
	}
	prod, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		return checks.Failed("kafka.client.produce_consume", subject, "producer: "+err.Error())
	}
	defer prod.Close()
	part, off, err := prod.SendMessage(&sarama.ProducerMessage{Topic: verifyTopic, Value: sarama.StringEncoder(nonce)})
	if err != nil {
		return checks.Failed("kafka.client.produce_consume", subject, "produce: "+err.Error())
	}
	cons, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return checks.Failed("kafka.client.produce_consume", subject, "consumer: "+err.Error())
	}
	defer cons.Close()
	pc, err := cons.ConsumePartition(verifyTopic, part, off)
	if err != nil {
		return checks.Failed("kafka.client.produce_consume", subject, "consume: "+err.Error())
	}
	defer pc.Close()
	select {
	case m := <-pc.Messages():
		if string(m.Value) != nonce {
			return checks.Failed("kafka.client.produce_consume", subject, fmt.Sprintf("read back another value at offset %d", off))
		}
		return checks.Passed("kafka.client.produce_consume", subject, fmt.Sprintf("produced a random canary to %s[%d] at offset %d over TLS with harden's certificate and read it back", verifyTopic, part, off))
	case err := <-pc.Errors():
		return checks.Failed("kafka.client.produce_consume", subject, "consume: "+err.Error())
	case <-time.After(10 * time.Second):
		return checks.Failed("kafka.client.produce_consume", subject, "the canary did not arrive within 10 s")
	}
}
