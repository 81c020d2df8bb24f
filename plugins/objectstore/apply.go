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
	t0, ok := open(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	jp, lp, err := t0.journalPaths()
	if err != nil {
		r.Diagnostics.AddTargetError("objectstore.apply.journal", "no place for the apply journal; nothing was changed", err)
		return
	}
	// The lock comes first: no other apply may change the bucket between
	// the read the plan token is checked against and this run's changes.
	s, err := applykit.Acquire(jp, lp)
	if errors.Is(err, applykit.ErrLocked) {
		r.Diagnostics.AddTargetError("objectstore.apply.locked", "another harden apply is running on this bucket; nothing was changed", err)
		return
	}
	if err != nil {
		r.Diagnostics.AddTargetError("objectstore.apply.journal", "cannot take the apply lock or read the journal; nothing was changed", err)
		return
	}
	p, ok := plan(ctx, q.RequestContext, &r.Diagnostics)
	if !ok {
		s.Done()
		return
	}
	t, l, wantPolicy, changes := p.target, p.live, p.wantPolicy, p.changes
	notice := ""
	if s.Interrupted != nil {
		notice = applykit.Describe(*s.Interrupted)
	}
	if len(q.PlanToken) > 0 && string(q.PlanToken) != string(token(l, changes, notice)) {
		s.Done()
		r.Diagnostics.AddTargetError("objectstore.plan_stale", "the bucket changed since the plan was made", errors.New("run harden plan again"))
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
	if err := s.Begin(applykit.State{Plugin: "objectstore", Target: q.Target.Name, Phase: stepBegun, Intent: intent, Data: original(l)}); err != nil {
		s.Done()
		r.Diagnostics.AddTargetError("objectstore.apply.journal", "cannot write the apply journal; nothing was changed", err)
		return
	}
	from := l // what a failure restores: where this run, or the killed one, started
	if s.Interrupted != nil {
		if from, err = fromOriginal(s.Interrupted.Data); err != nil {
			s.Keep()
			r.Diagnostics.AddTargetError("objectstore.apply.journal", "the journal of the interrupted apply cannot be used; inspect or remove it", err)
			return
		}
		r.Diagnostics.Add(sdk.Diagnostic{Severity: sdk.Warning, Source: sdk.SourceTarget, Code: "objectstore.apply.interrupted",
			Summary: notice + "; this apply completes it"})
	}
	backup, err := t.backup(q.Target.Name, from)
	if err != nil {
		s.Done()
		r.Diagnostics.AddTargetError("objectstore.backup", "cannot back up the bucket configuration; nothing was changed", err)
		return
	}
	restore := func(cause error) {
		if rerr := t.restoreBounded(ctx, from); rerr != nil {
			s.Keep() // the next apply tries again
			r.Diagnostics.AddTargetError("objectstore.apply", "apply failed and restoring FAILED (backup: "+backup+"; the journal is kept for the next apply)", errors.Join(cause, rerr))
			return
		}
		if derr := s.Done(); derr != nil {
			cause = errors.Join(cause, derr)
		}
		code, what := "objectstore.apply", "apply failed; the previous configuration is restored"
		if ctx.Err() != nil {
			code, what = "objectstore.apply.interrupted", "apply was interrupted; the previous configuration is restored"
		}
		r.Diagnostics.AddTargetError(code, what, cause)
	}
	if err := step(ctx, s, stepBegun); err != nil {
		restore(err)
		return
	}
	if err := t.cl.SetBucketEncryption(ctx, t.spec.Bucket, t.wantEncryption()); err != nil {
		restore(fmt.Errorf("SetBucketEncryption: %w", err))
		return
	}
	if err := step(ctx, s, stepEncryption); err != nil {
		restore(err)
		return
	}
	if err := t.cl.SetBucketPolicy(ctx, t.spec.Bucket, wantPolicy); err != nil {
		restore(fmt.Errorf("SetBucketPolicy: %w", err))
		return
	}
	if err := step(ctx, s, stepPolicy); err != nil {
		restore(err)
		return
	}
	// Lockout check: harden (this identity) still lists the bucket over TLS.
	lctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	// (one answer is enough; cancel ends the listing)
	if obj, ok := <-t.cl.ListObjects(lctx, t.spec.Bucket, minio.ListObjectsOptions{MaxKeys: 1}); ok && obj.Err != nil {
		restore(fmt.Errorf("after the change this identity cannot list the bucket over TLS: %w", obj.Err))
		return
	}
	if err := step(ctx, s, stepConfirmed); err != nil && ctx.Err() == nil {
		restore(err) // the journal could not be written
		return
	}
	if err := s.Done(); err != nil {
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
	return path, os.WriteFile(path, b, 0o600)
}

func (t *target) restore(ctx context.Context, l live) error {
	var errs []error
	if l.encryption == nil {
		errs = append(errs, t.cl.RemoveBucketEncryption(ctx, t.spec.Bucket))
	} else {
		errs = append(errs, t.cl.SetBucketEncryption(ctx, t.spec.Bucket, l.encryption))
	}
	errs = append(errs, t.cl.SetBucketPolicy(ctx, t.spec.Bucket, l.policy))
	return errors.Join(errs...)
}
