package cli

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	stdio "io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/harden-dev/harden/host/internal/report"
	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

var dialects = map[string]probe.Dialect{
	"none": probe.TLS, "tls": probe.TLS, "postgres": probe.Postgres, "postgres-direct": probe.PostgresDirect, "http": probe.HTTP, "kafka": probe.Kafka,
}

func scanCommand(io IO) *cli.Command {
	return &cli.Command{
		Name:      "scan",
		Usage:     "enumerate what live TLS endpoints accept and check them against a profile",
		ArgsUsage: "HOST:PORT...",
		Flags: append(reportFlags(),
			&cli.StringFlag{Name: "starttls", Value: "none", Usage: "dialect: none (plain TLS), postgres (SSLRequest), postgres-direct (PostgreSQL 17+ ALPN), http, kafka"},
			&cli.StringFlag{Name: "sni", Usage: "server name to send and check the certificate against (default: the host)"},
			&cli.StringFlag{Name: "ca", Usage: "PEM bundle the server certificate must chain to"},
			&cli.StringFlag{Name: "client-cert", Usage: "client certificate (PEM) to prove a trusted client is let in"},
			&cli.StringFlag{Name: "client-key", Usage: "key of --client-cert"},
			&cli.StringFlag{Name: "profile", Value: "intermediate", Usage: "profile to check against: modern or intermediate"},
			&cli.BoolFlag{Name: "require-client-cert", Usage: "fail unless clients without a trusted certificate are refused (mTLS)"},
			&cli.StringFlag{Name: "fail-on", Value: "info", Usage: "exit 2 when a failing check has at least this severity"},
			&cli.IntFlag{Name: "concurrency", Value: 4, Usage: "connections at once per endpoint (PostgreSQL forks a backend per connection)"},
			&cli.DurationFlag{Name: "timeout", Value: 5 * time.Second, Usage: "per-connection timeout"},
		),
		Action: func(c *cli.Context) error { return scan(c, io) },
	}
}

type scanEndpoint struct {
	Address          string         `json:"address"`
	Dialect          string         `json:"dialect"`
	Error            string         `json:"error,omitempty"`
	Protocols        []scanProtocol `json:"protocols"`
	Ciphers          []scanCipher   `json:"ciphers"`
	ServerPreference bool           `json:"server_preference"`
	PreferenceOrder  []string       `json:"preference_order,omitempty"`
	Groups           []scanGroup    `json:"groups"`
	GroupsIncomplete string         `json:"groups_incomplete,omitempty"`
	Certificates     []scanCert     `json:"certificates"`
	ClientAuth       scanClientAuth `json:"client_auth"`
	Plaintext        *scanPlaintext `json:"plaintext,omitempty"`
	Connections      int            `json:"connections"`
	Retries          int            `json:"retries"`
	Inconclusive     int            `json:"inconclusive"`
	DurationMS       float64        `json:"duration_ms"`
	Checks           []report.Check `json:"checks"`
	// desc: the scan as report data (sarif, junit, html).
	desc *report.Endpoint
}

type scanProtocol struct {
	Version string `json:"version"`
	// Outcome: accepted, refused (evidence = the server's answer) or
	// inconclusive (evidence = "not tested: <reason>").
	Outcome          string `json:"outcome"`
	Accepted         bool   `json:"accepted"`
	Evidence         string `json:"evidence"`
	SuitesIncomplete string `json:"suites_incomplete,omitempty"`
}

type scanObservation struct {
	Outcome  string `json:"outcome"`
	Evidence string `json:"evidence,omitempty"`
}

type scanCipher struct {
	Protocol string `json:"protocol"`
	ID       string `json:"id"`
	Name     string `json:"name"`
}

type scanGroup struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type scanCert struct {
	Subject            string   `json:"subject"`
	Issuer             string   `json:"issuer"`
	NotBefore          string   `json:"not_before"`
	NotAfter           string   `json:"not_after"`
	Key                string   `json:"key"`
	SignatureAlgorithm string   `json:"signature_algorithm"`
	DNSNames           []string `json:"dns_names,omitempty"`
	IPAddresses        []string `json:"ip_addresses,omitempty"`
	SHA256             string   `json:"sha256"`
}

type scanClientAuth struct {
	Requested bool             `json:"requested"`
	Required  bool             `json:"required"`
	Evidence  string           `json:"evidence,omitempty"`
	NoCert    scanObservation  `json:"no_certificate"`
	WrongCA   *scanObservation `json:"wrong_ca,omitempty"`
	Trusted   *scanObservation `json:"trusted,omitempty"`
}

type scanPlaintext struct {
	Outcome  string `json:"outcome"`
	Accepted bool   `json:"accepted"`
	Evidence string `json:"evidence"`
}

func observationReport(o probe.Observation) *scanObservation {
	if o.Outcome == probe.NotAttempted {
		return nil
	}
	return &scanObservation{Outcome: o.Outcome.String(), Evidence: o.Evidence}
}

