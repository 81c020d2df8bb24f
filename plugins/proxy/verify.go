package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
)

// Verify observes every hop live, all at once (each its own connections):
//
//   - the front: the probe's scan (tls.*, subject "<front> (front)"), its
//     HTTP security headers (http.hsts, http.content_type_options) and
//     whether it serves the policy's certificate
//     (proxy.front.certificate_served);
//   - the backend's TLS port: the probe's scan with the backend's CA and
//     name (tls.*, subject "<backend> (backend)"), including its answer to
//     a plaintext request (proxy.backend.plaintext_refused);
//   - the hop between them: proxy.backend.tls (the backend refuses
//     plaintext and completes TLS, and the route forwards there over TLS)
//     and proxy.backend.verified (the decoy proof, decoy.go);
//   - the proxy's own test (proxy.config.valid) and the files harden owns
//     (proxy.config.rendered).
//
// The configuration (nginx -T, HAProxy's files) can fail the hop checks —
// a route that says proxy_pass http:// or proxy_ssl_verify off — but never
// passes one without the live observations.
func (proxyTLS) Verify(ctx context.Context, q sdk.VerifyRequest, r *sdk.VerifyResponse) {
	t, ok := load(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	t.notices().Verify(&r.Diagnostics)
	r.Checks, r.Endpoints = t.verify(ctx, q.RequestContext)
}

// observed is everything verify looked at, gathered concurrently.
type observed struct {
	front, backend       *probe.Result
	frontErr, backendErr error
	head                 *probe.HTTPHead
	headErr              error
	decoy                checks.Observation
	testErr              error
	routes               routeFacts
	routesErr            error
	rendered             checks.Check
	// served is proxy.front.certificate_served; unloaded says why the
	// running proxy has not loaded the files harden owns as they are on
	// disk ("" when nothing says so).
	served   checks.Check
	unloaded string
}

func (t *target) verify(ctx context.Context, q sdk.RequestContext) ([]checks.Check, []sdk.EndpointScan) {
	frontSubj, backendSubj := t.conn.Front+" (front)", t.spec.Backend.Address+" (backend)"
	ft, fexp, ferr := probe.ForRequest(q, probe.HTTP)
	ft.Address, ft.ServerName = t.conn.Front, t.frontName()
	bt, bexp, berr := t.backendTarget(q)
	var o observed
	var wg sync.WaitGroup
	run := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }
	if ferr == nil {
		run(func() { o.front, o.frontErr = probe.Scan(ctx, ft, probe.Options{}) })
		run(func() { o.head, o.headErr = probe.FetchHTTPHead(ctx, ft, "/", probe.Options{}) })
	} else {
		o.frontErr, o.headErr = fmt.Errorf("the policy's certificates: %w", ferr), ferr
	}
	if berr == nil {
		run(func() { o.backend, o.backendErr = probe.Scan(ctx, bt, probe.Options{}) })
	} else {
		o.backendErr = berr
	}
	run(func() { o.decoy = decoyProof(ctx, q, t) })
	run(func() { o.testErr = t.flavor.test(ctx, t) })
	run(func() { o.routes, o.routesErr = t.flavor.routes(ctx, t) })
	run(func() { o.rendered = t.renderedCheck(q) })
	run(func() { o.unloaded = t.unloadedFiles(q) })
	wg.Wait()

	var out []checks.Check
	var eps []sdk.EndpointScan
	// The front.
	if o.frontErr != nil {
		out = append(out, checks.Errored("tls.enabled", frontSubj, o.frontErr))
	} else {
		out = append(out, withSubject(o.front.Checks(fexp), frontSubj)...)
		eps = append(eps, o.front.Describe("front"))
	}
	for _, c := range probe.HTTPHeaderChecks(frontSubj, o.head, o.headErr) {
		if c.ID == probe.CheckHSTS && !t.spec.hsts() {
			c = checks.NotApplicable(probe.CheckHSTS, frontSubj, "spec.hsts is false: the front is not asked to send Strict-Transport-Security")
		}
		out = append(out, c)
	}
	o.served = t.servedCheck(q, o.front, o.frontErr, frontSubj)
	out = append(out, o.served)
	// The backend.
	if o.backendErr != nil {
		out = append(out, checks.Errored("tls.enabled", backendSubj, o.backendErr))
	} else {
		for _, c := range withSubject(o.backend.Checks(bexp), backendSubj) {
			if c.ID != "tls.plaintext.refused" { // proxy.backend.plaintext_refused says it
				out = append(out, c)
			}
		}
		eps = append(eps, o.backend.Describe("backend"))
	}
	plain := backendPlaintext(o.backend, o.backendErr)
	out = append(out, t.plaintextCheck(plain), t.backendTLSCheck(plain, o), t.verifiedCheck(o))
	// The configuration.
	out = append(out, t.configValidCheck(o.testErr), o.rendered)
	return out, eps
}

