package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/IBM/sarama"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/hostclient"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// Verify paths where nothing conclusive comes back: no check may pass, and
// none may go missing. These need no broker.

func mtlsRequest(t *testing.T, conn map[string]any) sdk.RequestContext {
	t.Helper()
	raw, _ := json.Marshal(conn)
	rc := sdk.RequestContext{Policy: sdk.Policy{APIVersion: "harden/v1", Profile: tlsprofile.Intermediate(), MTLSScope: []string{"events"}},
		Target: sdk.NewTarget("events", raw, []byte(`{}`), nil), Certificates: testCerts(t)}
	rc.Certificates.ClientChainPEM, rc.Certificates.ClientKeyPEM = rc.Certificates.ChainPEM, rc.Certificates.KeyPEM
	return rc
}

// resettingServer accepts connections and resets them at once.
func resettingServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}()
	return ln.Addr().String()
}

func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Nothing answers: every check verify promises is reported, none passes,
// and the canary is an error (nothing was observed), not a "no TLS
// listener" failure.
func TestVerifyNothingAnswering(t *testing.T) {
	client := hostclient.InProcess(kafka{})
	defer client.Close()
	resetting := resettingServer(t)
	dir := t.TempDir()
	props := filepath.Join(dir, "server.properties")
	os.WriteFile(props, []byte("node.id=1\nlisteners=SSL://"+resetting+",CONTROLLER://"+closedPort(t)+"\nlistener.security.protocol.map=SSL:SSL,CONTROLLER:SSL\ncontroller.listener.names=CONTROLLER\ninter.broker.listener.name=SSL\n"), 0o644)
	for name, conn := range map[string]map[string]any{
		"bootstrap only, closed port":     {"bootstrap": []string{closedPort(t)}},
		"bootstrap only, resets":          {"bootstrap": []string{resetting}},
		"config_file, resets and refuses": {"bootstrap": []string{resetting}, "config_file": props},
	} {
		t.Run(name, func(t *testing.T) {
			r, err := client.Verify(context.Background(), mtlsRequest(t, conn))
			if err != nil || r.Diagnostics.HasError() {
				t.Fatalf("verify: %v %v", err, r.Diagnostics.Err())
			}
			for _, c := range r.Checks {
				if c.Status == checks.Pass {
					t.Errorf("%s passed with nothing answering: %s", c.ID, c.Evidence)
				}
			}
			requireChecks(t, r.Checks, map[string]checks.Status{
				"kafka.listener.plaintext":      checks.Error,
				"kafka.client.produce_consume":  checks.Error,
				"kafka.config.client_auth":      checks.Error,
				"kafka.config.protocols":        checks.Error,
				"kafka.config.cipher_suites":    checks.Error,
				"kafka.config.inter_broker_tls": checks.Error,
				"kafka.config.authorizer":       checks.Error,
			})
		})
	}
}

func TestJudgeLiveReportsEveryCheck(t *testing.T) {
	rc := mtlsRequest(t, map[string]any{"bootstrap": []string{"127.0.0.1:1"}})
	produce := checks.Passed("kafka.client.produce_consume", "TLS client", "canary read back")
	cfg := map[string]string{"listeners": "SSL://127.0.0.1:9093"}
	for name, tc := range map[string]struct {
		live  liveData
		files map[string]map[string]string
		want  []string // id@subject of the error checks
	}{
		"cancelled":      {liveData{cancelled: context.Canceled}, nil, []string{"kafka.client.produce_consume@broker listeners", "*@DescribeConfigs"}},
		"no admin":       {liveData{produce: produce, connectErr: errors.New("connect admin client: EOF")}, nil, []string{"*@DescribeConfigs"}},
		"zero brokers":   {liveData{produce: produce}, nil, []string{"*@DescribeConfigs"}},
		"broker unread":  {liveData{produce: produce, brokers: []brokerLive{{id: "1", addr: "a:1", err: errors.New("DescribeConfigs for broker 1: i/o timeout")}}}, nil, []string{"*@broker 1 (a:1, DescribeConfigs)"}},
		"broker missing": {liveData{produce: produce, brokers: []brokerLive{{id: "1", addr: "a:1", cfg: cfg, acls: checks.Good("listed")}}}, map[string]map[string]string{"1": {}, "2": {}}, []string{"*@broker 2 (DescribeConfigs)"}},
	} {
		t.Run(name, func(t *testing.T) {
			out := judgeLive(tc.live, rc, nil, tc.files)
			errs := map[string]int{}
			for _, c := range out {
				if c.Status == checks.Error {
					errs[c.ID+"@"+c.Subject]++
				}
			}
			for _, w := range tc.want {
				id, subject, _ := strings.Cut(w, "@")
				ids := []string{id}
				if id == "*" {
					ids = configCheckIDs(true)
				}
				for _, id := range ids {
					if errs[id+"@"+subject] != 1 {
						t.Errorf("no error %s@%s in %v", id, subject, errs)
					}
				}
			}
			if !hasID(out, "kafka.client.produce_consume") {
				t.Errorf("kafka.client.produce_consume missing")
			}
		})
	}
}

