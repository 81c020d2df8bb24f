package envelope

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/harden-dev/harden/shared/sdk/applykit"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"
)

// RewrapOptions of Rewrap.
type RewrapOptions struct {
	Prefix string
	// Checkpoint is a file holding the last key whose batch completed: a
	// rerun resumes after it. Removed when the run completes.
	Checkpoint string
	// Batch is the number of objects per transit batch rewrap (256).
	Batch int
	// Concurrency of HEAD and copy requests (16).
	Concurrency int
	// Retire raises the KEK's min_decryption_version to its latest version
	// once no debt is left — and only then.
	Retire bool
	// Progress is called after every batch.
	Progress func(done int)
}

// RewrapReport says what a rewrap did and what is left.
type RewrapReport struct {
	Latest      int // the KEK's latest version
	Scanned     int // objects looked at in this run
	Rewrapped   int
	Current     int // already at the latest version
	NotEnvelope int // objects without a record of this KEK
	// Debt lists objects still wrapped under an older version (a failed
	// conditional copy: someone wrote the object meanwhile).
	Debt []string
	// Noncurrent counts older versions (versioned buckets) whose record is
	// under an older KEK version: debt too.
	Noncurrent int
	Retired    bool
}

type headed struct {
	key  string
	etag string
	rec  Record
	meta map[string]string
	sse  encrypt.ServerSide
	err  error
}

// Rewrap moves every envelope record under prefix to the KEK's latest
// version: HEAD in parallel, one transit batch rewrap per batch, and a
// metadata-only copy in place conditional on the ETag (If-Match) per
// object, so a concurrent writer is never overwritten — its object stays
// as debt. Bodies are never re-encrypted.
func Rewrap(ctx context.Context, cl *minio.Client, bucket string, kek *TransitKEK, o RewrapOptions) (RewrapReport, error) {
	if o.Batch <= 0 {
		o.Batch = 256
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	var rep RewrapReport
	var err error
	if rep.Latest, err = kek.LatestVersion(ctx); err != nil {
		return rep, err
	}
	after := ""
	if o.Checkpoint != "" {
		if b, err := os.ReadFile(o.Checkpoint); err == nil {
			after = strings.TrimSpace(string(b))
		}
	}
	var keys []string
	for obj := range cl.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: o.Prefix, Recursive: true, StartAfter: after}) {
		if obj.Err != nil {
			return rep, fmt.Errorf("list %s/%s: %w", bucket, o.Prefix, obj.Err)
		}
		keys = append(keys, obj.Key)
	}
	for start := 0; start < len(keys); start += o.Batch {
		batch := keys[start:min(start+o.Batch, len(keys))]
		hs := headAll(ctx, cl, bucket, batch, o.Concurrency)
		var todo []*headed
		for _, h := range hs {
			rep.Scanned++
			switch {
			case h.err != nil:
				return rep, h.err
			case h.rec.KEK != kek.ID():
				rep.NotEnvelope++
			case h.rec.KEKVersion >= rep.Latest:
				rep.Current++
			default:
				todo = append(todo, h)
			}
		}
		if len(todo) > 0 {
			wrapped := make([]string, len(todo))
			for i, h := range todo {
				wrapped[i] = h.rec.WrappedDEK
			}
			fresh, err := kek.Rewrap(ctx, wrapped)
			if err != nil {
				return rep, err
			}
			var mu sync.Mutex
			each(len(todo), o.Concurrency, func(i int) {
				h := todo[i]
				rec := h.rec
				rec.WrappedDEK, rec.KEKVersion = fresh[i], WrappedVersion(fresh[i])
				meta := recordMetadata(h.meta, rec)
				_, err := cl.CopyObject(ctx,
					minio.CopyDestOptions{Bucket: bucket, Object: h.key, ReplaceMetadata: true, UserMetadata: meta, Encryption: h.sse},
					minio.CopySrcOptions{Bucket: bucket, Object: h.key, MatchETag: h.etag})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					rep.Debt = append(rep.Debt, h.key+" ("+err.Error()+")")
					return
				}
				rep.Rewrapped++
			})
		}
		if o.Checkpoint != "" {
			if err := writeCheckpoint(o.Checkpoint, batch[len(batch)-1]); err != nil {
				return rep, err
			}
		}
		if o.Progress != nil {
			o.Progress(start + len(batch))
		}
		if err := ctx.Err(); err != nil {
			return rep, err
		}
	}
	if n, err := noncurrentDebt(ctx, cl, bucket, o.Prefix, kek, rep.Latest); err == nil {
		rep.Noncurrent = n
	}
	if o.Checkpoint != "" {
		_ = os.Remove(o.Checkpoint)
	}
	if o.Retire {
		// Validate before retiring: every record under the prefix, read
		// again, must be at the latest version.
		if stale, err := staleRecords(ctx, cl, bucket, o.Prefix, kek, rep.Latest, o.Concurrency); err != nil {
			return rep, fmt.Errorf("validate before retiring: %w", err)
		} else if len(stale) > 0 && len(rep.Debt) == 0 {
			rep.Debt = stale
		}
		if len(rep.Debt) > 0 || rep.Noncurrent > 0 || after != "" {
			return rep, fmt.Errorf("not retiring old KEK versions: %d object(s) and %d noncurrent version(s) still need them%s", len(rep.Debt), rep.Noncurrent,
				map[bool]string{true: "; and this run resumed a checkpoint: run once more over the whole prefix", false: ""}[after != ""])
		}
		if _, err := kek.Client.Logical().WriteWithContext(ctx, kek.Mount+"/keys/"+kek.Key+"/config", map[string]any{"min_decryption_version": rep.Latest}); err != nil {
			return rep, fmt.Errorf("raise min_decryption_version of %s: %w", kek.ID(), err)
		}
		rep.Retired = true
	}
	return rep, nil
}

