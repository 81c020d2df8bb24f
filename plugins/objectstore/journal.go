package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/minio/minio-go/v7/pkg/sse"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// Apply's steps, recorded in the journal as its phase (and the names the
// interruption test's fault hook uses: HARDEN_CRASH_AT=objectstore:<step>).
const (
	stepBegun      = "begun"          // journal written, nothing changed yet
	stepEncryption = "encryption-set" // the default encryption is set
	stepPolicy     = "policy-set"     // the merged policy is set
	stepConfirmed  = "confirmed"      // harden still lists the bucket over TLS
)

// rollbackTimeout bounds a rollback after Ctrl-C: it runs on a context the
// host's Stop does not cancel, and must still end.
const rollbackTimeout = 30 * time.Second

// stepHook lets unit tests act at a step (e.g. cancel the context as the
// host's Stop does on Ctrl-C).
var stepHook func(step string)

// step marks a step boundary (journal phase, fault hook, cancellation).
func step(ctx context.Context, s *applykit.Session, name string) error {
	if err := s.Journal.SetPhase(name); err != nil {
		return err
	}
	if stepHook != nil {
		stepHook(name)
	}
	return s.Step(ctx, name)
}

// journalPaths: one journal and lock per bucket of an endpoint, in
// backup_dir when the spec sets one, else harden's state directory.
func (t *target) journalPaths() (journal, lock string, err error) {
	return applykit.TargetPaths(t.spec.BackupDir, "objectstore", t.conn.Endpoint, t.spec.Bucket)
}

// original is the configuration a run started from, kept in the journal's
// Data (a bucket policy and an encryption default are not secrets), so the
// run that finds a killed one rolls back to where it started.
func original(l live) map[string]string {
	enc := ""
	if l.encryption != nil {
		b, _ := json.Marshal(l.encryption)
		enc = string(b)
	}
	return map[string]string{"policy": l.policy, "encryption": enc}
}

func fromOriginal(d map[string]string) (live, error) {
	l := live{policy: d["policy"]}
	if e := d["encryption"]; e != "" {
		l.encryption = &sse.Configuration{}
		if err := json.Unmarshal([]byte(e), l.encryption); err != nil {
			return live{}, fmt.Errorf("the journal's saved encryption default: %w", err)
		}
	}
	return l, nil
}

// noticeFor is what plan and verify say about the target's journal.
func (t *target) noticeFor() (notice string, running bool, err error) {
	jp, lp, err := t.journalPaths()
	if err != nil {
		return "", false, err
	}
	return applykit.Notice(jp, lp)
}

// planJournal: never "nothing to apply" while a killed run is unconfirmed.
func (t *target) planJournal(r *sdk.PlanResponse) {
	notice, running, err := t.noticeFor()
	switch {
	case errors.Is(err, fs.ErrPermission):
		r.Diagnostics.AddWarning("cannot read the apply journal (permission denied): an interrupted apply by another user would not be seen here", err.Error())
	case err != nil:
		r.Diagnostics.AddTargetError("objectstore.apply.journal", "the apply journal cannot be read; inspect or remove it", err)
	case running:
		r.Diagnostics.Add(sdk.Diagnostic{Severity: sdk.Warning, Source: sdk.SourceTarget, Code: "objectstore.apply.locked", Summary: notice})
	case notice != "":
		r.Diagnostics.Add(sdk.Diagnostic{Severity: sdk.Warning, Source: sdk.SourceTarget, Code: "objectstore.apply.interrupted",
			Summary: notice + "; harden apply will complete it",
			Detail:  "some of that run's changes may be live and unconfirmed: apply sets what remains and confirms harden's access, or restores where that run started"})
		r.Changes = append([]sdk.Change{{Resource: "bucket " + t.spec.Bucket + " interrupted apply", Action: sdk.Update,
			Description: notice + ": complete it and confirm harden still lists the bucket over TLS"}}, r.Changes...)
	}
}

// verifyJournal: what verify observes is live, but a killed run never
// confirmed it: say so.
func (t *target) verifyJournal(d *sdk.Diagnostics) {
	notice, running, err := t.noticeFor()
	switch {
	case errors.Is(err, fs.ErrPermission):
		d.AddWarning("cannot read the apply journal (permission denied): an interrupted apply by another user would not be seen here", err.Error())
	case err != nil:
		d.AddTargetError("objectstore.apply.journal", "the apply journal cannot be read; inspect or remove it", err)
	case running:
		d.Add(sdk.Diagnostic{Severity: sdk.Warning, Source: sdk.SourceTarget, Code: "objectstore.apply.locked", Summary: notice, Detail: "the configuration verified may be about to change"})
	case notice != "":
		d.Add(sdk.Diagnostic{Severity: sdk.Warning, Source: sdk.SourceTarget, Code: "objectstore.apply.interrupted", Summary: notice, Detail: "what verify observed is live but that run never confirmed it: run harden apply to complete it"})
	}
}

// restoreBounded restores l on a context the host's Stop does not cancel.
func (t *target) restoreBounded(ctx context.Context, l live) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	return t.restore(rctx, l)
}
