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
	if ch, ok := noteJournal(b, true, &d); ch != nil || !ok || len(d) != 0 {
		t.Fatalf("no journal: %+v %v %v", ch, ok, d)
	}
	j, err := applykit.Begin(journalPath(b), applykit.State{Plugin: "kafka", Target: "events", Phase: phaseConfigWritten})
	if err != nil {
		t.Fatal(err)
	}
	ch, ok := noteJournal(b, true, &d)
	if !ok || ch == nil || ch.Resource != "journal:"+journalPath(b) || !ch.RequiresRestart || !strings.Contains(ch.Description, `phase "config-written"`) ||
		!strings.Contains(fmt.Sprint(d), "an interrupted harden apply") {
		t.Errorf("interrupted apply: %+v %v", ch, d)
	}
	unlock, err := applykit.Lock(lockPath(b))
	if err != nil {
		t.Fatal(err)
	}
	d = nil
	if ch, ok := noteJournal(b, true, &d); ch != nil || !ok || !strings.Contains(fmt.Sprint(d), "a harden apply is running") {
		t.Errorf("running apply: %+v %v", ch, d)
	}
	unlock()
	_ = j.Done()
	if err := os.WriteFile(journalPath(b), []byte(`{"version": 99}`), 0o600); err != nil {
		t.Fatal(err)
	}
	d = nil
	if ch, ok := noteJournal(b, true, &d); ch != nil || ok || len(d) != 1 || d[0].Code != "kafka.apply.journal" {
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
	unlock, err := applykit.Lock(file + ".harden-lock")
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
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("apply under a held lock left files: %v", entries)
	}
}
