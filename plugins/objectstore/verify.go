package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"

	"github.com/harden-dev/harden/plugins/objectstore/envelope"
	"github.com/harden-dev/harden/shared/checks"
	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
)

func init() {
	ref := []string{checks.RefSeedObjectStore}
	checks.Register(
		// Configuration read back from the server (GetBucketEncryption): once
		// the deny policy refuses uploads without SSE, the default cannot be
		// exercised live, so it is a medium-severity configuration check;
		// the live proof is objectstore.put.unencrypted_refused and objectstore.at_rest.canary.
		checks.Definition{ID: "objectstore.encryption.default", Title: "The bucket's default encryption setting is the policy's (GetBucketEncryption, configuration)", Severity: checks.Medium, Remediation: "Set the bucket's default encryption (harden apply does).", References: ref},
		checks.Definition{ID: "objectstore.policy.denies", Title: "The bucket policy denies plaintext transport and uploads without approved server-side encryption", Severity: checks.High, Remediation: "Add the deny statements (harden apply merges them).", References: ref},
		checks.Definition{ID: "objectstore.http.refused", Title: "PUT, GET and LIST over http:// are refused", Severity: checks.High, Remediation: "Deny aws:SecureTransport=false or close the plaintext port.", References: ref},
		checks.Definition{ID: "objectstore.put.unencrypted_refused", Title: "A PUT and a CopyObject without an SSE header are refused", Severity: checks.High, Remediation: "Deny s3:PutObject without s3:x-amz-server-side-encryption.", References: ref},
		checks.Definition{ID: "objectstore.put.encrypted_accepted", Title: "An encrypted multipart upload still works", Severity: checks.Medium, Remediation: "Check the deny statements are not broader than intended.", References: ref},
		checks.Definition{ID: "objectstore.objects.encrypted", Title: "Sampled objects report an approved encryption (HeadObject)", Severity: checks.High, Remediation: "Re-upload or copy the listed objects with encryption.", References: ref},
		checks.Definition{ID: "objectstore.envelope.records", Title: "Envelope-encrypted objects carry a record of the KEK, each with its own data key; records under an older KEK version are rewrap debt", Severity: checks.High,
			Remediation: "Upload with harden objectstore put; after a KEK rotation run harden objectstore rewrap.", References: ref},
		checks.Definition{ID: "objectstore.at_rest.canary", Title: "Bytes written through an encrypted PUT are not on the server's disk in plaintext", Severity: checks.High, Remediation: "The server echoes SSE headers without encrypting: configure real SSE (a KMS) or use envelope encryption.", References: ref},
	)
}

