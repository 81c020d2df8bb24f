package applykit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestJournalRoundTrip(t *testing.T) {
	dir := t.TempDir()
	jp := filepath.Join(dir, "harden-apply.journal")
	if j, err := Open(jp); j != nil || err != nil {
		t.Fatalf("Open without a journal: %v, %v", j, err)
	}
	started := time.Date(2026, 12, 1, 11, 0, 0, 123, time.UTC)
	j, err := Begin(jp, State{Plugin: "postgres", Target: "db1", Started: started, Phase: "prepared",
		Intent: []string{"pg_hba.conf: TLS only"}, Data: map[string]string{"old:ssl": "off"}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "pg_hba.conf")
	if err := os.WriteFile(file, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := j.Replace(file, []byte("new"), 0o600, nil); err != nil {
		t.Fatal(err)
	}
	if err := j.SetPhase("files-written"); err != nil {
		t.Fatal(err)
	}
	got, err := Open(jp)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.State, j.State) {
		t.Fatalf("re-opened state differs:\n got %+v\nwant %+v", got.State, j.State)
	}
	s := got.State
	if s.Version != Version || s.PID != os.Getpid() || s.Phase != "files-written" || !s.Started.Equal(started) {
		t.Errorf("header %+v", s)
	}
	if len(s.Files) != 1 || !s.Files[0].Existed || s.Files[0].Mode != 0o640 || s.Files[0].NewSHA256 == "" ||
		!strings.HasPrefix(s.Files[0].Backup, file+".harden-backup-") {
		t.Fatalf("files %+v", s.Files)
	}
	st, err := os.Stat(jp)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("journal mode: %v, %v", st.Mode(), err)
	}
	assertNoTemps(t, dir)
	if err := got.Done(); err != nil {
		t.Fatal(err)
	}
	if j, err := Open(jp); j != nil || err != nil {
		t.Fatalf("Open after Done: %v, %v", j, err)
	}
	if _, err := os.Stat(s.Files[0].Backup); err != nil {
		t.Errorf("Done removed the backup: %v", err)
	}
}

func TestBeginTwiceIsErrExists(t *testing.T) {
	jp := filepath.Join(t.TempDir(), "j")
	if _, err := Begin(jp, State{Phase: "prepared"}); err != nil {
		t.Fatal(err)
	}
	if _, err := Begin(jp, State{Phase: "prepared"}); !errors.Is(err, ErrExists) {
		t.Fatalf("second Begin: got %v, want ErrExists", err)
	}
}

func TestRestore(t *testing.T) {
	dir := t.TempDir()
	j, err := Begin(filepath.Join(dir, "j"), State{Phase: "prepared"})
	if err != nil {
		t.Fatal(err)
	}
	existed := filepath.Join(dir, "existed.conf")
	created := filepath.Join(dir, "created.key")
	if err := os.WriteFile(existed, []byte("old content\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := j.Replace(existed, []byte("new content\n"), 0o600, nil); err != nil {
		t.Fatal(err)
	}
	// A second backup of the same path keeps the first (the pre-run state).
	if err := j.Replace(existed, []byte("newer\n"), 0o600, nil); err != nil {
		t.Fatal(err)
	}
	if err := j.Replace(created, []byte("key"), 0o600, nil); err != nil {
		t.Fatal(err)
	}
	if len(j.State.Files) != 2 || j.State.Files[1].Existed {
		t.Fatalf("files %+v", j.State.Files)
	}
	// Restore from the journal as a later process would read it.
	k, err := Open(j.Path())
	if err != nil {
		t.Fatal(err)
	}
	if errs := k.Restore(); len(errs) > 0 {
		t.Fatal(errs)
	}
	got, err := os.ReadFile(existed)
	if err != nil || string(got) != "old content\n" {
		t.Fatalf("existed: %q, %v", got, err)
	}
	if st, _ := os.Stat(existed); st.Mode().Perm() != 0o640 {
		t.Errorf("restored mode %v, want 0640", st.Mode().Perm())
	}
	if _, err := os.Stat(created); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file that did not exist before is still there: %v", err)
	}
	// Idempotent: a second Restore (a run killed during the first) is fine.
	if errs := k.Restore(); len(errs) > 0 {
		t.Fatal(errs)
	}
	assertNoTemps(t, dir)
}

