package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// What plan and verify say about a broker's journal: nothing without one;
// an interrupted apply (a pending change) under a free lock; a running one
// under a held lock; an error, no guess, for a journal harden cannot trust.
func TestNoteJournal(t *testing.T) {
	b := brokerTarget{ConfigFile: filepath.Join(t.TempDir(), "server.properties")}
	var d sdk.Diagnostics
	if ch, ok := noteJournal(b, spec{}, true, &d); ch != nil || !ok || len(d) != 0 {
		t.Fatalf("no journal: %+v %v %v", ch, ok, d)
	}
	os.MkdirAll(filepath.Dir(journalPath(b)), 0o700) // as apply's lock does
	j, err := applykit.Begin(journalPath(b), applykit.State{Plugin: "kafka", Target: "events", Phase: phaseConfigWritten})
	if err != nil {
		t.Fatal(err)
	}
	ch, ok := noteJournal(b, spec{}, true, &d)
	if !ok || ch == nil || ch.Resource != "journal:"+journalPath(b) || !ch.RequiresRestart || !strings.Contains(ch.Description, "interrupted at config-written") ||
		len(d) != 1 || d[0].Code != "kafka.apply.interrupted" || d[0].Severity != sdk.Warning {
		t.Errorf("interrupted apply: %+v %v", ch, d)
	}
	unlock, err := applykit.Lock(lockPath(b))
	if err != nil {
		t.Fatal(err)
	}
	d = nil
	if ch, ok := noteJournal(b, spec{}, true, &d); ch != nil || !ok || len(d) != 1 || d[0].Code != "kafka.apply.locked" || !strings.Contains(d[0].Summary, "an apply is running") {
		t.Errorf("running apply: %+v %v", ch, d)
	}
	unlock()
	_ = j.Done()
	if err := os.WriteFile(journalPath(b), []byte(`{"version": 99}`), 0o600); err != nil {
		t.Fatal(err)
	}
	d = nil
	if ch, ok := noteJournal(b, spec{}, true, &d); ch != nil || ok || len(d) != 1 || d[0].Code != "kafka.apply.journal" {
		t.Errorf("untrusted journal: %+v %v %v", ch, ok, d)
	}
}

// A second apply on a broker whose lock another apply holds changes
// nothing and says why (no broker needed: the lock comes first).
func TestApplyRefusedWhileLocked(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "server.properties")
	if err := os.WriteFile(file, []byte("node.id=1\nlisteners=PLAINTEXT://127.0.0.1:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unlock, err := applykit.Lock(lockPath(brokerTarget{ConfigFile: file}))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	conn, _ := json.Marshal(map[string]any{"bootstrap": []string{"127.0.0.1:1"}, "config_file": file, "restart_command": []string{"/bin/false"}})
	spec, _ := json.Marshal(map[string]any{"listeners": sslListeners()})
	var r sdk.ApplyResponse
	kafka{}.Apply(t.Context(), sdk.ApplyRequest{RequestContext: sdk.RequestContext{Target: sdk.NewTarget("events", conn, spec, nil)}}, &r)
	if len(r.Diagnostics) != 1 || r.Diagnostics[0].Code != "kafka.apply.locked" || len(r.Applied) != 0 {
		t.Errorf("apply under a held lock: %v", r.Diagnostics)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("apply under a held lock left files: %v", entries)
	}
}

// The journal lives in the applying user's state directory, not beside
// server.properties (the broker's OS user can write there): a journal planted
// beside it is not read, and one naming a file outside the broker's
// server.properties and store directory is refused, never restored (review:
// a planted journal made root remove or overwrite files of its choosing).
func TestJournalOutsideTheConfigDirAndRestricted(t *testing.T) {
	dir := t.TempDir()
	b := brokerTarget{ConfigFile: filepath.Join(dir, "server.properties")}
	if strings.HasPrefix(journalPath(b), dir) || strings.HasPrefix(lockPath(b), dir) {
		t.Fatalf("journal %s / lock %s beside the broker's config", journalPath(b), lockPath(b))
	}
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("keep me"), 0o600)
	planted := fmt.Sprintf(`{"version":1,"plugin":"kafka","target":"events","pid":1,"started":"2026-01-01T00:00:00Z","phase":"config-written","intent":[],"files":[{"path":%q,"existed":false,"mode":0,"uid":-1,"gid":-1}],"data":{}}`, victim)
	if err := os.WriteFile(b.ConfigFile+".harden-journal", []byte(planted), 0o600); err != nil {
		t.Fatal(err)
	}
	var d sdk.Diagnostics
	if ch, ok := noteJournal(b, spec{}, true, &d); ch != nil || !ok || len(d) != 0 {
		t.Fatalf("a journal beside server.properties was read: %+v %v %v", ch, ok, d)
	}
	os.MkdirAll(filepath.Dir(journalPath(b)), 0o700)
	if err := os.WriteFile(journalPath(b), []byte(planted), 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(journalPath(b))
	d = nil
	if ch, ok := noteJournal(b, spec{}, true, &d); ch != nil || ok || len(d) != 1 || d[0].Code != "kafka.apply.journal" || !strings.Contains(fmt.Sprint(d), victim) {
		t.Fatalf("a journal naming another file: %+v %v %v", ch, ok, d)
	}
	if err := recoverInterrupted(t.Context(), connection{}, spec{}, []brokerTarget{b}, sdk.RequestContext{}, false, &d); err == nil {
		t.Fatal("recovery restored a journal naming another file")
	}
	if got, err := os.ReadFile(victim); err != nil || string(got) != "keep me" {
		t.Fatalf("the victim file was touched: %q %v", got, err)
	}
}

// A file changed after the kill (an operator's edit of server.properties)
// is never overwritten by the recovery: nothing is restored, the journal
// stays, the error names the file; --force restores the backup.
func TestRecoveryKeepsAFileChangedSince(t *testing.T) {
	dir := t.TempDir()
	b := brokerTarget{ConfigFile: filepath.Join(dir, "server.properties")}
	os.WriteFile(b.ConfigFile, []byte("node.id=1\n"), 0o644)
	os.MkdirAll(filepath.Dir(journalPath(b)), 0o700) // as apply's lock does
	j, err := applykit.Begin(journalPath(b), applykit.State{Plugin: "kafka", Target: "events", Phase: phaseConfigWritten})
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(journalPath(b))
	ref, _ := os.Stat(b.ConfigFile)
	if err := j.Replace(b.ConfigFile, []byte("node.id=1\nlisteners=SSL://127.0.0.1:9093\n"), 0o644, ref); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(b.ConfigFile, []byte("node.id=1\n# the operator's edit after the kill\n"), 0o644)
	var d sdk.Diagnostics
	err = recoverInterrupted(t.Context(), connection{}, spec{}, []brokerTarget{b}, sdk.RequestContext{}, false, &d)
	if err == nil || !strings.Contains(err.Error(), "restored nothing") || !strings.Contains(err.Error(), b.ConfigFile) {
		t.Fatalf("recovery over a changed file: %v", err)
	}
	if got, _ := os.ReadFile(b.ConfigFile); !strings.Contains(string(got), "operator's edit") {
		t.Fatalf("the operator's edit was overwritten: %q", got)
	}
	if err := recoverInterrupted(t.Context(), connection{}, spec{}, []brokerTarget{b}, sdk.RequestContext{}, true, &d); err != nil {
		t.Fatalf("recovery with --force: %v", err)
	}
	if got, _ := os.ReadFile(b.ConfigFile); string(got) != "node.id=1\n" {
		t.Fatalf("--force did not restore the backup: %q", got)
	}
}
