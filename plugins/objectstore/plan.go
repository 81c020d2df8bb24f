package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/sse"
)

// live is the bucket's current encryption default and policy.
type live struct {
	encryption *sse.Configuration // nil: none
	policy     string
}

func (t *target) read(ctx context.Context) (live, error) {
	var l live
	ok, err := t.cl.BucketExists(ctx, t.spec.Bucket)
	if err != nil {
		return l, fmt.Errorf("bucket %s at %s: %w", t.spec.Bucket, t.conn.Endpoint, err)
	}
	if !ok {
		return l, fmt.Errorf("bucket %s does not exist at %s", t.spec.Bucket, t.conn.Endpoint)
	}
	enc, err := t.cl.GetBucketEncryption(ctx, t.spec.Bucket)
	if err != nil {
		var er minio.ErrorResponse
		if !errors.As(err, &er) || er.Code != "ServerSideEncryptionConfigurationNotFoundError" {
			return l, fmt.Errorf("GetBucketEncryption: %w", err)
		}
		enc = nil
	}
	l.encryption = enc
	if l.policy, err = t.cl.GetBucketPolicy(ctx, t.spec.Bucket); err != nil {
		return l, fmt.Errorf("GetBucketPolicy: %w", err)
	}
	return l, nil
}

func (t *target) wantEncryption() *sse.Configuration {
	if t.spec.SSE.algorithm() == "aws:kms" {
		return sse.NewConfigurationSSEKMS(t.spec.SSE.KMSKeyID)
	}
	return sse.NewConfigurationSSES3()
}

func describeEncryption(c *sse.Configuration) string {
	if c == nil || len(c.Rules) == 0 {
		return "none"
	}
	a := c.Rules[0].Apply
	if a.KmsMasterKeyID != "" {
		return a.SSEAlgorithm + " key " + a.KmsMasterKeyID
	}
	return a.SSEAlgorithm
}

// desired works out the changes: the encryption default and the merged
// policy (the operator's statements kept).
func (t *target) desired(l live) (wantPolicy string, changes []sdk.Change, err error) {
	cur, err := parsePolicy(l.policy)
	if err != nil {
		return "", nil, err
	}
	if wantPolicy, err = mergePolicy(cur, t.spec.Bucket, t.spec); err != nil {
		return "", nil, err
	}
	if got, want := describeEncryption(l.encryption), describeEncryption(t.wantEncryption()); got != want {
		changes = append(changes, sdk.Change{Resource: "bucket " + t.spec.Bucket + " default encryption", Action: sdk.Update, Before: got, After: want})
	}
	curCanon := ""
	if l.policy != "" {
		curCanon, _ = canonical(cur)
	}
	if curCanon != wantPolicy {
		kept := 0
		for _, st := range cur.Statement {
			if sid := sidOf(st); len(sid) < len(hardenSid) || sid[:len(hardenSid)] != hardenSid {
				kept++
			}
		}
		changes = append(changes, sdk.Change{Resource: "bucket " + t.spec.Bucket + " policy", Action: sdk.Update,
			Before: fmt.Sprintf("%d statement(s)", len(cur.Statement)),
			After:  fmt.Sprintf("%d of the operator's statement(s) kept + %d harden deny statement(s)", kept, len(hardenStatements(t.spec.Bucket, t.spec)))})
	}
	return wantPolicy, changes, nil
}

// token fingerprints the live configuration, the changes and a killed
// run's notice.
func token(l live, changes []sdk.Change, journal string) []byte {
	parts := []string{journal, describeEncryption(l.encryption), l.policy}
	for _, c := range changes {
		parts = append(parts, c.Resource, c.After)
	}
	return applykit.PlanToken(parts...)
}

// planned is the target with its live state and the changes to it.
type planned struct {
	*target
	live       live
	wantPolicy string
	changes    []sdk.Change
}

// plan reads the bucket of the opened target and works out the changes;
// failures go on d.
func (t *target) plan(ctx context.Context, d *sdk.Diagnostics) (*planned, bool) {
	p := &planned{target: t}
	var err error
	if p.live, err = t.read(ctx); err != nil {
		d.AddTargetError("objectstore.read", "cannot read the bucket", err)
		return nil, false
	}
	if p.wantPolicy, p.changes, err = t.desired(p.live); err != nil {
		d.AddTargetError("objectstore.policy", "the live bucket policy cannot be merged", err)
		return nil, false
	}
	return p, true
}

// Plan lists the encryption default and policy changes.
func (objectStore) Plan(ctx context.Context, q sdk.PlanRequest, r *sdk.PlanResponse) {
	t, ok := open(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	if p, ok := t.plan(ctx, &r.Diagnostics); ok {
		r.Changes = p.changes
		r.PlanToken = token(p.live, p.changes, p.planJournal(r))
	}
}
