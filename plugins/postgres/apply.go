package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// applyLockKey serialises applies on one server (session advisory lock).
const applyLockKey = 0x6861726465 // "harde"

// Apply brings the live server to the policy: certificate files, pg_hba.conf
// and settings (ALTER SYSTEM), then a reload. Every file it touches is
// backed up first; if PostgreSQL rejects the new files, or a NEW TLS
// handshake does not show the new certificate and settings, or harden can no
// longer log in, everything is restored and reloaded, and the server keeps
// serving with its old rules.
func (p postgres) Apply(ctx context.Context, q sdk.ApplyRequest, r *sdk.ApplyResponse) {
	c, s, db, ok := openManaged(ctx, q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	defer db.Close(context.Background())
	var locked bool
	if err := db.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", int64(applyLockKey)).Scan(&locked); err != nil || !locked {
		r.Diagnostics.AddTargetError("postgres.apply.locked", "another harden apply is running on this server", err)
		return
	}
	// Unlock explicitly: the backend of a closed session may linger a
	// moment, and with it a session lock.
	defer db.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", int64(applyLockKey))
	l, ok := readLiveDiag(ctx, db, c, s, &r.Diagnostics)
	if !ok {
		return
	}
	switch {
	case !l.Superuser:
		r.Diagnostics.AddTargetError("postgres.apply.privilege", "apply needs a superuser connection (ALTER SYSTEM, pg_reload_conf, pg_read_binary_file)", nil)
		return
	case !l.AllowAlterSystem:
		r.Diagnostics.AddTargetError("postgres.apply.alter_system", "allow_alter_system is off on this server: harden applies settings with ALTER SYSTEM", nil)
		return
	case len(q.PlanToken) > 0 && !bytes.Equal(q.PlanToken, l.fingerprint()):
		r.Diagnostics.AddTargetError("postgres.apply.drift", "the server changed since the plan was made; re-run plan", nil)
		return
	}
	if _, includes, err := parseHBA(l.HBAText); err == nil && len(includes) > 0 {
		// Included files are followed and kept only when every rule in
		// them meets the policy's bar; otherwise nothing is changed.
		rules, origins, err := includedRules(l.HBAFile, includes)
		if err != nil {
			r.Diagnostics.AddTargetError("postgres.apply.hba_include", "cannot follow the include directives of pg_hba.conf; nothing was changed", err)
			return
		}
		var bad []string
		for i, rule := range rules {
			if why := compliant(rule); why != "" {
				bad = append(bad, fmt.Sprintf("%s: %q: %s", origins[i], rule.Line(), why))
			}
		}
		if len(bad) > 0 {
			r.Diagnostics.AddTargetError("postgres.apply.hba_include", "included pg_hba files hold rules the policy forbids; move what is needed into the policy's spec.hba and remove them — nothing was changed", errors.New(strings.Join(bad, "; ")))
			return
		}
	}
	d := computeDesired(q.RequestContext, s, l)
	todo := changes(l, d)
	if len(todo) == 0 {
		return // idempotent: nothing to do, and nothing was touched
	}
	if blocked := lockoutGuard(ctx, db, c, l.HBAFile, d.HBA, len(q.Certificates.ClientChainPEM) > 0); len(blocked) > 0 && !q.Force {
		r.Diagnostics.Add(sdk.Diagnostic{Severity: sdk.Error, Source: sdk.SourceConfig, Code: "postgres.apply.lockout",
			Summary: "the new pg_hba.conf would lock out live clients; nothing was changed (harden apply --force overrides)",
			Detail:  strings.Join(blocked, "; ")})
		return
	}
	tx := &transaction{}
	if err := applyFiles(ctx, db, l, d, tx); err != nil {
		tx.rollback(ctx, db, &r.Diagnostics)
		r.Diagnostics.AddTargetError("postgres.apply.files", "writing files failed; restored the previous files", err)
		return
	}
	if err := alterSettings(ctx, db, l, d); err != nil {
		tx.rollback(ctx, db, &r.Diagnostics)
		r.Diagnostics.AddTargetError("postgres.apply.settings", "ALTER SYSTEM failed; restored the previous files", err)
		return
	}
	if err := reloadAndConfirm(ctx, db, c, q.RequestContext, l, d); err != nil {
		tx.rollback(ctx, db, &r.Diagnostics)
		r.Diagnostics.AddTargetError("postgres.apply.rejected", "PostgreSQL did not take the new configuration; rolled back to the previous files and reloaded — the server keeps its old rules", err)
		return
	}
	after, err := readLive(ctx, db, c, func(dd string) certPaths { return newCertPaths(dd, s.certDir()) })
	for i, ch := range todo {
		if name, ok := strings.CutPrefix(ch.Resource, "setting:"); ok && err == nil && after.Settings[name].PendingRestart {
			todo[i].RequiresRestart = true
			r.Diagnostics.AddWarning(name+" changes only after a restart of PostgreSQL", "harden wrote it; it is not live yet")
		}
	}
	tx.cleanup()
	r.Applied = todo
}

