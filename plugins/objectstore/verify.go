package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"

	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/envelope"
	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
)

func init() {
	ref := []string{checks.RefSeedObjectStore}
	checks.Register(
		checks.Definition{ID: "s3.encryption.default", Title: "The bucket encrypts new objects by default (GetBucketEncryption)", Severity: checks.High, Remediation: "Set the bucket's default encryption (harden apply does).", References: ref},
		checks.Definition{ID: "s3.policy.denies", Title: "The bucket policy denies plaintext transport and uploads without approved server-side encryption", Severity: checks.High, Remediation: "Add the deny statements (harden apply merges them).", References: ref},
		checks.Definition{ID: "s3.http.refused", Title: "PUT, GET and LIST over http:// are refused", Severity: checks.High, Remediation: "Deny aws:SecureTransport=false or close the plaintext port.", References: ref},
		checks.Definition{ID: "s3.put.unencrypted_refused", Title: "A PUT and a CopyObject without an SSE header are refused", Severity: checks.High, Remediation: "Deny s3:PutObject without s3:x-amz-server-side-encryption.", References: ref},
		checks.Definition{ID: "s3.put.encrypted_accepted", Title: "An encrypted multipart upload still works", Severity: checks.Medium, Remediation: "Check the deny statements are not broader than intended.", References: ref},
		checks.Definition{ID: "s3.objects.encrypted", Title: "Sampled objects report an approved encryption (HeadObject)", Severity: checks.High, Remediation: "Re-upload or copy the listed objects with encryption.", References: ref},
		checks.Definition{ID: "s3.envelope.records", Title: "Envelope-encrypted objects carry a record of the KEK, each with its own data key; records under an older KEK version are rewrap debt", Severity: checks.High,
			Remediation: "Upload with harden objectstore put; after a KEK rotation run harden objectstore rewrap.", References: ref},
		checks.Definition{ID: "s3.at_rest.canary", Title: "Bytes written through an encrypted PUT are not on the server's disk in plaintext", Severity: checks.High, Remediation: "The server echoes SSE headers without encrypting: configure real SSE (a KMS) or use envelope encryption.", References: ref},
	)
}

// Verify proves with live requests what the bucket enforces.
func (objectStore) Verify(ctx context.Context, q sdk.VerifyRequest, r *sdk.VerifyResponse) {
	t, ok := open(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	subject := "bucket " + t.spec.Bucket + " at " + t.conn.Endpoint
	scan := make(chan []checks.Check, 1)
	go func() { scan <- t.scanTLS(ctx, q.RequestContext) }()
	l, err := t.read(ctx)
	if err != nil {
		r.Diagnostics.AddTargetError("s3.read", "cannot read the bucket", err)
		return
	}
	add := func(id string, ok bool, ev string) {
		if ok {
			r.Checks = append(r.Checks, checks.Passed(id, subject, ev))
		} else {
			r.Checks = append(r.Checks, checks.Failed(id, subject, ev))
		}
	}
	want := describeEncryption(t.wantEncryption())
	add("s3.encryption.default", describeEncryption(l.encryption) == want, fmt.Sprintf("GetBucketEncryption: %s (policy: %s)", describeEncryption(l.encryption), want))
	pol, perr := parsePolicy(l.policy)
	var missing []string
	for _, st := range hardenStatements(t.spec.Bucket, t.spec) {
		if perr != nil || !slices.ContainsFunc(pol.Statement, func(raw json.RawMessage) bool { return sidOf(raw) == st["Sid"] }) {
			missing = append(missing, fmt.Sprint(st["Sid"]))
		}
	}
	add("s3.policy.denies", len(missing) == 0, orAll(missing, "missing: ", fmt.Sprintf("%d deny statement(s) present (transport, unencrypted upload, algorithm, sensitive prefixes)", len(hardenStatements(t.spec.Bucket, t.spec)))))
	r.Checks = append(r.Checks, t.httpRefused(ctx, q.RequestContext, subject))
	r.Checks = append(r.Checks, t.unencryptedRefused(ctx, subject)...)
	r.Checks = append(r.Checks, t.multipartAccepted(ctx, subject))
	r.Checks = append(r.Checks, t.sample(ctx, subject))
	if t.spec.Envelope != nil {
		r.Checks = append(r.Checks, t.envelopeRecords(ctx, subject))
	}
	r.Checks = append(r.Checks, t.canary(ctx, subject))
	r.Checks = append(r.Checks, <-scan...)
}

func orAll(items []string, prefix, ok string) string {
	if len(items) == 0 {
		return ok
	}
	return prefix + strings.Join(items, ", ")
}

func (t *target) scanTLS(ctx context.Context, q sdk.RequestContext) []checks.Check {
	u, _ := url.Parse(t.conn.Endpoint)
	target, exp, err := probe.ForRequest(q, probe.HTTP)
	if err != nil {
		return []checks.Check{checks.Errored("tls.enabled", u.Host, err)}
	}
	target.Address, target.ClientCert, exp.RequireClientAuth = u.Host, nil, false
	res, err := probe.Scan(ctx, target, probe.Options{})
	if err != nil {
		return []checks.Check{checks.Errored("tls.enabled", u.Host, err)}
	}
	out := res.Checks(exp)
	for i := range out {
		out[i].Subject = "S3 endpoint " + u.Host
	}
	return out
}

// refused: the request failed with an S3 error (403 and kin), not a
// network problem.
func refused(err error) (bool, string) {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		return er.StatusCode == 403 || er.Code == "AccessDenied", fmt.Sprintf("%d %s", er.StatusCode, er.Code)
	}
	if err == nil {
		return false, "accepted"
	}
	return false, err.Error()
}

