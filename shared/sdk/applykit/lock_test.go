package applykit

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLockTwiceIsErrLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "apply.lock")
	unlock, err := Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	// A second open file description conflicts even in one process.
	if _, err := Lock(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock: got %v, want ErrLocked", err)
	}
	unlock()
	unlock2, err := Lock(path)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlock2()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode %v, want 0600", st.Mode().Perm())
	}
}

func TestLockRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere")
	link := filepath.Join(dir, "apply.lock")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(link); err == nil {
		t.Fatal("Lock followed a symlink")
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the symlink's target was created: %v", err)
	}
}

// TestLockHelperProcess is the child of TestLockReleasedWhenHolderKilled.
func TestLockHelperProcess(t *testing.T) {
	path := os.Getenv("APPLYKIT_LOCK_HELPER")
	if path == "" {
		return // only the child of TestLockReleasedWhenHolderKilled does anything
	}
	if _, err := Lock(path); err != nil {
		os.Stdout.WriteString("error " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString("locked\n")
	time.Sleep(time.Minute)
	os.Exit(0)
}

func TestLockReleasedWhenHolderKilled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "apply.lock")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
	cmd.Env = append(os.Environ(), "APPLYKIT_LOCK_HELPER="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("child: %q, %v", line, err)
	}
	if _, err := Lock(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("Lock while the child holds it: got %v, want ErrLocked", err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	unlock, err := Lock(path)
	if err != nil {
		t.Fatalf("Lock after the holder was killed: %v", err)
	}
	unlock()
}

// The first apply of a user finds no state directory: Lock makes it (0700).
// It failed with "no such file or directory" once plan and verify stopped
// creating it.
func TestLockCreatesItsDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home", ".local", "state", "harden", "journal")
	unlock, err := Lock(filepath.Join(dir, "postgres-x.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("state directory: %v %v", err, st)
	}
}

// A lock (and journal) directory others can change is refused: a
// pre-existing group-writable /var/lib/harden would let them plant a
// journal (it was trusted: review).
func TestLockRefusesADirectoryOthersCanChange(t *testing.T) {
	base := t.TempDir()
	open := filepath.Join(base, "shared")
	os.Mkdir(open, 0o700)
	os.Chmod(open, 0o775)
	if _, err := Lock(filepath.Join(open, "journal", "x.lock")); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Fatalf("a group-writable directory: %v", err)
	}
	if os.Geteuid() == 0 {
		other := filepath.Join(base, "other")
		os.Mkdir(other, 0o700)
		os.Chown(other, 65534, 65534)
		if _, err := Lock(filepath.Join(other, "x.lock")); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
			t.Fatalf("a directory of another user: %v", err)
		}
	}
	unlock, err := Lock(filepath.Join(base, "private", "x.lock"))
	if err != nil {
		t.Fatalf("a private directory under /tmp (sticky) refused: %v", err)
	}
	unlock()
}