// transaction remembers backups so a failed apply can restore them.
type transaction struct {
	restores []func() error
	backups  []string
	// paths restored on rollback (their modification times must predate
	// the reload that follows, see waitPastModification).
	paths []string
}

// backup copies path aside (keeping mode and owner) and registers its
// restore; a path that did not exist is removed on rollback.
func (t *transaction) backup(path string) error {
	t.paths = append(t.paths, path)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.restores = append(t.restores, func() error { return os.Remove(path) })
		return nil
	}
	if err != nil {
		return err
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	bak := fmt.Sprintf("%s.harden-backup-%s", path, time.Now().UTC().Format("20060102T150405.000"))
	if err := writeOwned(bak, data, st.Mode().Perm(), st); err != nil {
		return fmt.Errorf("back up %s: %w", path, err)
	}
	t.backups = append(t.backups, bak)
	t.restores = append(t.restores, func() error { return writeOwned(path, data, st.Mode().Perm(), st) })
	return nil
}

func (t *transaction) rollback(ctx context.Context, db *pgx.Conn, d *sdk.Diagnostics) {
	for i := len(t.restores) - 1; i >= 0; i-- {
		if err := t.restores[i](); err != nil && !errors.Is(err, os.ErrNotExist) {
			d.AddTargetError("postgres.apply.rollback", "restoring a file failed; check the backups", err)
		}
	}
	waitPastModification(ctx, t.paths...)
	if _, err := db.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		d.AddTargetError("postgres.apply.rollback", "reload after restoring failed", err)
	}
}

// cleanup keeps the backups (the operator's undo) and forgets the restores.
func (t *transaction) cleanup() { t.restores = nil }

// writeOwned writes data atomically with mode, owned like ref (the server's
// OS user).
func writeOwned(path string, data []byte, mode os.FileMode, ref os.FileInfo) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".harden-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if st, ok := ref.Sys().(*syscall.Stat_t); ok && (os.Geteuid() == 0 || int(st.Uid) == os.Geteuid()) {
		if err := tmp.Chown(int(st.Uid), int(st.Gid)); err != nil {
			tmp.Close()
			return err
		}
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func applyFiles(ctx context.Context, db *pgx.Conn, l *liveState, d desiredState, tx *transaction) error {
	owner, err := os.Stat(l.DataDir)
	if err != nil {
		return fmt.Errorf("stat data directory: %w", err)
	}
	for _, f := range d.Files {
		if bytes.Equal(l.Files[f.Path], f.Content) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(f.Path), 0o700); err != nil {
			return err
		}
		if st, ok := owner.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
			os.Chown(filepath.Dir(f.Path), int(st.Uid), int(st.Gid))
		}
		if err := tx.backup(f.Path); err != nil {
			return err
		}
		if err := writeOwned(f.Path, f.Content, os.FileMode(f.Mode), owner); err != nil {
			return fmt.Errorf("write %s: %w", f.Path, err)
		}
		// The server must be able to read what it will load: ask it.
		var got string
		if err := db.QueryRow(ctx, "SELECT md5(pg_read_binary_file($1))", f.Path).Scan(&got); err != nil {
			return fmt.Errorf("PostgreSQL cannot read %s: %w", f.Path, err)
		}
		if sum := md5.Sum(f.Content); got != hex.EncodeToString(sum[:]) {
			return fmt.Errorf("PostgreSQL reads different content from %s", f.Path)
		}
	}
	hbaInfo, err := os.Stat(l.HBAFile)
	if err != nil {
		return err
	}
	if normalizeHBA(l.HBAText) != normalizeHBA(d.HBA) {
		if err := tx.backup(l.HBAFile); err != nil {
			return err
		}
		if err := writeOwned(l.HBAFile, []byte(d.HBA), hbaInfo.Mode().Perm(), hbaInfo); err != nil {
			return fmt.Errorf("write %s: %w", l.HBAFile, err)
		}
	}
	if d.Ident != "" && normalizeHBA(l.IdentText) != normalizeHBA(d.Ident) {
		info, err := os.Stat(l.IdentFile)
		if err != nil {
			info = hbaInfo
		}
		if err := tx.backup(l.IdentFile); err != nil {
			return err
		}
		if err := writeOwned(l.IdentFile, []byte(d.Ident), info.Mode().Perm(), info); err != nil {
			return fmt.Errorf("write %s: %w", l.IdentFile, err)
		}
	}
	// ALTER SYSTEM rewrites postgresql.auto.conf: back it up for rollback.
	return tx.backup(l.AutoConf)
}

