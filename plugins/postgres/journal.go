package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// clusterJournal is where the journal and the lock of a cluster live: in
// the applying user's private state directory (applykit.StateDir: for root
// /var/lib/harden/journal, 0700), one per cluster whichever
// database harden connects through — named from the data directory's real
// path and the cluster's system identifier (a standby restored from the
// primary's backup shares the identifier, not the directory).
//
// Never in the data directory: the cluster's OS user (postgres, which runs
// the server and whatever a superuser's COPY ... TO PROGRAM runs) can
// replace anything there, and harden, as root, restores and removes what
// the journal names. A root-owned 0600 file there also breaks pg_basebackup
// and pg_rewind of the cluster.
func clusterJournal(ctx context.Context, db *pgx.Conn, dataDir string) (journal, lock string, err error) {
	var sysid string
	if err := db.QueryRow(ctx, "SELECT system_identifier::text FROM pg_control_system()").Scan(&sysid); err != nil {
		return "", "", fmt.Errorf("read the cluster's system identifier (pg_control_system): %w", err)
	}
	real, err := filepath.EvalSymlinks(dataDir)
	if err != nil {
		return "", "", fmt.Errorf("resolve the data directory: %w", err)
	}
	return applykit.TargetPaths("", "postgres", real, sysid)
}

// legacyJournal and legacyLock are where harden kept them before, in the
// data directory.
const (
	legacyJournal = "harden-apply.journal"
	legacyLock    = "harden-apply.lock"
)

// legacyFiles deals with what an earlier harden left in the data
// directory: the lock (an empty file, root's: it breaks pg_basebackup and
// pg_rewind) is removed when remove is set (apply, under the new lock); a
// journal there is never read — the cluster's OS user could have written
// it — but reported, for the operator to inspect and remove.
func legacyFiles(l *liveState, remove bool, ds *sdk.Diagnostics) {
	if remove {
		applykit.AsOwner(l.Owner, func() error { return os.Remove(filepath.Join(l.DataDir, legacyLock)) })
	}
	p := filepath.Join(l.DataDir, legacyJournal)
	if _, err := os.Lstat(p); err == nil {
		ds.Add(sdk.Diagnostic{Severity: sdk.Warning, Source: sdk.SourceTarget, Code: "postgres.apply.legacy_journal",
			Summary: "an apply journal of an earlier harden is in the data directory: " + p,
			Detail:  "harden no longer reads a journal there (the cluster's OS user can write it); inspect it, restore what it names by hand if that run was interrupted, then remove it"})
	}
}

// allowedFiles are the only files a journal of this cluster may name: the
// live rules files, postgresql.auto.conf and the certificate paths. Any
// other path in a journal is refused, never restored or removed.
func allowedFiles(l *liveState, certDir string) func(string) bool {
	p := newCertPaths(l.DataDir, certDir)
	ok := map[string]bool{}
	for _, f := range []string{l.HBAFile, l.IdentFile, l.AutoConf, p.Cert, p.Key, p.CA, p.CRL} {
		ok[filepath.Clean(f)] = true
	}
	return func(path string) bool { return ok[path] }
}

// rollbackTimeout bounds a rollback after Ctrl-C: it runs on a context the
// host's Stop does not cancel, and must still end.
const rollbackTimeout = 30 * time.Second

// Step names, recorded in the journal as its phase and used by the fault
// hooks. Apply passes them in this order.
const (
	stepBegun      = "begun"         // journal written, nothing changed yet
	stepCertFile   = "cert-file"     // after the first certificate file
	stepFiles      = "files-written" // every certificate file in place
	stepSetting    = "setting"       // after the first ALTER SYSTEM
	stepSettings   = "settings"      // every setting in postgresql.auto.conf
	stepIdent      = "ident"         // pg_ident.conf in place
	stepHBA        = "hba"           // pg_hba.conf in place: everything staged
	stepReloading  = "reloading"     // everything staged, the reload comes next
	stepReloadSent = "reload-sent"   // pg_reload_conf() sent, not confirmed
	stepConfirmed  = "confirmed"     // new config live and harden logs in
	stepRestored   = "restored"      // backups restored, the reload comes next (rollback, recovery)
	stepRecovered  = "recovered"     // an interrupted run's backups restored
)

// stepHook lets unit tests act at a step (e.g. cancel the context as the
// host's Stop does on Ctrl-C).
var stepHook func(step string)

// atStep marks a step boundary: the journal's phase (when given), the
// fault hook (HARDEN_CRASH_AT=postgres:<step>, applykit.Crash) and the
// unit tests' hook, then whether the request was cancelled meanwhile.
func atStep(ctx context.Context, j *applykit.Journal, step string) error {
	if j != nil {
		if err := j.SetPhase(step); err != nil {
			return err
		}
	}
	applykit.Crash("postgres", step)
	if stepHook != nil {
		stepHook(step)
	}
	return context.Cause(ctx)
}