// httpRefused: PUT, GET and LIST over the plaintext endpoint must be
// refused by the server (a closed port counts as refused too).
func (t *target) httpRefused(ctx context.Context, q sdk.RequestContext, subject string) checks.Check {
	if t.conn.HTTPEndpoint == "" {
		return checks.New("s3.http.refused", checks.Skip, subject, "no connection.http_endpoint: no plaintext endpoint to test")
	}
	cl, err := t.client(q, t.conn.HTTPEndpoint)
	if err != nil {
		return checks.Errored("s3.http.refused", subject, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	key := "harden-verify/http-" + nonce()
	var accepted, ev []string
	opts := minio.PutObjectOptions{ServerSideEncryption: encrypt.NewSSE()}
	_, err = cl.PutObject(ctx, t.spec.Bucket, key, strings.NewReader("x"), 1, opts)
	if ok, why := refused(err); ok || isConnRefused(err) {
		ev = append(ev, "PUT "+why)
	} else {
		accepted = append(accepted, "PUT ("+why+")")
		_ = t.cl.RemoveObject(ctx, t.spec.Bucket, key, minio.RemoveObjectOptions{})
	}
	_, err = cl.StatObject(ctx, t.spec.Bucket, "harden-verify/none", minio.StatObjectOptions{})
	if ok, why := refused(err); ok || isConnRefused(err) {
		ev = append(ev, "GET "+why)
	} else {
		accepted = append(accepted, "GET ("+why+")")
	}
	obj := <-cl.ListObjects(ctx, t.spec.Bucket, minio.ListObjectsOptions{MaxKeys: 1}) // one answer; cancel ends the listing
	if ok, why := refused(obj.Err); ok || isConnRefused(obj.Err) {
		ev = append(ev, "LIST "+why)
	} else {
		accepted = append(accepted, "LIST ("+why+")")
	}
	if len(accepted) > 0 {
		return checks.Failed("s3.http.refused", subject, "over "+t.conn.HTTPEndpoint+" accepted: "+strings.Join(accepted, ", "))
	}
	return checks.Passed("s3.http.refused", subject, "over "+t.conn.HTTPEndpoint+": "+strings.Join(ev, "; "))
}

func isConnRefused(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection refused")
}

func nonce() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// unencryptedRefused: a PUT and a CopyObject without SSE header must be
// refused; an accepted one is reported and deleted.
func (t *target) unencryptedRefused(ctx context.Context, subject string) []checks.Check {
	key := "harden-verify/plain-" + nonce()
	var accepted, ev []string
	_, err := t.cl.PutObject(ctx, t.spec.Bucket, key, strings.NewReader("plaintext"), 9, minio.PutObjectOptions{})
	if ok, why := refused(err); ok {
		ev = append(ev, "PUT without SSE: "+why)
	} else {
		accepted = append(accepted, "PUT without SSE ("+why+")")
		_ = t.cl.RemoveObject(ctx, t.spec.Bucket, key, minio.RemoveObjectOptions{})
	}
	// CopyObject without SSE from an encrypted source.
	src := "harden-verify/src-" + nonce()
	if _, err := t.cl.PutObject(ctx, t.spec.Bucket, src, strings.NewReader("source"), 6, minio.PutObjectOptions{ServerSideEncryption: t.sseFor(src)}); err != nil {
		return []checks.Check{checks.Failed("s3.put.unencrypted_refused", subject, "an encrypted PUT (the copy source) was refused: "+err.Error())}
	}
	dst := "harden-verify/copy-" + nonce()
	_, err = t.cl.CopyObject(ctx, minio.CopyDestOptions{Bucket: t.spec.Bucket, Object: dst}, minio.CopySrcOptions{Bucket: t.spec.Bucket, Object: src})
	if ok, why := refused(err); ok {
		ev = append(ev, "CopyObject without SSE: "+why)
	} else {
		accepted = append(accepted, "CopyObject without SSE ("+why+")")
		_ = t.cl.RemoveObject(ctx, t.spec.Bucket, dst, minio.RemoveObjectOptions{})
	}
	_ = t.cl.RemoveObject(ctx, t.spec.Bucket, src, minio.RemoveObjectOptions{})
	if len(accepted) > 0 {
		return []checks.Check{checks.Failed("s3.put.unencrypted_refused", subject, "accepted (and deleted again): "+strings.Join(accepted, ", "))}
	}
	return []checks.Check{checks.Passed("s3.put.unencrypted_refused", subject, strings.Join(ev, "; "))}
}

// sseFor is the SSE an upload of key must carry (SSE-KMS for sensitive
// prefixes and when the default is KMS).
func (t *target) sseFor(key string) encrypt.ServerSide {
	kms := t.spec.SSE.algorithm() == "aws:kms"
	for _, p := range t.spec.SensitivePrefixes {
		kms = kms || strings.HasPrefix(key, p)
	}
	if kms && t.spec.SSE.KMSKeyID != "" {
		if s, err := encrypt.NewSSEKMS(t.spec.SSE.KMSKeyID, nil); err == nil {
			return s
		}
	}
	return encrypt.NewSSE()
}

// multipartAccepted: an encrypted multipart upload (two 5 MiB parts)
// still succeeds — the denies must not break legitimate writers.
func (t *target) multipartAccepted(ctx context.Context, subject string) checks.Check {
	key := "harden-verify/multipart-" + nonce()
	size := int64(10<<20 + 1)
	_, err := t.cl.PutObject(ctx, t.spec.Bucket, key, io.LimitReader(rand.Reader, size), size,
		minio.PutObjectOptions{ServerSideEncryption: t.sseFor(key), PartSize: 5 << 20})
	if err != nil {
		return checks.Failed("s3.put.encrypted_accepted", subject, "encrypted multipart upload refused: "+err.Error())
	}
	_ = t.cl.RemoveObject(ctx, t.spec.Bucket, key, minio.RemoveObjectOptions{})
	return checks.Passed("s3.put.encrypted_accepted", subject, fmt.Sprintf("encrypted multipart upload of %d bytes (3 parts) accepted", size))
}

// sample inspects up to spec.sample objects with HeadObject.
func (t *target) sample(ctx context.Context, subject string) checks.Check {
	var plain []string
	checked, total, err := t.eachSampled(ctx, "", func(key string, st minio.ObjectInfo, err error) {
		if err != nil {
			plain = append(plain, key+" (HeadObject: "+err.Error()+")")
			return
		}
		if alg := st.Metadata.Get("X-Amz-Server-Side-Encryption"); !slices.Contains(approvedAlgorithms(t.spec), alg) {
			plain = append(plain, fmt.Sprintf("%s (%q)", key, alg))
		}
	})
	if err != nil {
		return checks.Errored("s3.objects.encrypted", subject, err)
	}
	if total == 0 {
		return checks.New("s3.objects.encrypted", checks.Skip, subject, "no objects in the bucket to sample yet")
	}
	cov := fmt.Sprintf("coverage %d/%d objects", checked, total)
	if len(plain) > 0 {
		return checks.Failed("s3.objects.encrypted", subject, fmt.Sprintf("%s; without an approved encryption: %s", cov, strings.Join(plain[:min(len(plain), 20)], ", ")))
	}
	return checks.Passed("s3.objects.encrypted", subject, cov+", every one with an approved server-side encryption")
}

// canary writes 64 KiB of random bytes through an encrypted PUT and, once
// the server's data directory grew by at least that much, searches every
// file there for them: found means stored in plaintext, whatever the
// headers say.
func (t *target) canary(ctx context.Context, subject string) checks.Check {
	if t.conn.DataDir == "" {
		return checks.New("s3.at_rest.canary", checks.Skip, subject, "no connection.data_dir: the at-rest proof needs harden on the server's host")
	}
	before, err := dirSize(t.conn.DataDir)
	if err != nil {
		return checks.New("s3.at_rest.canary", checks.Warn, subject, "data_dir not readable here: "+err.Error())
	}
	data := make([]byte, 64<<10)
	_, _ = rand.Read(data)
	key := "harden-verify/canary-" + nonce()
	if _, err := t.cl.PutObject(ctx, t.spec.Bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{ServerSideEncryption: t.sseFor(key)}); err != nil {
		return checks.Failed("s3.at_rest.canary", subject, "the encrypted canary PUT was refused: "+err.Error())
	}
	defer t.cl.RemoveObject(context.WithoutCancel(ctx), t.spec.Bucket, key, minio.RemoveObjectOptions{})
	// Judge only once the data dir grew by (about) the canary's size — the
	// bytes must have reached the disk — but fail as soon as they are seen.
	probeBytes := data[1000:1064] // 64 random bytes: no false match
	deadline := time.Now().Add(10 * time.Second)
	for {
		if found := findBytes(t.conn.DataDir, probeBytes); found != "" {
			return checks.Failed("s3.at_rest.canary", subject, "the canary's plaintext bytes are on disk in "+found+": the server stores objects unencrypted despite the SSE header")
		}
		after, _ := dirSize(t.conn.DataDir)
		if after-before >= int64(len(data))/2 {
			if found := findBytes(t.conn.DataDir, probeBytes); found != "" {
				return checks.Failed("s3.at_rest.canary", subject, "the canary's plaintext bytes are on disk in "+found+": the server stores objects unencrypted despite the SSE header")
			}
			return checks.Passed("s3.at_rest.canary", subject, fmt.Sprintf("64 KiB canary written with SSE; the data dir grew by %d bytes and the canary's plaintext is in none of the files under %s", after-before, t.conn.DataDir))
		}
		if time.Now().After(deadline) {
			return checks.New("s3.at_rest.canary", checks.Warn, subject, fmt.Sprintf("the data dir grew by %d bytes only after the 64 KiB canary: it is not where the server stores objects", after-before))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// findBytes returns the first file under dir that contains b.
func findBytes(dir string, b []byte) string {
	var found string
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found != "" {
			return nil
		}
		if data, err := os.ReadFile(path); err == nil && bytes.Contains(data, b) {
			found = path
		}
		return nil
	})
	return found
}

func dirSize(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
			}
		}
		return nil
	})
	return total, err
}