func alterSettings(ctx context.Context, db *pgx.Conn, l *liveState, d desiredState) error {
	for _, s := range d.Settings {
		cur, ok := l.Settings[s.Name]
		if !ok || cur.Value == s.Value {
			continue
		}
		var stmt string
		if err := db.QueryRow(ctx, "SELECT format('ALTER SYSTEM SET %I = %L', $1::text, $2::text)", s.Name, s.Value).Scan(&stmt); err != nil {
			return err
		}
		if _, err := db.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return nil
}

// reloadAndConfirm reloads and proves the new configuration is live.
func reloadAndConfirm(ctx context.Context, db *pgx.Conn, c connection, q sdk.RequestContext, l *liveState, d desiredState) error {
	waitPastModification(ctx, l.HBAFile, l.IdentFile)
	var before time.Time
	if err := db.QueryRow(ctx, "SELECT pg_conf_load_time()").Scan(&before); err != nil {
		return err
	}
	if _, err := db.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return err
	}
	// The reload is asynchronous: this session's load time changes once the
	// postmaster has reloaded and signalled its backends, so every session
	// started after apply sees the new rules (and verify's comparison of
	// the rules files with the load time holds).
	if err := waitForReload(ctx, db, before); err != nil {
		return err
	}
	// The reload is asynchronous: wait until this session sees the new
	// settings (or they wait for a restart) before judging the new files,
	// else pg_hba_file_rules checks them against the old ssl setting.
	if err := waitForSettings(ctx, db, d); err != nil {
		return err
	}
	hbaErrs, err := queryStrings(ctx, db, "SELECT 'pg_hba.conf line ' || line_number || ': ' || error FROM pg_hba_file_rules WHERE error IS NOT NULL ORDER BY line_number")
	if err != nil {
		return fmt.Errorf("read pg_hba_file_rules: %w", err)
	}
	if len(hbaErrs) > 0 {
		return errors.New(strings.Join(hbaErrs, "; "))
	}
	// pg_ident_file_mappings exists from PostgreSQL 15 on.
	if l.Major >= 15 && d.Ident != "" {
		identErrs, err := queryStrings(ctx, db, "SELECT 'pg_ident.conf line ' || line_number || ': ' || error FROM pg_ident_file_mappings WHERE error IS NOT NULL")
		if err != nil {
			return fmt.Errorf("read pg_ident_file_mappings: %w", err)
		}
		if len(identErrs) > 0 {
			return errors.New(strings.Join(identErrs, "; "))
		}
	}
	cfgErrs, err := queryStrings(ctx, db, "SELECT coalesce(sourcefile,'') || ':' || coalesce(sourceline,0) || ' ' || coalesce(name,'') || ': ' || error FROM pg_file_settings WHERE error IS NOT NULL")
	if err != nil {
		return fmt.Errorf("read pg_file_settings: %w", err)
	}
	if len(cfgErrs) > 0 {
		return errors.New(strings.Join(cfgErrs, "; "))
	}
	// pg_settings shows a bad ssl_ciphers or cert path while the old TLS
	// context silently stays: only a NEW handshake proves the change.
	if err := confirmHandshake(ctx, c, q); err != nil {
		return err
	}
	// harden itself must still get in.
	again, err := connect(ctx, c, q)
	if err != nil {
		return fmt.Errorf("harden cannot log in with the new rules: %w", err)
	}
	again.Close(ctx)
	return nil
}

