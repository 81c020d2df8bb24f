package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/harden-dev/harden/shared/checks"
)

// Grants verify needs as a least-privilege role (documented in README):
//
//	CREATE ROLE harden_verify LOGIN PASSWORD '...';
//	GRANT pg_read_all_settings, pg_read_all_stats TO harden_verify;
//	GRANT SELECT ON pg_hba_file_rules TO harden_verify;
//	GRANT EXECUTE ON FUNCTION pg_hba_file_rules() TO harden_verify;
//	GRANT EXECUTE ON FUNCTION pg_stat_file(text) TO harden_verify;
//
// (pg_stat_file of a pg_hba.conf outside the data directory also needs
// pg_read_server_files.) The md5-hash part of postgres.password_encryption
// reads pg_authid and needs a superuser; without one that part is
// inconclusive and the check says so.

// sqlCheckIDs are the checks that need a logged-in session.
var sqlCheckIDs = []string{"postgres.hba.network_methods", "postgres.password_encryption", "postgres.sessions.unencrypted"}

// sqlChecks are the checks that need a logged-in session. Their evidence is
// what the server reports about itself (its parsed rules and when it loaded
// them, its sessions).
func sqlChecks(ctx context.Context, db *pgx.Conn, subject string) []checks.Check {
	return []checks.Check{
		checks.Reduce("postgres.hba.network_methods", subject, hbaObservations(ctx, db)...),
		checks.Reduce("postgres.password_encryption", subject, passwordObservations(ctx, db)...),
		checks.Reduce("postgres.sessions.unencrypted", subject, sessionObservations(ctx, db)...),
	}
}

// unreachableChecks are the session checks when there is no session: each
// an error with the reason, never a silent gap.
func unreachableChecks(subject, attempt, reason string) []checks.Check {
	out := make([]checks.Check, 0, len(sqlCheckIDs))
	for _, id := range sqlCheckIDs {
		out = append(out, checks.Reduce(id, subject, checks.Unknown(attempt, reason)))
	}
	return out
}

const hbaGrant = "GRANT SELECT ON pg_hba_file_rules and EXECUTE ON FUNCTION pg_hba_file_rules()"

// hbaRule is one row of pg_hba_file_rules. A row with an error has NULL
// type and method (and, from PostgreSQL 16, a NULL rule_number).
type hbaRule struct {
	File   string // file_name (PostgreSQL 16+; else empty)
	Line   int
	Type   *string
	Method *string
	Error  *string
}

func (r hbaRule) where() string {
	if r.File != "" {
		return fmt.Sprintf("%s line %d", r.File, r.Line)
	}
	return fmt.Sprintf("line %d", r.Line)
}

// hbaFileStamp is when one rules file was last modified, or why that could
// not be read. pg_stat_file reports whole seconds (the file was written
// somewhere in [Modified, Modified+Window)); where verify runs on the
// server's machine the local file gives a finer time (Window then covers
// the kernel's coarse file clock).
type hbaFileStamp struct {
	Path     string
	Modified time.Time
	Window   time.Duration
	Err      error
}

// localClockSlack: file times come from the kernel's coarse clock (a tick,
// 1–10 ms, behind the clock pg_conf_load_time reads).
const localClockSlack = 50 * time.Millisecond

// hbaObservations reads pg_hba_file_rules — the file on disk as the server
// parses it now — and compares each rules file's modification time with
// the last configuration load (pg_conf_load_time): a file changed after
// the load is not what the server enforces ("pending reload").
func hbaObservations(ctx context.Context, db *pgx.Conn) []checks.Observation {
	var version int
	if err := db.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return []checks.Observation{checks.Unknown("server_version_num", err.Error())}
	}
	rules, err := readHBARules(ctx, db, version)
	if err != nil {
		return []checks.Observation{checks.Unknown("pg_hba_file_rules", permissionHint(err, hbaGrant).Error())}
	}
	var hbaFile string
	var loaded time.Time
	if err := db.QueryRow(ctx, "SELECT current_setting('hba_file'), pg_conf_load_time()").Scan(&hbaFile, &loaded); err != nil {
		return append(judgeHBARules(rules), checks.Unknown("last configuration load", permissionHint(err, "GRANT pg_read_all_settings").Error()))
	}
	files := []string{hbaFile}
	for _, r := range rules {
		if r.File != "" && !slices.Contains(files, r.File) {
			files = append(files, r.File) // included files (PostgreSQL 16+)
		}
	}
	stamps := make([]hbaFileStamp, 0, len(files))
	for _, f := range files {
		s := hbaFileStamp{Path: f, Window: time.Second}
		var size int64
		// The later of mtime and ctime: a deploy that keeps the source's
		// mtime (rsync -a, cp -p, tar) still changes the ctime, which
		// cannot be set back.
		if err := db.QueryRow(ctx, "SELECT greatest(modification, coalesce(change, modification)), size FROM pg_stat_file($1)", f).Scan(&s.Modified, &size); err != nil {
			s.Err = permissionHint(err, "GRANT EXECUTE ON FUNCTION pg_stat_file(text), and pg_read_server_files for a file outside the data directory")
		} else {
			s = s.refinedLocally(size)
		}
		stamps = append(stamps, s)
	}
	return append(judgeHBARules(rules), judgeHBAFreshness(stamps, loaded)...)
}

