package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/probe"
)

// Grants verify needs as a least-privilege role (documented in README):
//
//	CREATE ROLE harden_verify LOGIN PASSWORD '...';
//	GRANT pg_read_all_settings, pg_read_all_stats TO harden_verify;
//	GRANT SELECT ON pg_hba_file_rules TO harden_verify;
//	GRANT EXECUTE ON FUNCTION pg_hba_file_rules() TO harden_verify;
//
// The md5-hash check reads pg_authid and needs a superuser; without one it
// reports skip and says so.

// sqlChecks are the checks that need a logged-in session. Their evidence is
// what the server reports about itself (its parsed rules, its sessions).
func sqlChecks(ctx context.Context, db *pgx.Conn, subject string) []checks.Check {
	var out []checks.Check
	// pg_hba as the server parsed it.
	rows, err := db.Query(ctx, "SELECT line_number, type, auth_method, coalesce(error,'') FROM pg_hba_file_rules ORDER BY line_number")
	if err != nil {
		out = append(out, checks.Errored("postgres.hba.network_methods", subject, permissionHint(err, "GRANT SELECT ON pg_hba_file_rules and EXECUTE ON FUNCTION pg_hba_file_rules()")))
	} else {
		var bad []string
		n := 0
		for rows.Next() {
			var line int
			var typ, method, e string
			if err := rows.Scan(&line, &typ, &method, &e); err != nil {
				continue
			}
			n++
			switch {
			case e != "":
				bad = append(bad, fmt.Sprintf("line %d: error %q", line, e))
			case typ != "local" && (method == "trust" || method == "password" || method == "md5" || method == "ident"):
				bad = append(bad, fmt.Sprintf("line %d: %s with %s", line, typ, method))
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			out = append(out, checks.Errored("postgres.hba.network_methods", subject, permissionHint(err, "GRANT SELECT ON pg_hba_file_rules and EXECUTE ON FUNCTION pg_hba_file_rules()")))
		} else if len(bad) > 0 {
			out = append(out, checks.Failed("postgres.hba.network_methods", subject, "pg_hba_file_rules: "+strings.Join(bad, "; ")))
		} else {
			out = append(out, checks.Passed("postgres.hba.network_methods", subject, fmt.Sprintf("pg_hba_file_rules: %d rules, no weak network method, no errors", n)))
		}
	}
	var enc string
	if err := db.QueryRow(ctx, "SHOW password_encryption").Scan(&enc); err != nil {
		out = append(out, checks.Errored("postgres.password_encryption", subject, err))
	} else {
		var md5Roles []string
		var err error
		md5Note := ""
		md5Roles, err = queryStrings(ctx, db, "SELECT rolname FROM pg_authid WHERE rolpassword LIKE 'md5%' ORDER BY 1")
		if err != nil {
			// pgx reports a permission error while reading rows: an
			// unreadable pg_authid is "not checked", never "no md5 hashes".
			md5Note = "; md5 hashes not checked (reading pg_authid needs a superuser)"
		}
		switch {
		case enc != "scram-sha-256":
			out = append(out, checks.Failed("postgres.password_encryption", subject, "password_encryption = "+enc))
		case len(md5Roles) > 0:
			out = append(out, checks.Failed("postgres.password_encryption", subject, "roles with md5 password hashes: "+strings.Join(md5Roles, ", ")))
		case md5Note != "":
			out = append(out, checks.New("postgres.password_encryption", checks.Warn, subject, "password_encryption = scram-sha-256"+md5Note))
		default:
			out = append(out, checks.Passed("postgres.password_encryption", subject, "password_encryption = scram-sha-256; no role has an md5 hash"))
		}
	}
	rows, err = db.Query(ctx, `SELECT coalesce(a.usename,''), host(a.client_addr), coalesce(a.application_name,'') FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
		WHERE a.client_addr IS NOT NULL AND NOT s.ssl AND a.pid <> pg_backend_pid() ORDER BY 2, 1`)
	if err != nil {
		out = append(out, checks.Errored("postgres.sessions.unencrypted", subject, permissionHint(err, "GRANT pg_read_all_stats")))
	} else {
		var plain []string
		for rows.Next() {
			var u, addr, app string
			if rows.Scan(&u, &addr, &app) == nil {
				plain = append(plain, fmt.Sprintf("%s@%s (%s)", u, addr, app))
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			out = append(out, checks.Errored("postgres.sessions.unencrypted", subject, permissionHint(err, "GRANT pg_read_all_stats")))
		} else if len(plain) > 0 {
			out = append(out, checks.Failed("postgres.sessions.unencrypted", subject, "pg_stat_ssl: live sessions without TLS: "+strings.Join(plain, ", ")))
		} else {
			out = append(out, checks.Passed("postgres.sessions.unencrypted", subject, "pg_stat_ssl: every live network session uses TLS"))
		}
	}
	return out
}

// queryStrings returns the first column of every row, with the error pgx
// reports while reading rows (a permission error arrives there, not from
// Query).
func queryStrings(ctx context.Context, db *pgx.Conn, sql string) ([]string, error) {
	rows, err := db.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func permissionHint(err error, grant string) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42501" {
		return fmt.Errorf("%w (verify as a least-privilege role needs: %s)", err, grant)
	}
	return err
}

// otherAddressChecks proves plaintext refusal does not depend on the client
// address: from 127.0.0.2 (any loopback address reaches a 127.0.0.1
// listener) and over ::1 where the server listens there.
func otherAddressChecks(ctx context.Context, host string, port int) checks.Check {
	subject := net.JoinHostPort(host, itoa(port))
	var evidence []string
	failed := false
	attempts := []struct {
		label, addr, local string
	}{{"from 127.0.0.2", subject, "127.0.0.2"}}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		attempts = append(attempts, struct{ label, addr, local string }{"over ::1", net.JoinHostPort("::1", itoa(port)), ""})
	}
	for _, a := range attempts {
		if ip := net.ParseIP(host); a.local != "" && (ip == nil || ip.To4() == nil || !ip.IsLoopback()) {
			continue
		}
		pt := probe.PlaintextOnly(ctx, probe.Target{Address: a.addr, Dialect: probe.Postgres}, probe.Options{LocalAddr: a.local})
		switch {
		case pt.Err != nil && strings.Contains(pt.Err.Error(), "connection refused") && a.label == "over ::1":
			evidence = append(evidence, a.label+": server does not listen there")
		case pt.Err != nil:
			evidence = append(evidence, a.label+": could not test: "+pt.Err.Error())
		case pt.Accepted:
			failed = true
			evidence = append(evidence, a.label+": "+pt.Evidence)
		default:
			evidence = append(evidence, a.label+": "+pt.Evidence)
		}
	}
	if failed {
		return checks.Failed("postgres.plaintext.other_addresses", subject, strings.Join(evidence, "; "))
	}
	return checks.Passed("postgres.plaintext.other_addresses", subject, strings.Join(evidence, "; "))
}
