package main

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/testenv"
)

// These tests run as root against a real PostgreSQL running as the OS
// user postgres, and act as that user would after taking over the server
// (COPY ... TO PROGRAM runs as it): it owns the data directory and can put
// anything there.

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		failOrSkip(t, "needs root: the escalation from the cluster's OS user to root is what is tested")
	}
}

// rootOnlyDir is a root-owned 0755 directory (standing for /etc) holding
// a root-only file (standing for /etc/shadow).
func rootOnlyDir(t *testing.T) (dir, secret string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "harden-victim-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	secret = filepath.Join(dir, "shadow")
	if err := os.WriteFile(secret, []byte("root:x:0:0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, secret
}

func requireUntouched(t *testing.T, dir, secret string) {
	t.Helper()
	es, _ := os.ReadDir(dir)
	if len(es) != 1 {
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		t.Errorf("%s now holds %v", dir, names)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 0 {
		t.Errorf("%s now owned by uid %d", dir, sys.Uid)
	}
	if got, err := os.ReadFile(secret); err != nil || string(got) != "root:x:0:0\n" {
		t.Errorf("%s now %q, %v", secret, got, err)
	}
}

// requireNothingRootOwned: M2 — a root-owned file in the data directory
// (the 0600 journal and lock were) breaks pg_basebackup and pg_rewind.
func requireNothingRootOwned(t *testing.T, dataDir string) {
	t.Helper()
	filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if sys := info.Sys().(*syscall.Stat_t); sys.Uid == 0 {
			t.Errorf("root-owned in the data directory: %s", p)
		}
		return nil
	})
}

func errorCodes(ds sdk.Diagnostics) []string {
	var out []string
	for _, d := range ds {
		if d.Severity == sdk.Error {
			out = append(out, d.Code+": "+d.Error())
		}
	}
	return out
}

// C1 and M2: the postgres user plants a journal where harden kept it (the
// data directory), naming a root-only file as created by the apply. harden
// no longer reads a journal there (before: the next apply "recovered" it
// and removed the file), and after an apply nothing in the data directory
// is root's.
func TestApplyIgnoresAJournalPlantedInTheDataDirectory(t *testing.T) {
	requireRoot(t)
	pg := testenv.PostgresForTest(t)
	dir, secret := rootOnlyDir(t)
	planted := `{"version":1,"plugin":"postgres","target":"pg","phase":"hba","files":[{"path":"` + secret + `","existed":false}]}`
	if _, err := pg.InstallFile("harden-apply.journal", []byte(planted), 0o600); err != nil {
		t.Fatal(err)
	}
	var r sdk.ApplyResponse
	postgres{}.Apply(context.Background(), sdk.ApplyRequest{RequestContext: request(t, pg, `{}`, false)}, &r)
	if r.Diagnostics.HasError() || len(r.Applied) == 0 || strings.HasPrefix(r.Applied[0].Resource, "journal:") {
		t.Fatalf("apply: %v %+v", errorCodes(r.Diagnostics), r.Applied)
	}
	requireUntouched(t, dir, secret)
	os.Remove(filepath.Join(pg.DataDir, "harden-apply.journal"))
	requireNothingRootOwned(t, pg.DataDir)
	if st, err := os.Stat(filepath.Join(pg.DataDir, "harden", "server.key")); err != nil || st.Sys().(*syscall.Stat_t).Uid == 0 || st.Mode().Perm() != 0o600 {
		t.Errorf("server.key: %v %v", st, err)
	}
}

// C1(b): even in harden's own state directory, a journal naming a file
// this cluster's apply does not write is refused, naming it; nothing is
// changed.
func TestApplyRefusesAJournalNamingAnotherFile(t *testing.T) {
	requireRoot(t)
	pg := testenv.PostgresForTest(t)
	dir, secret := rootOnlyDir(t)
	journal, _ := journalOf(t, pg)
	planted := `{"version":1,"plugin":"postgres","target":"pg","phase":"hba","files":[{"path":"` + secret + `","existed":false}]}`
	os.MkdirAll(filepath.Dir(journal), 0o700) // the state directory, as a first lock makes it
	if err := os.WriteFile(journal, []byte(planted), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(journal) })
	old := takeSnapshot(t, pg)
	var r sdk.ApplyResponse
	postgres{}.Apply(context.Background(), sdk.ApplyRequest{RequestContext: request(t, pg, `{}`, false)}, &r)
	errs := errorCodes(r.Diagnostics)
	if len(errs) != 1 || !strings.HasPrefix(errs[0], "postgres.apply.journal: ") || !strings.Contains(errs[0], secret) || !strings.Contains(errs[0], "does not write") {
		t.Fatalf("apply: %v", errs)
	}
	requireUntouched(t, dir, secret)
	if now := takeSnapshot(t, pg); string(now.hba) != string(old.hba) || string(now.auto) != string(old.auto) {
		t.Errorf("files changed")
	}
}

