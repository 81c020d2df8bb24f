package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// pgSetting is one row of pg_settings.
type pgSetting struct {
	Value          string
	Context        string
	PendingRestart bool
}

// liveState is what plan and apply read from the server.
type liveState struct {
	VersionNum       int
	Major            int
	DataDir          string
	HBAFile          string
	IdentFile        string
	IdentText        string
	AutoConf         string
	HBAText          string
	Settings         map[string]pgSetting
	AllowAlterSystem bool
	Superuser        bool
	Files            map[string][]byte // cert files as they are now (nil: absent)
	// Owner is the data directory's status: its owner is the cluster's OS
	// user, the identity every file operation on the server's files runs
	// with (applykit.AsOwner).
	Owner os.FileInfo
}

var managedSettings = []string{"ssl", "ssl_cert_file", "ssl_key_file", "ssl_ca_file", "ssl_crl_file", "ssl_min_protocol_version", "ssl_max_protocol_version",
	"ssl_ciphers", "ssl_prefer_server_ciphers", "ssl_ecdh_curve", "ssl_groups", "ssl_tls13_ciphers", "password_encryption", "allow_alter_system"}

func readLive(ctx context.Context, db *pgx.Conn, c connection, paths func(dataDir string) certPaths) (*liveState, error) {
	l := &liveState{Settings: map[string]pgSetting{}}
	if err := db.QueryRow(ctx, "SELECT current_setting('server_version_num')::int, current_setting('data_directory'), current_setting('hba_file'), current_setting('ident_file'), (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)").
		Scan(&l.VersionNum, &l.DataDir, &l.HBAFile, &l.IdentFile, &l.Superuser); err != nil {
		return nil, fmt.Errorf("read server facts: %w", err)
	}
	l.Major = l.VersionNum / 10000
	if c.DataDir != "" && filepath.Clean(c.DataDir) != filepath.Clean(l.DataDir) {
		return nil, fmt.Errorf("connection.data_dir %s is not the server's data directory %s", c.DataDir, l.DataDir)
	}
	l.AutoConf = filepath.Join(l.DataDir, "postgresql.auto.conf")
	rows, err := db.Query(ctx, "SELECT name, setting, context, pending_restart FROM pg_settings WHERE name = ANY($1)", managedSettings)
	if err != nil {
		return nil, fmt.Errorf("read pg_settings: %w", err)
	}
	for rows.Next() {
		var name string
		var s pgSetting
		if err := rows.Scan(&name, &s.Value, &s.Context, &s.PendingRestart); err != nil {
			return nil, err
		}
		l.Settings[name] = s
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	l.AllowAlterSystem = true
	if s, ok := l.Settings["allow_alter_system"]; ok && s.Value == "off" {
		l.AllowAlterSystem = false
	}
	if l.Owner, err = os.Stat(l.DataDir); err != nil {
		return nil, fmt.Errorf("stat the data directory (apply runs where it can read and write the server's files): %w", err)
	}
	// Read as the cluster's OS user: the server's settings (hba_file, a
	// cert path) may point anywhere, e.g. at /etc/shadow, and what is read
	// here is shown by plan.
	l.Files = map[string][]byte{}
	err = applykit.AsOwner(l.Owner, func() error {
		text, err := os.ReadFile(l.HBAFile)
		if err != nil {
			return fmt.Errorf("read %s (apply runs where it can read and write the server's files): %w", l.HBAFile, err)
		}
		l.HBAText = string(text)
		if ident, err := os.ReadFile(l.IdentFile); err == nil {
			l.IdentText = string(ident)
		}
		p := paths(l.DataDir)
		for _, f := range []string{p.Cert, p.Key, p.CA, p.CRL} {
			data, err := os.ReadFile(f)
			if err == nil {
				l.Files[f] = data
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// fingerprint of the live state a plan was computed from, with the journal
// of an interrupted apply when there is one (recovering it changes files).
func (l *liveState) fingerprint(j *applykit.Journal) []byte {
	h := sha256.New()
	if j != nil {
		fmt.Fprintf(h, "journal %d %s %s\n", j.State.PID, j.State.Started, j.State.Phase)
	}
	names := make([]string, 0, len(l.Settings))
	for n := range l.Settings {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "%s=%s\n", n, l.Settings[n].Value)
	}
	h.Write([]byte(l.HBAText))
	h.Write([]byte(l.IdentText))
	files := make([]string, 0, len(l.Files))
	for f := range l.Files {
		files = append(files, f)
	}
	sort.Strings(files)
	for _, f := range files {
		sum := sha256.Sum256(l.Files[f])
		fmt.Fprintf(h, "%s:%x\n", f, sum)
	}
	return h.Sum(nil)
}

// localRules returns the live file's local lines (kept when the policy
// names none). Include directives are kept separately (see hbaText).
func localRules(text string) []HBARule {
	rules, _, err := parseHBA(text)
	if err != nil {
		return nil
	}
	var out []HBARule
	for _, r := range rules {
		if r.Type == "local" {
			out = append(out, r)
		}
	}
	return out
}

func normalizeHBA(text string) string {
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if t := strings.TrimSpace(l); t != "" {
			lines = append(lines, t)
		}
	}
	return strings.Join(lines, "\n")
}
