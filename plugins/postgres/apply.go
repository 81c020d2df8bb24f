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
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
	"github.com/harden-dev/harden/shared/tlsprofile"
)

// Apply brings the live server to the policy: certificate files, settings
// (ALTER SYSTEM), pg_ident.conf and pg_hba.conf, then one reload. It is
// crash-consistent: under a per-cluster lock it writes an intent journal
// (fsynced) before the first change and records every file's backup before
// the file changes, so a Ctrl-C rolls back and a kill -9 is recovered by
// the next apply. If PostgreSQL rejects the new files, or a NEW TLS
// handshake does not show the new certificate and settings, or harden can
// no longer log in, everything is restored and reloaded, and the server
// keeps serving with its old rules.
func (p postgres) Apply(ctx context.Context, q sdk.ApplyRequest, r *sdk.ApplyResponse) {
	c, s, db, ok := openManaged(ctx, q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	// db may be replaced by a new connection (a cancelled query closes it).
	defer func() { db.Close(context.Background()) }()
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
	}
	if err := certificateCurrent(q.Certificates.ChainPEM, time.Now()); err != nil {
		r.Diagnostics.AddTargetError("postgres.apply.certificate_expired", "the server certificate is not valid now; nothing was changed", err)
		return
	}
	// One apply per cluster, whichever database this session is in (an
	// advisory lock is per database); see clusterJournal for where.
	journal, lock, err := clusterJournal(ctx, db, l.DataDir)
	if err != nil {
		r.Diagnostics.AddTargetError("postgres.apply.journal", "cannot name this cluster's apply journal; nothing was changed", err)
		return
	}
	unlock, err := applykit.Lock(lock)
	if err != nil {
		applykit.Locked("postgres", "this server", err, &r.Diagnostics)
		return
	}
	defer unlock()
	legacyFiles(l, true, &r.Diagnostics)
	allowed := allowedFiles(l, s.certDir())
	prev, err := applykit.OpenAllowed(journal, allowed)
	if err != nil {
		r.Diagnostics.AddTargetError("postgres.apply.journal", "the apply journal cannot be read; nothing was changed — inspect or remove it", err)
		return
	}
	if !applykit.PlanCurrent(&r.Diagnostics, q.PlanToken, l.fingerprint(prev), "the server") {
		return
	}
	var recovered []sdk.Change
	if prev != nil {
		what := applykit.Describe(prev.State)
		if db, err = recoverInterrupted(ctx, prev, db, c, q.RequestContext, q.Force); err != nil {
			r.Diagnostics.AddTargetError("postgres.apply.recover", "cannot recover the interrupted apply; nothing else was changed", err)
			return
		}
		recovered = append(recovered, sdk.Change{Resource: "journal:" + prev.Path(), Action: sdk.Update,
			Description: what + ": recovered (its backups restored, reloaded, harden logs in)"})
		r.Diagnostics.AddWarning("recovered "+what, "then applied the policy to the live state")
		if l, ok = readLiveDiag(ctx, db, c, s, &r.Diagnostics); !ok {
			r.Applied = recovered
			return
		}
	}
	paths := newCertPaths(l.DataDir, s.certDir())
	sweepDirs(l.Owner, l.DataDir, paths.Dir, filepath.Dir(l.HBAFile), filepath.Dir(l.IdentFile))
	if _, includes, err := parseHBA(l.HBAText); err == nil && len(includes) > 0 {
		// Included files are followed and kept only when every rule in
		// them meets the policy's bar; otherwise nothing is changed.
		rules, origins, err := includedRules(l.Owner, l.HBAFile, includes)
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
	d, err := computeDesired(q.RequestContext, s, l)
	if err != nil {
		r.Diagnostics.AddAttributeError(sdk.Path{"spec"}, "a value cannot be written to the server's files; nothing was changed", err.Error())
		r.Applied = recovered
		return
	}
	todo := changes(l, d)
	if len(todo) == 0 {
		r.Applied = recovered
		return // idempotent: nothing to do, and nothing was touched
	}
	if blocked := lockoutGuard(ctx, db, c, l.Owner, l.HBAFile, d.HBA, len(q.Certificates.ClientChainPEM) > 0); len(blocked) > 0 && !q.Force {
		r.Diagnostics.Add(sdk.Diagnostic{Severity: sdk.Error, Source: sdk.SourceConfig, Code: "postgres.apply.lockout",
			Summary: "the new pg_hba.conf would lock out live clients; nothing was changed (harden apply --force overrides)",
			Detail:  strings.Join(blocked, "; ")})
		return
	}
	intent := make([]string, 0, len(todo))
	// The values ALTER SYSTEM will set: how a recovery recognises the
	// postgresql.auto.conf this run made (autoConfOurs).
	data := map[string]string{}
	for _, ch := range todo {
		intent = append(intent, string(ch.Action)+" "+ch.Resource)
		if name, ok := strings.CutPrefix(ch.Resource, "setting:"); ok {
			data[settingKey+name] = ch.After
		}
	}
	j, err := applykit.Begin(journal, applykit.State{Plugin: "postgres", Target: q.Target.Name, Phase: stepBegun, Intent: intent, Data: data})
	if err != nil {
		r.Diagnostics.AddTargetError("postgres.apply.journal", "cannot write the apply journal; nothing was changed", err)
		return
	}
	j.Restrict(allowed) // a new journal names nothing yet: cannot fail
	var confirmed bool
	db, confirmed = switchOver(ctx, j, db, c, q.RequestContext, l, d, &r.Diagnostics)
	if !confirmed {
		return
	}
	// Confirmed: the new configuration is live, so the run finishes even
	// if the host stops it now.
	fctx := context.WithoutCancel(ctx)
	if err := j.Done(); err != nil {
		r.Diagnostics.AddWarning("the new configuration is live, but the apply journal could not be removed (the next apply will restore and re-apply)", err.Error())
	}
	after, err := readLive(fctx, db, c, func(dd string) certPaths { return newCertPaths(dd, s.certDir()) })
	for i, ch := range todo {
		if name, ok := strings.CutPrefix(ch.Resource, "setting:"); ok && err == nil && after.Settings[name].PendingRestart {
			todo[i].RequiresRestart = true
			r.Diagnostics.AddWarning(name+" changes only after a restart of PostgreSQL", "harden wrote it; it is not live yet")
		}
	}
	r.Applied = append(recovered, todo...)
}

// switchOver stages everything and switches in one reload. The order makes
// every prefix safe for a reload somebody else triggers meanwhile (a
// routine pg_ctl reload, logrotate, a config-management run):
//  1. certificate files — new paths, or the same paths PostgreSQL re-reads
//     only at a reload (a reload that sees a cert without its key keeps
//     the old TLS context);
//  2. settings, with ssl = on last: each ALTER SYSTEM rewrites
//     postgresql.auto.conf atomically, so TLS is never switched on before
//     its files and parameters are in place;
//  3. pg_ident.conf (maps the new pg_hba rules may name);
//  4. pg_hba.conf LAST, one atomic rename: only from here on can a reload
//     refuse plaintext clients, and by then TLS is fully configured;
//  5. the one reload, then the confirmation.
//
// Until 4 a reload gives the old rules (plus TLS); from 4 the new ones.
// It returns the connection to use (maybe a new one) and whether the new
// configuration is live and confirmed; on false it has rolled back and
// said so on ds.
func switchOver(ctx context.Context, j *applykit.Journal, db *pgx.Conn, c connection, q sdk.RequestContext, l *liveState, d desiredState, ds *sdk.Diagnostics) (*pgx.Conn, bool) {
	// Each step's failure is reported as what it was doing.
	codes := map[string][2]string{
		stepBegun:     {"postgres.apply.files", "writing files failed"},
		stepFiles:     {"postgres.apply.settings", "ALTER SYSTEM failed"},
		stepSettings:  {"postgres.apply.files", "writing files failed"},
		stepReloading: {"postgres.apply.rejected", "PostgreSQL did not take the new configuration"},
	}
	steps := []applykit.Step{
		{Phase: stepBegun, Apply: func(ctx context.Context) error { return writeCertFiles(ctx, j, db, l, d) }},
		{Phase: stepFiles, Apply: func(ctx context.Context) error { return alterSettings(ctx, j, db, l, d) }},
		{Phase: stepSettings, Apply: func(ctx context.Context) error {
			if err := writeRulesFiles(ctx, j, l, d); err != nil {
				return err
			}
			waitPastModification(ctx, l.HBAFile, l.IdentFile)
			return nil
		}},
		{Phase: stepReloading, Apply: func(ctx context.Context) error { return reloadAndConfirm(ctx, db, c, q, l, d) }},
	}
	// The undo of every step is the journal's: a failed step may have
	// written some of its files, so a failure restores every file the
	// journal recorded (the file-restore rollback) and reloads.
	restored := ""
	rollback := func(rctx context.Context) error {
		restored = restoredList(j)
		var err error
		db, err = restoreAndReload(rctx, j, db, c, q, false)
		return err
	}
	_, err := j.RunSteps(ctx, steps, applykit.StepOptions{Rollback: rollback, UndoTimeout: rollbackTimeout, Hook: stepHook})
	var se *applykit.StepError
	if errors.As(err, &se) {
		cw := codes[se.Phase]
		code, what := failureCode(ctx, cw[0], cw[1])
		if len(se.UndoFailed) > 0 {
			ds.AddTargetError(code, what+"; rolling back FAILED: "+strings.Join(se.UndoFailed, "; ")+" — check the backups (*.harden-backup-*)", se.Err)
		} else {
			ds.AddTargetError(code, what+"; rolled back ("+restored+") and reloaded — the server keeps its old rules", se.Err)
		}
		return db, false
	}
	if err := atStep(ctx, j, stepConfirmed); err != nil && ctx.Err() == nil {
		// Only a failed journal write lands here (a cancellation after
		// the confirmation does not undo a live configuration).
		ds.AddWarning("the new configuration is live, but the journal could not be updated", err.Error())
	}
	return db, true
}

// failureCode: a step that failed because the request ended (Ctrl-C, the
// host's timeout) is an interruption; a step's own timeout (a connect
// timeout, a reload that never came) stays that step's failure.
func failureCode(ctx context.Context, code, what string) (string, string) {
	if ctx.Err() == nil {
		return code, what
	}
	return "postgres.apply.interrupted", "apply was interrupted (" + context.Cause(ctx).Error() + ")"
}

// writeCertFiles writes the certificate files. Every file operation of
// apply runs as the data directory's owner (l.Owner, applykit.AsOwner):
// that user may have replaced a directory on the way with a symlink to /etc,
// and as that user the write is simply refused (before, root created the
// directory through the symlink, chowned /etc to postgres and wrote
// server.key there).
func writeCertFiles(ctx context.Context, j *applykit.Journal, db *pgx.Conn, l *liveState, d desiredState) error {
	first := true
	for _, f := range d.Files {
		if bytes.Equal(l.Files[f.Path], f.Content) {
			continue
		}
		if err := applykit.MkdirAll(filepath.Dir(f.Path), 0o700, l.Owner); err != nil {
			return fmt.Errorf("create %s as the data directory's owner: %w", filepath.Dir(f.Path), err)
		}
		if err := j.Replace(f.Path, f.Content, os.FileMode(f.Mode), l.Owner); err != nil {
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
		if first {
			first = false
			if err := atStep(ctx, j, stepCertFile); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeRulesFiles writes pg_ident.conf, then pg_hba.conf (the switch).
func writeRulesFiles(ctx context.Context, j *applykit.Journal, l *liveState, d desiredState) error {
	hbaInfo, err := os.Stat(l.HBAFile)
	if err != nil {
		return err
	}
	if d.Ident != "" && normalizeHBA(l.IdentText) != normalizeHBA(d.Ident) {
		info, err := os.Stat(l.IdentFile)
		if err != nil {
			info = hbaInfo
		}
		if err := j.Replace(l.IdentFile, []byte(d.Ident), info.Mode().Perm(), l.Owner); err != nil {
			return fmt.Errorf("write %s: %w", l.IdentFile, err)
		}
		if err := atStep(ctx, j, stepIdent); err != nil {
			return err
		}
	}
	if normalizeHBA(l.HBAText) != normalizeHBA(d.HBA) {
		if err := j.Replace(l.HBAFile, []byte(d.HBA), hbaInfo.Mode().Perm(), l.Owner); err != nil {
			return fmt.Errorf("write %s: %w", l.HBAFile, err)
		}
	}
	return atStep(ctx, j, stepHBA)
}

// alterSettings runs ALTER SYSTEM for each setting that differs, with ssl
// last (see switchOver). postgresql.auto.conf is backed up before the
// first statement rewrites it.
func alterSettings(ctx context.Context, j *applykit.Journal, db *pgx.Conn, l *liveState, d desiredState) error {
	ordered := make([]setting, 0, len(d.Settings))
	var ssl []setting
	for _, s := range d.Settings {
		if s.Name == "ssl" {
			ssl = append(ssl, s)
		} else {
			ordered = append(ordered, s)
		}
	}
	first := true
	for _, s := range append(ordered, ssl...) {
		cur, ok := l.Settings[s.Name]
		if !ok || cur.Value == s.Value {
			continue
		}
		if first {
			if err := j.BackupAs(l.AutoConf, l.Owner); err != nil {
				return err
			}
		}
		var stmt string
		if err := db.QueryRow(ctx, "SELECT format('ALTER SYSTEM SET %I = %L', $1::text, $2::text)", s.Name, s.Value).Scan(&stmt); err != nil {
			return err
		}
		if _, err := db.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
		if first {
			first = false
			if err := atStep(ctx, j, stepSetting); err != nil {
				return err
			}
		}
	}
	return nil
}

// certificateCurrent refuses a leaf certificate that has expired or is not
// valid yet: it would go live, fail the confirmation and be rolled back.
func certificateCurrent(chainPEM []byte, now time.Time) error {
	block, _ := pem.Decode(chainPEM)
	if block == nil {
		return errors.New("the certificate chain is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("parse the server certificate: %w", err)
	}
	switch {
	case now.After(cert.NotAfter):
		return fmt.Errorf("expired: not_after %s", cert.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(cert.NotBefore):
		return fmt.Errorf("not valid yet: not_before %s (not_after %s)", cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// reloadAndConfirm reloads and proves the new configuration is live.
func reloadAndConfirm(ctx context.Context, db *pgx.Conn, c connection, q sdk.RequestContext, l *liveState, d desiredState) error {
	var before time.Time
	if err := db.QueryRow(ctx, "SELECT pg_conf_load_time()").Scan(&before); err != nil {
		return err
	}
	if _, err := db.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return err
	}
	if err := atStep(ctx, nil, stepReloadSent); err != nil {
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
// in which any of paths last changed (the later of mtime and ctime), and at
// least localClockSlack past the change itself. verify compares
// pg_stat_file's times (whole seconds, refined to the local file's when it
// can) with pg_conf_load_time(): a reload too close to the write would
// leave "pending reload" undecidable. At most about a second, once per
// apply.
func waitPastModification(ctx context.Context, paths ...string) {
	var latest time.Time
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		changed := st.ModTime()
		if c, ok := changeTime(st); ok && c.After(changed) {
			changed = c
		}
		if changed.After(latest) {
			latest = changed
		}
	}
	until := latest.Truncate(time.Second).Add(time.Second + 10*time.Millisecond)
	if slack := latest.Add(localClockSlack + 10*time.Millisecond); slack.After(until) {
		until = slack
	}
	wait := time.Until(until)
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
func lockoutGuard(ctx context.Context, db *pgx.Conn, c connection, owner os.FileInfo, hbaFile, newHBA string, hardenHasClientCert bool) []string {
	rules, includes, err := parseHBA(newHBA)
	if err != nil {
		return []string{"new pg_hba.conf does not parse: " + err.Error()}
	}
	if len(includes) > 0 {
		extra, _, err := includedRules(owner, hbaFile, includes)
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