func scan(c *cli.Context, io IO) error {
	outs, err := openOutputs(c, "scan")
	if err != nil {
		return err
	}
	defer outs.Abort()
	if c.NArg() == 0 {
		return exitf(ExitConfig, "scan: give at least one HOST:PORT")
	}
	dialect, ok := dialects[c.String("starttls")]
	if !ok {
		return exitf(ExitConfig, "--starttls %q: want none, postgres, postgres-direct, http or kafka", c.String("starttls"))
	}
	profile, ok := tlsprofile.Named(c.String("profile"))
	if !ok {
		return exitf(ExitConfig, "--profile %q: want modern or intermediate", c.String("profile"))
	}
	failOn, err := checks.ParseSeverity(c.String("fail-on"))
	if err != nil {
		return exitf(ExitConfig, "--fail-on: %v", err)
	}
	base := probe.Target{Dialect: dialect, ServerName: c.String("sni")}
	if f := c.String("ca"); f != "" {
		if base.RootCAs, err = loadPool(f); err != nil {
			return exitf(ExitConfig, "--ca: %v", err)
		}
	}
	if cf, kf := c.String("client-cert"), c.String("client-key"); cf != "" || kf != "" {
		pair, err := tls.LoadX509KeyPair(cf, kf)
		if err != nil {
			return exitf(ExitConfig, "--client-cert/--client-key: %v", err)
		}
		base.ClientCert = &pair
	}
	opts := probe.Options{Concurrency: c.Int("concurrency"), Timeout: c.Duration("timeout")}
	exp := probe.Expectations{Profile: profile, RequireClientAuth: c.Bool("require-client-cert"), RenewBefore: 30 * 24 * time.Hour,
		AlertAt: []time.Duration{30 * 24 * time.Hour, 14 * 24 * time.Hour, 7 * 24 * time.Hour}}

	addrs := c.Args().Slice()
	endpoints := make([]scanEndpoint, len(addrs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i, addr := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			endpoints[i] = scanOne(c.Context, addr, base, opts, exp)
		}()
	}
	wg.Wait()
	if err := interrupted(c.Context); err != nil {
		return err
	}
	// scan's JSON and text documents stay as they were; the other formats
	// render the Run (one target per address).
	outs.Custom = map[string]func(w stdio.Writer) error{
		"json": func(w stdio.Writer) error {
			return writeJSON(w, map[string]any{"format_version": FormatVersion, "profile": profile.Name, "endpoints": endpoints})
		},
		"text": func(w stdio.Writer) error { printScan(w, endpoints); return nil },
	}
	if err := emit(io, outs, scanRun(endpoints, profile)); err != nil {
		return err
	}
	code, failing := ExitOK, 0
	var msgs []string
	for _, e := range endpoints {
		if e.Error != "" {
			code = ExitConfig
			msgs = append(msgs, e.Address+": "+e.Error)
			continue
		}
		for _, ch := range e.Checks {
			sev, _ := checks.ParseSeverity(ch.Severity)
			switch {
			case ch.Status == checks.Error.String():
				code = ExitTarget
				msgs = append(msgs, fmt.Sprintf("%s: check %s could not run: %s", e.Address, ch.ID, ch.Evidence))
			case ch.Status == checks.Fail.String() && sev >= failOn:
				failing++
			}
		}
	}
	if code != ExitOK {
		return &ExitError{Code: code, Err: fmt.Errorf("%s", strings.Join(msgs, "\n"))}
	}
	if failing > 0 {
		return &ExitError{Code: ExitFindings}
	}
	return nil
}