// envelopeRecords reads the records of the objects under the envelope
// prefix (up to spec.sample): every object needs one of the KEK, no two may
// share a DEK commitment (a reused data key), and records under a KEK
// version older than the newest seen are rewrap debt.
func (t *target) envelopeRecords(ctx context.Context, subject string) checks.Check {
	seen := map[string]string{}
	versions := map[int]int{}
	var missing, reused []string
	checked, total, err := t.eachSampled(ctx, t.spec.Envelope.Prefix, func(key string, st minio.ObjectInfo, err error) {
		if err != nil {
			missing = append(missing, key+" (HeadObject: "+err.Error()+")")
			return
		}
		rec, err := envelope.ParseRecord(st.UserMetadata)
		if err != nil || rec.KEK != t.spec.Envelope.KEK {
			missing = append(missing, key)
			return
		}
		if other, dup := seen[rec.Commitment]; dup {
			reused = append(reused, key+" = "+other)
		}
		seen[rec.Commitment] = key
		versions[rec.KEKVersion]++
	})
	if err != nil {
		return checks.Errored("s3.envelope.records", subject, err)
	}
	newest, debt := 0, 0
	for v := range versions {
		newest = max(newest, v)
	}
	for v, n := range versions {
		if v < newest {
			debt += n
		}
	}
	ev := fmt.Sprintf("coverage %d/%d objects under %q; KEK versions %v; rewrap debt %d (vs the newest version seen, v%d)", checked, total, t.spec.Envelope.Prefix, versions, debt, newest)
	switch {
	case len(missing) > 0:
		return checks.Failed("s3.envelope.records", subject, ev+"; without a record of "+t.spec.Envelope.KEK+": "+strings.Join(missing[:min(len(missing), 20)], ", "))
	case len(reused) > 0:
		return checks.Failed("s3.envelope.records", subject, ev+"; data key reused (equal commitments): "+strings.Join(reused, ", "))
	case debt > 0:
		return checks.New("s3.envelope.records", checks.Warn, subject, ev+": run harden objectstore rewrap")
	}
	return checks.Passed("s3.envelope.records", subject, ev+"; every record has its own data key")
}

// eachSampled lists the objects under prefix (harden's own verify objects
// left out) and HEADs up to spec.sample of them (100 by default), handing
// each to fn; it returns how many were inspected and how many exist.
func (t *target) eachSampled(ctx context.Context, prefix string, fn func(key string, st minio.ObjectInfo, err error)) (checked, total int, err error) {
	limit := t.spec.Sample
	if limit == 0 {
		limit = 100
	}
	for obj := range t.cl.ListObjects(ctx, t.spec.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return checked, total, obj.Err
		}
		if strings.HasPrefix(obj.Key, "harden-verify/") {
			continue
		}
		total++
		if checked >= limit {
			continue
		}
		checked++
		st, err := t.cl.StatObject(ctx, t.spec.Bucket, obj.Key, minio.StatObjectOptions{})
		fn(obj.Key, st, err)
	}
	return checked, total, nil
}
