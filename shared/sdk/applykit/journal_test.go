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

// C1(b): a planted journal naming a file the plugin does not write (here a
// stand-in for /etc/shadow, "did not exist" so Restore would remove it) is
// refused by OpenAllowed, naming the file, and Restrict keeps Restore and
// Backup to the allowed paths.
func TestOpenAllowedRefusesAPlantedJournal(t *testing.T) {
	dir := t.TempDir()
	shadow := filepath.Join(dir, "shadow")
	os.WriteFile(shadow, []byte("root:x:0:0\n"), 0o600)
	hba := filepath.Join(dir, "pg_hba.conf")
	allow := func(p string) bool { return p == hba }
	jp := filepath.Join(dir, "j")
	os.WriteFile(jp, []byte(`{"version":1,"files":[{"path":"`+shadow+`","existed":false}]}`), 0o600)
	j, err := OpenAllowed(jp, allow)
	if !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), shadow) || j != nil {
		t.Fatalf("OpenAllowed: %v, %v", j, err)
	}
	k, err := Open(jp)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Restrict(allow); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("Restrict: %v", err)
	}
	// Restricted after the fact: Restore still refuses the file.
	k.allow = allow
	if errs := k.Restore(); len(errs) != 1 || !errors.Is(errs[0], ErrNotAllowed) {
		t.Fatalf("Restore: %v", errs)
	}
	if err := k.Backup(shadow); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("Backup: %v", err)
	}
	if got, err := os.ReadFile(shadow); err != nil || string(got) != "root:x:0:0\n" {
		t.Fatalf("shadow now %q, %v", got, err)
	}
	// Without any allowlist, a file that "did not exist" but now holds
	// something harden did not write is not removed either (M4).
	if errs := k.RestoreWith(RestoreOptions{}); len(errs) != 1 {
		t.Fatalf("%v", errs)
	}
	k.allow = nil
	if errs := k.Restore(); len(errs) != 1 || !errors.Is(errs[0], ErrChanged) {
		t.Fatalf("Restore without allowlist: %v", errs)
	}
	if _, err := os.Stat(shadow); err != nil {
		t.Fatalf("shadow removed: %v", err)
	}
}

// M4: a file changed after the interrupted apply (neither the old content
// nor what harden wrote) is left alone with ErrChanged naming it; Force
// restores it; Ours accepts what the plugin recognises as its own change.
func TestRestoreRefusesAFileChangedSince(t *testing.T) {
	dir := t.TempDir()
	j, err := Begin(filepath.Join(dir, "j"), State{Phase: "p"})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "pg_hba.conf")
	created := filepath.Join(dir, "server.key")
	os.WriteFile(f, []byte("old\n"), 0o640)
	if err := j.Replace(f, []byte("new\n"), 0o640, nil); err != nil {
		t.Fatal(err)
	}
	if err := j.Replace(created, []byte("key\n"), 0o600, nil); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(f, []byte("the DBA's fix\n"), 0o640)
	os.WriteFile(created, []byte("another key\n"), 0o600)
	errs := j.Restore()
	if len(errs) != 2 {
		t.Fatalf("Restore: %v", errs)
	}
	for i, p := range []string{created, f} {
		if !errors.Is(errs[i], ErrChanged) || !strings.HasPrefix(errs[i].Error(), "restore "+p+": ") || !strings.Contains(errs[i].Error(), "harden apply --force") {
			t.Errorf("error %d: %v", i, errs[i])
		}
	}
	if got, _ := os.ReadFile(f); string(got) != "the DBA's fix\n" {
		t.Errorf("changed file overwritten: %q", got)
	}
	if got, _ := os.ReadFile(created); string(got) != "another key\n" {
		t.Errorf("changed new file touched: %q", got)
	}
	// One file changed, one as harden wrote it: nothing is touched.
	os.WriteFile(created, []byte("key\n"), 0o600)
	if errs := j.Restore(); len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "restore "+f+": ") {
		t.Fatalf("Restore with one file changed: %v", errs)
	}
	if got, _ := os.ReadFile(created); string(got) != "key\n" {
		t.Errorf("the unchanged file was restored although another one changed: %q", got)
	}
	// What harden wrote is restored without Force.
	os.WriteFile(f, []byte("new\n"), 0o640)
	if errs := j.Restore(); len(errs) > 0 {
		t.Fatal(errs)
	}
	if got, _ := os.ReadFile(f); string(got) != "old\n" {
		t.Errorf("not restored: %q", got)
	}
	if _, err := os.Stat(created); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("created file still there: %v", err)
	}
	// Force restores whatever is there now.
	os.WriteFile(f, []byte("the DBA's fix\n"), 0o640)
	if errs := j.RestoreWith(RestoreOptions{Force: true}); len(errs) > 0 {
		t.Fatal(errs)
	}
	if got, _ := os.ReadFile(f); string(got) != "old\n" {
		t.Errorf("not restored with Force: %q", got)
	}
	// Ours: a file without a recorded new content (Backup only).
	auto := filepath.Join(dir, "postgresql.auto.conf")
	os.WriteFile(auto, []byte("a = '1'\n"), 0o600)
	if err := j.Backup(auto); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(auto, []byte("a = '1'\nssl = 'on'\n"), 0o600)
	if errs := j.Restore(); len(errs) != 1 || !errors.Is(errs[0], ErrChanged) {
		t.Fatalf("Backup-only file without Ours: %v", errs)
	}
	var saw []string
	ours := func(fb FileBackup, old, cur []byte) bool {
		saw = append(saw, fb.Path+":"+string(old)+"|"+string(cur))
		return string(cur) == "a = '1'\nssl = 'on'\n"
	}
	if errs := j.RestoreWith(RestoreOptions{Ours: ours}); len(errs) > 0 {
		t.Fatal(errs)
	}
	if got, _ := os.ReadFile(auto); string(got) != "a = '1'\n" {
		t.Errorf("auto.conf not restored: %q", got)
	}
	for _, call := range saw {
		if call != auto+":a = '1'\n|a = '1'\nssl = 'on'\n" {
			t.Errorf("Ours saw %q", call)
		}
	}
	if len(saw) == 0 {
		t.Error("Ours was not asked")
	}
}