// waitPastModification waits until the wall clock is past the whole second
// in which any of paths was last modified. verify compares pg_stat_file's
// modification time (whole seconds) with pg_conf_load_time(): a reload in
// the same second as the write would leave "pending reload" undecidable.
// At most about a second, once per apply.
func waitPastModification(ctx context.Context, paths ...string) {
	var latest time.Time
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil && st.ModTime().After(latest) {
			latest = st.ModTime()
		}
	}
	wait := time.Until(latest.Truncate(time.Second).Add(time.Second + 10*time.Millisecond))
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func waitForReload(ctx context.Context, db *pgx.Conn, before time.Time) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		var now time.Time
		if err := db.QueryRow(ctx, "SELECT pg_conf_load_time()").Scan(&now); err != nil {
			return err
		}
		if now.After(before) {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("the server did not reload its configuration within 5 s (pg_conf_load_time unchanged)")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitForSettings(ctx context.Context, db *pgx.Conn, d desiredState) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		pending := ""
		for _, s := range d.Settings {
			var value string
			var restart bool
			err := db.QueryRow(ctx, "SELECT setting, pending_restart FROM pg_settings WHERE name = $1", s.Name).Scan(&value, &restart)
			if errors.Is(err, pgx.ErrNoRows) {
				continue // not a parameter of this version
			}
			if err != nil {
				return err
			}
			if value != s.Value && !restart {
				pending = fmt.Sprintf("%s is %q, not %q", s.Name, value, s.Value)
				break
			}
		}
		if pending == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after reload %s (the server did not accept the value)", pending)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// confirmHandshake waits (reload is asynchronous) until a new TLS session
// shows the new certificate, then checks one refused version and suite.
func confirmHandshake(ctx context.Context, c connection, q sdk.RequestContext) error {
	block, _ := pem.Decode(q.Certificates.ChainPEM)
	if block == nil {
		return errors.New("certificate chain is not PEM")
	}
	want := sha256.Sum256(block.Bytes)
	target := probe.Target{Address: c.address(), Dialect: probe.Postgres}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(q.Certificates.CABundlePEM)
	var last error
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		st, err := probe.Handshake(ctx, target, &tls.Config{RootCAs: pool, ServerName: c.Host}, probe.Options{})
		if err == nil && len(st.PeerCertificates) > 0 && sha256.Sum256(st.PeerCertificates[0].Raw) == want {
			last = nil
			break
		}
		last = err
		if err == nil {
			last = errors.New("new connections still get the old certificate")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if last != nil {
		return fmt.Errorf("new TLS handshake: %w", last)
	}
	p := q.Policy.Profile
	if p.MinVersion() > tlsprofile.VersionTLS11 {
		below := p.MinVersion() - 1
		cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: below, MaxVersion: below} //nolint:gosec // probing a refusal
		if below <= tls.VersionTLS12 {
			cfg.CipherSuites = allGoSuites()
		}
		if _, err := probe.Handshake(ctx, target, cfg, probe.Options{}); err == nil {
			return fmt.Errorf("a %s handshake is still accepted", tlsprofile.VersionName(below))
		} else if !alertFromServer(err) {
			return fmt.Errorf("cannot confirm that a %s handshake is refused (no TLS alert from the server): %w", tlsprofile.VersionName(below), err)
		}
	}
	if p.AllowsVersion(tlsprofile.VersionTLS12) {
		cbc := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}
		cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: cbc} //nolint:gosec // probing a refusal
		if _, err := probe.Handshake(ctx, target, cfg, probe.Options{}); err == nil {
			return errors.New("a CBC cipher suite outside the profile is still accepted (ssl_ciphers did not take effect)")
		} else if !alertFromServer(err) {
			return fmt.Errorf("cannot confirm that a CBC cipher suite is refused (no TLS alert from the server): %w", err)
		}
	}
	return nil
}