// Verify proves with live requests what the bucket enforces. Every check
// rests on the server's answers (checks.Reduce): a refusal is a 403 with an
// S3 error code, an acceptance is a violation, and anything else — another
// error, a timeout, a reset, an unreadable file — is inconclusive: an error
// with its reason, never a pass.
func (objectStore) Verify(ctx context.Context, q sdk.VerifyRequest, r *sdk.VerifyResponse) {
	t, ok := open(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	subject := "bucket " + t.spec.Bucket + " at " + t.conn.Endpoint
	t.verifyJournal(&r.Diagnostics)
	type scanned struct {
		checks []checks.Check
		desc   *sdk.EndpointScan
	}
	scan := make(chan scanned, 1)
	go func() {
		cs, d := t.scanTLS(ctx, q.RequestContext)
		scan <- scanned{cs, d}
	}()
	l, err := t.read(ctx)
	if err != nil {
		r.Diagnostics.AddTargetError("objectstore.read", "cannot read the bucket", err)
		sc := <-scan
		r.Checks = sc.checks
		r.Endpoints = describedOf(sc.desc)
		return
	}
	want := describeEncryption(t.wantEncryption())
	got := fmt.Sprintf("GetBucketEncryption: %s (policy: %s)", describeEncryption(l.encryption), want)
	r.Checks = append(r.Checks, checks.Configured("objectstore.encryption.default", subject, got, describeEncryption(l.encryption) == want))
	// The requests that must be refused, made once: their own checks and
	// the live half of objectstore.policy.denies.
	httpTries := t.httpAttempts(ctx, q.RequestContext)
	plainTries := t.unencryptedAttempts(ctx)
	algTries := t.algorithmAttempts(ctx)
	r.Checks = append(r.Checks, t.policyCheck(l.policy, subject, slices.Concat(httpTries, plainTries, algTries)))
	if t.conn.HTTPEndpoint == "" {
		r.Checks = append(r.Checks, checks.NotApplicable("objectstore.http.refused", subject, "no connection.http_endpoint: the server has no plaintext endpoint to test"))
	} else {
		r.Checks = append(r.Checks, checks.Reduce("objectstore.http.refused", subject, observations(httpTries)...))
	}
	r.Checks = append(r.Checks, checks.Reduce("objectstore.put.unencrypted_refused", subject, observations(plainTries)...))
	r.Checks = append(r.Checks, t.multipartAccepted(ctx, subject))
	r.Checks = append(r.Checks, t.sample(ctx, subject))
	if t.spec.Envelope != nil {
		r.Checks = append(r.Checks, t.envelopeRecords(ctx, subject))
	}
	r.Checks = append(r.Checks, t.canary(ctx, subject))
	sc := <-scan
	r.Checks = append(r.Checks, sc.checks...)
	r.Endpoints = describedOf(sc.desc)
}

// describedOf: the scan's description, when there was a scan.
func describedOf(d *sdk.EndpointScan) []sdk.EndpointScan {
	if d == nil {
		return nil
	}
	return []sdk.EndpointScan{*d}
}

func (t *target) scanTLS(ctx context.Context, q sdk.RequestContext) ([]checks.Check, *sdk.EndpointScan) {
	u, _ := url.Parse(t.conn.Endpoint)
	subject := "S3 endpoint " + u.Host
	target, exp, err := probe.ForRequest(q, probe.HTTP)
	if err != nil {
		return []checks.Check{checks.Errored("tls.enabled", subject, err)}, nil
	}
	target.Address, target.ClientCert, exp.RequireClientAuth = u.Host, nil, false
	// The endpoint is judged with the CA harden's S3 client trusts.
	var rootsErr error
	if t.conn.CAFile != "" {
		target.RootCAs, rootsErr = caPool(t.conn.CAFile)
	}
	res, err := probe.Scan(ctx, target, probe.Options{})
	if err != nil {
		return []checks.Check{checks.Errored("tls.enabled", subject, err)}, nil
	}
	out := res.Checks(exp)
	desc := res.Describe("s3")
	for i := range out {
		out[i].Subject = subject
		if rootsErr != nil && out[i].ID == "tls.certificate.trusted" && out[i].Status != checks.Fail {
			out[i] = checks.Errored("tls.certificate.trusted", subject, fmt.Errorf("the endpoint's certificate cannot be judged: %w", rootsErr))
		}
	}
	return out, &desc
}

// attempt is one live request the bucket must refuse, what the server
// answered, and which deny of the policy it exercises.
type attempt struct {
	deny string
	obs  checks.Observation
	// portClosed: nothing listens there (connection refused). Plaintext is
	// not accepted, but no policy statement was exercised either.
	portClosed bool
}

// live is the attempt's observation labelled as live evidence (beside the
// policy text in objectstore.policy.denies).
func (a attempt) live() checks.Observation {
	o := a.obs
	o.Evidence = "live: " + o.Evidence
	return o
}

func observations(as []attempt) []checks.Observation {
	out := make([]checks.Observation, len(as))
	for i, a := range as {
		out[i] = a.obs
	}
	return out
}

// refusal judges the answer to a request the bucket must refuse. Only the
// server's own refusal counts — HTTP 403 (with its S3 error code when the
// request has a body to carry one). Success, or a 404 (the request was
// served: no deny applied), is a violation. Any other answer — another S3
// error, a timeout, a reset, a garbled reply — proves nothing.
func refusal(what string, err error) checks.Observation {
	var er minio.ErrorResponse
	switch {
	case err == nil:
		return checks.Bad(what + " accepted")
	case errors.As(err, &er) && er.StatusCode == http.StatusForbidden && er.Code == "AccessDenied":
		return checks.Good(fmt.Sprintf("%s refused: %d %s", what, er.StatusCode, er.Code))
	case errors.As(err, &er) && er.StatusCode == http.StatusForbidden:
		// SignatureDoesNotMatch, InvalidAccessKeyId, RequestTimeTooSkewed:
		// the request was not judged by the policy at all.
		return checks.Unknown(what, fmt.Sprintf("answered %d %s, an authentication failure, not a refusal by policy", er.StatusCode, er.Code))
	case errors.As(err, &er) && er.StatusCode == http.StatusNotFound:
		return checks.Bad(fmt.Sprintf("%s served (%d %s), not refused", what, er.StatusCode, er.Code))
	case errors.As(err, &er):
		return checks.Unknown(what, fmt.Sprintf("answered %d %s, which is not a refusal by policy", er.StatusCode, er.Code))
	}
	return checks.Unknown(what, err.Error())
}

// acceptance judges the answer to a request the bucket must accept.
func acceptance(what string, err error) checks.Observation {
	var er minio.ErrorResponse
	switch {
	case err == nil:
		return checks.Good(what + " accepted")
	case errors.As(err, &er) && er.StatusCode == http.StatusForbidden:
		return checks.Bad(fmt.Sprintf("%s refused: %d %s", what, er.StatusCode, er.Code))
	}
	return checks.Unknown(what, err.Error())
}

// httpAttempts: PUT, GET and LIST over the plaintext endpoint must be
// refused by the server. A closed port (connection refused: the host's
// own answer that nothing listens) accepts no plaintext either; a timeout
// or a reset proves nothing.
func (t *target) httpAttempts(ctx context.Context, q sdk.RequestContext) []attempt {
	if t.conn.HTTPEndpoint == "" {
		return nil
	}
	over := " over " + t.conn.HTTPEndpoint
	cl, err := t.client(q, t.conn.HTTPEndpoint)
	if err != nil {
		return []attempt{{deny: denyTransport, obs: checks.Unknown("requests"+over, err.Error())}}
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	judge := func(what string, err error) attempt {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return attempt{deny: denyTransport, obs: checks.Good(what + over + ": connection refused (port closed)"), portClosed: true}
		}
		return attempt{deny: denyTransport, obs: refusal(what+over, err)}
	}
	key := "harden-verify/http-" + nonce()
	// With the SSE the bucket needs: only the transport deny can refuse it.
	_, err = cl.PutObject(ctx, t.spec.Bucket, key, strings.NewReader("x"), 1, minio.PutObjectOptions{ServerSideEncryption: t.sseFor(key)})
	if err == nil {
		_ = t.cl.RemoveObject(ctx, t.spec.Bucket, key, minio.RemoveObjectOptions{})
	}
	out := []attempt{judge("PUT", err)}
	_, err = cl.StatObject(ctx, t.spec.Bucket, "harden-verify/none", minio.StatObjectOptions{})
	out = append(out, judge("GET", err))
	obj, ok := <-cl.ListObjects(ctx, t.spec.Bucket, minio.ListObjectsOptions{MaxKeys: 1}) // one answer; cancel ends the listing
	if !ok {
		obj.Err = nil // an empty listing: served
	}
	return append(out, judge("LIST", obj.Err))
}

func nonce() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// unencryptedAttempts: a PUT and a CopyObject without SSE header must be
// refused; an accepted one is reported and deleted.
func (t *target) unencryptedAttempts(ctx context.Context) []attempt {
	key := "harden-verify/plain-" + nonce()
	_, err := t.cl.PutObject(ctx, t.spec.Bucket, key, strings.NewReader("plaintext"), 9, minio.PutObjectOptions{})
	if err == nil {
		_ = t.cl.RemoveObject(ctx, t.spec.Bucket, key, minio.RemoveObjectOptions{})
	}
	out := []attempt{{deny: denyUnencrypted, obs: refusal("PUT without SSE", err)}}
	// CopyObject without SSE from an encrypted source.
	src := "harden-verify/src-" + nonce()
	if _, err := t.cl.PutObject(ctx, t.spec.Bucket, src, strings.NewReader("source"), 6, minio.PutObjectOptions{ServerSideEncryption: t.sseFor(src)}); err != nil {
		return append(out, attempt{deny: denyUnencrypted, obs: checks.Unknown("CopyObject without SSE", "its encrypted source could not be written: "+err.Error())})
	}
	defer t.cl.RemoveObject(context.WithoutCancel(ctx), t.spec.Bucket, src, minio.RemoveObjectOptions{})
	dst := "harden-verify/copy-" + nonce()
	_, err = t.cl.CopyObject(ctx, minio.CopyDestOptions{Bucket: t.spec.Bucket, Object: dst}, minio.CopySrcOptions{Bucket: t.spec.Bucket, Object: src})
	if err == nil {
		_ = t.cl.RemoveObject(ctx, t.spec.Bucket, dst, minio.RemoveObjectOptions{})
	}
	return append(out, attempt{deny: denyUnencrypted, obs: refusal("CopyObject without SSE", err)})
}

// algorithmAttempts: uploads with SSE-S3 where the policy requires SSE-KMS
// (a KMS default, and every sensitive prefix) must be refused. When every
// valid algorithm is approved no request can exercise that deny.
func (t *target) algorithmAttempts(ctx context.Context) []attempt {
	var out []attempt
	try := func(deny, key, what string) {
		_, err := t.cl.PutObject(ctx, t.spec.Bucket, key, strings.NewReader("x"), 1, minio.PutObjectOptions{ServerSideEncryption: encrypt.NewSSE()})
		if err == nil {
			_ = t.cl.RemoveObject(ctx, t.spec.Bucket, key, minio.RemoveObjectOptions{})
		}
		out = append(out, attempt{deny: deny, obs: refusal(what, err)})
	}
	if !slices.Contains(approvedAlgorithms(t.spec), "AES256") {
		try(denyAlgorithm, "harden-verify/alg-"+nonce(), "PUT with SSE-S3 (AES256) where aws:kms is required")
	}
	for _, p := range t.spec.SensitivePrefixes {
		try(denyPrefix+p, p+"harden-verify-"+nonce(), "PUT under "+p+" with SSE-S3 (AES256)")
	}
	return out
}

// policyCheck: each deny the spec needs must be in the live bucket policy
// by content (Effect, Principal, Action, Resource, Condition — not the
// Sid), and the requests that exercise it must have been refused. A deny
// no request can exercise rests on the policy text alone and says so.
func (t *target) policyCheck(text, subject string, tries []attempt) checks.Check {
	pol, err := parsePolicy(text)
	if err != nil {
		// A server stores only policies it parsed: a garbled answer to
		// GetBucketPolicy proves nothing about the statements. What the
		// live requests showed still counts.
		obs := []checks.Observation{checks.Unknown("GetBucketPolicy", "the answer is not a bucket policy: "+err.Error())}
		for _, a := range tries {
			if !a.portClosed {
				obs = append(obs, a.live())
			}
		}
		return checks.Reduce("objectstore.policy.denies", subject, obs...)
	}
	var obs []checks.Observation
	for _, r := range requiredDenies(t.spec.Bucket, t.spec) {
		by, ok, why := judgeDeny(pol, r)
		if !ok {
			obs = append(obs, checks.Bad("policy lacks a deny of "+r.what+": "+why))
		}
		live := 0
		for _, a := range tries {
			if a.deny == r.id && !a.portClosed {
				live++
				obs = append(obs, a.live())
			}
		}
		if ok {
			ev := "policy " + by + " denies " + r.what
			if live == 0 {
				ev += " (configuration only: " + noLiveRequest(r, t.conn) + ")"
			}
			obs = append(obs, checks.Good(ev))
		}
	}
	return checks.Reduce("objectstore.policy.denies", subject, obs...)
}

// noLiveRequest says why no request exercised deny r.
func noLiveRequest(r requiredDeny, c connection) string {
	switch r.id {
	case denyTransport:
		if c.HTTPEndpoint == "" {
			return "no connection.http_endpoint to send plaintext requests to"
		}
		return "the plaintext port is closed, so no request reached the policy"
	case denyAlgorithm:
		return "every valid algorithm is approved, so no upload can carry an unapproved one"
	}
	return "no request exercised it"
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
	if err == nil {
		_ = t.cl.RemoveObject(ctx, t.spec.Bucket, key, minio.RemoveObjectOptions{})
	}
	return checks.Reduce("objectstore.put.encrypted_accepted", subject, acceptance(fmt.Sprintf("encrypted multipart upload of %d bytes (3 parts)", size), err))
}

// sample inspects up to spec.sample objects with HeadObject; a HEAD that
// fails is inconclusive for that object, not a plaintext one.
func (t *target) sample(ctx context.Context, subject string) checks.Check {
	var plain, unknown []string
	checked, total, err := t.eachSampled(ctx, "", func(key string, st minio.ObjectInfo, err error) {
		if err != nil {
			unknown = append(unknown, key+" (HeadObject: "+err.Error()+")")
			return
		}
		if alg := st.Metadata.Get("X-Amz-Server-Side-Encryption"); !slices.Contains(approvedAlgorithms(t.spec), alg) {
			plain = append(plain, fmt.Sprintf("%s (%q)", key, alg))
		}
	})
	if err != nil {
		return checks.Reduce("objectstore.objects.encrypted", subject, checks.Unknown("list the objects", err.Error()))
	}
	if total == 0 {
		return checks.NotApplicable("objectstore.objects.encrypted", subject, "the bucket holds no objects yet (harden's own verify objects aside): nothing to sample")
	}
	cov := fmt.Sprintf("coverage %d/%d objects", checked, total)
	var obs []checks.Observation
	if len(plain) > 0 {
		obs = append(obs, checks.Bad(fmt.Sprintf("%s; without an approved encryption: %s", cov, firstOf(plain, 20))))
	} else if checked > len(unknown) {
		obs = append(obs, checks.Good(cov+", every one with an approved server-side encryption"))
	}
	if len(unknown) > 0 {
		obs = append(obs, checks.Unknown(fmt.Sprintf("%d sampled object(s)", len(unknown)), firstOf(unknown, 5)))
	}
	return checks.Reduce("objectstore.objects.encrypted", subject, obs...)
}

// firstOf joins the first n items and says how many more there are.
func firstOf(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}

// searchBuffer is how much of a file the at-rest search holds at a time.
var searchBuffer = 1 << 20

// canary writes 64 KiB of random bytes through an encrypted PUT and, once
// the server's data directory grew by at least half that, searches every
// file there for them (streamed, one buffer): found means stored in
// plaintext, whatever the headers say. A file that cannot be read, a data
// directory that did not grow, or a canary the server would not take
// makes the proof inconclusive: an error, never "in none of the files".
func (t *target) canary(ctx context.Context, subject string) checks.Check {
	const id = "objectstore.at_rest.canary"
	if t.conn.DataDir == "" {
		return checks.NotApplicable(id, subject, "no connection.data_dir: the at-rest proof needs harden on the server's host")
	}
	fsys := t.dataFS
	if fsys == nil {
		fsys = os.DirFS(t.conn.DataDir)
	}
	before, err := treeSize(fsys)
	if err != nil {
		return checks.Reduce(id, subject, checks.Unknown("read data_dir "+t.conn.DataDir, err.Error()))
	}
	data := make([]byte, 64<<10)
	_, _ = rand.Read(data)
	key := "harden-verify/canary-" + nonce()
	if _, err := t.cl.PutObject(ctx, t.spec.Bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{ServerSideEncryption: t.sseFor(key)}); err != nil {
		return checks.Reduce(id, subject, checks.Unknown("the encrypted 64 KiB canary PUT", "not stored, so nothing can be searched for: "+err.Error()))
	}
	defer t.cl.RemoveObject(context.WithoutCancel(ctx), t.spec.Bucket, key, minio.RemoveObjectOptions{})
	// Judge "absent" only once the data dir grew by (about) the canary's
	// size — the bytes must have reached the disk — but fail as soon as
	// they are seen: a server that reuses freed space need not grow. The
	// size is polled cheaply; the search, which reads every file, runs
	// after 1, 3, 7 s and once the dir grew.
	needle := data[1000:1064] // 64 random bytes: no false match
	plaintext := func(s treeSearch) checks.Check {
		return checks.Failed(id, subject, "the canary's plaintext bytes are on disk in "+s.found+": the server stores objects unencrypted despite the SSE header")
	}
	start := time.Now()
	deadline, nextSearch, interval := start.Add(10*time.Second), start.Add(time.Second), 2*time.Second
	grown := int64(0)
	for {
		after, err := treeSize(fsys)
		if err != nil {
			return checks.Reduce(id, subject, checks.Unknown("read data_dir "+t.conn.DataDir, err.Error()))
		}
		grown = after - before
		if grown >= int64(len(data))/2 || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		if time.Now().After(nextSearch) {
			if s := searchTree(fsys, t.conn.DataDir, needle, searchBuffer); s.found != "" {
				return plaintext(s)
			}
			nextSearch, interval = time.Now().Add(interval), 2*interval
		}
		time.Sleep(100 * time.Millisecond)
	}
	s := searchTree(fsys, t.conn.DataDir, needle, searchBuffer)
	if s.found != "" {
		return plaintext(s)
	}
	var obs []checks.Observation
	switch {
	case grown < int64(len(data))/2:
		obs = append(obs, checks.Unknown(fmt.Sprintf("64 KiB canary written with SSE; %d file(s) searched under %s", s.files, t.conn.DataDir),
			fmt.Sprintf("the data dir grew by %d bytes only within 10 s: it is not where the server stores objects, or the bytes have not reached the disk", grown)))
	case s.files == 0:
		if len(s.unreadable) == 0 {
			obs = append(obs, checks.Unknown("search under "+t.conn.DataDir, "no file to search"))
		}
	default:
		obs = append(obs, checks.Good(fmt.Sprintf("64 KiB canary written with SSE; the data dir grew by %d bytes and the canary's plaintext is in none of the %d file(s) (%d bytes) searched under %s",
			grown, s.files, s.bytes, t.conn.DataDir)))
	}
	if len(s.unreadable) > 0 {
		obs = append(obs, checks.Unknown("search under "+t.conn.DataDir, fmt.Sprintf("%d file(s) could not be searched, the canary may be in them: %s", len(s.unreadable), firstOf(s.unreadable, 5))))
	}
	return checks.Reduce(id, subject, obs...)
}

// treeSearch is what searchTree found: the first file holding the needle,
// how much it searched, and what it could not.
type treeSearch struct {
	found      string
	files      int
	bytes      int64
	unreadable []string // "path (why)"
}

// searchTree streams every regular file under fsys (named under root in
// the result) through one buffer of bufSize bytes, looking for needle
// (also where it spans two reads). Symlinks to files are followed; a
// symlinked directory is not, and counts as not searched.
func searchTree(fsys fs.FS, root string, needle []byte, bufSize int) treeSearch {
	var s treeSearch
	buf := make([]byte, bufSize+len(needle))
	_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		name := filepath.Join(root, filepath.FromSlash(p))
		if err != nil {
			s.unreadable = append(s.unreadable, fmt.Sprintf("%s (%v)", name, err))
			return nil
		}
		mode := d.Type()
		if mode&fs.ModeSymlink != 0 {
			fi, err := fs.Stat(fsys, p)
			switch {
			case err != nil:
				s.unreadable = append(s.unreadable, fmt.Sprintf("%s (%v)", name, err))
				return nil
			case fi.IsDir():
				s.unreadable = append(s.unreadable, name+" (a symlinked directory, not followed: point data_dir at the real path)")
				return nil
			}
			mode = fi.Mode().Type()
		}
		if !mode.IsRegular() {
			return nil // directories are walked; sockets, pipes and devices hold no objects
		}
		n, found, err := searchFile(fsys, p, needle, buf)
		switch {
		case found:
			s.found, s.files, s.bytes = name, s.files+1, s.bytes+n
			return fs.SkipAll
		case err != nil:
			s.unreadable = append(s.unreadable, fmt.Sprintf("%s (%v)", name, err))
		default:
			s.files++
			s.bytes += n
		}
		return nil
	})
	return s
}

