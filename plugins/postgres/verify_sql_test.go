package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/shared/checks"
)

func strp(s string) *string { return &s }
func boolp(b bool) *bool    { return &b }

// pg_hba_file_rules rows as PostgreSQL returns them (an error row has NULL
// type and method) and the rules files' modification times against the
// last configuration load.
func TestHBAObservations(t *testing.T) {
	loaded := time.Date(2026, 12, 1, 9, 3, 18, 327_000_000, time.UTC)
	good := []hbaRule{
		{Line: 1, Type: strp("local"), Method: strp("trust")},
		{Line: 2, Type: strp("hostssl"), Method: strp("scram-sha-256")},
		{Line: 3, Type: strp("hostnossl"), Method: strp("reject")},
	}
	stamp := func(at time.Time) []hbaFileStamp {
		return []hbaFileStamp{{Path: "/data/pg_hba.conf", Modified: at, Window: time.Second}}
	}
	local := func(at time.Time) []hbaFileStamp {
		return []hbaFileStamp{{Path: "/data/pg_hba.conf", Modified: at, Window: localClockSlack}}
	}
	before := stamp(loaded.Add(-time.Minute).Truncate(time.Second))
	tests := map[string]struct {
		rules        []hbaRule
		stamps       []hbaFileStamp
		want         checks.Status
		wantEvidence []string
	}{
		"good rules, file older than the last load": {rules: good, stamps: before, want: checks.Pass,
			wantEvidence: []string{"3 rules", "unchanged since the last configuration load"}},
		"an error row fails naming its line": {
			rules:  append(append([]hbaRule{}, good...), hbaRule{Line: 99, Error: strp(`authentication method "ldap" requires argument "ldapbasedn"`)}),
			stamps: before, want: checks.Fail,
			wantEvidence: []string{`line 99: error: authentication method "ldap"`}},
		"an error row in an included file names the file": {
			rules:  []hbaRule{{File: "/data/conf.d/app.conf", Line: 4, Error: strp("invalid IP address")}},
			stamps: before, want: checks.Fail,
			wantEvidence: []string{"/data/conf.d/app.conf line 4: error: invalid IP address"}},
		"trust on a network line fails": {
			rules:  append(append([]hbaRule{}, good...), hbaRule{Line: 7, Type: strp("host"), Method: strp("trust")}),
			stamps: before, want: checks.Fail, wantEvidence: []string{"line 7: host with trust"}},
		// The probe's plaintext refusal covers its own user and database;
		// a host or hostnossl line that is not reject admits others.
		"host with scram admits plaintext sessions": {
			rules:  append(append([]hbaRule{}, good...), hbaRule{Line: 8, Type: strp("host"), Method: strp("scram-sha-256")}),
			stamps: before, want: checks.Fail, wantEvidence: []string{"line 8: host with scram-sha-256 admits network sessions without TLS"}},
		"hostnogssenc admits plaintext too": {
			rules:  append(append([]hbaRule{}, good...), hbaRule{Line: 11, Type: strp("hostnogssenc"), Method: strp("scram-sha-256")}),
			stamps: before, want: checks.Fail, wantEvidence: []string{"line 11: hostnogssenc with scram-sha-256 admits"}},
		"hostnossl reject is fine, hostnossl cert is not": {
			rules:  append(append([]hbaRule{}, good...), hbaRule{Line: 9, Type: strp("hostnossl"), Method: strp("reject")}, hbaRule{Line: 10, Type: strp("hostnossl"), Method: strp("cert")}),
			stamps: before, want: checks.Fail, wantEvidence: []string{"line 10: hostnossl with cert"}},
		"file modified after the last load: pending reload, not a pass": {rules: good, stamps: stamp(loaded.Add(2 * time.Second).Truncate(time.Second)),
			want: checks.Error, wantEvidence: []string{"pending reload: modified at 2026-12-01T09:03:20Z", "SELECT pg_reload_conf()"}},
		"file modified in the same second as the load: cannot be ruled out": {rules: good, stamps: stamp(loaded.Truncate(time.Second)),
			want: checks.Error, wantEvidence: []string{"pending reload cannot be ruled out"}},
		"local file time: written 200 ms before the load": {rules: good, stamps: local(loaded.Add(-200 * time.Millisecond)), want: checks.Pass},
		"local file time: written 10 ms before the load, within the clock's slack": {rules: good, stamps: local(loaded.Add(-10 * time.Millisecond)),
			want: checks.Error, wantEvidence: []string{"pending reload cannot be ruled out"}},
		"a weak rule pending reload still fails": {
			rules:  []hbaRule{{Line: 7, Type: strp("host"), Method: strp("md5")}},
			stamps: stamp(loaded.Add(time.Hour)), want: checks.Fail, wantEvidence: []string{"line 7: host with md5", "1 inconclusive", "pending reload"}},
		"modification time unreadable: an error with the grant": {rules: good,
			stamps: []hbaFileStamp{{Path: "/data/pg_hba.conf", Err: errString("permission denied for function pg_stat_file (verify as a least-privilege role needs: GRANT EXECUTE ON FUNCTION pg_stat_file(text))")}},
			want:   checks.Error, wantEvidence: []string{"GRANT EXECUTE ON FUNCTION pg_stat_file(text)"}},
		"no rules at all is not a pass": {rules: nil, stamps: before, want: checks.Error, wantEvidence: []string{"the server shows no rules"}},
		"a row without type, method or error is inconclusive": {rules: []hbaRule{{Line: 5}}, stamps: before, want: checks.Error,
			wantEvidence: []string{"line 5"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			obs := append(judgeHBARules(tc.rules), judgeHBAFreshness(tc.stamps, loaded)...)
			c := checks.Reduce("postgres.hba.network_methods", "pg", obs...)
			if c.Status != tc.want {
				t.Errorf("status %s (%s), want %s", c.Status, c.Evidence, tc.want)
			}
			for _, w := range tc.wantEvidence {
				if !strings.Contains(c.Evidence, w) {
					t.Errorf("evidence %q lacks %q", c.Evidence, w)
				}
			}
		})
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// pg_stat_activity/pg_stat_ssl rows as a role sees them: a role without
// pg_read_all_stats sees other roles' sessions with NULL details — that is
// "cannot tell", never "every session uses TLS".
func TestSessionObservations(t *testing.T) {
	hiddenRow := activity{PID: 11, User: strp("app")} // backend_type, client_addr, ssl all NULL
	tests := map[string]struct {
		rows         []activity
		privileged   bool
		want         checks.Status
		wantEvidence []string
	}{
		"every visible network session with TLS": {privileged: true, want: checks.Pass,
			rows: []activity{
				{PID: 1, BackendType: strp("autovacuum launcher")},
				{PID: 2, User: strp("app"), Addr: strp("10.0.0.7"), App: strp("etl"), BackendType: strp("client backend"), SSL: boolp(true)},
			},
			wantEvidence: []string{"1 other live network sessions, every one with TLS"}},
		"no other session at all, fully visible": {privileged: true, want: checks.Pass, rows: nil},
		"a plaintext session fails": {privileged: true, want: checks.Fail,
			rows:         []activity{{PID: 2, User: strp("app"), Addr: strp("127.0.0.1"), App: strp("psql"), BackendType: strp("client backend"), SSL: boolp(false)}},
			wantEvidence: []string{"app@127.0.0.1 (psql)"}},
		"sessions hidden from the role: an error naming the grant": {privileged: false, want: checks.Error,
			rows:         []activity{hiddenRow},
			wantEvidence: []string{"hides their client address and TLS state from role harden_verify", `GRANT pg_read_all_stats TO "harden_verify"`}},
		"a visible plaintext session fails even when others are hidden": {privileged: false, want: checks.Fail,
			rows:         []activity{hiddenRow, {PID: 3, User: strp("harden_verify"), Addr: strp("127.0.0.1"), BackendType: strp("client backend"), SSL: boolp(false)}},
			wantEvidence: []string{"harden_verify@127.0.0.1", "1 inconclusive"}},
		"a network session without a TLS row is inconclusive": {privileged: true, want: checks.Error,
			rows:         []activity{{PID: 4, User: strp("app"), Addr: strp("127.0.0.1"), BackendType: strp("client backend")}},
			wantEvidence: []string{"session pid 4", "no TLS state"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := checks.Reduce("postgres.sessions.unencrypted", "pg", judgeSessions(tc.rows, "harden_verify", tc.privileged)...)
			if c.Status != tc.want {
				t.Errorf("status %s (%s), want %s", c.Status, c.Evidence, tc.want)
			}
			for _, w := range tc.wantEvidence {
				if !strings.Contains(c.Evidence, w) {
					t.Errorf("evidence %q lacks %q", c.Evidence, w)
				}
			}
		})
	}
}

// The local file refines pg_stat_file's whole seconds only when it is the
// same file: same size and the same second.
func TestHBAFileStampRefinedLocally(t *testing.T) {
	path := t.TempDir() + "/pg_hba.conf"
	if err := os.WriteFile(path, []byte("hostssl all all 0.0.0.0/0 scram-sha-256\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	server := hbaFileStamp{Path: path, Modified: st.ModTime().Truncate(time.Second), Window: time.Second}
	if got := server.refinedLocally(st.Size()); !got.Modified.Equal(st.ModTime()) || got.Window != localClockSlack {
		t.Errorf("same file: %+v, want the local time %s", got, st.ModTime())
	}
	for name, s := range map[string]struct {
		stamp hbaFileStamp
		size  int64
	}{
		"another size":   {server, st.Size() + 1},
		"another second": {hbaFileStamp{Path: path, Modified: server.Modified.Add(-time.Second), Window: time.Second}, st.Size()},
		"no such file":   {hbaFileStamp{Path: path + ".missing", Modified: server.Modified, Window: time.Second}, st.Size()},
	} {
		if got := s.stamp.refinedLocally(s.size); got != s.stamp {
			t.Errorf("%s: refined to %+v", name, got)
		}
	}
}