// refinedLocally uses the local file's finer change time (the later of
// mtime and ctime) when it is the same file as the server's: same path,
// same size, same whole second.
func (s hbaFileStamp) refinedLocally(size int64) hbaFileStamp {
	st, err := os.Stat(s.Path)
	if err != nil || st.Size() != size {
		return s
	}
	changed := st.ModTime()
	if c, ok := changeTime(st); ok && c.After(changed) {
		changed = c
	}
	if !changed.Truncate(time.Second).Equal(s.Modified.Truncate(time.Second)) {
		return s
	}
	s.Modified, s.Window = changed, localClockSlack
	return s
}

func readHBARules(ctx context.Context, db *pgx.Conn, version int) ([]hbaRule, error) {
	file := "NULL::text"
	if version >= 160000 {
		file = "file_name"
	}
	rows, err := db.Query(ctx, "SELECT coalesce("+file+", ''), line_number, type, auth_method, error FROM pg_hba_file_rules ORDER BY 1, 2")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []hbaRule
	for rows.Next() {
		var r hbaRule
		var line *int
		if err := rows.Scan(&r.File, &line, &r.Type, &r.Method, &r.Error); err != nil {
			return nil, fmt.Errorf("read a pg_hba_file_rules row: %w", err)
		}
		if line != nil {
			r.Line = *line
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// weakNetworkMethod: methods that send a password in the clear, a
// password-equivalent hash, or nothing at all, on a network line.
// admitsPlaintext: a network line type that matches sessions without TLS.
func admitsPlaintext(typ string) bool {
	return typ == "host" || typ == "hostnossl" || typ == "hostnogssenc"
}

func weakNetworkMethod(method string) bool {
	switch method {
	case "trust", "password", "md5", "ident":
		return true
	}
	return false
}

// judgeHBARules: a line with an error or a weak network method fails;
// no rules at all is not evidence of anything.
func judgeHBARules(rules []hbaRule) []checks.Observation {
	if len(rules) == 0 {
		return []checks.Observation{checks.Unknown("pg_hba_file_rules", "the server shows no rules")}
	}
	var obs []checks.Observation
	good := 0
	for _, r := range rules {
		switch {
		case r.Error != nil && *r.Error != "":
			obs = append(obs, checks.Bad(fmt.Sprintf("pg_hba %s: error: %s", r.where(), *r.Error)))
		case r.Type == nil || r.Method == nil:
			obs = append(obs, checks.Unknown("pg_hba "+r.where(), "the server shows no type or method and no error for it"))
		case *r.Type != "local" && weakNetworkMethod(*r.Method):
			obs = append(obs, checks.Bad(fmt.Sprintf("pg_hba %s: %s with %s", r.where(), *r.Type, *r.Method)))
		case admitsPlaintext(*r.Type) && *r.Method != "reject":
			// The probe's plaintext attempt is refused for its own user and
			// database only; this line lets others in without TLS.
			obs = append(obs, checks.Bad(fmt.Sprintf("pg_hba %s: %s with %s admits network sessions without TLS", r.where(), *r.Type, *r.Method)))
		default:
			good++
		}
	}
	if good == len(rules) {
		obs = append(obs, checks.Good(fmt.Sprintf("pg_hba_file_rules: %d rules, no weak network method, no plaintext network line except reject, no errors", good)))
	}
	return obs
}

// judgeHBAFreshness: each rules file must predate the last configuration
// load. A file whose modification time is within its stamp's window of the
// load (the same second, when pg_stat_file's whole seconds are all there
// is) may have been written after it: that is a pending reload that cannot
// be ruled out, not a pass.
func judgeHBAFreshness(stamps []hbaFileStamp, loaded time.Time) []checks.Observation {
	var obs []checks.Observation
	at := loaded.UTC().Format(time.RFC3339Nano)
	for _, s := range stamps {
		mod := s.Modified.UTC().Format(time.RFC3339Nano)
		if s.Window >= time.Second {
			mod = s.Modified.UTC().Format(time.RFC3339) + " (whole seconds)"
		}
		switch {
		case s.Err != nil:
			obs = append(obs, checks.Unknown("modification time of "+s.Path+" (to compare with the last reload)", s.Err.Error()))
		case s.Modified.After(loaded):
			obs = append(obs, checks.Unknown(s.Path, fmt.Sprintf("pending reload: modified at %s, after the last configuration load at %s — the server still enforces the rules it loaded then (SELECT pg_reload_conf())", mod, at)))
		case s.Modified.Add(s.Window).After(loaded):
			obs = append(obs, checks.Unknown(s.Path, fmt.Sprintf("pending reload cannot be ruled out: modified at %s and the configuration was loaded at %s, too close to tell which came first (reload again: SELECT pg_reload_conf())", mod, at)))
		default:
			obs = append(obs, checks.Good(fmt.Sprintf("%s unchanged since the last configuration load at %s", s.Path, at)))
		}
	}
	return obs
}

// passwordObservations: the server's setting for new passwords, and the
// stored hashes themselves (pg_authid, superuser only).
func passwordObservations(ctx context.Context, db *pgx.Conn) []checks.Observation {
	var obs []checks.Observation
	var enc string
	if err := db.QueryRow(ctx, "SHOW password_encryption").Scan(&enc); err != nil {
		obs = append(obs, checks.Unknown("SHOW password_encryption", err.Error()))
	} else if enc != "scram-sha-256" {
		obs = append(obs, checks.Bad("password_encryption = "+enc))
	} else {
		obs = append(obs, checks.Good("password_encryption = scram-sha-256"))
	}
	// pgx reports a permission error while reading rows: an unreadable
	// pg_authid is "not checked", never "no md5 hashes".
	md5Roles, err := queryStrings(ctx, db, "SELECT rolname FROM pg_authid WHERE rolpassword LIKE 'md5%' ORDER BY 1")
	switch {
	case err != nil:
		obs = append(obs, checks.Unknown("md5 hashes in pg_authid", "reading pg_authid needs a superuser: "+err.Error()))
	case len(md5Roles) > 0:
		obs = append(obs, checks.Bad("roles with md5 password hashes: "+strings.Join(md5Roles, ", ")))
	default:
		obs = append(obs, checks.Good("no role has an md5 password hash"))
	}
	return obs
}

// activity is one row of pg_stat_activity joined with pg_stat_ssl. For a
// session the role may not see (pg_read_all_stats), PostgreSQL shows the
// pid but NULL backend_type, client_addr and ssl.
type activity struct {
	PID         int
	User        *string
	Addr        *string
	App         *string
	BackendType *string
	SSL         *bool
}

const statsGrant = "pg_read_all_stats"

// sessionObservations lists every other live network session and its TLS
// state, and says so when some sessions are hidden from this role.
func sessionObservations(ctx context.Context, db *pgx.Conn) []checks.Observation {
	var role string
	var privileged bool
	if err := db.QueryRow(ctx, `SELECT current_user::text, coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false)
		OR pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')`).Scan(&role, &privileged); err != nil {
		return []checks.Observation{checks.Unknown("the role's view of pg_stat_activity", err.Error())}
	}
	rows, err := db.Query(ctx, `SELECT a.pid, a.usename::text, host(a.client_addr), a.application_name, a.backend_type, s.ssl
		FROM pg_stat_activity a LEFT JOIN pg_stat_ssl s USING (pid) WHERE a.pid <> pg_backend_pid() ORDER BY a.pid`)
	if err != nil {
		return []checks.Observation{checks.Unknown("pg_stat_activity", permissionHint(err, "GRANT "+statsGrant).Error())}
	}
	defer rows.Close()
	var sessions []activity
	for rows.Next() {
		var a activity
		if err := rows.Scan(&a.PID, &a.User, &a.Addr, &a.App, &a.BackendType, &a.SSL); err != nil {
			return []checks.Observation{checks.Unknown("pg_stat_activity", "read a row: "+err.Error())}
		}
		sessions = append(sessions, a)
	}
	if err := rows.Err(); err != nil {
		return []checks.Observation{checks.Unknown("pg_stat_activity", permissionHint(err, "GRANT "+statsGrant).Error())}
	}
	return judgeSessions(sessions, role, privileged)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// judgeSessions: a visible network session without TLS fails; a session
// whose address or TLS state is hidden from the role is inconclusive.
func judgeSessions(sessions []activity, role string, privileged bool) []checks.Observation {
	var obs []checks.Observation
	var plain []string
	hidden, network := 0, 0
	for _, a := range sessions {
		switch {
		case a.BackendType == nil:
			hidden++ // PostgreSQL hides the details of this process
		case a.Addr == nil:
			// a local-socket session or a server process: not network
		case a.SSL == nil:
			obs = append(obs, checks.Unknown(fmt.Sprintf("session pid %d (%s@%s)", a.PID, deref(a.User), *a.Addr), "pg_stat_ssl shows no TLS state for it"))
		case !*a.SSL:
			network++
			plain = append(plain, fmt.Sprintf("%s@%s (%s)", deref(a.User), *a.Addr, deref(a.App)))
		default:
			network++
		}
	}
	if len(plain) > 0 {
		obs = append(obs, checks.Bad("pg_stat_ssl: live sessions without TLS: "+strings.Join(plain, ", ")))
	}
	if hidden > 0 {
		why := fmt.Sprintf("PostgreSQL hides their client address and TLS state from role %s", role)
		if !privileged {
			why += fmt.Sprintf(" (it needs pg_read_all_stats: GRANT %s TO %s)", statsGrant, sqlIdent(role))
		}
		obs = append(obs, checks.Unknown(fmt.Sprintf("%d other sessions or server processes", hidden), why))
	}
	if len(plain) == 0 {
		obs = append(obs, checks.Good(fmt.Sprintf("pg_stat_ssl: %d other live network sessions, every one with TLS", network)))
	}
	return obs
}

// sqlIdent quotes a role name for the GRANT shown to the operator.
func sqlIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
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
