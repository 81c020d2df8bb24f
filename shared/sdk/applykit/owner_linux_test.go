//go:build linux

package applykit

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// nobody is the unprivileged owner the tests give a directory, standing for
// the service's OS user (postgres) who may plant symlinks in it.
const nobody = 65534

// hostileTree, as root: a world-traversable base with
//   - owned/   a directory owned by nobody (the service's directory), and
//   - victim/  a root-owned 0755 directory (standing for /etc) holding
//     secret, a root-only 0600 file (standing for /etc/shadow).
//
// It returns the owned directory, its FileInfo, victim and the secret path.
func hostileTree(t *testing.T) (owned string, owner os.FileInfo, victim, secret string) {
	t.Helper()
	if os.Geteuid() != 0 {
		failOrSkip(t, "needs root (the fsuid switch is what is tested)")
	}
	base, err := os.MkdirTemp("", "applykit-owner-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	owned, victim = filepath.Join(base, "owned"), filepath.Join(base, "victim")
	for _, d := range []string{owned, victim} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(owned, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	secret = filepath.Join(victim, "secret")
	if err := os.WriteFile(secret, []byte("root only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	owner, err = os.Stat(owned)
	if err != nil {
		t.Fatal(err)
	}
	return owned, owner, victim, secret
}

func failOrSkip(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func requireVictimUntouched(t *testing.T, victim, secret string) {
	t.Helper()
	if names := entries(t, victim); len(names) != 1 || names[0] != "secret" {
		t.Errorf("victim directory now holds %v", names)
	}
	st, err := os.Stat(victim)
	if err != nil {
		t.Fatal(err)
	}
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 0 || sys.Gid != 0 {
		t.Errorf("victim directory now owned by %d:%d", sys.Uid, sys.Gid)
	}
	if got, err := os.ReadFile(secret); err != nil || string(got) != "root only\n" {
		t.Errorf("secret now %q, %v", got, err)
	}
}

func requireEACCES(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("%s: got %v, want a permission error", what, err)
	}
}

// C2/C1(c): the service user swaps a directory harden writes into for a
// symlink to a root-owned one. As root, WriteFile and MkdirAll with the
// directory's owner must not write there; in the owner's own directory
// they work and what they create is the owner's without a chown.
func TestWriteFileAndMkdirAsOwnerRefuseAPlantedSymlink(t *testing.T) {
	owned, owner, victim, secret := hostileTree(t)
	link := filepath.Join(owned, "harden")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	requireEACCES(t, "WriteFile through the symlink", WriteFile(filepath.Join(link, "server.key"), []byte("key"), 0o600, owner))
	requireEACCES(t, "MkdirAll through the symlink", MkdirAll(filepath.Join(link, "sub"), 0o700, owner))
	requireEACCES(t, "WriteFile over the secret's name", WriteFile(filepath.Join(link, "secret"), []byte("x"), 0o600, owner))
	requireVictimUntouched(t, victim, secret)

	dir := filepath.Join(owned, "certs", "a")
	if err := MkdirAll(dir, 0o700, owner); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "server.key")
	if err := WriteFile(f, []byte("key"), 0o600, owner); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(owned, "certs"), dir, f} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if sys := st.Sys().(*syscall.Stat_t); sys.Uid != nobody || sys.Gid != nobody {
			t.Errorf("%s owned by %d:%d, want %d:%d", p, sys.Uid, sys.Gid, nobody, nobody)
		}
	}
	requireRootIdentity(t)
}

// requireRootIdentity: after the switches, this goroutine's thread (and any
// the runtime reuses) is root again with root's groups.
func requireRootIdentity(t *testing.T) {
	t.Helper()
	for i := 0; i < 8; i++ {
		done := make(chan [2]int)
		go func() {
			prevUID, _ := unix.SetfsuidRetUid(-1)
			prevGID, _ := unix.SetfsgidRetGid(-1)
			done <- [2]int{prevUID, prevGID}
		}()
		if got := <-done; got != [2]int{0, 0} {
			t.Fatalf("a thread kept fsuid/fsgid %v", got)
		}
	}
	if err := os.WriteFile(filepath.Join(t.TempDir(), "root-can"), nil, 0o600); err != nil {
		t.Fatalf("root cannot write its own temp dir any more: %v", err)
	}
}

// C1(c): a journal entry for a file that did not exist, in the service's
// directory, now reached through a planted symlink: Restore (as the
// recorded identity) must not remove root's file.
func TestRestoreAsOwnerRefusesAPlantedSymlink(t *testing.T) {
	owned, owner, victim, secret := hostileTree(t)
	sub := filepath.Join(owned, "harden")
	if err := MkdirAll(sub, 0o700, owner); err != nil {
		t.Fatal(err)
	}
	j, err := Begin(filepath.Join(t.TempDir(), "j"), State{Phase: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Replace(filepath.Join(sub, "secret"), []byte("root only\n"), 0o600, owner); err != nil {
		t.Fatal(err)
	}
	if f := j.State.Files[0]; f.AsUID != nobody || f.AsGID != nobody || f.Existed {
		t.Fatalf("recorded %+v", f)
	}
	// The service user swaps the directory for a symlink to victim, where
	// root's file happens to hold exactly what harden wrote.
	if err := os.RemoveAll(sub); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, sub); err != nil {
		t.Fatal(err)
	}
	k, err := Open(j.Path())
	if err != nil {
		t.Fatal(err)
	}
	errs := k.Restore()
	if len(errs) != 1 {
		t.Fatalf("Restore: %v", errs)
	}
	requireEACCES(t, "Restore", errs[0])
	requireVictimUntouched(t, victim, secret)
	requireRootIdentity(t)
}

// M1: the service user flips its file between a regular file and a symlink
// to a root-only file while harden backs it up. No backup may ever hold the
// root-only content (before: Lstat saw the regular file, ReadFile followed
// the symlink, and the copy was written with the Lstat owner).
func TestBackupNeverCopiesThroughASwappedSymlink(t *testing.T) {
	owned, _, _, secret := hostileTree(t)
	path := filepath.Join(owned, "postgresql.auto.conf")
	stop := make(chan struct{})
	flipped := make(chan struct{})
	go func() {
		defer close(flipped)
		regular, link := filepath.Join(owned, "r"), filepath.Join(owned, "l")
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			os.WriteFile(regular, []byte("mine\n"), 0o600)
			os.Chown(regular, nobody, nobody)
			os.Rename(regular, path)
			os.Symlink(secret, link)
			os.Rename(link, path)
		}
	}()
	deadline := time.Now().Add(1500 * time.Millisecond)
	jdir := t.TempDir()
	n := 0
	for ; time.Now().Before(deadline); n++ {
		j, err := Begin(filepath.Join(jdir, "j"), State{Phase: "p"})
		if err != nil {
			t.Fatal(err)
		}
		j.Backup(path)
		j.Done()
	}
	close(stop)
	<-flipped
	for _, name := range entries(t, owned) {
		if !strings.Contains(name, backupInfix) {
			continue
		}
		if got, _ := os.ReadFile(filepath.Join(owned, name)); strings.Contains(string(got), "root only") {
			t.Fatalf("backup %s holds the root-only file's content (%d backups tried)", name, n)
		}
	}
	t.Logf("%d backups", n)
}

// The same with BackupAs (the postgres plugin's way): the whole backup runs
// as the owner, so even a symlinked directory leads nowhere.
func TestBackupAsOwnerRefusesASymlinkedDirectory(t *testing.T) {
	owned, owner, victim, secret := hostileTree(t)
	link := filepath.Join(owned, "harden")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	j, err := Begin(filepath.Join(t.TempDir(), "j"), State{Phase: "p"})
	if err != nil {
		t.Fatal(err)
	}
	requireEACCES(t, "BackupAs", j.BackupAs(filepath.Join(link, "secret"), owner))
	if len(j.State.Files) != 0 {
		t.Errorf("recorded %+v", j.State.Files)
	}
	requireVictimUntouched(t, victim, secret)
}

// A file owned by the service's user in a directory only root controls
// (a kafka-owned server.properties in a root-owned /etc/kafka): the user
// cannot rearrange anything there, so root writes, backs up and restores
// it and gives the result to its owner — as that user it could not even
// create the temporary file.
func TestRootControlledDirectoryKeepsRootsRights(t *testing.T) {
	_, _, victim, _ := hostileTree(t)
	path := filepath.Join(victim, "server.properties")
	if err := os.WriteFile(path, []byte("old\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	ref, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	j, err := Begin(filepath.Join(t.TempDir(), "j"), State{Phase: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Replace(path, []byte("new\n"), 0o640, ref); err != nil {
		t.Fatal(err)
	}
	requireOwner := func(p string, uid uint32) {
		t.Helper()
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Sys().(*syscall.Stat_t).Uid; got != uid {
			t.Errorf("%s owned by %d, want %d", p, got, uid)
		}
	}
	requireOwner(path, nobody)
	requireOwner(j.State.Files[0].Backup, nobody)
	if errs := j.Restore(); len(errs) > 0 {
		t.Fatal(errs)
	}
	if got, _ := os.ReadFile(path); string(got) != "old\n" {
		t.Errorf("restored %q", got)
	}
	requireOwner(path, nobody)
	dir := filepath.Join(victim, "certs", "a")
	if err := MkdirAll(dir, 0o700, ref); err != nil {
		t.Fatal(err)
	}
	requireOwner(filepath.Join(victim, "certs"), nobody)
	requireOwner(dir, nobody)
	requireOwner(victim, 0)
	requireRootIdentity(t)
}

// Without an owner (or with root as the owner), work in a directory
// another user controls is done as that user: a new file or a root-owned
// one written, backed up or restored through the symlink it planted is
// EACCES, and what is written in its own directory is its.
func TestNoOwnerInAUserControlledDirectoryActsAsThatUser(t *testing.T) {
	owned, _, victim, secret := hostileTree(t)
	link := filepath.Join(owned, "conf")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	requireEACCES(t, "WriteFile without owner", WriteFile(filepath.Join(link, "cron"), []byte("* * * * * root sh\n"), 0o644, nil))
	root, err := os.Stat(victim)
	if err != nil {
		t.Fatal(err)
	}
	requireEACCES(t, "WriteFile with a root owner", WriteFile(filepath.Join(link, "cron"), []byte("x"), 0o644, root))
	j, err := Begin(filepath.Join(t.TempDir(), "j"), State{Phase: "p"})
	if err != nil {
		t.Fatal(err)
	}
	requireEACCES(t, "Backup of a root-only file", j.Backup(filepath.Join(link, "secret")))
	requireVictimUntouched(t, victim, secret)

	f := filepath.Join(owned, "server.properties")
	if err := WriteFile(f, []byte("a=b\n"), 0o644, nil); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(f); st.Sys().(*syscall.Stat_t).Uid != nobody {
		t.Errorf("written as %d, want %d", st.Sys().(*syscall.Stat_t).Uid, nobody)
	}
	requireRootIdentity(t)
}