// alertFromServer: only a TLS alert the server sent is its refusal; a
// timeout, a reset or a local error proves nothing (crypto/tls reports a
// received alert as a net.OpError "remote error").
func alertFromServer(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "remote error"
}

func allGoSuites() []uint16 {
	var ids []uint16
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		ids = append(ids, cs.ID)
	}
	return ids
}

// lockoutGuard evaluates the new rules against every live network session
// and against harden's own next connection; it returns who would be cut off.
func lockoutGuard(ctx context.Context, db *pgx.Conn, c connection, hbaFile, newHBA string, hardenHasClientCert bool) []string {
	rules, includes, err := parseHBA(newHBA)
	if err != nil {
		return []string{"new pg_hba.conf does not parse: " + err.Error()}
	}
	if len(includes) > 0 {
		extra, _, err := includedRules(hbaFile, includes)
		if err != nil {
			return []string{"cannot follow include directives: " + err.Error()}
		}
		rules = append(rules, extra...)
	}
	var blocked []string
	rows, err := db.Query(ctx, `SELECT a.pid, coalesce(a.usename,''), coalesce(a.datname,''), host(a.client_addr), coalesce(s.ssl,false),
		coalesce(s.client_dn,'') <> '', a.backend_type = 'walsender', a.pid = pg_backend_pid()
		FROM pg_stat_activity a LEFT JOIN pg_stat_ssl s USING (pid)
		WHERE a.client_addr IS NOT NULL
		-- harden's own earlier sessions (management and probe connections,
		-- possibly still exiting) are judged by the own-login check below.
		AND (a.pid = pg_backend_pid() OR coalesce(a.application_name, '') NOT IN ('harden', 'harden-probe'))`)
	if err != nil {
		return []string{"cannot list live sessions: " + err.Error()}
	}
	defer rows.Close()
	for rows.Next() {
		var s session
		var addr string
		var self bool
		if err := rows.Scan(&s.PID, &s.User, &s.Database, &addr, &s.SSL, &s.ClientCert, &s.Replication, &self); err != nil {
			// A session the guard cannot judge is a reason to stop.
			blocked = append(blocked, "cannot read a live session: "+err.Error())
			continue
		}
		a, err := netip.ParseAddr(addr)
		if err != nil {
			blocked = append(blocked, fmt.Sprintf("pid %d: cannot parse its client address %q", s.PID, addr))
			continue
		}
		s.Addr = a
		if self {
			// harden's next connection will use TLS (verified), with its
			// client certificate when the policy gives one.
			s.SSL, s.ClientCert = true, hardenHasClientCert
		}
		if ok, line := admits(rules, s); !ok {
			who := fmt.Sprintf("%s@%s db %s (pid %d", s.User, s.Addr, s.Database, s.PID)
			if s.Replication {
				who += ", replication"
			}
			if self {
				who += ", harden itself"
			}
			blocked = append(blocked, who+"): "+line)
		}
	}
	if err := rows.Err(); err != nil {
		// Not knowing who is connected is a reason to stop, not to go on.
		return []string{"cannot list live sessions: " + err.Error()}
	}
	if c.SocketDir == "" {
		// harden connects over TCP: its own future login must be admitted
		// even when no session of it is live (e.g. first run).
		if ip, err := netip.ParseAddr(c.Host); err == nil {
			self := session{User: c.User, Database: c.Database, Addr: ip, SSL: true, ClientCert: hardenHasClientCert}
			if self.Database == "" {
				self.Database = "postgres"
			}
			if ok, line := admits(rules, self); !ok {
				blocked = append(blocked, fmt.Sprintf("harden's own login %s@%s: %s", self.User, net.JoinHostPort(c.Host, itoa(c.Port)), line))
			}
		}
	}
	return dedupe(blocked)
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
