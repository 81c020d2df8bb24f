package envelope

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"
)

// PutObject encrypts size bytes from r under a fresh DEK from kek and
// uploads the body with its Record as user metadata in one PUT (sse: the
// server-side encryption header the bucket policy demands, may be nil).
// The plaintext DEK is used once, in memory.
func PutObject(ctx context.Context, cl *minio.Client, bucket, key string, r io.Reader, size int64, kek KEK, sse encrypt.ServerSide, opts Options) (Record, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return Record{}, err
	}
	dk, err := kek.NewDataKey(ctx)
	if err != nil {
		return Record{}, err
	}
	defer clear(dk.Plaintext)
	rec := Record{Version: Version, KEK: kek.ID(), KEKVersion: dk.KEKVersion, WrappedDEK: dk.Wrapped, Commitment: Commitment(dk.Plaintext), ChunkSize: o.ChunkSize, Size: size}
	pr, pw := io.Pipe()
	go func() {
		n, err := Encrypt(pw, io.LimitReader(r, size), dk.Plaintext, o)
		if err == nil && n != EncryptedSize(size, o.ChunkSize) {
			err = fmt.Errorf("envelope: the input ended before %d bytes", size)
		}
		pw.CloseWithError(err)
	}()
	_, err = cl.PutObject(ctx, bucket, key, pr, EncryptedSize(size, o.ChunkSize), minio.PutObjectOptions{
		UserMetadata: rec.Metadata(), ServerSideEncryption: sse, ContentType: "application/vnd.harden.envelope", PartSize: 64 << 20})
	pr.CloseWithError(err)
	if err != nil {
		return Record{}, fmt.Errorf("upload %s/%s: %w", bucket, key, err)
	}
	return rec, nil
}

// GetObject downloads an envelope object, unwraps its DEK with kek, checks
// the DEK commitment and writes the plaintext to w. Errors name what is
// wrong: no record, another KEK, a commitment mismatch (swapped record),
// or a body that does not authenticate.
func GetObject(ctx context.Context, cl *minio.Client, bucket, key string, w io.Writer, kek KEK, opts Options) (Record, error) {
	obj, err := cl.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return Record{}, err
	}
	defer obj.Close()
	st, err := obj.Stat()
	if err != nil {
		return Record{}, fmt.Errorf("%s/%s: %w", bucket, key, err)
	}
	meta := map[string]string{}
	for k, v := range st.UserMetadata {
		meta[k] = v
	}
	for k, v := range st.Metadata {
		if len(v) > 0 {
			meta[k] = v[0]
		}
	}
	rec, err := ParseRecord(meta)
	if err != nil {
		return rec, fmt.Errorf("%s/%s has no usable envelope record (missing or stripped metadata): %w", bucket, key, err)
	}
	if rec.KEK != kek.ID() {
		return rec, fmt.Errorf("%s/%s was wrapped by KEK %s, not %s", bucket, key, rec.KEK, kek.ID())
	}
	dek, err := kek.Unwrap(ctx, rec.WrappedDEK)
	if err != nil {
		return rec, fmt.Errorf("%s/%s: unwrap the data key: %w", bucket, key, err)
	}
	defer clear(dek)
	if subtle.ConstantTimeCompare([]byte(Commitment(dek)), []byte(rec.Commitment)) != 1 {
		return rec, fmt.Errorf("%s/%s: the data key does not match the record's commitment (record swapped or tampered)", bucket, key)
	}
	n, err := Decrypt(w, obj, dek, opts)
	if err != nil {
		return rec, fmt.Errorf("%s/%s: %w", bucket, key, err)
	}
	if n != rec.Size {
		return rec, fmt.Errorf("%s/%s: %d plaintext bytes, the record says %d", bucket, key, n, rec.Size)
	}
	return rec, nil
}

// WriteFileAtomic runs fn on a temporary file next to path and renames it
// into place only when fn succeeded: no partial output is ever left behind
// by a failure. It does not fsync (as age and cp do not; on 1 GiB that
// costs more than the encryption): sync the file yourself where power-loss
// durability matters.
func WriteFileAtomic(path string, mode os.FileMode, fn func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".harden-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if err := fn(f); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return errors.Join(err, os.Remove(tmp))
	}
	ok = true
	return nil
}