func headAll(ctx context.Context, cl *minio.Client, bucket string, keys []string, conc int) []*headed {
	out := make([]*headed, len(keys))
	each(len(keys), conc, func(i int) {
		h := &headed{key: keys[i]}
		out[i] = h
		st, err := cl.StatObject(ctx, bucket, keys[i], minio.StatObjectOptions{})
		if err != nil {
			h.err = fmt.Errorf("HEAD %s/%s: %w", bucket, keys[i], err)
			return
		}
		h.etag, h.meta = st.ETag, map[string]string{}
		for k, v := range st.UserMetadata {
			h.meta[k] = v
		}
		h.rec, _ = ParseRecord(h.meta) // not an envelope object: KEK "" below
		switch st.Metadata.Get("X-Amz-Server-Side-Encryption") {
		case "aws:kms":
			h.sse, _ = encrypt.NewSSEKMS(st.Metadata.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"), nil)
		case "AES256":
			h.sse = encrypt.NewSSE()
		}
	})
	return out
}

// each runs fn(0..n-1) with at most conc at once.
func each(n, conc int, fn func(int)) {
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() { defer wg.Done(); defer func() { <-sem }(); fn(i) }()
	}
	wg.Wait()
}

func writeCheckpoint(path, key string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return applykit.WriteFile(path, []byte(key+"\n"), 0o600, nil)
}

// noncurrentDebt counts noncurrent versions whose record is under an older
// KEK version (a versioned bucket keeps them after a rewrap's copy).
func noncurrentDebt(ctx context.Context, cl *minio.Client, bucket, prefix string, kek *TransitKEK, latest int) (int, error) {
	n := 0
	for obj := range cl.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true, WithVersions: true, WithMetadata: true}) {
		if obj.Err != nil {
			return n, obj.Err
		}
		if obj.IsLatest || obj.IsDeleteMarker || obj.VersionID == "" || obj.VersionID == "null" {
			continue
		}
		st, err := cl.StatObject(ctx, bucket, obj.Key, minio.StatObjectOptions{VersionID: obj.VersionID})
		if err != nil {
			continue
		}
		if rec, err := ParseRecord(st.UserMetadata); err == nil && rec.KEK == kek.ID() && rec.KEKVersion < latest {
			n++
		}
	}
	return n, nil
}

// recordMetadata is an object's user metadata with its envelope record
// replaced: the old record keys are dropped whatever their case (servers
// return "Harden-Kek-Version" for "harden-kek-version"; sending both would
// leave the server to pick one).
func recordMetadata(cur map[string]string, rec Record) map[string]string {
	fresh := rec.Metadata()
	out := map[string]string{}
	for k, v := range cur {
		lk := strings.ToLower(strings.TrimPrefix(strings.ToLower(k), "x-amz-meta-"))
		if _, managed := fresh[lk]; !managed {
			out[k] = v
		}
	}
	for k, v := range fresh {
		out[k] = v
	}
	return out
}

// staleRecords HEADs every object under prefix and lists those whose
// record of this KEK is under an older version.
func staleRecords(ctx context.Context, cl *minio.Client, bucket, prefix string, kek *TransitKEK, latest, conc int) ([]string, error) {
	var keys []string
	for obj := range cl.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, obj.Err
		}
		keys = append(keys, obj.Key)
	}
	var stale []string
	for _, h := range headAll(ctx, cl, bucket, keys, conc) {
		if h.err != nil {
			return nil, h.err
		}
		if h.rec.KEK == kek.ID() && (h.rec.KEKVersion < latest || WrappedVersion(h.rec.WrappedDEK) < latest) {
			stale = append(stale, h.key+" (still under v"+fmt.Sprint(h.rec.KEKVersion)+")")
		}
	}
	return stale, nil
}