// notices is what plan and verify say about the cluster's journal.
func notices(journal, lock string) applykit.Notices {
	return applykit.Notices{Plugin: "postgres", Journal: journal, Lock: lock,
		PlanNext:   "harden apply will recover",
		PlanDetail: "the on-disk configuration may be partly new: apply restores that run's backups, reloads, then applies the policy",
		Change:     sdk.Change{Description: "restore its backups, reload and confirm harden's login"},
		// While a journal is there, what verify observes is not a
		// confirmed configuration: an error (the checks still run).
		VerifyErrors: true, VerifyDetail: "the on-disk configuration is unconfirmed — run harden apply to recover"}
}

// planJournal adds what plan must say about a journal: never "nothing to
// apply" while an interrupted run's files may be on disk.
func planJournal(journal, lock string, r *sdk.PlanResponse) { notices(journal, lock).Plan(r) }

// verifyJournal: while a journal is there, what verify observes is not a
// confirmed configuration; say so as an error (the checks still run).
func verifyJournal(ctx context.Context, db *pgx.Conn, r *sdk.VerifyResponse) {
	var dataDir string
	if err := db.QueryRow(ctx, "SELECT current_setting('data_directory')").Scan(&dataDir); err != nil {
		return // not readable for this role: nothing to say
	}
	if _, err := os.Stat(dataDir); err != nil {
		return // verify runs away from the server's files
	}
	journal, lock, err := clusterJournal(ctx, db, dataDir)
	if err != nil {
		return // not this cluster's applier (no superuser): nothing to say
	}
	notices(journal, lock).Verify(&r.Diagnostics)
}

// sweepDirs removes what a killed run's writes left behind in the
// directories apply writes to (under the lock), as their owner.
func sweepDirs(owner os.FileInfo, dirs ...string) []string {
	seen := map[string]bool{}
	var removed []string
	for _, d := range dirs {
		if d == "" || seen[d] {
			continue
		}
		seen[d] = true
		got, _ := applykit.SweepTempsAs(d, owner)
		removed = append(removed, got...)
	}
	return removed
}

// restoreAndReload puts the journal's backups back and reloads; the journal
// is removed only when both worked (else the next apply retries). It
// returns what it restored and, on failure, a sentence true to what
// happened.
func restoreAndReload(ctx context.Context, j *applykit.Journal, db *pgx.Conn, c connection, q sdk.RequestContext, force bool) (*pgx.Conn, error) {
	var paths []string
	for _, f := range j.State.Files {
		paths = append(paths, f.Path)
	}
	if errs := j.RestoreWith(applykit.RestoreOptions{Force: force, Ours: autoConfOurs(j.State)}); len(errs) > 0 {
		err := errors.Join(errs...)
		if errors.Is(err, applykit.ErrChanged) {
			return db, fmt.Errorf("restored nothing, every file is as it is now (journal %s kept): %w", j.Path(), err)
		}
		return db, fmt.Errorf("could not restore every file (journal %s kept; the next harden apply retries): %w", j.Path(), err)
	}
	atStep(context.Background(), nil, stepRestored) // fault hook only: a rollback goes on

	waitPastModification(ctx, paths...)
	db, err := liveConn(ctx, db, c, q)
	if err == nil {
		err = reload(ctx, db)
	}
	if err != nil {
		return db, fmt.Errorf("restored the previous files but could not reload them (journal %s kept; the next harden apply retries): %w", j.Path(), err)
	}
	if err := j.Done(); err != nil {
		return db, fmt.Errorf("restored the previous files and reloaded, but: %w", err)
	}
	return db, nil
}

// liveConn returns db when it still answers (a cancelled query closes a pgx
// connection), else a new management connection.
func liveConn(ctx context.Context, db *pgx.Conn, c connection, q sdk.RequestContext) (*pgx.Conn, error) {
	if db != nil && !db.IsClosed() && db.Ping(ctx) == nil {
		return db, nil
	}
	if db != nil {
		db.Close(context.Background())
	}
	return connect(ctx, c, q)
}

// reload asks the server to reload and waits until this session sees it.
func reload(ctx context.Context, db *pgx.Conn) error {
	var before time.Time
	if err := db.QueryRow(ctx, "SELECT pg_conf_load_time()").Scan(&before); err != nil {
		return err
	}
	if _, err := db.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return err
	}
	return waitForReload(ctx, db, before)
}

// recoverInterrupted finishes what a killed run left: restores its
// backups, reloads, and confirms that harden still logs in.
func recoverInterrupted(ctx context.Context, j *applykit.Journal, db *pgx.Conn, c connection, q sdk.RequestContext, force bool) (*pgx.Conn, error) {
	what := applykit.Describe(j.State)
	db, err := restoreAndReload(ctx, j, db, c, q, force)
	if err != nil {
		return db, fmt.Errorf("%s; recovering: %w", what, err)
	}
	again, err := connect(ctx, c, q)
	if err != nil {
		return db, fmt.Errorf("%s; restored its backups and reloaded, but harden cannot log in: %w", what, err)
	}
	again.Close(context.Background())
	return db, atStep(ctx, nil, stepRecovered)
}

// restoredList names the files a rollback restored, for the message.
func restoredList(j *applykit.Journal) string {
	var names []string
	for _, f := range j.State.Files {
		names = append(names, filepath.Base(f.Path))
	}
	if len(names) == 0 {
		return "nothing had changed"
	}
	return "every file is as it was: " + strings.Join(names, ", ")
}