// C2: the postgres user replaces the certificate directory ($PGDATA/harden)
// with a symlink to a root-owned directory. Before: root created nothing
// (it existed), chowned the target to postgres and wrote server.key into
// it. Now apply writes as postgres: refused, rolled back, the target as it
// was.
func TestApplyRefusesACertDirectorySymlink(t *testing.T) {
	requireRoot(t)
	pg := testenv.PostgresForTest(t)
	dir, secret := rootOnlyDir(t)
	owner, err := os.Stat(pg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	st := owner.Sys().(*syscall.Stat_t)
	link := filepath.Join(pg.DataDir, "harden")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, int(st.Uid), int(st.Gid)); err != nil {
		t.Fatal(err)
	}
	old := takeSnapshot(t, pg)
	var r sdk.ApplyResponse
	postgres{}.Apply(context.Background(), sdk.ApplyRequest{RequestContext: request(t, pg, `{}`, false)}, &r)
	errs := errorCodes(r.Diagnostics)
	if len(errs) != 1 || !strings.HasPrefix(errs[0], "postgres.apply.files: ") || !strings.Contains(errs[0], "permission denied") || !strings.Contains(errs[0], "rolled back") {
		t.Fatalf("apply: %v %+v", errs, r.Applied)
	}
	requireUntouched(t, dir, secret)
	if now := takeSnapshot(t, pg); string(now.hba) != string(old.hba) || string(now.auto) != string(old.auto) {
		t.Errorf("files changed")
	}
	if journal, _ := journalOf(t, pg); fileExists(journal) {
		t.Errorf("journal left: %s", journal)
	}
}