func hasID(cs []checks.Check, id string) bool {
	for _, c := range cs {
		if c.ID == id {
			return true
		}
	}
	return false
}

func TestAuthorizerNeedsTheRefusal(t *testing.T) {
	authz := map[string]string{"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer"}
	listed := checks.Good("DescribeAcls as harden's admin answered")
	refused := []checks.Observation{checks.Good("Metadata refused with TOPIC_AUTHORIZATION_FAILED"), checks.Good("DescribeAcls refused with CLUSTER_AUTHORIZATION_FAILED")}
	for name, tc := range map[string]struct {
		b          brokerLive
		file       map[string]string
		want       checks.Status
		configOnly bool
	}{
		"no authorizer":                  {brokerLive{cfg: map[string]string{}, acls: listed}, nil, checks.Fail, true},
		"allow everyone in the file":     {brokerLive{cfg: authz, acls: listed, denied: refused}, map[string]string{"allow.everyone.if.no.acl.found": "true"}, checks.Fail, true},
		"no probe identity":              {brokerLive{cfg: authz, acls: listed}, map[string]string{}, checks.Warn, true},
		"no probe identity, no file":     {brokerLive{cfg: authz, acls: listed}, nil, checks.Warn, true},
		"no probe, ACLs not listed":      {brokerLive{cfg: authz, acls: checks.Unknown("DescribeAcls", "i/o timeout")}, nil, checks.Error, false},
		"no probe, security disabled":    {brokerLive{cfg: authz, acls: checks.Bad("SECURITY_DISABLED")}, nil, checks.Fail, false},
		"refused":                        {brokerLive{cfg: authz, acls: listed, denied: refused}, nil, checks.Pass, false},
		"answered":                       {brokerLive{cfg: authz, acls: listed, denied: []checks.Observation{refused[0], checks.Bad("DescribeAcls answered")}}, nil, checks.Fail, false},
		"probe reset":                    {brokerLive{cfg: authz, acls: listed, denied: []checks.Observation{checks.Unknown("Metadata", "connection reset by peer"), refused[1]}}, nil, checks.Error, false},
		"probe identity from another CA": {brokerLive{cfg: authz, acls: listed, denied: []checks.Observation{checks.Unknown("requests as the probe identity", "does not chain to the policy CA")}}, nil, checks.Error, false},
	} {
		t.Run(name, func(t *testing.T) {
			c := authorizerCheck(tc.b, tc.file, "broker 1")
			if c.ID != "kafka.config.authorizer" || c.Status != tc.want || c.ConfigurationOnly != tc.configOnly {
				t.Errorf("%s configuration-only=%v, want %s %v: %s", c.Status, c.ConfigurationOnly, tc.want, tc.configOnly, c.Evidence)
			}
		})
	}
}

func TestConfigurationNeedsCorroboration(t *testing.T) {
	ssl := listener{Name: "SSL", Protocol: "SSL", Address: "127.0.0.1:9093"}
	ctl := listener{Name: "CONTROLLER", Protocol: "SSL", Address: "127.0.0.1:9094", Controller: true}
	probedOK := []listenerResult{
		{l: ssl, checks: []checks.Check{checks.Passed("tls.protocol.versions", "", "")}},
		{l: ctl, checks: []checks.Check{checks.Passed("tls.protocol.versions", "", "")}},
	}
	for name, tc := range map[string]struct {
		id         string
		good       bool
		governed   []listener
		results    []listenerResult
		want       checks.Status
		configOnly bool
	}{
		"observed everywhere":          {"kafka.config.protocols", true, []listener{ssl, ctl}, probedOK, checks.Pass, false},
		"a listener not probed":        {"kafka.config.protocols", true, []listener{ssl, ctl}, probedOK[:1], checks.Warn, true},
		"a listener's probe errored":   {"kafka.config.protocols", true, []listener{ssl}, []listenerResult{{l: ssl, checks: []checks.Check{checks.Errored("tls.protocol.versions", "", errors.New("reset"))}}}, checks.Warn, true},
		"no TLS listener":              {"kafka.config.protocols", true, nil, probedOK, checks.Warn, true},
		"medium severity, unconfirmed": {"kafka.config.cipher_suites", true, []listener{ssl}, nil, checks.Pass, true},
		"bad configuration":            {"kafka.config.protocols", false, []listener{ssl}, probedOK, checks.Fail, true},
		"wildcard listener on loopback": {"kafka.config.protocols", true, []listener{{Name: "SSL", Protocol: "SSL", Address: "127.0.0.1:9093"}},
			[]listenerResult{{l: listener{Address: "localhost:9093"}, checks: []checks.Check{checks.Passed("tls.protocol.versions", "", "")}}}, checks.Pass, false},
	} {
		t.Run(name, func(t *testing.T) {
			liveID := "tls.protocol.versions"
			c := corroborated(tc.id, "broker 1", tc.good, "setting", tc.governed, tc.results, liveID, "seen")
			if c.Status != tc.want || c.ConfigurationOnly != tc.configOnly {
				t.Errorf("%s configuration-only=%v, want %s %v: %s", c.Status, c.ConfigurationOnly, tc.want, tc.configOnly, c.Evidence)
			}
		})
	}
}

