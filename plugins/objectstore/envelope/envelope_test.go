package envelope

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
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
// FuzzDecrypt: a body is untrusted input. The property, checked against an
// independent sequential model of the format (referenceOpen):
//   - Decrypt never writes a byte that did not authenticate: its output is
//     exactly the plaintext of the body's leading chunks that authenticate,
//     in order, and the count it returns is what it wrote;
//   - it succeeds exactly when the whole body authenticates as chunks
//     0..n with the final flag on the last and nothing after it — i.e. only
//     for bytes a real Encrypt produced — and then the body is, byte for
//     byte, the sealing of what it returned;
//   - it fails only with ErrFormat, ErrAuth or a header error, never panics,
//     and allocates in proportion to the declared chunk size, never to the
//     input;
//   - the fuzz input as a plaintext goes through Encrypt and Decrypt exactly,
//     and one flipped byte of that body makes Decrypt fail having written
//     only whole chunks of the original.
func FuzzDecrypt(f *testing.F) {
	dek := fuzzDEK()
	sealed := func(plain []byte, chunk int) []byte {
		var body bytes.Buffer
		if _, err := Encrypt(&body, bytes.NewReader(plain), dek, Options{ChunkSize: chunk}); err != nil {
			f.Fatal(err)
		}
		return body.Bytes()
	}
	f.Add(sealed([]byte("hello envelope"), MinChunkSize))
	f.Add(sealed(nil, MinChunkSize))
	f.Add(sealed(bytes.Repeat([]byte{7}, MinChunkSize), MinChunkSize))     // exactly one full chunk
	multi := sealed(bytes.Repeat([]byte("0123456789"), 300), MinChunkSize) // three chunks
	f.Add(multi)
	f.Add(multi[:HeaderSize+MinChunkSize+TagSize])                                                  // truncated at a chunk boundary
	f.Add(append(append([]byte{}, multi...), multi[HeaderSize:HeaderSize+MinChunkSize+TagSize]...)) // a chunk appended
	swapped := append([]byte{}, multi[:HeaderSize]...)
	swapped = append(swapped, multi[HeaderSize+MinChunkSize+TagSize:HeaderSize+2*(MinChunkSize+TagSize)]...)
	swapped = append(swapped, multi[HeaderSize:HeaderSize+MinChunkSize+TagSize]...)
	f.Add(append(swapped, multi[HeaderSize+2*(MinChunkSize+TagSize):]...)) // chunks 0 and 1 swapped
	f.Add([]byte("HRDN\x01\x01\x00\x00\x04\x00"))
	f.Add([]byte("HRDN\x01\x01\x01\x00\x00\x00abcdefg12345")) // the largest chunk size, a tiny body
	f.Add([]byte("HRDN\x02\x01\x00\x00\x04\x00abcdefg"))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecrypt(t, b, dek)
		// The input as a plaintext: an exact round trip.
		var body bytes.Buffer
		if _, err := Encrypt(&body, bytes.NewReader(b), dek, Options{ChunkSize: MinChunkSize, Workers: 2}); err != nil {
			t.Fatal(err)
		}
		out := checkDecrypt(t, body.Bytes(), dek)
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip of %d bytes returned %d other bytes", len(b), len(out))
		}
		// One flipped byte: a failure, and only whole original chunks out.
		tampered := append([]byte{}, body.Bytes()...)
		pos := int(sha256.Sum256(b)[0]) * len(tampered) / 256
		tampered[pos] ^= 0x80
		var got bytes.Buffer
		if _, err := Decrypt(&got, bytes.NewReader(tampered), dek, Options{Workers: 2}); err == nil {
			t.Fatalf("a body with byte %d flipped decrypted", pos)
		}
		if got.Len()%MinChunkSize != 0 || !bytes.HasPrefix(b, got.Bytes()) {
			t.Fatalf("tampered body: %d bytes written that are not whole chunks of the plaintext", got.Len())
		}
		checkDecrypt(t, tampered, dek)
	})
}

func fuzzDEK() []byte {
	dek := make([]byte, 32)
	for i := range dek {
		dek[i] = byte(i)
	}
	return dek
}