// searchFile reads file p through buf, keeping the last len(needle)-1
// bytes of each read in front of the next, so a needle that spans two
// reads is found; memory stays at one buffer whatever the file's size.
func searchFile(fsys fs.FS, p string, needle, buf []byte) (n int64, found bool, err error) {
	f, err := fsys.Open(p)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	keep, carry := len(needle)-1, 0
	for {
		m, err := f.Read(buf[carry:])
		n += int64(m)
		if m > 0 {
			window := buf[:carry+m]
			if bytes.Contains(window, needle) {
				return n, true, nil
			}
			carry = min(keep, len(window))
			copy(buf, window[len(window)-carry:])
		}
		if err == io.EOF {
			return n, false, nil
		}
		if err != nil {
			return n, false, err
		}
	}
}

// treeSize is the total size of the files under fsys; an unreadable data
// directory itself is an error (unreadable entries below it are reported
// by the search).
func treeSize(fsys fs.FS) (int64, error) {
	var total int64
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == "." {
				return err
			}
			return nil
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
// version older than the newest seen are rewrap debt. A HEAD that fails is
// inconclusive; an empty prefix has nothing to judge (not applicable).
func (t *target) envelopeRecords(ctx context.Context, subject string) checks.Check {
	const id = "objectstore.envelope.records"
	seen := map[string]string{}
	versions := map[int]int{}
	var missing, reused, unknown []string
	checked, total, err := t.eachSampled(ctx, t.spec.Envelope.Prefix, func(key string, st minio.ObjectInfo, err error) {
		if err != nil {
			unknown = append(unknown, key+" (HeadObject: "+err.Error()+")")
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
		return checks.Reduce(id, subject, checks.Unknown(fmt.Sprintf("list the objects under %q", t.spec.Envelope.Prefix), err.Error()))
	}
	if total == 0 {
		return checks.NotApplicable(id, subject, fmt.Sprintf("no objects under %q yet: no record to judge (if objects should be there, check spec.envelope.prefix)", t.spec.Envelope.Prefix))
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
	var obs []checks.Observation
	if len(missing) > 0 {
		obs = append(obs, checks.Bad(ev+"; without a record of "+t.spec.Envelope.KEK+": "+firstOf(missing, 20)))
	}
	if len(reused) > 0 {
		obs = append(obs, checks.Bad(ev+"; data key reused (equal commitments): "+strings.Join(reused, ", ")))
	}
	if len(obs) == 0 && len(seen) > 0 {
		obs = append(obs, checks.Good(ev+"; every record has its own data key"))
	}
	if len(unknown) > 0 {
		obs = append(obs, checks.Unknown(fmt.Sprintf("%d sampled object(s)", len(unknown)), firstOf(unknown, 5)))
	}
	c := checks.Reduce(id, subject, obs...)
	if c.Status == checks.Pass && debt > 0 {
		c.Status, c.Evidence = checks.Warn, ev+": run harden objectstore rewrap"
	}
	return c
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
