package rotate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCAStateFile(t *testing.T) {
	a, b := newCA(t, "root A"), newCA(t, "root B")
	dir := t.TempDir()
	if st, err := LoadCAState(dir); st != nil || err != nil {
		t.Fatalf("no file: %v %v", st, err)
	}
	st := &CAState{Phase: PhaseTrust, CurrentRootPEM: string(a.pem), NextRootPEM: string(b.pem), Done: map[string][]string{}}
	st.MarkDone(PhaseTrust, "target/pg")
	if err := st.Save(dir, now); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(CAStatePath(dir)); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	got, err := LoadCAState(dir)
	if err != nil || got.Phase != PhaseTrust || !got.IsDone(PhaseTrust, "target/pg") {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	// Bundles per phase, forward and aborting.
	both := string(a.pem) + string(b.pem)
	for _, c := range []struct {
		phase    string
		aborting bool
		want     string
	}{
		{PhaseTrust, false, both}, {PhaseTrust, true, string(a.pem)},
		{PhaseReissue, false, both}, {PhaseReissue, true, both},
		{PhaseRetire, false, string(b.pem)}, {PhaseRetire, true, both},
		{PhaseSync, false, ""},
	} {
		s := *got
		s.Phase, s.Aborting = c.phase, c.aborting
		if string(s.Bundle()) != c.want {
			t.Errorf("%s aborting=%v: bundle %q", c.phase, c.aborting, s.Bundle())
		}
	}
	write := func(mutate func(map[string]any), mode os.FileMode) string {
		var m map[string]any
		data, _ := os.ReadFile(CAStatePath(dir))
		json.Unmarshal(data, &m)
		mutate(m)
		d := t.TempDir()
		out, _ := json.Marshal(m)
		os.WriteFile(CAStatePath(d), out, mode)
		os.Chmod(CAStatePath(d), mode)
		return d
	}
	for _, c := range []struct {
		name   string
		mutate func(map[string]any)
		mode   os.FileMode
		want   string
	}{
		{"readable by others", func(map[string]any) {}, 0o644, "mode 0644"},
		{"unknown phase", func(m map[string]any) { m["phase"] = "done" }, 0o600, `unknown phase "done"`},
		{"newer format", func(m map[string]any) { m["format_version"] = 2 }, 0o600, "format_version 2"},
		{"same roots", func(m map[string]any) { m["next_root_pem"] = m["current_root_pem"] }, 0o600, "the same"},
		{"not a certificate", func(m map[string]any) { m["next_root_pem"] = "hello" }, 0o600, "not one CA certificate"},
		{"two roots in one", func(m map[string]any) { m["next_root_pem"] = both }, 0o600, "not one CA certificate"},
	} {
		d := write(c.mutate, c.mode)
		if _, err := LoadCAState(d); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "move it away") {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	// A directory or a symlink in its place.
	d := t.TempDir()
	os.Symlink(CAStatePath(dir), CAStatePath(d))
	if _, err := LoadCAState(d); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("symlink: %v", err)
	}
	if err := RemoveCAState(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ca-rotation.json")); !os.IsNotExist(err) {
		t.Error("not removed")
	}
	if err := RemoveCAState(dir); err != nil {
		t.Error("a second remove failed")
	}
}
