package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/harden-dev/harden/host/internal/cli"
	"github.com/harden-dev/harden/plugins/objectstore/envelope"
	"github.com/harden-dev/harden/testenv"
)

func runCLI(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb strings.Builder
	io := cli.IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, IsTerminal: func() bool { return false },
		Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	code := cli.Run(context.Background(), append([]string{"harden"}, args...), io)
	return result{code, out.String(), errb.String()}
}

// harden objectstore put/get against real SeaweedFS, with a local KEK and
// with a Vault transit KEK: the round trip is byte-exact, each object has
// its own DEK (distinct commitments), the body on the server is not the
// plaintext, and a wrong KEK, a stripped record or a tampered body leave no
// output file behind.
func TestObjectstorePutGet(t *testing.T) {
	s, _, cl, _, flags := rotationEnv(t)
	dir := t.TempDir()
	plain := make([]byte, 3<<20+17)
	rand.Read(plain)
	in := filepath.Join(dir, "in.bin")
	os.WriteFile(in, plain, 0o600)
	kekFile := filepath.Join(dir, "kek")
	if r := runCLI(t, nil, "envelope", "kek-init", kekFile); r.code != 0 {
		t.Fatalf("kek-init: %s", r.stderr)
	}
	s3 := append(append([]string{}, flags[:10]...), "--chunk-size", "65536")
	keks := map[string][]string{
		"local":   {"--kek-file", kekFile},
		"transit": flags[10:],
	}
	ctx := context.Background()
	commitments := map[string]bool{}
	for name, kek := range keks {
		for i := 0; i < 2; i++ {
			key := name + "/obj" + string(rune('0'+i))
			if r := runCLI(t, nil, append(append(append([]string{"objectstore", "put"}, s3...), kek...), in, key)...); r.code != 0 {
				t.Fatalf("%s put: %d %s", name, r.code, r.stderr)
			}
			out := filepath.Join(dir, name+"-out"+string(rune('0'+i)))
			if r := runCLI(t, nil, append(append(append([]string{"objectstore", "get"}, s3...), kek...), key, out)...); r.code != 0 {
				t.Fatalf("%s get: %d %s", name, r.code, r.stderr)
			}
			got, _ := os.ReadFile(out)
			if !bytes.Equal(got, plain) {
				t.Errorf("%s: round trip differs", name)
			}
			st, err := cl.StatObject(ctx, s.Bucket, key, minio.StatObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			c := st.UserMetadata["Harden-Dek-Commitment"]
			if c == "" || commitments[c] {
				t.Errorf("%s: commitment %q missing or reused (metadata %v)", key, c, st.UserMetadata)
			}
			commitments[c] = true
			obj, _ := cl.GetObject(ctx, s.Bucket, key, minio.GetObjectOptions{})
			body, _ := stdioReadAll(obj)
			if bytes.Contains(body, plain[:4096]) {
				t.Errorf("%s: the stored body holds plaintext", key)
			}
		}
	}
	bad := filepath.Join(dir, "must-not-exist")
	// Wrong KEK: another local key file.
	other := filepath.Join(dir, "kek2")
	runCLI(t, nil, "envelope", "kek-init", other)
	if r := runCLI(t, nil, append(append([]string{"objectstore", "get"}, s3...), "--kek-file", other, "local/obj0", bad)...); r.code == 0 || !strings.Contains(r.stderr, "was wrapped by KEK") {
		t.Errorf("wrong KEK: %d %s", r.code, r.stderr)
	}
	// Stripped record: a metadata-replacing copy without harden's keys.
	if _, err := cl.CopyObject(ctx, minio.CopyDestOptions{Bucket: s.Bucket, Object: "local/stripped", ReplaceMetadata: true, UserMetadata: map[string]string{"note": "x"}},
		minio.CopySrcOptions{Bucket: s.Bucket, Object: "local/obj0"}); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, nil, append(append(append([]string{"objectstore", "get"}, s3...), keks["local"]...), "local/stripped", bad)...); r.code == 0 || !strings.Contains(r.stderr, "no usable envelope record") {
		t.Errorf("stripped record: %d %s", r.code, r.stderr)
	}
	// Tampered body: one flipped byte, record kept.
	obj, _ := cl.GetObject(ctx, s.Bucket, "local/obj0", minio.GetObjectOptions{})
	st, _ := obj.Stat()
	body, _ := stdioReadAll(obj)
	body[len(body)/2] ^= 1
	meta := map[string]string{}
	for k, val := range st.UserMetadata {
		meta[k] = val
	}
	if _, err := cl.PutObject(ctx, s.Bucket, "local/tampered", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{UserMetadata: meta}); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, nil, append(append(append([]string{"objectstore", "get"}, s3...), keks["local"]...), "local/tampered", bad)...); r.code == 0 || !strings.Contains(r.stderr, "authentication failed") {
		t.Errorf("tampered body: %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Errorf("a failed get left %s behind", bad)
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		for _, e := range entries {
			if strings.Contains(e.Name(), ".harden-") {
				t.Errorf("temporary file left behind: %s", e.Name())
			}
		}
	}

}

