package main

import (
	"encoding/json"
	"fmt"
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

// notices is what plan and verify say about the target's journal: never
// "nothing to apply" while a killed run is unconfirmed; what verify
// observes is live, but that run never confirmed it.
func (t *target) notices() (applykit.Notices, error) {
	jp, lp, err := t.journalPaths()
	return applykit.Notices{Plugin: "objectstore", Journal: jp, Lock: lp,
		PlanNext:   "harden apply will complete it",
		PlanDetail: "some of that run's changes may be live and unconfirmed: apply sets what remains and confirms harden's access, or restores where that run started",
		Change: sdk.Change{Resource: "bucket " + t.spec.Bucket + " interrupted apply",
			Description: "complete it and confirm harden still lists the bucket over TLS"},
		VerifyDetail: "what verify observed is live but that run never confirmed it: run harden apply to complete it"}, err
}

// planJournal adds the journal's notice to r and returns it (for the plan
// token).
func (t *target) planJournal(r *sdk.PlanResponse) string {
	n, err := t.notices()
	if err != nil {
		r.Diagnostics.AddTargetError("objectstore.apply.journal", "no place for the apply journal", err)
		return ""
	}
	notice, _ := n.Plan(r)
	return notice
}

// verifyJournal: what verify observes is live, but a killed run never
// confirmed it: say so.
func (t *target) verifyJournal(d *sdk.Diagnostics) {
	n, err := t.notices()
	if err != nil {
		d.AddTargetError("objectstore.apply.journal", "no place for the apply journal", err)
		return
	}
	n.Verify(d)
}
