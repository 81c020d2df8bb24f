package main

import (
	"context"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
)

// Verify proves transport security on the live server with the probe kit.
func (postgres) Verify(ctx context.Context, q sdk.VerifyRequest, r *sdk.VerifyResponse) {
	c, _, ok := sdk.Decode[connection, spec](q.Target, &r.Diagnostics)
	if !ok {
		return
	}
	target, exp, err := probe.ForRequest(q.RequestContext, probe.Postgres)
	if err != nil {
		r.Diagnostics.AddAttributeError(sdk.Path{"certificate"}, "invalid certificate material", err.Error())
		return
	}
	target.Address = c.address()
	// PostgreSQL forks a backend and logs a line for every probe
	// connection: keep the scan polite.
	res, err := probe.Scan(ctx, target, probe.Options{Concurrency: 3})
	if err != nil {
		r.Diagnostics.AddError("probe", err.Error())
		return
	}
	sdk.Log().Info("scanned", "target", q.Target.Name, "address", res.Address, "connections", res.Connections, "duration", res.Duration.String())
	r.Checks = res.Checks(exp)
	r.Endpoints = append(r.Endpoints, res.Describe("postgres"))
	if res.ConnectErr != nil {
		// Nothing answered: the checks of this plugin are errors with the
		// reason, not absent (a missing check must not look like a pass).
		reason := "the server could not be reached: " + res.ConnectErr.Error()
		r.Checks = append(r.Checks, checks.Reduce(otherAddressesID, res.Address, checks.Unknown("plaintext attempts", reason)))
		r.Checks = append(r.Checks, unreachableChecks(res.Address, "log in", reason)...)
		return
	}
	r.Checks = append(r.Checks, otherAddressChecks(ctx, c.Host, c.Port))
	// Checks that need a session: the server's own view of its rules and
	// sessions. A failed login is an error check, never a silent pass.
	// A server this scan saw accept TLS must not get a plaintext login,
	// whatever answers the management connection's SSLRequest (an active
	// man in the middle could answer 'N' to it alone).
	if len(res.AcceptedVersions()) > 0 {
		c.AllowPlaintextAdmin = ""
	}
	db, err := connect(ctx, c, q.RequestContext)
	if err != nil {
		reason := "cannot log in: " + err.Error()
		r.Checks = append(r.Checks, unreachableChecks(res.Address, "log in", reason)...)
		r.Checks = append(r.Checks, directTLSUnknown(res.Address, "the server version is unknown ("+reason+")"))
		return
	}
	defer db.Close(context.Background())
	verifyJournal(ctx, db, r)
	r.Checks = append(r.Checks, sqlChecks(ctx, db, res.Address)...)
	// PostgreSQL 17+ also accepts direct TLS (ALPN "postgresql", no
	// SSLRequest): a second door that must enforce the same profile.
	var num int
	if err := db.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&num); err != nil {
		r.Checks = append(r.Checks, directTLSUnknown(res.Address, "cannot read server_version_num: "+err.Error()))
		return
	}
	if num < 170000 {
		return
	}
	direct := target
	direct.Dialect = probe.PostgresDirect
	dres, err := probe.Scan(ctx, direct, probe.Options{Concurrency: 3})
	if err != nil {
		r.Diagnostics.AddError("probe (direct TLS)", err.Error())
		return
	}
	r.Endpoints = append(r.Endpoints, dres.Describe("postgres (direct TLS)"))
	for _, ch := range dres.Checks(exp) {
		if ch.ID == "tls.plaintext.refused" {
			continue // the direct door has no plaintext mode; the SSLRequest scan tested it
		}
		ch.Subject += directTLSSubject
		r.Checks = append(r.Checks, ch)
	}
}

const directTLSSubject = " (direct TLS, ALPN postgresql)"

// directTLSUnknown: without the server version harden cannot tell whether
// PostgreSQL 17+'s direct-TLS door exists, so it was not checked — an
// error, not a silent gap.
func directTLSUnknown(subject, reason string) checks.Check {
	return checks.Reduce("tls.enabled", subject+directTLSSubject, checks.Unknown("direct TLS (PostgreSQL 17+)", reason))
}