// M4: after a kill, somebody changes a file the killed run had changed.
// The next apply does not overwrite it: it fails naming the file and
// asking for --force, and keeps the journal; apply --force then restores
// the backups and applies. Before: the backup silently replaced the change.
func TestApplyRecoveryKeepsAFileChangedSince(t *testing.T) {
	requireRoot(t)
	pg := testenv.PostgresForTest(t)
	ctx := context.Background()
	admin := adminSocket(t, pg)
	old := takeSnapshot(t, pg)
	journal, _ := journalOf(t, pg)
	rc := request(t, pg, `{}`, false)
	cases := []struct {
		crashAt, file string
		change        func(t *testing.T)
	}{
		{stepHBA, "pg_hba.conf", func(t *testing.T) {
			hba := filepath.Join(pg.DataDir, "pg_hba.conf")
			text, err := os.ReadFile(hba)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pg.InstallFile("pg_hba.conf", append(text, "# the DBA's fix\n"...), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{stepSettings, "postgresql.auto.conf", func(t *testing.T) {
			if _, err := admin.Exec(ctx, "ALTER SYSTEM SET work_mem = '8MB'"); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			restoreOld(t, pg, admin, old)
			if killed, out := runHelper(t, pg, tc.crashAt, 0); !killed {
				t.Fatalf("the helper was not killed at %s: %s", tc.crashAt, out)
			}
			tc.change(t)
			changed, err := os.ReadFile(filepath.Join(pg.DataDir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var r sdk.ApplyResponse
			postgres{}.Apply(ctx, sdk.ApplyRequest{RequestContext: rc}, &r)
			errs := errorCodes(r.Diagnostics)
			if len(errs) != 1 || !strings.HasPrefix(errs[0], "postgres.apply.recover: ") || !strings.Contains(errs[0], filepath.Join(pg.DataDir, tc.file)+": changed since") ||
				!strings.Contains(errs[0], "harden apply --force") || strings.Contains(errs[0], "retries") || len(r.Applied) != 0 {
				t.Fatalf("apply: %v %+v", errs, r.Applied)
			}
			t.Logf("%s", errs[0])
			if now, _ := os.ReadFile(filepath.Join(pg.DataDir, tc.file)); string(now) != string(changed) {
				t.Errorf("%s overwritten", tc.file)
			}
			if !fileExists(journal) {
				t.Fatalf("journal removed after a refused recovery")
			}
			// Nothing else was restored either (the killed run's key stays).
			if !fileExists(filepath.Join(pg.DataDir, "harden", "server.key")) {
				t.Errorf("the killed run's server.key was removed although the recovery was refused")
			}
			var forced sdk.ApplyResponse
			postgres{}.Apply(ctx, sdk.ApplyRequest{RequestContext: rc, Force: true}, &forced)
			if forced.Diagnostics.HasError() || len(forced.Applied) == 0 || !strings.Contains(forced.Applied[0].Description, "recovered") {
				t.Fatalf("apply --force: %v %+v", errorCodes(forced.Diagnostics), forced.Applied)
			}
			if fileExists(journal) {
				t.Errorf("journal left after apply --force")
			}
			requireNothingRootOwned(t, pg.DataDir)
		})
	}
	admin.Exec(ctx, "ALTER SYSTEM RESET work_mem")
}

// M2 for clusters an earlier harden applied: its root-owned 0600 lock in
// the data directory is removed by the next apply; its journal there is
// never read but reported (plan and apply), for the operator.
func TestApplyCleansUpTheLegacyLock(t *testing.T) {
	requireRoot(t)
	pg := testenv.PostgresForTest(t)
	lock, journal := filepath.Join(pg.DataDir, "harden-apply.lock"), filepath.Join(pg.DataDir, "harden-apply.journal")
	for _, p := range []string{lock, journal} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rc := request(t, pg, `{}`, false)
	var plan sdk.PlanResponse
	postgres{}.Plan(context.Background(), sdk.PlanRequest{RequestContext: rc}, &plan)
	if d, ok := diagWithCode(plan.Diagnostics, "postgres.apply.legacy_journal"); !ok || d.Severity != sdk.Warning || !strings.Contains(d.Summary, journal) {
		t.Errorf("plan: %v", plan.Diagnostics)
	}
	var r sdk.ApplyResponse
	postgres{}.Apply(context.Background(), sdk.ApplyRequest{RequestContext: rc}, &r)
	if r.Diagnostics.HasError() || !hasCode(r.Diagnostics, "postgres.apply.legacy_journal") {
		t.Fatalf("apply: %v", r.Diagnostics)
	}
	if fileExists(lock) {
		t.Errorf("the legacy lock is still there")
	}
	if !fileExists(journal) {
		t.Errorf("the legacy journal was removed (it is the operator's to inspect)")
	}
	os.Remove(journal)
	requireNothingRootOwned(t, pg.DataDir)
	// The walsender reads the data directory as postgres: with a root-owned
	// 0600 file in it, pg_basebackup fails with "Permission denied".
	target := t.TempDir()
	out, err := exec.Command(filepath.Join(pg.BinDir, "pg_basebackup"), "-D", filepath.Join(target, "copy"), "-h", pg.SocketDir,
		"-p", strconv.Itoa(pg.Port), "-U", pg.User, "-X", "none", "-c", "fast").CombinedOutput()
	if err != nil {
		t.Errorf("pg_basebackup after apply: %v\n%s", err, out)
	}
}
