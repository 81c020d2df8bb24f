package envelope

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func randBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func seal(t testing.TB, plain, dek []byte, chunk int) []byte {
	t.Helper()
	var out bytes.Buffer
	n, err := Encrypt(&out, bytes.NewReader(plain), dek, Options{ChunkSize: chunk, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(out.Len()) || n != EncryptedSize(int64(len(plain)), chunk) {
		t.Fatalf("size %d, buffer %d, EncryptedSize %d", n, out.Len(), EncryptedSize(int64(len(plain)), chunk))
	}
	return out.Bytes()
}

func open(body, dek []byte) ([]byte, error) {
	var out bytes.Buffer
	_, err := Decrypt(&out, bytes.NewReader(body), dek, Options{Workers: 2})
	return out.Bytes(), err
}

// Round trips at every boundary: empty, less than a chunk, exactly one and
// several chunks, a partial last chunk.
func TestRoundTrip(t *testing.T) {
	dek := randBytes(t, 32)
	const chunk = MinChunkSize
	for _, n := range []int{0, 1, chunk - 1, chunk, chunk + 1, 3 * chunk, 7*chunk + 5} {
		plain := randBytes(t, n)
		got, err := open(seal(t, plain, dek, chunk), dek)
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("%d bytes: %v (got %d bytes)", n, err, len(got))
		}
	}
}

// Every tampering is detected: wrong key, a flipped bit in header or
// chunk, truncation at a chunk boundary and inside a chunk, reordered
// chunks, a chunk swapped in from another object, appended data.
func TestTamperingDetected(t *testing.T) {
	const chunk = MinChunkSize
	dek, other := randBytes(t, 32), randBytes(t, 32)
	plain := randBytes(t, 4*chunk+100)
	body := seal(t, plain, dek, chunk)
	sealed := chunk + TagSize
	chunkAt := func(b []byte, i int) []byte { return b[HeaderSize+i*sealed : HeaderSize+(i+1)*sealed] }
	otherBody := seal(t, randBytes(t, 4*chunk+100), other, chunk)
	cases := map[string][]byte{
		"flipped header bit":            func() []byte { b := bytes.Clone(body); b[8] ^= 1; return b }(),
		"flipped chunk bit":             func() []byte { b := bytes.Clone(body); b[HeaderSize+10] ^= 1; return b }(),
		"truncated at a chunk boundary": bytes.Clone(body[:HeaderSize+2*sealed]),
		"truncated inside a chunk":      bytes.Clone(body[:len(body)-7]),
		"chunks reordered": func() []byte {
			b := bytes.Clone(body)
			copy(b[HeaderSize:], chunkAt(body, 1))
			copy(b[HeaderSize+sealed:], chunkAt(body, 0))
			return b
		}(),
		"chunk from another object": func() []byte { b := bytes.Clone(body); copy(b[HeaderSize:], chunkAt(otherBody, 0)); return b }(),
		"appended data":             append(bytes.Clone(body), 0),
		"appended chunk":            append(bytes.Clone(body), chunkAt(body, 0)...),
		"header only":               bytes.Clone(body[:HeaderSize]),
	}
	for name, b := range cases {
		if _, err := open(b, dek); !errors.Is(err, ErrAuth) {
			t.Errorf("%s: %v, want ErrAuth", name, err)
		}
	}
	if _, err := open(body, other); !errors.Is(err, ErrAuth) {
		t.Errorf("wrong key: %v", err)
	}
	// A chunk size beyond the cap is refused before any allocation.
	b := bytes.Clone(body)
	b[6], b[7], b[8], b[9] = 0x7f, 0xff, 0xff, 0xff
	if _, err := open(b, dek); err == nil || errors.Is(err, ErrAuth) {
		t.Errorf("huge chunk size: %v", err)
	}
}

func TestLocalKEKAndCommitment(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kek")
	if err := NewLocalKEKFile(path); err != nil {
		t.Fatal(err)
	}
	if err := NewLocalKEKFile(path); err == nil {
		t.Errorf("an existing KEK file was overwritten")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("KEK file mode %v", fi.Mode())
	}
	kek, err := LoadLocalKEK(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dk, err := kek.NewDataKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dek, err := kek.Unwrap(ctx, dk.Wrapped)
	if err != nil || !bytes.Equal(dek, dk.Plaintext) || Commitment(dek) != Commitment(dk.Plaintext) {
		t.Fatalf("unwrap: %v", err)
	}
	dk2, _ := kek.NewDataKey(ctx)
	if Commitment(dk2.Plaintext) == Commitment(dk.Plaintext) {
		t.Errorf("two data keys share a commitment")
	}
	if err := NewLocalKEKFile(filepath.Join(dir, "kek2")); err != nil {
		t.Fatal(err)
	}
	other, _ := LoadLocalKEK(filepath.Join(dir, "kek2"))
	if _, err := other.Unwrap(ctx, dk.Wrapped); err == nil {
		t.Errorf("a data key unwrapped under another KEK")
	}
	os.Chmod(path, 0o644)
	if _, err := LoadLocalKEK(path); err == nil {
		t.Errorf("a world-readable KEK file was accepted")
	}
	r := Record{Version: Version, KEK: kek.ID(), KEKVersion: 1, WrappedDEK: dk.Wrapped, Commitment: Commitment(dek), ChunkSize: DefaultChunkSize, Size: 42}
	back, err := ParseRecord(r.Metadata())
	if err != nil || back != r {
		t.Errorf("record round trip: %v %+v", err, back)
	}
	if _, err := ParseRecord(map[string]string{MetaVersion: "1"}); err == nil {
		t.Errorf("incomplete record accepted")
	}
}

// FuzzDecrypt: bodies are untrusted input (the object store returns them).
func FuzzDecrypt(f *testing.F) {
	dek := make([]byte, 32)
	var body bytes.Buffer
	Encrypt(&body, bytes.NewReader([]byte("hello envelope")), dek, Options{ChunkSize: MinChunkSize})
	f.Add(body.Bytes())
	f.Add([]byte("HRDN\x01\x01\x00\x00\x04\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Decrypt(io.Discard, bytes.NewReader(b), dek, Options{Workers: 2})
	})
}

// FuzzParseRecord: object metadata is untrusted input.
func FuzzParseRecord(f *testing.F) {
	f.Add("1", "vault:transit/k", "2", "vault:v2:abc", "00", "1048576", "5")
	f.Fuzz(func(t *testing.T, v, kek, kv, w, c, cs, size string) {
		r, err := ParseRecord(map[string]string{MetaVersion: v, MetaKEK: kek, MetaKEKVersion: kv, MetaWrappedDEK: w, MetaCommitment: c, MetaChunkSize: cs, MetaSize: size})
		if err == nil && (r.ChunkSize < MinChunkSize || r.ChunkSize > MaxChunkSize || r.Size < 0) {
			t.Fatalf("accepted %+v", r)
		}
	})
}

// 2 GiB + 1 byte streamed through Encrypt and Decrypt (pipes, nothing held
// in memory): the hashes agree and the heap stays bounded.
func TestMultiGiBStream(t *testing.T) {
	const n = 2<<30 + 1
	dek := randBytes(t, 32)
	src := io.LimitReader(rand.Reader, n)
	inHash, outHash := sha256.New(), sha256.New()
	pr, pw := io.Pipe()
	go func() {
		_, err := Encrypt(pw, io.TeeReader(src, inHash), dek, Options{})
		pw.CloseWithError(err)
	}()
	var ms runtime.MemStats
	got, err := Decrypt(outHash, pr, dek, Options{})
	if err != nil || got != n {
		t.Fatalf("decrypt: %v, %d bytes", err, got)
	}
	if !bytes.Equal(inHash.Sum(nil), outHash.Sum(nil)) {
		t.Errorf("2 GiB round trip differs")
	}
	runtime.ReadMemStats(&ms)
	if ms.HeapSys > 256<<20 {
		t.Errorf("heap grew to %d MiB streaming 2 GiB", ms.HeapSys>>20)
	}
}
