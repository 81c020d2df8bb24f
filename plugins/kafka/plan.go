package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/harden-dev/harden/shared/sdk"
)

// saramaVersion: Kafka 4 removed old protocol versions; sarama must speak a
// version the broker still accepts.
var saramaVersion = sarama.V4_0_0_0

// liveBrokerConfig reads the broker's effective configuration through
// DescribeConfigs (sarama ClusterAdmin), over TLS with harden's client
// identity when the bootstrap listener needs it.
func liveBrokerConfig(ctx context.Context, c connection, q sdk.RequestContext, brokerID string) (map[string]string, error) {
	cfg := sarama.NewConfig()
	cfg.Version = saramaVersion
	cfg.ClientID = "harden"
	cfg.Net.DialTimeout, cfg.Net.ReadTimeout, cfg.Net.WriteTimeout = 10*time.Second, 10*time.Second, 10*time.Second
	cfg.Admin.Timeout = 10 * time.Second
	cfg.Metadata.Retry.Max = 0
	admin, err := sarama.NewClusterAdmin(c.Bootstrap, cfg)
	if err != nil && len(q.Certificates.CABundlePEM) > 0 {
		// The bootstrap listener may already be TLS-only: try again over TLS.
		tcfg := &tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12}
		tcfg.RootCAs.AppendCertsFromPEM(q.Certificates.CABundlePEM)
		if len(q.Certificates.ClientChainPEM) > 0 {
			if pair, perr := tls.X509KeyPair(q.Certificates.ClientChainPEM, q.Certificates.ClientKeyPEM); perr == nil {
				tcfg.Certificates = []tls.Certificate{pair}
			}
		}
		cfg.Net.TLS.Enable, cfg.Net.TLS.Config = true, tcfg
		admin, err = sarama.NewClusterAdmin(c.Bootstrap, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("connect admin client to %v: %w", c.Bootstrap, err)
	}
	defer admin.Close()
	results, err := admin.DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.BrokerResource, Name: brokerID}}, sarama.DescribeConfigsOptions{})
	if err != nil {
		return nil, fmt.Errorf("DescribeConfigs for broker %s: %w", brokerID, err)
	}
	out := map[string]string{}
	for _, res := range results {
		if res.ErrorCode != sarama.ErrNoError {
			return nil, fmt.Errorf("DescribeConfigs for broker %s: %s %s", brokerID, res.ErrorCode, res.ErrorMsg)
		}
		for _, e := range res.Configs {
			if !e.Sensitive {
				out[e.Name] = e.Value
			}
		}
	}
	return out, nil
}

// Plan compares the rendered settings and stores with the broker's
// server.properties and store files, and reports where the running broker
// (DescribeConfigs) still differs from its file — a restart pending.
func (p kafka) Plan(ctx context.Context, q sdk.PlanRequest, r *sdk.PlanResponse) {
	var c connection
	if err := q.Target.DecodeConnection(&c); err != nil {
		r.Diagnostics.AddAttributeError(sdk.Path{"connection"}, "invalid connection", err.Error())
		return
	}
	if c.ConfigFile == "" {
		r.Diagnostics.AddAttributeError(sdk.Path{"connection", "config_file"}, "plan needs the broker's server.properties", "")
		return
	}
	text, current, ok := readBrokerProperties(c.ConfigFile, &r.Diagnostics)
	if !ok {
		return
	}
	var rr sdk.RenderResponse
	p.Render(ctx, sdk.RenderRequest(q), &rr)
	if rr.Diagnostics.HasError() {
		r.Diagnostics = append(r.Diagnostics, rr.Diagnostics...)
		return
	}
	var s spec
	_ = q.Target.DecodeSpec(&s)
	dir := s.storeDir(c)
	for _, a := range rr.Artifacts {
		switch {
		case a.Path == "server-harden.properties":
			fragment, _ := parseProperties(string(a.Content))
			for _, kv := range fragment {
				cur, ok := current[kv.Key]
				switch {
				case !ok:
					r.Changes = append(r.Changes, sdk.Change{Resource: "server.properties:" + kv.Key, Action: sdk.Create, After: kv.Value, RequiresRestart: true})
				case cur != kv.Value:
					r.Changes = append(r.Changes, sdk.Change{Resource: "server.properties:" + kv.Key, Action: sdk.Update, Before: cur, After: kv.Value, RequiresRestart: true})
				}
			}
		case strings.HasPrefix(a.Path, "harden/"):
			path := filepath.Join(dir, strings.TrimPrefix(a.Path, "harden/"))
			old, err := os.ReadFile(path)
			switch {
			case err != nil:
				r.Changes = append(r.Changes, sdk.Change{Resource: "file:" + path, Action: sdk.Create, After: fmt.Sprintf("%d bytes, mode %04o", len(a.Content), a.Mode), Sensitive: a.Sensitive})
			case !bytes.Equal(old, a.Content):
				r.Changes = append(r.Changes, sdk.Change{Resource: "file:" + path, Action: sdk.Update, Sensitive: a.Sensitive})
			}
		}
	}
	// The running broker's view: a difference from the file means the file
	// was changed without a restart.
	id := current["node.id"]
	if id == "" {
		id = current["broker.id"]
	}
	live, err := liveBrokerConfig(ctx, c, q.RequestContext, id)
	if err != nil {
		r.Diagnostics.AddTargetError("kafka.describe_configs", "cannot read the running broker's configuration", err)
		return
	}
	for _, key := range []string{"listeners", "ssl.client.auth", "ssl.enabled.protocols", "inter.broker.listener.name"} {
		if f, ok := current[key]; ok && live[key] != "" && live[key] != f {
			r.Diagnostics.AddWarning("the running broker differs from server.properties for "+key, fmt.Sprintf("running %q, file %q: a restart is pending", live[key], f))
		}
	}
	r.PlanToken = planToken(text, r.Changes)
}

// planToken fingerprints the file and the pending changes the plan saw.
func planToken(file []byte, changes []sdk.Change) []byte {
	h := sha256.New()
	h.Write(file)
	for _, ch := range changes {
		fmt.Fprintf(h, "%s|%s\n", ch.Resource, ch.Action)
	}
	return h.Sum(nil)
}
