package envelope

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
)

// Options of Encrypt.
type Options struct {
	// ChunkSize of the plaintext chunks (DefaultChunkSize when 0).
	ChunkSize int
	// Workers seal chunks in parallel (the number of CPUs when 0).
	Workers int
}

func (o Options) withDefaults() (Options, error) {
	if o.ChunkSize == 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.ChunkSize < MinChunkSize || o.ChunkSize > MaxChunkSize {
		return o, fmt.Errorf("envelope: chunk size %d outside %d..%d", o.ChunkSize, MinChunkSize, MaxChunkSize)
	}
	if o.Workers <= 0 {
		o.Workers = runtime.NumCPU()
	}
	return o, nil
}

func newAEAD(dek []byte) (cipher.AEAD, error) {
	if len(dek) != 32 {
		return nil, fmt.Errorf("envelope: data key must be 32 bytes, got %d", len(dek))
	}
	block, err := aes.NewCipher(dek)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// chunk is one unit of work: its index, its buffer (plaintext, then sealed
// in place) and whether it is the last.
type chunk struct {
	index uint64
	buf   []byte
	final bool
	err   error
}

// batcher seals or opens a batch of up to Workers chunks in parallel; the
// caller writes them in order, so memory is bounded by Workers buffers.
type batcher struct {
	pool sync.Pool
}

func (b *batcher) run(batch []*chunk, fn func(*chunk)) {
	var wg sync.WaitGroup
	for _, c := range batch {
		wg.Add(1)
		go func() { defer wg.Done(); fn(c) }()
	}
	wg.Wait()
}

// Encrypt reads the plaintext from r and writes the body (header + sealed
// chunks) to w under dek. It returns the number of body bytes written.
func Encrypt(w io.Writer, r io.Reader, dek []byte, opts Options) (int64, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return 0, err
	}
	aead, err := newAEAD(dek)
	if err != nil {
		return 0, err
	}
	var prefix [7]byte
	if _, err := rand.Read(prefix[:]); err != nil {
		return 0, err
	}
	h := newHeader(o.ChunkSize, prefix)
	n, err := w.Write(h.raw[:])
	written := int64(n)
	if err != nil {
		return written, err
	}
	br := bufio.NewReaderSize(r, 64<<10)
	b := &batcher{}
	b.pool.New = func() any { buf := make([]byte, o.ChunkSize+TagSize); return &buf }
	var index uint64
	for done := false; !done; {
		batch := make([]*chunk, 0, o.Workers)
		for len(batch) < o.Workers && !done {
			buf := (*b.pool.Get().(*[]byte))[:o.ChunkSize]
			m, err := io.ReadFull(br, buf)
			if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				return written, err
			}
			final := m < o.ChunkSize
			if !final {
				if _, perr := br.Peek(1); errors.Is(perr, io.EOF) {
					final = true
				} else if perr != nil {
					return written, perr
				}
			}
			if index > maxChunks {
				return written, fmt.Errorf("envelope: more than %d chunks: use a larger chunk size", uint64(maxChunks))
			}
			batch = append(batch, &chunk{index: index, buf: buf[:m], final: final})
			index++
			done = final
		}
		b.run(batch, func(c *chunk) {
			c.buf = aead.Seal(c.buf[:0], h.nonce(c.index, c.final), c.buf, h.raw[:])
		})
		for _, c := range batch {
			n, err := w.Write(c.buf)
			written += int64(n)
			full := c.buf[:cap(c.buf)]
			b.pool.Put(&full)
			if err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// Decrypt reads a body from r and writes the plaintext to w. Chunks are
// written as they authenticate: a truncated or tampered body is detected
// at the latest at its end, so a caller writing a file must write a
// temporary one and keep it only when Decrypt returned nil.
func Decrypt(w io.Writer, r io.Reader, dek []byte, opts Options) (int64, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return 0, err
	}
	aead, err := newAEAD(dek)
	if err != nil {
		return 0, err
	}
	br := bufio.NewReaderSize(r, 64<<10)
	raw := make([]byte, HeaderSize)
	if _, err := io.ReadFull(br, raw); err != nil {
		return 0, ErrFormat
	}
	h, err := parseHeader(raw)
	if err != nil {
		return 0, err
	}
	sealed := h.chunkSize + TagSize
	b := &batcher{}
	b.pool.New = func() any { buf := make([]byte, sealed); return &buf }
	var index uint64
	var written int64
	for done := false; !done; {
		batch := make([]*chunk, 0, o.Workers)
		for len(batch) < o.Workers && !done {
			buf := (*b.pool.Get().(*[]byte))[:sealed]
			m, err := io.ReadFull(br, buf)
			if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				return written, err
			}
			if m < TagSize {
				return written, ErrAuth // truncated: no final chunk
			}
			final := m < sealed
			if !final {
				if _, perr := br.Peek(1); errors.Is(perr, io.EOF) {
					final = true
				} else if perr != nil {
					return written, perr
				}
			}
			if index > maxChunks {
				return written, ErrAuth
			}
			batch = append(batch, &chunk{index: index, buf: buf[:m], final: final})
			index++
			done = final
		}
		b.run(batch, func(c *chunk) {
			out, err := aead.Open(c.buf[:0], h.nonce(c.index, c.final), c.buf, h.raw[:])
			if err != nil {
				c.err = ErrAuth
				return
			}
			c.buf = out
		})
		for _, c := range batch {
			if c.err != nil {
				return written, c.err
			}
			n, err := w.Write(c.buf)
			written += int64(n)
			full := c.buf[:cap(c.buf)]
			b.pool.Put(&full)
			if err != nil {
				return written, err
			}
		}
	}
	return written, nil
}
