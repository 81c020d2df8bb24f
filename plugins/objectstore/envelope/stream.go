package envelope

import (
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
// in place, or the reverse) and whether it is the last.
type chunk struct {
	index uint64
	buf   []byte
	final bool
	err   error
	done  chan struct{}
}

var errStopped = errors.New("envelope: stopped")

// pipeline overlaps reading, sealing/opening on every core, and writing in
// order: a reader fills pooled buffers, workers transform them in place,
// the caller's goroutine writes them in index order. At most 2 × workers + 2
// buffers are in flight, so memory is bounded whatever the input size.
type pipeline struct {
	size    int // buffer capacity
	workers int
	pool    sync.Pool
}

func (p *pipeline) get() []byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		return (*b)[:p.size]
	}
	return make([]byte, p.size)
}

func (p *pipeline) put(b []byte) {
	b = b[:cap(b)]
	p.pool.Put(&b)
}

// run reads chunks of want bytes from r (the last one shorter or equal,
// flagged final), applies fn to each in parallel and writes the results to
// w in order. It returns the bytes written.
func (p *pipeline) run(w io.Writer, r io.Reader, want int, fn func(*chunk)) (int64, error) {
	jobs := make(chan *chunk, p.workers)
	order := make(chan *chunk, p.workers+1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range p.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range jobs {
				fn(c)
				close(c.done)
			}
		}()
	}
	// Reader: one chunk of look-ahead tells the last chunk apart.
	go func() {
		defer close(order)
		defer close(jobs)
		var index uint64
		cur := p.get()
		n, err := io.ReadFull(r, cur[:want])
		for {
			// fail hands the writer a chunk that carries err and ends reading.
			fail := func(err error) {
				c := &chunk{index: index, err: err, done: make(chan struct{})}
				close(c.done)
				select {
				case order <- c:
				case <-stop:
				}
			}
			if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				fail(err)
				return
			}
			final := n < want
			var next []byte
			var nn int
			var nerr error
			if !final {
				next = p.get()
				nn, nerr = io.ReadFull(r, next[:want])
				if nn == 0 && (errors.Is(nerr, io.EOF) || errors.Is(nerr, io.ErrUnexpectedEOF)) {
					final = true
					p.put(next)
				}
			}
			if index > maxChunks {
				fail(fmt.Errorf("envelope: more than %d chunks: use a larger chunk size", uint64(maxChunks)))
				return
			}
			c := &chunk{index: index, buf: cur[:n], final: final, done: make(chan struct{})}
			select {
			case order <- c:
			case <-stop:
				return
			}
			select {
			case jobs <- c:
			case <-stop:
				// The writer stopped; it still drains order, so release it.
				c.err = errStopped
				close(c.done)
				return
			}
			if final {
				return
			}
			index++
			cur, n, err = next, nn, nerr
		}
	}()
	var written int64
	var failure error
	for c := range order {
		<-c.done
		if failure != nil {
			continue
		}
		if c.err != nil {
			failure = c.err
			close(stop)
			continue
		}
		m, err := w.Write(c.buf)
		written += int64(m)
		p.put(c.buf)
		if err != nil {
			failure = err
			close(stop)
		}
	}
	wg.Wait()
	return written, failure
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
	if err != nil {
		return int64(n), err
	}
	p := &pipeline{size: o.ChunkSize + TagSize, workers: o.Workers}
	m, err := p.run(w, r, o.ChunkSize, func(c *chunk) {
		c.buf = aead.Seal(c.buf[:0], h.nonce(c.index, c.final), c.buf, h.raw[:])
	})
	return int64(n) + m, err
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
	raw := make([]byte, HeaderSize)
	if _, err := io.ReadFull(r, raw); err != nil {
		return 0, ErrFormat
	}
	h, err := parseHeader(raw)
	if err != nil {
		return 0, err
	}
	sealed := h.chunkSize + TagSize
	p := &pipeline{size: sealed, workers: o.Workers}
	return p.run(w, r, sealed, func(c *chunk) {
		if len(c.buf) < TagSize {
			c.err = ErrAuth // truncated: no final chunk
			return
		}
		out, err := aead.Open(c.buf[:0], h.nonce(c.index, c.final), c.buf, h.raw[:])
		if err != nil {
			c.err = ErrAuth
			return
		}
		c.buf = out
	})
}