// checkDecrypt decrypts b and holds the result to referenceOpen (see
// FuzzDecrypt). It returns the plaintext.
func checkDecrypt(t *testing.T, b, dek []byte) []byte {
	t.Helper()
	const workers = 2
	var out bytes.Buffer
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	n, err := Decrypt(&out, bytes.NewReader(b), dek, Options{Workers: workers})
	runtime.ReadMemStats(&after)
	want, authentic := referenceOpen(b, dek)
	if n != int64(out.Len()) {
		t.Fatalf("Decrypt returned %d but wrote %d bytes", n, out.Len())
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("Decrypt wrote %d bytes, the authentic leading chunks hold %d (err %v)", out.Len(), len(want), err)
	}
	if (err == nil) != authentic {
		t.Fatalf("Decrypt error %v, body authentic: %v", err, authentic)
	}
	if err == nil {
		if again := referenceSeal(b[:HeaderSize], out.Bytes(), dek); !bytes.Equal(again, b) {
			t.Fatalf("Decrypt accepted %d bytes that are not the sealing of its %d-byte output", len(b), out.Len())
		}
	} else if !errors.Is(err, ErrAuth) && !errors.Is(err, ErrFormat) && !strings.HasPrefix(err.Error(), "envelope: ") {
		t.Fatalf("unexpected error %v", err)
	}
	// Allocation: at most 2 × workers + 2 chunk buffers in flight, plus the
	// output and slack; nothing sized by a header that did not parse.
	budget := uint64(1<<20 + 2*out.Len())
	if len(b) >= HeaderSize {
		if cs := binary.BigEndian.Uint32(b[6:10]); cs >= MinChunkSize && cs <= MaxChunkSize && string(b[:4]) == "HRDN" && b[4] == Version && b[5] == AlgAES256GCM {
			budget += uint64(2*workers+4) * uint64(cs+TagSize)
		}
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > budget {
		t.Fatalf("Decrypt of %d bytes allocated %d bytes (budget %d)", len(b), got, budget)
	}
	return out.Bytes()
}

// referenceOpen is an independent, sequential reading of the body format
// (format.go): the plaintext of the leading chunks that authenticate, and
// whether the whole body does.
func referenceOpen(body, dek []byte) ([]byte, bool) {
	if len(body) < HeaderSize || string(body[:4]) != "HRDN" || body[4] != 1 || body[5] != 1 {
		return nil, false
	}
	cs := int(binary.BigEndian.Uint32(body[6:10]))
	if cs < 1<<10 || cs > 16<<20 {
		return nil, false
	}
	aead := referenceGCM(dek)
	var plain []byte
	rest := body[HeaderSize:]
	for i := 0; ; i++ {
		piece := rest[:min(cs+16, len(rest))]
		rest = rest[len(piece):]
		final := len(rest) == 0
		p, err := aead.Open(nil, referenceNonce(body, i, final), piece, body[:HeaderSize])
		if err != nil {
			return plain, false
		}
		plain = append(plain, p...)
		if final {
			return plain, true
		}
	}
}

// referenceSeal seals plain under header as Encrypt must have.
func referenceSeal(header, plain, dek []byte) []byte {
	cs := int(binary.BigEndian.Uint32(header[6:10]))
	aead := referenceGCM(dek)
	out := append([]byte{}, header...)
	for i := 0; ; i++ {
		n := min(cs, len(plain))
		final := len(plain) <= cs
		out = aead.Seal(out, referenceNonce(header, i, final), plain[:n], header)
		plain = plain[n:]
		if final {
			return out
		}
	}
}

func referenceNonce(header []byte, i int, final bool) []byte {
	nonce := make([]byte, 12)
	copy(nonce, header[10:17])
	binary.BigEndian.PutUint32(nonce[7:11], uint32(i))
	if final {
		nonce[11] = 1
	}
	return nonce
}

func referenceGCM(dek []byte) cipher.AEAD {
	block, err := aes.NewCipher(dek)
	if err != nil {
		panic(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
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
