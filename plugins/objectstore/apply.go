package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// Apply backs up the live configuration (0600), sets the encryption
// default and the merged policy, then checks harden can still list the
// bucket over TLS; any failure restores what was there. An intent journal
// (per endpoint and bucket, under a lock) is durable before the first
// change: a run killed halfway is found by the next plan, verify and apply,
// and that apply completes it (and confirms access) or restores the
// configuration the killed run started from. Ctrl-C (the host's Stop)
// restores at the next step boundary.
func (objectStore) Apply(ctx context.Context, q sdk.ApplyRequest, r *sdk.ApplyResponse) {
	t, ok := open(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	// The lock comes first: no other apply may change the bucket between
	// the read the plan token is checked against and this run's changes.
	s, ok := applykit.AcquireAt("objectstore", "this bucket", t.journalPaths, &r.Diagnostics)
	if !ok {
		return
	}
	p, ok := t.plan(ctx, &r.Diagnostics)
	if !ok {
		s.Release() // a killed run's journal is the record of where it started
		return
	}
	l, wantPolicy, changes := p.live, p.wantPolicy, p.changes
	notice := ""
	if s.Interrupted != nil {
		notice = applykit.Describe(*s.Interrupted)
	}
	if !applykit.PlanCurrent(&r.Diagnostics, q.PlanToken, token(l, changes, notice), "the bucket") {
		s.Release()
		return
	}
	if len(changes) == 0 && s.Interrupted == nil {
		s.Done()
		return
	}
	intent := make([]string, 0, len(changes))
	for _, c := range changes {
		intent = append(intent, c.Resource+": "+c.After)
	}
	from := l // what a failure restores: where this run, or the killed one, started
	var opts applykit.StepOptions
	if s.Interrupted != nil {
		var err error
		if from, err = fromOriginal(s.Interrupted.Data); err != nil {
			s.Release()
			r.Diagnostics.AddTargetError("objectstore.apply.journal", "the journal of the interrupted apply cannot be used; inspect or remove it", err)
			return
		}
		r.Diagnostics.Add(sdk.Diagnostic{Severity: sdk.Warning, Source: sdk.SourceTarget, Code: "objectstore.apply.interrupted",
			Summary: notice + "; this apply completes it"})
		// A failure rolls back what the killed run set too.
		opts.Rollback = func(ctx context.Context) error { return t.restore(ctx, from) }
	}
	backup, err := t.backup(q.Target.Name, from)
	if err != nil {
		s.Release()
		r.Diagnostics.AddTargetError("objectstore.backup", "cannot back up the bucket configuration; nothing was changed", err)
		return
	}
	// The journal is written only once the backup exists: a failure before
	// this point leaves a killed run's journal exactly as it was.
	if err := s.Begin(applykit.State{Plugin: "objectstore", Target: q.Target.Name, Phase: stepBegun, Intent: intent, Data: original(l)}); err != nil {
		s.Release()
		r.Diagnostics.AddTargetError("objectstore.apply.journal", "cannot write the apply journal; nothing was changed", err)
		return
	}
	opts.Hook, opts.Final, opts.UndoTimeout = stepHook, stepConfirmed, rollbackTimeout
	steps := []applykit.Step{{
		Phase: stepBegun,
		Apply: func(ctx context.Context) error {
			if err := t.cl.SetBucketEncryption(ctx, t.spec.Bucket, t.wantEncryption()); err != nil {
				return fmt.Errorf("SetBucketEncryption: %w", err)
			}
			return nil
		},
		Undo: func(ctx context.Context) error { return t.restoreEncryption(ctx, from) },
	}, {
		Phase: stepEncryption,
		Apply: func(ctx context.Context) error {
			if err := t.cl.SetBucketPolicy(ctx, t.spec.Bucket, wantPolicy); err != nil {
				return fmt.Errorf("SetBucketPolicy: %w", err)
			}
			return nil
		},
		Undo: func(ctx context.Context) error { return t.cl.SetBucketPolicy(ctx, t.spec.Bucket, from.policy) },
	}, {
		// Lockout check: harden (this identity) still lists the bucket over TLS.
		Phase: stepPolicy,
		Apply: func(ctx context.Context) error {
			lctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel() // (one answer is enough; cancel ends the listing)
			if obj, ok := <-t.cl.ListObjects(lctx, t.spec.Bucket, minio.ListObjectsOptions{MaxKeys: 1}); ok && obj.Err != nil {
				return fmt.Errorf("after the change this identity cannot list the bucket over TLS: %w", obj.Err)
			}
			return nil
		},
	}}
	_, err = s.RunSteps(ctx, steps, opts)
	var se *applykit.StepError
	switch {
	case errors.As(err, &se):
		se.Report("objectstore", &r.Diagnostics)
		if len(se.UndoFailed) > 0 {
			r.Diagnostics.AddWarning("the bucket configuration before this apply is saved in "+backup, "restore it from there if the next apply cannot")
		}
		return
	case err != nil:
		r.Diagnostics.AddTargetError("objectstore.apply.journal", "applied and confirmed, but the journal could not be removed", err)
	}
	r.Applied = changes
}

// backup writes the live configuration to backup_dir (0600).
func (t *target) backup(name string, l live) (string, error) {
	dir := t.spec.BackupDir
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(home, ".local", "state", "harden", "backups")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	b, _ := json.MarshalIndent(map[string]any{"bucket": t.spec.Bucket, "endpoint": t.conn.Endpoint, "policy": l.policy, "encryption": l.encryption}, "", "  ")
	path := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.json", name, t.spec.Bucket, time.Now().UTC().Format("20060102T150405.000Z")))
	return path, applykit.WriteFile(path, b, 0o600, nil)
}

// restore puts l's encryption default and policy back.
func (t *target) restore(ctx context.Context, l live) error {
	return errors.Join(t.restoreEncryption(ctx, l), t.cl.SetBucketPolicy(ctx, t.spec.Bucket, l.policy))
}

func (t *target) restoreEncryption(ctx context.Context, l live) error {
	if l.encryption == nil {
		return t.cl.RemoveBucketEncryption(ctx, t.spec.Bucket)
	}
	return t.cl.SetBucketEncryption(ctx, t.spec.Bucket, l.encryption)
}