func scanOne(ctx context.Context, addr string, base probe.Target, opts probe.Options, exp probe.Expectations) scanEndpoint {
	t := base
	t.Address = addr
	e := scanEndpoint{Address: addr, Dialect: t.Dialect.Name(), Protocols: []scanProtocol{}, Ciphers: []scanCipher{}, Groups: []scanGroup{}, Certificates: []scanCert{}}
	res, err := probe.Scan(ctx, t, opts)
	if err != nil {
		e.Error = err.Error()
		return e
	}
	e.Connections, e.DurationMS = res.Connections, float64(res.Duration.Microseconds())/1000
	e.Retries, e.Inconclusive = res.Retries, res.Inconclusive()
	for _, p := range res.Protocols {
		e.Protocols = append(e.Protocols, scanProtocol{Version: tlsprofile.VersionName(p.Version), Outcome: p.Outcome.String(), Accepted: p.Accepted,
			Evidence: p.Evidence, SuitesIncomplete: p.SuitesIncomplete})
	}
	e.GroupsIncomplete = res.GroupsIncomplete
	for _, ci := range res.Ciphers {
		e.Ciphers = append(e.Ciphers, scanCipher{Protocol: tlsprofile.VersionName(ci.Version), ID: tlsprofile.HexID(ci.ID), Name: ci.Name})
	}
	e.ServerPreference = res.ServerPreference
	for _, id := range res.PreferenceOrder {
		e.PreferenceOrder = append(e.PreferenceOrder, tlsprofile.HexID(id))
	}
	for _, g := range res.Groups {
		e.Groups = append(e.Groups, scanGroup{ID: tlsprofile.HexID(g), Name: probe.GroupName(g)})
	}
	if res.Certificate != nil {
		for _, cert := range res.Certificate.Chain {
			sum := sha256.Sum256(cert.Raw)
			sc := scanCert{Subject: cert.Subject.String(), Issuer: cert.Issuer.String(), NotBefore: cert.NotBefore.UTC().Format(time.RFC3339),
				NotAfter: cert.NotAfter.UTC().Format(time.RFC3339), Key: probe.KeyDescription(cert.PublicKey),
				SignatureAlgorithm: cert.SignatureAlgorithm.String(), DNSNames: cert.DNSNames, SHA256: hex.EncodeToString(sum[:])}
			for _, ip := range cert.IPAddresses {
				sc.IPAddresses = append(sc.IPAddresses, ip.String())
			}
			e.Certificates = append(e.Certificates, sc)
		}
	}
	ca := res.ClientAuth
	e.ClientAuth = scanClientAuth{Requested: ca.Requested, Required: ca.NoCert.Outcome == probe.Refused, Evidence: ca.NoCert.Evidence,
		WrongCA: observationReport(ca.WrongCA), Trusted: observationReport(ca.Trusted)}
	if nc := observationReport(ca.NoCert); nc != nil {
		e.ClientAuth.NoCert = *nc
	}
	if res.Plaintext.Tested {
		e.Plaintext = &scanPlaintext{Outcome: res.Plaintext.Outcome.String(), Accepted: res.Plaintext.Accepted, Evidence: res.Plaintext.Evidence}
	}
	e.Checks = report.Checks(res.Checks(exp))
	ds, _ := report.Endpoints([]sdk.EndpointScan{res.Describe(addr)}) // harden's own probe: nothing to distrust
	d := ds[0]
	e.desc = &d
	return e
}

// scanRun: the scan as a Run, one target per address (plugin "scan", no
// policy file: its position is unknown).
func scanRun(endpoints []scanEndpoint, profile tlsprofile.Profile) *report.Run {
	r := &report.Run{FormatVersion: FormatVersion, Profile: profile.Name, ProfileDetail: report.ProfileOf(profile), GeneratedAt: time.Now().UTC()}
	for _, e := range endpoints {
		t := report.Target{Name: e.Address, Plugin: "scan", Status: "ok", Checks: e.Checks}
		if e.Error != "" {
			t.Status, t.Error = "error", e.Error
		}
		if e.desc != nil {
			t.Endpoints = []report.Endpoint{*e.desc}
		}
		r.Targets = append(r.Targets, t)
	}
	r.Finish("scan")
	return r
}

func printScan(w stdio.Writer, endpoints []scanEndpoint) {
	for _, e := range endpoints {
		fmt.Fprintf(w, "%s (%s)", e.Address, e.Dialect)
		if e.Error != "" {
			fmt.Fprintf(w, ": ERROR %s\n", e.Error)
			continue
		}
		fmt.Fprintf(w, " — %d connections, %.0f ms, %d inconclusive observations, %d retries\n", e.Connections, e.DurationMS, e.Inconclusive, e.Retries)
		for _, p := range e.Protocols {
			switch p.Outcome {
			case probe.Accepted.String():
				fmt.Fprintf(w, "  %-8s ACCEPTED\n", p.Version)
				if p.SuitesIncomplete != "" {
					fmt.Fprintf(w, "  %-8s suites incomplete: %s\n", p.Version, p.SuitesIncomplete)
				}
			case probe.Refused.String():
				fmt.Fprintf(w, "  %-8s refused  (%s)\n", p.Version, strings.TrimPrefix(p.Evidence, p.Version+" refused "))
			default:
				fmt.Fprintf(w, "  %-8s %s\n", p.Version, p.Evidence)
			}
		}
		for _, ci := range e.Ciphers {
			fmt.Fprintf(w, "  %-8s %s %s\n", ci.Protocol, ci.ID, ci.Name)
		}
		if e.ServerPreference {
			fmt.Fprintf(w, "  server cipher order: %s\n", strings.Join(e.PreferenceOrder, " "))
		}
		var gs []string
		for _, g := range e.Groups {
			gs = append(gs, g.Name)
		}
		fmt.Fprintf(w, "  groups: %s\n", strings.Join(gs, ", "))
		if e.GroupsIncomplete != "" {
			fmt.Fprintf(w, "  groups incomplete: %s\n", e.GroupsIncomplete)
		}
		for i, cert := range e.Certificates {
			fmt.Fprintf(w, "  cert[%d]: %s, issuer %s, %s, valid to %s\n", i, cert.Subject, cert.Issuer, cert.Key, cert.NotAfter)
		}
		fmt.Fprintf(w, "  client certificate: requested=%v, without one: %s\n", e.ClientAuth.Requested, e.ClientAuth.NoCert.Outcome)
		for _, ch := range e.Checks {
			fmt.Fprintf(w, "  %-5s %-8s %-26s %s\n", strings.ToUpper(ch.Status), ch.Severity, ch.ID, ch.Evidence)
		}
	}
}

func loadPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificates", file)
	}
	return pool, nil
}