func withSubject(cs []checks.Check, subject string) []checks.Check {
	for i := range cs {
		cs[i].Subject = subject
	}
	return cs
}

// backendTarget is the probe's target for the backend: its TLS address,
// the name the proxy checks, the CA the proxy trusts, no client
// certificate (the backend is not harden's to log in to), the profile.
func (t *target) backendTarget(q sdk.RequestContext) (probe.Target, probe.Expectations, error) {
	d := probe.HTTP
	if t.spec.Backend.Protocol == "tls" {
		d = probe.TLS
	}
	bt := probe.Target{Address: t.spec.Backend.Address, ServerName: t.backendName(), Dialect: d}
	exp := probe.Expectations{Profile: q.Policy.Profile, RenewBefore: q.Policy.Rotation.RenewBefore, AlertAt: q.Policy.Rotation.AlertAt}
	ca, _, err := t.backendCA(q)
	if err != nil {
		return bt, exp, err
	}
	certs, err := sdk.ParseCertificatesPEM(ca)
	if err != nil {
		return bt, exp, err
	}
	bt.RootCAs = x509.NewCertPool()
	for _, c := range certs {
		bt.RootCAs.AddCert(c)
	}
	return bt, exp, nil
}

// backendPlaintext is the backend scan's plaintext request judged for the
// hop: refused in the server's words or with a TLS record is good, an
// application answer bad, anything else unknown; nil when the backend's
// protocol has no plaintext request (raw TLS).
func backendPlaintext(res *probe.Result, err error) *checks.Observation {
	what := "plaintext request to the backend's TLS port"
	var o checks.Observation
	switch {
	case err != nil:
		o = checks.Unknown(what, err.Error())
	case res.ConnectErr != nil:
		o = checks.Unknown(what, "cannot connect: "+res.ConnectErr.Error())
	case res.Plaintext.Outcome == probe.NotAttempted:
		return nil
	case res.Plaintext.Outcome == probe.Refused:
		o = checks.Good(res.Plaintext.Evidence)
	case res.Plaintext.Outcome == probe.Accepted:
		o = checks.Bad(res.Plaintext.Evidence)
	default:
		o = checks.Unknown(what, res.Plaintext.Evidence)
	}
	return &o
}

func (t *target) plaintextCheck(plain *checks.Observation) checks.Check {
	if plain == nil {
		return checks.NotApplicable(checkBackendPlaintext, t.spec.Backend.Address, "the backend speaks raw TLS (spec.backend.protocol tls): there is no plaintext request to make")
	}
	return checks.Reduce(checkBackendPlaintext, t.spec.Backend.Address, *plain)
}

// backendTLSCheck: the hop is TLS when the backend refuses plaintext and
// completes TLS (live) and the route forwards to it over TLS (the
// configuration, which alone can fail it).
func (t *target) backendTLSCheck(plain *checks.Observation, o observed) checks.Check {
	var obs []checks.Observation
	if plain != nil {
		obs = append(obs, *plain)
	}
	what := "TLS handshake with the backend"
	switch {
	case o.backendErr != nil:
		obs = append(obs, checks.Unknown(what, o.backendErr.Error()))
	case o.backend.ConnectErr != nil:
		obs = append(obs, checks.Unknown(what, "cannot connect: "+o.backend.ConnectErr.Error()))
	default:
		if v := o.backend.AcceptedVersions(); len(v) > 0 {
			obs = append(obs, checks.Good(t.spec.Backend.Address+" completed TLS handshakes"))
		} else {
			var enabled checks.Check
			for _, c := range o.backend.Checks(probe.Expectations{}) {
				if c.ID == "tls.enabled" {
					enabled = c
				}
			}
			if enabled.Status == checks.Fail {
				obs = append(obs, checks.Bad(t.spec.Backend.Address+" does not speak TLS: "+enabled.Evidence))
			} else {
				obs = append(obs, checks.Unknown(what, enabled.Evidence))
			}
		}
	}
	obs = append(obs, t.routeObservation(o.routes, o.routesErr, t.notLoaded(o)))
	return checks.Reduce(checkBackendTLS, t.spec.Backend.Address, obs...)
}