func TestProduceConsumeAlwaysReported(t *testing.T) {
	rc := mtlsRequest(t, map[string]any{"bootstrap": []string{"127.0.0.1:1"}})
	noCA, noClient := rc, rc
	noCA.Certificates.CABundlePEM = nil
	noClient.Certificates.ClientChainPEM = nil
	for name, tc := range map[string]struct {
		addrs, undetermined []string
		q                   sdk.RequestContext
		mtls                bool
		want                checks.Status
	}{
		"no TLS listener":          {nil, nil, rc, true, checks.Fail},
		"protocol undetermined":    {nil, []string{"127.0.0.1:1"}, rc, true, checks.Error},
		"no CA, mTLS scope":        {[]string{"127.0.0.1:1"}, nil, noCA, true, checks.Error},
		"no CA, outside the scope": {[]string{"127.0.0.1:1"}, nil, noCA, false, checks.Skip},
		"no client certificate":    {[]string{"127.0.0.1:1"}, nil, noClient, true, checks.Error},
		"nothing listening":        {[]string{closedPort(t)}, nil, rc, true, checks.Error},
	} {
		t.Run(name, func(t *testing.T) {
			c := produceConsumeCheck(tc.addrs, tc.undetermined, tc.q, tc.mtls)
			if c.ID != "kafka.client.produce_consume" || c.Status != tc.want {
				t.Errorf("%s %s, want %s: %s", c.ID, c.Status, tc.want, c.Evidence)
			}
		})
	}
}

func TestObserveErrOnlyTheBrokersAnswerConcludes(t *testing.T) {
	for err, bad := range map[error]bool{
		sarama.ErrTopicAuthorizationFailed:                      true,
		&sarama.TopicError{Err: sarama.ErrPolicyViolation}:      true,
		fmt.Errorf("connect: %w", x509.UnknownAuthorityError{}): true,
		errors.New("remote error: tls: certificate required"):   true,
		io.EOF: false,
		&net.OpError{Op: "read", Err: errors.New("connection reset by peer")}:          false,
		sarama.Wrap(sarama.ErrOutOfBrokers, errors.New("dial tcp: i/o timeout")):       false,
		fmt.Errorf("kafka: %w", sarama.PacketDecodingError{Info: "insufficient data"}): false,
	} {
		o := observeErr("produce", err)
		if o.Conclusive() != bad || o.Bad != bad {
			t.Errorf("%v: conclusive %v bad %v, want %v", err, o.Conclusive(), o.Bad, bad)
		}
	}
}

// A PLAINTEXT listener the running broker has but verify did not probe
// (not in config_file, not the bootstrap) fails kafka.listener.plaintext
// on the broker's own report; a probed one is judged by its probe only.
func TestUnprobedPlaintextListenerFails(t *testing.T) {
	rc := mtlsRequest(t, map[string]any{"bootstrap": []string{"127.0.0.1:9093"}})
	cfg := map[string]string{"listeners": "SSL://:9093,PLAINTEXT://:9092,CONTROLLER://:9094", "controller.listener.names": "CONTROLLER",
		"listener.security.protocol.map": "SSL:SSL,PLAINTEXT:PLAINTEXT,CONTROLLER:SSL", "ssl.client.auth": "required"}
	probed := []listenerResult{{l: listener{Name: "bootstrap", Protocol: "unknown", Address: "127.0.0.1:9093"}}}
	count := func(cs []checks.Check) (fails int, ev string) {
		for _, c := range cs {
			if c.ID == "kafka.listener.plaintext" {
				if c.Status != checks.Fail || !c.ConfigurationOnly {
					t.Errorf("%s configuration-only=%v: %s", c.Status, c.ConfigurationOnly, c.Evidence)
				}
				fails, ev = fails+1, c.Evidence
			}
		}
		return fails, ev
	}
	if n, ev := count(brokerConfigChecks(brokerLive{id: "1", addr: "127.0.0.1:9093", cfg: cfg}, rc, "broker 1", probed, nil)); n != 1 || !strings.Contains(ev, "PLAINTEXT") || !strings.Contains(ev, "9092") {
		t.Errorf("unprobed PLAINTEXT listener: %d checks: %s", n, ev)
	}
	// Probed (here by port): its probe speaks for it, no second check.
	probed = append(probed, listenerResult{l: listener{Name: "PLAINTEXT", Protocol: "PLAINTEXT", Address: "127.0.0.1:9092"}})
	if n, ev := count(brokerConfigChecks(brokerLive{id: "1", addr: "127.0.0.1:9093", cfg: cfg}, rc, "broker 1", probed, nil)); n != 0 {
		t.Errorf("probed PLAINTEXT listener reported again: %s", ev)
	}
}