func stdioReadAll(r *minio.Object) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r)
	return b.Bytes(), err
}

// rotationEnv starts SeaweedFS and Vault with a transit KEK, and returns
// an S3 client, the KEK, and the CLI flags that reach both.
func rotationEnv(t *testing.T) (*testenv.SeaweedFS, *testenv.Vault, *minio.Client, *envelope.TransitKEK, []string) {
	s := testenv.SeaweedFSForTest(t)
	v := testenv.VaultForTest(t)
	vc, err := v.TransitKey("lake-kek")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := s.Client()
	if err != nil {
		t.Fatal(err)
	}
	flags := []string{"--endpoint", s.HTTPS, "--bucket", s.Bucket, "--ca-file", filepath.Join(filepath.Dir(s.CertFile), "ca.pem"),
		"--access-key-file", s.AccessKeyFile, "--secret-key-file", s.SecretKeyFile,
		"--vault-addr", v.Address, "--vault-ca", v.CAFile, "--vault-token-file", v.TokenFile, "--transit-key", "lake-kek"}
	return s, v, cl, &envelope.TransitKEK{Client: vc, Mount: "transit", Key: "lake-kek"}, flags
}

// KEK rotation: 40 objects under v1, the transit key rotated, a rewrap
// interrupted after its first batch resumes from its checkpoint; --retire is
// refused after a resumed run (it did not see every object) and done after
// a full one; then every record is at v2, every object decrypts, and a v1
// wrapped DEK no longer unwraps (min_decryption_version raised). Bodies are
// untouched (same size, same bytes).
func TestObjectstoreRewrap(t *testing.T) {
	s, _, cl, kek, flags := rotationEnv(t)
	ctx := context.Background()
	plain := []byte(strings.Repeat("envelope rewrap ", 100))
	var oldWrapped string
	bodies := map[string][]byte{}
	for i := 0; i < 40; i++ {
		key := "rot/" + string(rune('a'+i/26)) + string(rune('a'+i%26))
		rec, err := envelope.PutObject(ctx, cl, s.Bucket, key, bytes.NewReader(plain), int64(len(plain)), kek, nil, envelope.Options{ChunkSize: envelope.MinChunkSize})
		if err != nil {
			t.Fatal(err)
		}
		oldWrapped = rec.WrappedDEK
		obj, _ := cl.GetObject(ctx, s.Bucket, key, minio.GetObjectOptions{})
		bodies[key], _ = stdioReadAll(obj)
	}
	// The mechanism that protects a concurrent writer: a copy conditional
	// on a stale ETag is refused by the server.
	st0, _ := cl.StatObject(ctx, s.Bucket, "rot/aa", minio.StatObjectOptions{})
	if _, err := cl.PutObject(ctx, s.Bucket, "rot/aa", bytes.NewReader(bodies["rot/aa"]), int64(len(bodies["rot/aa"])), minio.PutObjectOptions{UserMetadata: st0.UserMetadata}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CopyObject(ctx, minio.CopyDestOptions{Bucket: s.Bucket, Object: "rot/aa", ReplaceMetadata: true, UserMetadata: st0.UserMetadata},
		minio.CopySrcOptions{Bucket: s.Bucket, Object: "rot/aa", MatchETag: "\"0123456789abcdef0123456789abcdef\""}); err == nil {
		t.Errorf("SeaweedFS copied in place despite a stale If-Match ETag: rewrap could overwrite a concurrent writer")
	}
	// Rotation through the CLI: --rotate with a prefix that holds nothing.
	if r := runCLI(t, nil, append(append([]string{"objectstore", "rewrap"}, flags...), "--prefix", "none/", "--rotate")...); r.code != 0 || !strings.Contains(r.stdout, "latest version 2") {
		t.Fatalf("rewrap --rotate: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	cp := filepath.Join(t.TempDir(), "rewrap.checkpoint")
	// Interrupted after the first batch of 10.
	ictx, cancel := context.WithCancel(ctx)
	rep, err := envelope.Rewrap(ictx, cl, s.Bucket, kek, envelope.RewrapOptions{Prefix: "rot/", Checkpoint: cp, Batch: 10, Progress: func(int) { cancel() }})
	if err == nil || rep.Rewrapped != 10 {
		t.Fatalf("interrupted run: %v %+v", err, rep)
	}
	common := append(append([]string{}, flags...), "--prefix", "rot/", "--checkpoint", cp, "--batch", "10")
	r := runCLI(t, nil, append(append([]string{"objectstore", "rewrap"}, common...), "--retire")...)
	if r.code == 0 || !strings.Contains(r.stderr, "resumed a checkpoint") || !strings.Contains(r.stdout, "30 rewrapped") {
		t.Errorf("resumed run with --retire: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, nil, append(append([]string{"objectstore", "rewrap"}, common...), "--retire")...)
	if r.code != 0 || !strings.Contains(r.stdout, "40 already current") || !strings.Contains(r.stdout, "retired") {
		t.Errorf("full run with --retire: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for key, body := range bodies {
		st, err := cl.StatObject(ctx, s.Bucket, key, minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rec, err := envelope.ParseRecord(st.UserMetadata)
		if err != nil || rec.KEKVersion != 2 {
			t.Errorf("%s: record %+v %v", key, rec, err)
		}
		obj, _ := cl.GetObject(ctx, s.Bucket, key, minio.GetObjectOptions{})
		now, _ := stdioReadAll(obj)
		if !bytes.Equal(now, body) {
			t.Errorf("%s: the body changed", key)
		}
		var out bytes.Buffer
		if _, err := envelope.GetObject(ctx, cl, s.Bucket, key, &out, kek, envelope.Options{}); err != nil || !bytes.Equal(out.Bytes(), plain) {
			t.Errorf("%s: %v", key, err)
		}
	}
	if _, err := kek.Unwrap(ctx, oldWrapped); err == nil {
		t.Errorf("a v1 wrapped data key still unwraps after retiring")
	}
}

// putMany uploads n small envelope objects under prefix in parallel.
func putMany(t *testing.T, cl *minio.Client, bucket, prefix string, n int, kek envelope.KEK) {
	t.Helper()
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			body := []byte(fmt.Sprintf("object %d", i))
			_, err := envelope.PutObject(context.Background(), cl, bucket, fmt.Sprintf("%s%05d", prefix, i), bytes.NewReader(body), int64(len(body)), kek, nil, envelope.Options{ChunkSize: envelope.MinChunkSize})
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// A rewrap of 1,200 objects killed with SIGKILL mid-run resumes from its
// checkpoint; afterwards every object decrypts under the new KEK version and
// no debt is left — nothing lost.
func TestObjectstoreRewrapKilledAndResumed(t *testing.T) {
	s, _, cl, kek, flags := rotationEnv(t)
	ctx := context.Background()
	putMany(t, cl, s.Bucket, "kill/", 1200, kek)
	if _, err := kek.Client.Logical().Write("transit/keys/lake-kek/rotate", nil); err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "rewrap.checkpoint")
	args := append(append([]string{"objectstore", "rewrap"}, flags...), "--prefix", "kill/", "--checkpoint", cp, "--batch", "50", "--concurrency", "4")
	cmd := exec.Command(hardenBin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(cp); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no checkpoint within 60 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	done, _ := os.ReadFile(cp)
	if r := runCLI(t, nil, args...); r.code != 0 || !strings.Contains(r.stdout, "debt: 0 object(s)") {
		t.Fatalf("resumed rewrap: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	} else {
		t.Logf("killed after %s; resumed: %s", strings.TrimSpace(string(done)), strings.TrimSpace(r.stdout))
	}
	stale := 0
	for obj := range cl.ListObjects(ctx, s.Bucket, minio.ListObjectsOptions{Prefix: "kill/", Recursive: true}) {
		var out bytes.Buffer
		rec, err := envelope.GetObject(ctx, cl, s.Bucket, obj.Key, &out, kek, envelope.Options{})
		if err != nil || rec.KEKVersion != 2 {
			stale++
		}
	}
	if stale != 0 {
		t.Errorf("%d of 1200 objects not decryptable at v2 after the resumed rewrap", stale)
	}
}

// 2 GiB + 1 byte streamed through SeaweedFS and back with a transit KEK:
// generated, encrypted and uploaded on the fly, downloaded and decrypted
// into a hash — the hashes agree; nothing of that size is held in memory.
func TestObjectstoreMultiGiB(t *testing.T) {
	s, _, cl, kek, _ := rotationEnv(t)
	ctx := context.Background()
	const n = 2<<30 + 1
	in, out := sha256.New(), sha256.New()
	rec, err := envelope.PutObject(ctx, cl, s.Bucket, "big/2GiB", io.TeeReader(io.LimitReader(rand.Reader, n), in), n, kek, nil, envelope.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := envelope.GetObject(ctx, cl, s.Bucket, "big/2GiB", out, kek, envelope.Options{}); err != nil {
		t.Fatal(err)
	}
	if rec.Size != n || !bytes.Equal(in.Sum(nil), out.Sum(nil)) {
		t.Errorf("2 GiB + 1 round trip differs")
	}
	_ = cl.RemoveObject(ctx, s.Bucket, "big/2GiB", minio.RemoveObjectOptions{})
}