// routeObservation is what the configuration says of the route's hop.
// The configuration is read from disk (nginx -T, HAProxy's files): it
// says what the running proxy does only when live evidence shows the
// proxy runs the files harden owns as they are (notLoaded ""). Without
// that the facts can still fail the hop, never support a pass.
func (t *target) routeObservation(rf routeFacts, err error, notLoaded string) checks.Observation {
	what := "the route's upstream in the " + t.flavor.kind() + " configuration"
	switch {
	case err != nil:
		return checks.Unknown(what, err.Error())
	case !rf.Found:
		return checks.Unknown(what, "no listener for "+t.conn.Front+" in the configuration: cannot tell which route the front is")
	case rf.Upstream == "":
		return checks.Unknown(what, rf.Source+": the route's upstream cannot be read (no catch-all route, or a variable)")
	case !rf.UpstreamTLS:
		return checks.Bad(checks.ConfigurationPrefix + rf.Source + ": the route forwards to " + rf.Upstream + " over plain HTTP")
	case !sameAddress(rf.Upstream, t.spec.Backend.Address):
		return checks.Bad(checks.ConfigurationPrefix + rf.Source + ": the route forwards to " + rf.Upstream + ", not to the backend's TLS port " + t.spec.Backend.Address)
	case rf.Open != "":
		return checks.Unknown(what, rf.Open)
	case notLoaded != "":
		return checks.Unknown(what, rf.Source+" forwards to "+rf.Upstream+" over TLS, but "+notLoaded)
	}
	return checks.Good(checks.ConfigurationPrefix + rf.Source + ": the route forwards to " + rf.Upstream + " over TLS; that the running proxy loaded this file is live: the front serves harden's certificate and the canary refused the decoy")
}

// notLoaded is why the configuration on disk may not be what the running
// proxy does, "" when live evidence ties the two: the files harden owns
// hold what it renders (so the front's route is harden's, one location /
// or one backend, by construction), the front serves the certificate
// harden installed and the canary front — which only harden's file has —
// refused the decoy as rendered, and no file harden owns was written
// after the proxy's newest worker started (a write without a reload).
func (t *target) notLoaded(o observed) string {
	switch {
	case o.rendered.Status != checks.Pass:
		return "the files harden owns are not what it renders (" + checkConfigRendered + "): the route read from them is not harden's"
	case o.served.Status != checks.Pass:
		return "the front does not serve the certificate harden installed (" + checkFrontSerialServed + "): nothing shows the running proxy loaded " + t.spec.IncludeFile
	case !o.decoy.Conclusive() || o.decoy.Bad:
		return "the canary front did not refuse the decoy as rendered (" + checkBackendVerified + "): nothing shows the running proxy loaded " + t.spec.IncludeFile
	case o.unloaded != "":
		return o.unloaded
	}
	return ""
}

// verifiedCheck: the decoy proof, with the configuration of the real
// route (it can fail it) and of the canary (a canary that differs from
// the route proves nothing about it; no canary at all: the file harden
// owns is not rendered).
func (t *target) verifiedCheck(o observed) checks.Check {
	subj := t.spec.Backend.Address
	if o.routesErr != nil {
		return checks.Reduce(checkBackendVerified, subj, o.decoy, checks.Unknown("the upstream TLS in the configuration", o.routesErr.Error()))
	}
	rf := o.routes
	var cfg checks.Observation
	switch {
	case !rf.Found:
		cfg = checks.Unknown("the upstream TLS in the configuration", "no listener for "+t.conn.Front)
	case !rf.UpstreamTLS:
		cfg = checks.Bad(checks.ConfigurationPrefix + rf.Source + ": the route forwards over plain HTTP: nothing verifies the backend")
	case !rf.UpstreamVerify:
		cfg = checks.Bad(checks.ConfigurationPrefix + rf.Source + ": the route does not verify the backend's certificate (" + verifyOffWords(t) + ")")
	case rf.UpstreamCAFile == "":
		cfg = checks.Bad(checks.ConfigurationPrefix + rf.Source + ": the route names no CA to verify the backend with")
	case rf.UpstreamName != t.backendName():
		cfg = checks.Bad(fmt.Sprintf("%s%s: the route verifies the backend's certificate for %q, not %q", checks.ConfigurationPrefix, rf.Source, rf.UpstreamName, t.backendName()))
	case rf.Open != "":
		cfg = checks.Unknown("the upstream TLS in the configuration", rf.Open)
	case t.notLoaded(o) != "":
		cfg = checks.Unknown("the upstream TLS in the configuration", rf.Source+" verifies the backend, but "+t.notLoaded(o))
	default:
		cfg = checks.Good(fmt.Sprintf("%s%s: the route verifies the backend's certificate for %q with %s", checks.ConfigurationPrefix, rf.Source, rf.UpstreamName, rf.UpstreamCAFile))
	}
	proof := o.decoy
	switch c := rf.Canary; {
	case c == nil && rf.Found:
		proof = checks.Bad(checks.ConfigurationPrefix + "no canary route listens on " + t.spec.Canary.Listen + ": the file harden owns (" + t.spec.IncludeFile + ") is not what harden renders (harden apply)")
	case c != nil && proof.Conclusive() && !proof.Bad && (c.UpstreamVerify != rf.UpstreamVerify || c.UpstreamCAFile != rf.UpstreamCAFile || c.UpstreamName != rf.UpstreamName || c.UpstreamTLS != rf.UpstreamTLS):
		proof = checks.Unknown(o.decoy.Evidence, "the canary route's upstream TLS ("+c.Source+") differs from the real route's: refusing the decoy proves nothing about the route")
	}
	return checks.Reduce(checkBackendVerified, subj, proof, cfg)
}