func TestRestoreRefusesTamperedBackup(t *testing.T) {
	dir := t.TempDir()
	j, err := Begin(filepath.Join(dir, "j"), State{Phase: "prepared"})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "f")
	os.WriteFile(f, []byte("old"), 0o600)
	if err := j.Replace(f, []byte("new"), 0o600, nil); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(j.State.Files[0].Backup, []byte("tampered"), 0o600)
	errs := j.Restore()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "does not hold the recorded content") {
		t.Fatalf("Restore: %v", errs)
	}
	if got, _ := os.ReadFile(f); string(got) != "new" {
		t.Fatalf("file changed to %q", got)
	}
}

func TestOpenRefusesHostileJournal(t *testing.T) {
	sha := strings.Repeat("a", 64)
	cases := map[string]string{
		"not json":           "{",
		"unknown field":      `{"version":1,"evil":1}`,
		"wrong version":      `{"version":2}`,
		"relative path":      `{"version":1,"files":[{"path":"x","existed":false}]}`,
		"backup elsewhere":   `{"version":1,"files":[{"path":"/d/f","backup":"/etc/shadow","existed":true,"old_sha256":"` + sha + `"}]}`,
		"backup in subdir":   `{"version":1,"files":[{"path":"/d/f","backup":"/d/f.harden-backup-x/y","existed":true,"old_sha256":"` + sha + `"}]}`,
		"no sha":             `{"version":1,"files":[{"path":"/d/f","backup":"/d/f.harden-backup-x","existed":true}]}`,
		"backup of new file": `{"version":1,"files":[{"path":"/d/f","backup":"/d/f.harden-backup-x","existed":false}]}`,
		"trailing":           `{"version":1} {}`,
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			jp := filepath.Join(t.TempDir(), "j")
			os.WriteFile(jp, []byte(text), 0o600)
			if j, err := Open(jp); err == nil {
				t.Fatalf("Open accepted %q: %+v", text, j.State)
			}
		})
	}
}

// FuzzOpen: a corrupt or hostile journal never panics, and whatever Open
// accepts re-encodes and re-opens to the same state. Open is a file read
// (bounded) plus decodeState; the fuzz loop drives decodeState directly so
// that it runs thousands of inputs a second instead of fsyncing each.
func FuzzOpen(f *testing.F) {
	f.Add([]byte(`{"version":1,"plugin":"postgres","phase":"prepared","started":"2026-12-01T11:00:00Z","files":[{"path":"/d/f","backup":"/d/f.harden-backup-1","existed":true,"mode":384,"uid":1,"gid":1,"old_sha256":"` + strings.Repeat("0", 64) + `"}],"data":{"a":"b"}}`))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"files":[{"path":"/x","existed":false}]}`))
	f.Add([]byte("\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeState(data)
		if err != nil {
			return
		}
		j := &Journal{State: s}
		first, err := j.encode()
		if err != nil {
			return // e.g. a year past 9999: Save refuses it too
		}
		s2, err := decodeState(first)
		if err != nil {
			t.Fatalf("re-open of an accepted journal: %v\n%s", err, first)
		}
		second, err := (&Journal{State: s2}).encode()
		if err != nil || !bytes.Equal(first, second) {
			t.Fatalf("re-encoded journal differs:\n%s\n%s", first, second)
		}
	})
}

// Open on disk goes through the same decodeState, and Save's output opens.
func TestOpenSaveReopen(t *testing.T) {
	jp := filepath.Join(t.TempDir(), "j")
	j, err := Begin(jp, State{Phase: "p", Data: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Save(); err != nil {
		t.Fatal(err)
	}
	k, err := Open(jp)
	if err != nil || !reflect.DeepEqual(k.State, j.State) {
		t.Fatalf("%v %+v %+v", err, k, j.State)
	}
	big := filepath.Join(t.TempDir(), "big")
	os.WriteFile(big, bytes.Repeat([]byte(" "), maxJournal+2), 0o600)
	if _, err := Open(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversized journal: %v", err)
	}
}
