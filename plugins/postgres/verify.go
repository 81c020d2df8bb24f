package main

import (
	"context"
	"fmt"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
)

// Verify proves transport security on the live server with the probe kit.
func (postgres) Verify(ctx context.Context, q sdk.VerifyRequest, r *sdk.VerifyResponse) {
	var c connection
	if err := q.Target.DecodeConnection(&c); err != nil {
		r.Diagnostics.AddAttributeError(sdk.Path{"connection"}, "invalid connection", err.Error())
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
	if res.ConnectErr != nil {
		return
	}
	r.Checks = append(r.Checks, otherAddressChecks(ctx, c.Host, c.Port))
	// Checks that need a session: the server's own view of its rules and
	// sessions. A failed login is an error check, never a silent pass.
	db, err := connect(ctx, c, q.RequestContext)
	if err != nil {
		for _, id := range []string{"postgres.hba.network_methods", "postgres.password_encryption", "postgres.sessions.unencrypted"} {
			r.Checks = append(r.Checks, checks.Errored(id, res.Address, fmt.Errorf("cannot log in: %w", err)))
		}
		return
	}
	defer db.Close(context.Background())
	r.Checks = append(r.Checks, sqlChecks(ctx, db, res.Address)...)
	// PostgreSQL 17+ also accepts direct TLS (ALPN "postgresql", no
	// SSLRequest): a second door that must enforce the same profile.
	var num int
	if err := db.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&num); err == nil && num >= 170000 {
		direct := target
		direct.Dialect = probe.PostgresDirect
		dres, err := probe.Scan(ctx, direct, probe.Options{Concurrency: 3})
		if err != nil {
			r.Diagnostics.AddError("probe (direct TLS)", err.Error())
			return
		}
		for _, ch := range dres.Checks(exp) {
			if ch.ID == "tls.plaintext.refused" {
				continue // the direct door has no plaintext mode; the SSLRequest scan tested it
			}
			ch.Subject += " (direct TLS, ALPN postgresql)"
			r.Checks = append(r.Checks, ch)
		}
	}
}