func verifyOffWords(t *target) string {
	if t.conn.Kind == "haproxy" {
		return "no verify required"
	}
	return "proxy_ssl_verify off"
}

// servedCheck: the certificate the front presented is the policy's.
func (t *target) servedCheck(q sdk.RequestContext, res *probe.Result, err error, subj string) checks.Check {
	if len(q.Certificates.ChainPEM) == 0 {
		return checks.NotApplicable(checkFrontSerialServed, subj, "the policy gives this target no certificate to compare with")
	}
	want, perr := leafOf(q.Certificates.ChainPEM)
	switch {
	case perr != nil:
		return checks.Errored(checkFrontSerialServed, subj, fmt.Errorf("the policy's certificate: %w", perr))
	case err != nil:
		return checks.Reduce(checkFrontSerialServed, subj, checks.Unknown("TLS handshake with the front", err.Error()))
	case res.ConnectErr != nil:
		return checks.Reduce(checkFrontSerialServed, subj, checks.Unknown("TLS handshake with the front", "cannot connect: "+res.ConnectErr.Error()))
	case res.Certificate == nil || len(res.Certificate.Chain) == 0:
		return checks.Reduce(checkFrontSerialServed, subj, checks.Unknown("TLS handshake with the front", "no handshake got as far as the certificate"))
	}
	got := res.Certificate.Chain[0]
	if got.Equal(want) {
		return checks.Reduce(checkFrontSerialServed, subj, checks.Good(fmt.Sprintf("the front serves the policy's certificate (serial %s, %q)", want.SerialNumber.Text(16), want.Subject.CommonName)))
	}
	return checks.Reduce(checkFrontSerialServed, subj, checks.Bad(fmt.Sprintf("the front serves serial %s (%q, issued by %q), not the policy's %s (%q)",
		got.SerialNumber.Text(16), got.Subject.CommonName, got.Issuer.CommonName, want.SerialNumber.Text(16), want.Subject.CommonName)))
}

// configValidCheck is the proxy's own verdict on its configuration. A
// test that could not read a file (harden verify as an auditor without
// the proxy's privileges) proves nothing.
func (t *target) configValidCheck(err error) checks.Check {
	subj := t.conn.ConfigFile
	what := t.flavor.kind() + "'s own configuration test"
	switch {
	case err == nil:
		return checks.Reduce(checkConfigValid, subj, checks.Good(what+" passes with the files as they are on disk"))
	case strings.Contains(err.Error(), "Permission denied") || strings.Contains(err.Error(), "permission denied"):
		return checks.Reduce(checkConfigValid, subj, checks.Unknown(what, "it could not read every file as this user: "+err.Error()))
	}
	var nr *notRunError
	if errors.As(err, &nr) {
		return checks.Reduce(checkConfigValid, subj, checks.Unknown(what, "it did not run to a verdict: "+err.Error()))
	}
	return checks.Reduce(checkConfigValid, subj, checks.Bad(err.Error()))
}

// renderedCheck compares the files harden owns with what it renders.
func (t *target) renderedCheck(q sdk.RequestContext) checks.Check {
	subj := t.spec.IncludeFile
	files, err := t.files(q)
	if err != nil {
		return checks.Reduce(checkConfigRendered, subj, checks.Unknown("render the files harden owns", err.Error()))
	}
	var differ, unknown []string
	for _, f := range files {
		data, err := sdk.ReadFile(f.path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			differ = append(differ, f.path+" is missing")
		case err != nil:
			unknown = append(unknown, err.Error())
		case !bytes.Equal(data, f.data):
			differ = append(differ, f.path+" differs")
		}
	}
	switch {
	case len(differ) > 0:
		return checks.Configured(checkConfigRendered, subj, strings.Join(differ, "; ")+" from what harden renders (harden apply)", false)
	case len(unknown) > 0:
		return checks.Reduce(checkConfigRendered, subj, checks.Unknown("read the files harden owns", strings.Join(unknown, "; ")))
	}
	return checks.Configured(checkConfigRendered, subj, fmt.Sprintf("the %d files harden owns hold what it renders", len(files)), true)
}
